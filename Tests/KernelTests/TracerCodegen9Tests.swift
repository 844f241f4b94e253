// Issue 9 end to end through the plumb binary: an iter probe run for real, `args` printed
// whole, a script with more big values than the stack holds, a verifier rejection rendered
// at its place in the script, and -d with script lines.
import Foundation
import Testing
import TestSupport

@Suite struct TracerCodegen9Tests {
    @Test func iterTaskRunsOnceAndExits() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        // `pid` is the reading process: its own main thread is one of the tasks visited.
        let r = TestEnv.run(TestEnv.plumb, ["-e", "iter:task { if (ctx->task != 0) { @n = count(); if (ctx->task->pid == pid) { printf(\"me %s\\n\", ctx->task->comm); } } }"])
        if r.stderr.contains("BPF iterators") {
            // The kernel refuses iterator links: the message says so; the test cannot go further.
            #expect(r.stderr.contains("the kernel refuses BPF_TRACE_ITER links here"), "\(r.stderr)")
            _ = TestEnv.kernelAvailable("this kernel refuses BPF iterators: \(r.stderr)")
            return
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("Attaching 1 probe...\nme plumb\n\n\n@n: "), "\(r.stdout)")
        let n = Int(r.stdout.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        #expect(n > 1)
    }

    @Test func pinnedIteratorWritesToItsFile() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let name = "plumb_test_iter_\(getpid())"
        let pin = "/sys/fs/bpf/" + name
        unlink(pin)
        defer { unlink(pin) }
        let script = "iter:task:\(name) { if (ctx->task != 0) { printf(\"%s:%d %5u|%-4x|%c|%p\\n\", ctx->task->comm, ctx->task->pid, 42, 255, 65, 4096); } }"
        let r = TestEnv.run(TestEnv.plumb, ["-e", script])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "Attaching 1 probe...\nProgram pinned to \(pin)\n\n\n", "\(r.stdout)")
        // Reading the pin runs the program now, in this process: its own main thread is listed,
        // formatted by the kernel (bpf_seq_printf).
        let text = try readToEnd(pin)
        let comm = try String(contentsOfFile: "/proc/self/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(text.split(separator: "\n").contains("\(comm):\(getpid())    42|ff  |A|0x1000"), "\(text.prefix(500))")
        #expect(text.split(separator: "\n").count > 10)
        // A second pin at the same path is refused, saying how to fix it.
        let again = TestEnv.run(TestEnv.plumb, ["-e", script])
        #expect(again.status != 0)
        #expect(again.stderr.contains("could not pin the iterator: \(pin) already exists: remove it first (rm \(pin))"), "\(again.stderr)")
        // Removing the pin detaches the iterator: its link goes (after an RCU grace period).
        func iterLinks() -> Int {
            TestEnv.run("/usr/sbin/bpftool", ["link", "show"]).stdout.split(separator: "\n").filter { $0.contains(" iter ") }.count
        }
        let links = iterLinks()
        #expect(links >= 1)
        unlink(pin)
        var after = iterLinks()
        for _ in 0..<50 where after >= links { usleep(20_000); after = iterLinks() }
        #expect(after == links - 1, "iter links before unlink \(links), after \(after)")
    }

    @Test func pathOfFilesInIterators() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        // Unpinned: the reader is plumb itself, whose open files include its BPF maps.
        let r = TestEnv.run(TestEnv.plumb, ["-e", "iter:task_file /ctx->task != 0 && ctx->task->tgid == (int32)pid/ { printf(\"%d %s\\n\", ctx->fd, path(ctx->file->f_path)); }"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").contains { $0.hasSuffix(" anon_inode:bpf-map") }, "\(r.stdout)")
        // Pinned (bpftrace's example): this process reads the pin, and the pin is one of its files.
        let name = "plumb_test_files_\(getpid())"
        let pin = "/sys/fs/bpf/" + name
        unlink(pin)
        defer { unlink(pin) }
        let p = TestEnv.run(TestEnv.plumb, ["-e", "iter:task_file:\(name) { printf(\"%s:%d %s\\n\", ctx->task->comm, ctx->task->pid, path(ctx->file->f_path)); }"])
        #expect(p.status == 0, "\(p.stderr)")
        let text = try readToEnd(pin)
        let comm = try String(contentsOfFile: "/proc/self/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(text.split(separator: "\n").contains("\(comm):\(getpid()) \(pin)"), "\(text.prefix(800))")
    }

    @Test func debugfWritesToTheTraceBuffer() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let marker = "plumb-debugf-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let r = TestEnv.run(TestEnv.plumb, ["-e", "BEGIN { debugf(\"\(marker) %d %s %x\\n\", 42, \"str\", 255); exit(); }"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: The debugf() builtin is not recommended for production use."))
        // The tracer mounts tracefs itself when it is absent; the line is in the trace buffer.
        let trace = (try? String(contentsOfFile: "/sys/kernel/tracing/trace", encoding: .utf8)) ?? ""
        #expect(trace.contains("bpf_trace_printk: \(marker) 42 str ff"), "trace buffer has no \(marker) line (tracing_on: \((try? String(contentsOfFile: "/sys/kernel/tracing/tracing_on", encoding: .utf8)) ?? "?"))")
    }

    @Test func overrideSaysWhatTheKernelLacks() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        // bpf_override_return needs CONFIG_BPF_KPROBE_OVERRIDE and kprobes; a kernel without them
        // refuses the program (the verifier) or the kprobe (attach), and the error says which.
        let r = TestEnv.run(TestEnv.plumb, ["--unsafe", "-e", "kprobe:should_failslab /0/ { override(-12); } interval:ms:100 { exit(); }"])
        if r.status == 0 { print("override(): this kernel has bpf_override_return and kprobes; the probe ran"); return }
        let saysWhy = r.stderr.contains("note: override() needs a kernel built with CONFIG_BPF_KPROBE_OVERRIDE")
            || r.stderr.contains("kprobes are not supported by this kernel")
        #expect(saysWhy, "\(r.stderr)")
        if r.stderr.contains("CONFIG_BPF_KPROBE_OVERRIDE") { print("override(): this kernel has no bpf_override_return; the load is refused, as the test expects") }
    }

    @Test func argsPrintedWhole() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let r = TestEnv.run(TestEnv.plumb, ["-c", "/bin/cat /etc/hostname", "-e",
            "tracepoint:syscalls:sys_enter_openat /pid == cpid && str(args.filename) == \"/etc/hostname\"/ { print(args); }"])
        #expect(r.status == 0, "\(r.stderr)")
        let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("{ .__syscall_nr = 257, .dfd = -100, .filename = 0x") }
        #expect(line?.hasSuffix(", .flags = 0, .mode = 0 }") == true, "\(r.stdout)")
    }

    @Test func bigValuesLoadAndRun() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let r = TestEnv.run("/usr/bin/env", ["BPFTRACE_STRLEN=200", TestEnv.plumb, "-c", "/bin/cat /etc/hostname", "-e", """
            tracepoint:syscalls:sys_enter_openat /pid == cpid && str(args.filename) == "/etc/hostname"/ {
              $a = str(args.filename); $b = str(args.filename); $c = str(args.filename);
              @[$a, $b, comm, $c] = count();
              printf("%s %s %s\\n", $a, $b, $c);
            }
            """])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("/etc/hostname /etc/hostname /etc/hostname\n"), "\(r.stdout)")
        #expect(r.stdout.contains("@[/etc/hostname, /etc/hostname, cat, /etc/hostname]: 1\n"), "\(r.stdout)")
    }

    @Test func verifierRejectionAtItsLine() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let r = TestEnv.run(TestEnv.plumb, ["-e", "BEGIN {\n\twhile (1) { }\n}"])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == """
        stdin:2:2: error: the kernel's BPF verifier rejected the program of BEGIN
        \twhile (1) { }
        \t^
        verifier: infinite loop detected at insn 1
        note: run with -v for the verifier's full log

        """)
        let v = TestEnv.run(TestEnv.plumb, ["-v", "-e", "BEGIN {\n\twhile (1) { }\n}"])
        #expect(v.stderr.hasPrefix("stdin:2:2: error: the kernel's BPF verifier rejected the program of BEGIN\n"), "\(v.stderr)")
        #expect(v.stderr.contains("verifier log:\n"))
    }

    @Test func debugListingHasScriptLines() throws {
        let r = TestEnv.run(TestEnv.plumb, ["-d", "-e", "BEGIN {\n  @x = 1;\n  printf(\"%d\\n\", 2);\n}"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "BEGIN (p0_BEGIN):")
        #expect(lines.contains("; @x = 1; @ stdin:2") && lines.contains("; printf(\"%d\\n\", 2); @ stdin:3"), "\(r.stdout)")
    }
}

/// The whole of a file that reports no size (a pinned BPF iterator: each read(2) returns one
/// chunk of its output), read until read(2) returns 0.
func readToEnd(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    try #require(fd >= 0, "open \(path): \(String(cString: strerror(errno)))")
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        try #require(n >= 0, "read \(path): \(String(cString: strerror(errno)))")
        if n == 0 { break }
        bytes += chunk[..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
