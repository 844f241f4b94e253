import PlumbLang
import PlumbAsm
import Testing

@Suite("Checker: probes")
struct SemaProbeTests {
    @Test("a tracepoint that does not exist is named, with the nearest one")
    func missingTracepoint() {
        #expect(failures("t:syscalls:sys_enter_opnat { }") == """
        t.bt:1:1: error: tracepoint not found: syscalls:sys_enter_opnat
        t:syscalls:sys_enter_opnat { }
        ^~~~~~~~~~~~~~~~~~~~~~~~~~
        note: did you mean 'tracepoint:syscalls:sys_enter_openat'?

        """)
    }

    @Test("wildcards expand to one program per tracepoint; no match is an error")
    func wildcards() {
        let r = check("tracepoint:syscalls:sys_enter_opena* { @[probe] = count(); }")
        #expect(r.plan?.probes.map(\.name) == ["tracepoint:syscalls:sys_enter_openat"])
        #expect(failures("tracepoint:nothing:* { }").contains("error: no tracepoint matches 'tracepoint:nothing:*'"))
    }

    @Test("BEGIN/END are raw_tp programs; timers and perf events are perf_event programs")
    func kinds() {
        let r = check("BEGIN { } END { } interval:ms:10 { } profile:hz:99 { } software:faults:10 { } hardware:cycles { }")
        #expect(r.diagnostics == "")
        guard let plan = r.plan else { return }
        #expect(plan.probes.map(\.target) == [.begin, .end, .interval(periodNanoseconds: 10_000_000),
                                               .profile(frequency: 99, periodNanoseconds: nil),
                                               .software(event: "faults", count: 10), .hardware(event: "cycles", count: 1_000_000)])
        #expect(plan.object.programs.map(\.kind.type) == [.rawTracepoint, .rawTracepoint, .perfEvent, .perfEvent, .perfEvent, .perfEvent])
    }

    @Test("interval units and software events are checked")
    func badTimers() {
        #expect(failures("interval:m:1 { }").contains("error: invalid unit 'm' for interval; use s, ms, us or hz"))
        #expect(failures("software:faultz:1 { }").contains("note: did you mean 'faults'?"))
    }

    @Test("uprobes resolve symbols through the environment; a missing one is an error")
    func uprobes() {
        let r = check("uprobe:/bin/true:main { } uretprobe:libc:malloc { @ = retval; }")
        #expect(r.plan?.probes.map(\.target) == [
            .uprobe(path: "/bin/true", symbol: "main", address: 0x1000, isReturn: false, pid: nil),
            .uprobe(path: "/usr/lib/x86_64-linux-gnu/libc.so.6", symbol: "malloc", address: 0x1000, isReturn: true, pid: nil)])
        #expect(failures("uprobe:/bin/true:nope { }").contains("error: cannot attach uprobe 'uprobe:/bin/true:nope': no function symbol named 'nope'"))
        // bpftrace 0.17's words where it has them.
        #expect(failures("uprobe:/opt/nowhere/app:main { }").contains("error: uprobe target file '/opt/nowhere/app' does not exist or is not executable"))
        #expect(failures("software:nosuch:1 { }").contains("error: nosuch is not a software probe"))
        #expect(failures("watchpoint:0x0:8:rw { }").contains("error: watchpoint must be attached to a non-zero address"))
        // `probe` names a library by its resolved path and a written path as written (bpftrace's rule).
        #expect(r.plan?.probes.map(\.name) == ["uprobe:/bin/true:main", "uretprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:malloc"])
    }

    @Test("tracepoint args are typed from the format file")
    func tracepointArgs() {
        #expect(check(#"tracepoint:syscalls:sys_enter_openat { printf("%s %d\n", str(args.filename), args.flags); }"#).diagnostics == "")
        #expect(check(#"tracepoint:sched:sched_process_exec { printf("%s %s %d\n", args.filename, args.comm, args.pid); }"#).diagnostics == "")
        #expect(failures("tracepoint:syscalls:sys_enter_openat { @ = args.filname; }") == """
        t.bt:1:44: error: tracepoint 'syscalls:sys_enter_openat' has no field named 'filname'
        tracepoint:syscalls:sys_enter_openat { @ = args.filname; }
                                                   ^~~~~~~~~~~~
        note: did you mean 'filename'?

        """)
    }

    @Test("kprobes, kfuncs and iterators produce their targets (the runtime reports what the kernel lacks)")
    func btfProbes() {
        guard kernelHasBTF else { return }
        let r = check("kprobe:vfs_read+4 { @ = arg1; } kretprobe:vfs_read { @r = retval; } kfunc:vfs_read { @k = args.count; } kretfunc:vfs_read { @kr = retval; }")
        #expect(r.diagnostics == "")
        #expect(r.plan?.probes.map(\.target) == [
            .kprobe(function: "vfs_read", offset: 4, isReturn: false), .kprobe(function: "vfs_read", offset: 0, isReturn: true),
            .fentry(function: "vfs_read", isReturn: false), .fentry(function: "vfs_read", isReturn: true)])
        // An iter probe runs alone (bpftrace's rule).
        #expect(check("iter:task { }").plan?.probes.map(\.target) == [.iter(name: "task")])
        #expect(failures("kfunc:vfs_raed { }").contains("error: kernel function 'vfs_raed' not found in BTF"))
        #expect(failures("kfunc:vfs_raed { }").contains("note: did you mean 'vfs_read'?"))
        #expect(failures("kfunc:vfs_read { @ = args.cnt; }").contains("note: did you mean 'count'?"))
    }

    @Test("big values move to a scratch map; a probe whose 8-byte slots alone need more than 512 bytes is an error")
    func stackLimit() {
        let strings = (0..<10).map { "$s\($0) = str(arg\($0 % 6)); @[$s\($0)] = count(); " }.joined()
        #expect(check("uprobe:/bin/true:main { \(strings) }").diagnostics == "")
        let scalars = (0..<70).map { "$v\($0) = arg\($0 % 6); @[$v\($0)] = count(); " }.joined()
        let d = failures("uprobe:/bin/true:main { \(scalars) }")
        #expect(d.contains("bytes of BPF stack, more than the 512 the kernel allows"))
    }

    @Test("printf strings go straight into the record: many fit where the stack would not")
    func printfManyStrings() {
        let strings = (0..<10).map { "str(arg\($0 % 6))" }.joined(separator: ", ")
        let fmt = String(repeating: "%s", count: 10)
        let r = check("uprobe:/bin/true:main { printf(\"\(fmt)\", \(strings)); }")
        #expect(r.diagnostics == "")
        guard case .printf(_, let fields)? = r.plan?.actions.first else { Issue.record("no printf"); return }
        #expect(fields.map(\.offset) == (0..<10).map { 8 + 64 * $0 })
    }

    @Test("builtins that need a probe kind say which")
    func contextBuiltins() {
        #expect(failures("BEGIN { @ = retval; }").contains("error: the retval builtin is only available in kretprobe, uretprobe and kretfunc probes"))
        #expect(failures("BEGIN { @ = args.x; }").contains("error: the args builtin is only available in tracepoint, rawtracepoint and kfunc probes"))
        #expect(failures("uretprobe:/bin/true:main { @ = arg0; }").contains("error: arg0 is not available in return probes; use retval"))
    }
}
