// process:begin/end and the -p/-c pid-set filter, checked without a kernel: which probes the
// plan holds, which programs filter on `plumb_pids`, and the errors of process probes.
import PlumbLang
import PlumbBPF
import Testing

@Suite struct SemaProcessTests {
    @Test("process:begin/end and process:* expand to their targets")
    func targets() {
        let r = check("process:begin { printf(\"%d %d %s\\n\", pid, ppid, comm); } process:* { @[tid] = count(); }")
        #expect(r.diagnostics == "")
        #expect(r.plan?.probes.map(\.target) == [.processBegin, .processBegin, .processEnd])
        #expect(r.plan?.probes.map(\.name) == ["process:begin", "process:begin", "process:end"])
        // No -p/-c: nothing filters, so no pid map.
        #expect(r.plan?.object.maps.contains { $0.name == "plumb_pids" } == false)
    }

    @Test("with -p/-c, user probes (only) look the current tgid up in plumb_pids")
    func filter() throws {
        var options = CompileOptions()
        options.pid = 4242
        let r = check("uprobe:/bin/true:main { @u = count(); } tracepoint:syscalls:sys_enter_openat { @k = count(); }", options: options)
        #expect(r.diagnostics == "")
        let plan = try #require(r.plan)
        let pids = try #require(plan.object.maps.first { $0.name == "plumb_pids" })
        #expect(pids.type == .hash && pids.keySize == 4 && pids.valueSize == 4)
        func filters(_ i: Int) -> Bool {
            plan.object.programs.first { $0.name == plan.probes[i].program }?.references.values.contains(.map("plumb_pids")) == true
        }
        #expect(filters(0) && !filters(1))
        let child = check("uprobe:/bin/true:main { @u = count(); }", options: CompileOptions(childPID: 99))
        #expect(child.plan?.object.maps.contains { $0.name == "plumb_pids" } == true)
    }

    @Test("builtins that need the current task are errors in process probes; ppid only there")
    func diagnostics() {
        let r = check("process:end { print(args); print(arg1); print(retval); print(curtask); print(func); }")
        for what in ["args", "arg1", "retval", "curtask", "func"] {
            #expect(r.diagnostics.contains("error: '\(what)' is not available in process:end probes"), "\(r.diagnostics)")
        }
        // Elsewhere ppid is the current task's real_parent->tgid, as in current bpftrace.
        let ppid = check("tracepoint:syscalls:sys_enter_openat { print(ppid); }")
        #expect(ppid.diagnostics == "", "\(ppid.diagnostics)")
        let unknown = check("process:start { }")
        #expect(unknown.diagnostics.contains("unknown process probe 'start'"), "\(unknown.diagnostics)")
    }

    @Test("the context layout the runtime fills")
    func context() {
        let bytes = ProcessProbeContext.bytes(pid: 7, tid: 8, parent: 1, nanoseconds: 0x0102, uid: 1000, gid: 100, comm: "postgres")
        #expect(bytes.count == ProcessProbeContext.size && bytes.count % 8 == 0 && bytes.count <= 96)
        #expect(bytes[0] == 7 && bytes[8] == 8 && bytes[16] == 1 && bytes[24] == 2 && bytes[25] == 1)
        #expect(bytes[32] == 0xe8 && bytes[33] == 0x03 && bytes[36] == 100)
        #expect(Array(bytes[40..<48]) == Array("postgres".utf8) && bytes[48] == 0)
    }
}
