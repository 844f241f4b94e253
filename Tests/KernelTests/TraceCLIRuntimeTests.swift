// The tracer's command line (plumb, and plumb invoked as `bpftrace`) and the runtime's -c
// child: flags, texts and exit codes as bpftrace 0.17 gives them.
import PlumbBPF
import PlumbAsm
import PlumbBTF
import PlumbSys
import PlumbLang
import PlumbTrace
import Foundation
import Glibc
import Testing
import TestSupport

/// Runs `body` with a `bpftrace` symlink to the plumb binary (argv[0] decides the personality),
/// in a folder of its own (tests run concurrently) removed afterwards.
func withBpftraceLink(_ body: (String) throws -> Void) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-bpftrace-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let link = dir.appendingPathComponent("bpftrace").path
    try #require(symlink(TestEnv.plumb, link) == 0)
    try body(link)
}

@Suite struct TraceCLITests {
    @Test func bpftraceFlagsAndErrors() throws { try withBpftraceLink { bt in
        let bogus = TestEnv.run(bt, ["--bogus"])
        #expect(bogus.status == 1)
        #expect(bogus.stderr.hasPrefix("bpftrace: unrecognized option '--bogus'\nUSAGE:\n    bpftrace [options] filename\n"))
        let version = TestEnv.run(bt, ["-V"])
        #expect(version.status == 0 && version.stdout == "bpftrace v0.17.0\n")
        let missing = TestEnv.run(bt, ["/nonexistent/x.bt"])
        #expect(missing.status == 255)
        #expect(missing.stderr == "ERROR: failed to open file '/nonexistent/x.bt': No such file or directory\n")
        let noValue = TestEnv.run(bt, ["-e"])
        #expect(noValue.status == 1 && noValue.stderr.hasPrefix("bpftrace: option requires an argument -- 'e'\nUSAGE:"))
        let format = TestEnv.run(bt, ["-f", "xml", "-e", "BEGIN { exit(); }"])
        #expect(format.status == 1 && format.stderr == "ERROR: Invalid output format \"xml\"\nValid formats: 'text', 'json'\n")
        let noCommand = TestEnv.run(bt, ["-c", "/nonexistent/cmd", "-e", "BEGIN { printf(\"b\\n\"); }"])
        #expect(noCommand.status == 255)
        #expect(noCommand.stderr == "ERROR: Failed to fork child: path '/nonexistent/cmd' does not exist or is not executable\n")
        // bpftrace 0.17's checks of its environment variables: numbers (0 allowed), and 0/1 switches.
        let logSize = TestEnv.run("/usr/bin/env", ["BPFTRACE_LOG_SIZE=abc", bt, "-e", "BEGIN { exit(); }"])
        #expect(logSize.status == 1 && logSize.stderr == "ERROR: Env var 'BPFTRACE_LOG_SIZE' did not contain a valid uint64_t, or was zero-valued.\n")
        let demangle = TestEnv.run("/usr/bin/env", ["BPFTRACE_NO_CPP_DEMANGLE=2", bt, "-e", "BEGIN { exit(); }"])
        #expect(demangle.status == 1 && demangle.stderr == "ERROR: Env var 'BPFTRACE_NO_CPP_DEMANGLE' did not contain a valid value (0 or 1).\n")
        let maxProbes = TestEnv.run("/usr/bin/env", ["BPFTRACE_MAX_PROBES=0", bt, "-e", "BEGIN { exit(); }"])
        #expect(maxProbes.status == 1 && maxProbes.stderr.hasPrefix("ERROR: Can't attach to 1 probes because it exceeds the current limit of 0 probes."), "\(maxProbes.stderr)")
        // A probe that fails to attach: 255 under bpftrace's name (its exit code), 1 as plumb.
        let kprobe = TestEnv.run(bt, ["-e", "kprobe:vfs_read { } interval:ms:50 { exit(); }"])
        let plumbKprobe = TestEnv.run(TestEnv.plumb, ["-e", "kprobe:vfs_read { } interval:ms:50 { exit(); }"])
        if kprobe.stderr.contains("could not attach") {
            #expect(kprobe.status == 255 && plumbKprobe.status == 1, "\(kprobe.stderr)")
        }
        let usage = TestEnv.run(bt, [])
        #expect(usage.status == 1 && usage.stderr.contains("-l [search]    list probes"))
    } }

    @Test func headersOnTheIncludePathDefineMacros() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-include-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("inc"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "#define A 5\n#include \"b.h\"\nstruct ignored { int x; };\n#define F(x) (x)\n".write(to: dir.appendingPathComponent("inc/a.h"), atomically: true, encoding: .utf8)
        try "#define B (A * 2)\n".write(to: dir.appendingPathComponent("inc/b.h"), atomically: true, encoding: .utf8)
        let body = "BEGIN { printf(\"%d %d\\n\", A, B); exit(); }\n"
        // "a.h" beside the script; <a.h> through -I; --include before the script.
        try ("#include \"a.h\"\n" + body).write(to: dir.appendingPathComponent("inc/quoted.bt"), atomically: true, encoding: .utf8)
        try ("#include <a.h>\n" + body).write(to: dir.appendingPathComponent("angled.bt"), atomically: true, encoding: .utf8)
        let quoted = TestEnv.run(TestEnv.plumb, [dir.appendingPathComponent("inc/quoted.bt").path])
        #expect(quoted.stdout.hasPrefix("Attaching 1 probe...\n5 10\n"), "\(quoted.stderr)")
        let angled = TestEnv.run(TestEnv.plumb, ["-I", dir.appendingPathComponent("inc").path, dir.appendingPathComponent("angled.bt").path])
        #expect(angled.stdout.hasPrefix("Attaching 1 probe...\n5 10\n"), "\(angled.stderr)")
        let notOnPath = TestEnv.run(TestEnv.plumb, ["--check", dir.appendingPathComponent("angled.bt").path])
        #expect(notOnPath.status == 1 && notOnPath.stderr.contains("'A'"), "\(notOnPath.stderr)")
        let pre = TestEnv.run(TestEnv.plumb, ["--include", dir.appendingPathComponent("inc/a.h").path, "-e", body])
        #expect(pre.stdout.hasPrefix("Attaching 1 probe...\n5 10\n"), "\(pre.stderr)")
        let missing = TestEnv.run(TestEnv.plumb, ["--include", "nosuch.h", "-e", body])
        #expect(missing.status == 1 && missing.stderr.contains("error: --include nosuch.h: file not found"), "\(missing.stderr)")
        // Options plumb has no use for are refused, not ignored.
        let elf = TestEnv.run(TestEnv.plumb, ["--emit-elf", "/tmp/x.o", "-e", body])
        #expect(elf.status == 1 && elf.stderr == "ERROR: --emit-elf is not supported: plumb builds its BPF programs in memory, without an ELF file; -d prints them, with the script line above each group of instructions\n")
    }

    @Test func bpftraceBTFNamesTheTypesToCheckAgainst() throws {
        // A raw BTF file of one struct: scripts are checked against it instead of the kernel's.
        var b = BTFBuilder()
        let int = b.add(BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32))))
        _ = b.add(BTFType(kind: .struct, name: "plumb_only", sizeOrType: 8,
                          payload: .members([BTFMember(name: "a", type: int, bitOffset: 0), BTFMember(name: "b", type: int, bitOffset: 32)])))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-btf-\(getpid()).btf").path
        try Data(b.encode()).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let ok = TestEnv.run("/usr/bin/env", ["BPFTRACE_BTF=" + path, TestEnv.plumb, "--check", "-e",
                                              "BEGIN { printf(\"%d %d\\n\", sizeof(struct plumb_only), offsetof(struct plumb_only, b)); }"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let kernel = TestEnv.run("/usr/bin/env", ["BPFTRACE_BTF=" + path, TestEnv.plumb, "--check", "-e", "BEGIN { printf(\"%d\\n\", sizeof(struct task_struct)); }"])
        #expect(kernel.status == 1 && kernel.stderr.contains("task_struct"), "\(kernel.stderr)")
        let missing = TestEnv.run("/usr/bin/env", ["BPFTRACE_BTF=/nonexistent/vmlinux", TestEnv.plumb, "--check", "-e", "BEGIN { exit(); }"])
        #expect(missing.status == 1 && missing.stderr == "ERROR: BPFTRACE_BTF=/nonexistent/vmlinux: cannot read /nonexistent/vmlinux: No such file or directory\n")
    }

    @Test func verboseDebugShowsTreeMapsAndPrograms() throws {
        let r = TestEnv.run(TestEnv.plumb, ["-dd", "-e", "BEGIN { @n[comm] = count(); exit(); }"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("AST\n---\nBEGIN { (= (@n comm) (call count)) (call exit) }\n\nMaps\n----\nAT_n (@n): percpu_hash, key 16 bytes, value 8 bytes, max entries 4096"), "\(r.stdout)")
        #expect(r.stdout.contains("\nPrograms\n--------\nBEGIN (p0_BEGIN):\n"), "\(r.stdout)")
        // -d alone: the programs only.
        #expect(TestEnv.run(TestEnv.plumb, ["-d", "-e", "BEGIN { exit(); }"]).stdout.hasPrefix("BEGIN (p0_BEGIN):\n"))
    }

    @Test func syntaxErrorsAreDiagnosed() throws {
        let r = TestEnv.run(TestEnv.plumb, ["-e", "BEGIN { exit( }"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("stdin:1:"), "file:line:col diagnostics: \(r.stderr)")
        #expect(r.stderr.contains("error:"))
        #expect(r.stdout.isEmpty)
        // As bpftrace: its own layout (range, ERROR, tildes).
        try withBpftraceLink { link in
            let bt = TestEnv.run(link, ["-e", "END { foo(); }"])
            #expect(bt.status == 1)
            #expect(bt.stderr.hasPrefix("stdin:1:7-"), "\(bt.stderr)")
            #expect(bt.stderr.contains(": ERROR: Unknown function: foo\nEND { foo(); }\n      ~~~"), "\(bt.stderr)")
        }
    }

    @Test func listsTracepoints() throws {
        guard TestEnv.kernelAvailable(getpidTracepointOrSkip() == nil ? "no getpid tracepoint" : nil) else { return }
        let r = TestEnv.run(TestEnv.plumb, ["-l", "tracepoint:syscalls:sys_enter_getpid"])
        #expect(r.status == 0 && r.stdout == "tracepoint:syscalls:sys_enter_getpid\n")
        let v = TestEnv.run(TestEnv.plumb, ["-lv", "tracepoint:syscalls:sys_enter_openat"])
        #expect(v.stdout.hasPrefix("tracepoint:syscalls:sys_enter_openat\n    int __syscall_nr\n"))
        #expect(v.stdout.contains("    const char * filename\n"))
        let glob = TestEnv.run(TestEnv.plumb, ["-l", "sys_enter_getpi*"])
        #expect(glob.stdout == "tracepoint:syscalls:sys_enter_getpid\n")
        // Iterators and kernel functions from BTF, hardware events, kprobes from tracefs.
        let iter = TestEnv.run(TestEnv.plumb, ["-lv", "iter:task_file"])
        #expect(iter.stdout == "iter:task_file\n    struct task_struct *task;\n    u32 fd;\n    struct file *file;\n", "\(iter.stdout)")
        let kfunc = TestEnv.run(TestEnv.plumb, ["-lv", "kretfunc:vfs_read"])
        #expect(kfunc.stdout == "kretfunc:vfs_read\n    struct file * file\n    char * buf\n    size_t count\n    loff_t * pos\n    ssize_t retval\n", "\(kfunc.stdout)")
        #expect(TestEnv.run(TestEnv.plumb, ["-l", "hardware:*"]).stdout.contains("hardware:cpu-cycles:\n"))
        let kprobes = TestEnv.run(TestEnv.plumb, ["-l", "kprobe:vfs_read"])
        #expect(kprobes.stdout == "kprobe:vfs_read\n" || kprobes.stderr.contains("ERROR: cannot list kprobes: "), "\(kprobes.stdout)\(kprobes.stderr)")
        // A binary that is not there is an error, in bpftrace's words, not an empty list.
        let missing = TestEnv.run(TestEnv.plumb, ["-l", "uprobe:/nonexistent/app:*"])
        #expect(missing.status == 1 && missing.stderr == "ERROR: uprobe target file '/nonexistent/app' does not exist or is not executable\n")
        let usdt = TestEnv.run(TestEnv.plumb, ["-l", "usdt:/nonexistent/app:*"])
        #expect(usdt.status == 1 && usdt.stderr == "ERROR: usdt target file '/nonexistent/app' does not exist or is not executable\n")
    }
}

@Suite(.serialized) struct TraceChildRuntimeTests {
    // tracepoint:syscalls:sys_enter_exit_group /pid == cpid/ { @ = count(); }  with -c /bin/true:
    // the command runs only once attached, and tracing ends when it exits.
    @Test func commandRunsOnceAttachedAndEndsTracing() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()), getpidTracepointOrSkip() != nil else { return }
        let child = try GatedChild(command: "/bin/true")
        var b = ProgramBuilder()
        let done = b.newLabel("done")
        b.emit(.call(helper: 14))                              // bpf_get_current_pid_tgid
        b.emit(.rsh64(.r0, 32))
        b.jump(.jne, .r0, imm: child.pid, to: done)
        b.emit(.store(.r10, offset: -8, imm: 0, size: .doubleWord))
        b.emit(.store(.r10, offset: -16, imm: 1, size: .doubleWord))
        var refs: [Int: ProgramReference] = [:]
        refs[b.pending.count] = .map("counts")
        b.emit(.loadMapFD(.r1, fd: 0))
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -8))
        b.emit(.mov64(.r3, .r10))
        b.emit(.add64(.r3, -16))
        b.emit(.mov64(.r4, 0))
        b.emit(.call(helper: 2))                               // bpf_map_update_elem
        b.bind(done)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        let program = ProgramSpec(name: "on_exit", kind: try #require(ProgramKind(section: "tracepoint/syscalls/sys_enter_exit_group")),
                                  instructions: try b.finish(), references: refs)
        let plan = TracePlan(object: ObjectSpec(name: "t", maps: [MapSpec(name: "counts", type: .percpuHash, keySize: 8, valueSize: 8, maxEntries: 16)],
                                                programs: [program]),
                             probes: [PlannedProbe(program: "on_exit", target: .tracepoint(category: "syscalls", name: "sys_enter_exit_group"),
                                                   name: "tracepoint:syscalls:sys_enter_exit_group", range: SourceRange(0, 0))],
                             maps: [PlannedMap(name: "@", mapName: "counts", keys: [], keySize: 8, value: .count)],
                             actions: [], eventsMap: "")
        try withRuntimeLeakCheck { _ in
            let start = monotonicNow()
            let (code, text) = try runPlan(plan) { $0.child = child }
            #expect(code == 0)
            #expect(text == "Attaching 1 probe...\n\n\n@: 1\n")
            #expect(monotonicNow() - start < 5, "the run ends with the command")
        }
    }
}

@Suite struct TraceKillTests {
    /// Programs named `name` (the kernel keeps 15 characters) alive now.
    func programs(named name: String) -> Set<UInt32> {
        let ids = (try? Sys.ids(.program)) ?? []
        return Set(ids.filter { id in (try? Program(id: id))?.name == name })
    }

    // SIGKILL gives the tracer no chance to detach: the kernel must do it when its fds close.
    @Test func sigkillLeavesNothingAttached() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let name = "p0_interval_s_7"              // interval:s:797's program, as the kernel truncates it
        let before = programs(named: name)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestEnv.plumb)
        p.arguments = ["-e", "interval:s:797 { @ticks = count(); }"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        var ours = Set<UInt32>()
        let deadline = monotonicNow() + 20
        while ours.isEmpty && monotonicNow() < deadline && p.isRunning {
            usleep(50_000)
            ours = programs(named: name).subtracting(before)
        }
        try #require(!ours.isEmpty, "the tracer never loaded its program")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        // The kernel frees programs after an RCU grace period: give it a moment.
        var left = ours
        let gone = monotonicNow() + 5
        while !left.isEmpty && monotonicNow() < gone {
            usleep(50_000)
            left = ours.intersection(programs(named: name))
        }
        #expect(left.isEmpty, "programs \(left) outlived the killed tracer")
    }
}

@Suite struct TraceScriptTests {
    static let script = #"BEGIN { @c[1]=count(); @c[2]=count(); @c[2]=count(); @s["abc"]=sum(5); @s["x"]=sum(-3); @h = hist(5); @a = avg(4); printf("hi %d %s\n", 42, "x"); exit(); }"#

    // Expected texts captured from bpftrace 0.17 running the same script.
    @Test func scriptOutputMatchesBpftrace() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let bar = String(repeating: "@", count: 52)
        let text = TestEnv.run(TestEnv.plumb, ["-e", TraceScriptTests.script])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout == "Attaching 1 probe...\nhi 42 x\n\n\n@a: 4\n\n@c[1]: 1\n@c[2]: 2\n@h: \n[4, 8)                 1 |\(bar)|\n\n@s[x]: -3\n@s[abc]: 5\n")
        var result: TestEnv.Result?
        try withBpftraceLink { result = TestEnv.run($0, ["-f", "json", "-e", TraceScriptTests.script]) }
        let json = try #require(result)
        #expect(json.status == 0, "\(json.stderr)")
        #expect(json.stdout == """
            {"type": "attached_probes", "data": {"probes": 1}}
            {"type": "printf", "data": "hi 42 x\\n"}


            {"type": "stats", "data": {"@a": 4}}
            {"type": "map", "data": {"@c": {"1": 1, "2": 2}}}
            {"type": "hist", "data": {"@h": [{"min": 4, "max": 7, "count": 1}]}}
            {"type": "map", "data": {"@s": {"x": -3, "abc": 5}}}

            """)
    }
}
