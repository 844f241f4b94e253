// `plumb --check` as an unprivileged user (nobody, through setpriv): it loads nothing, so it
// must need no privileges; tracefs (mode 0700) is unreadable then and tracepoints are checked
// against the kernel's BTF, which is world-readable.
import Foundation
import Glibc
import Testing
import TestSupport

@Suite struct TracerUnprivilegedCheckTests {
    /// Runs `plumb --check` on `script` as nobody; nil when this cannot be arranged (not root).
    /// `files` are copied beside the script first and `{{dir}}` in the script names their folder:
    /// the checkout (a CI clone under a 0700 temporary folder) may be out of nobody's reach.
    static func checkAsNobody(_ script: String, files: [String] = []) throws -> TestEnv.Result? {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            #expect(!TestEnv.skipsAreFailures, "needs root and setpriv to run a check as nobody")
            return nil
        }
        let dir = "/tmp/plumb-nobody-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try #require(mkdir(dir, 0o755) == 0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for file in files {
            let copy = dir + "/" + URL(fileURLWithPath: file).lastPathComponent
            try FileManager.default.copyItem(atPath: file, toPath: copy)
            try #require(chmod(copy, 0o755) == 0)
        }
        let path = dir + "/script.bt"
        try script.replacingOccurrences(of: "{{dir}}", with: dir).write(toFile: path, atomically: false, encoding: .utf8)
        try #require(chmod(path, 0o644) == 0)
        return TestEnv.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", TestEnv.plumb, "--check", path])
    }

    @Test func tracepointsCheckFromBTFWithoutTracefs() throws {
        let good = """
        tracepoint:sched:sched_process_exec { printf("%s %d\\n", str(args.filename), args.pid); }
        tracepoint:syscalls:sys_exit_read /args.ret > 0/ { @bytes = sum(args.ret); }
        tracepoint:syscalls:sys_enter_open* { @[probe] = count(); }
        tracepoint:raw_syscalls:sys_enter { @ids[args.id] = count(); }
        """
        guard let r = try Self.checkAsNobody(good) else { return }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        // The categories BTF cannot confirm are warnings, each at its probe.
        #expect(r.stderr.contains("script.bt:1:1: warning: the category 'sched' of tracepoint 'sched_process_exec' is not checked"), "\(r.stderr)")
        #expect(r.stderr.contains("script.bt:4:1: warning: the category 'raw_syscalls' of tracepoint 'sys_enter' is not checked"), "\(r.stderr)")
        #expect(!r.stderr.contains("syscalls:sys_exit_read"))

        // A wrong field is still an error, with the fields BTF knows.
        guard let bad = try Self.checkAsNobody("tracepoint:sched:sched_process_exec { @[args.pidd] = count(); }") else { return }
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("error: tracepoint 'sched:sched_process_exec' has no field named 'pidd'"), "\(bad.stderr)")
        #expect(bad.stderr.contains("did you mean 'pid'?"))
        guard let missing = try Self.checkAsNobody("tracepoint:syscalls:sys_enter_opennat { }") else { return }
        #expect(missing.status == 1 && missing.stderr.contains("error: tracepoint not found: syscalls:sys_enter_opennat"), "\(missing.stderr)")
        #expect(missing.stderr.contains("did you mean 'tracepoint:syscalls:sys_enter_openat'?"))
    }

    @Test func listingWithoutTracefsSaysSo() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            #expect(!TestEnv.skipsAreFailures, "needs root and setpriv to list as nobody")
            return
        }
        let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", TestEnv.plumb]
        // Tracepoints need tracefs (mode 0700): asked for, an error; within everything, a warning.
        let tp = TestEnv.run("/usr/bin/setpriv", nobody + ["-l", "tracepoint:sched:*"])
        #expect(tp.status == 1 && tp.stderr.contains("ERROR: cannot list tracepoints: "), "\(tp.stderr)")
        let all = TestEnv.run("/usr/bin/setpriv", nobody + ["-l", "*sched_switch*"])
        #expect(all.status == 0 && all.stdout.contains("rawtracepoint:sched_switch\n"), "\(all.stdout)")
        #expect(all.stderr.contains("WARNING: tracepoints are not listed: "), "\(all.stderr)")
    }

    @Test func whatBTFCannotTellIsSaid() throws {
        // Not every syscall's prototype survives in BTF (__do_sys_openat is inlined): the args
        // of such an event cannot be typed, and the message says so instead of guessing.
        guard let r = try Self.checkAsNobody("tracepoint:syscalls:sys_enter_openat { printf(\"%s\\n\", str(args.filename)); }") else { return }
        #expect(r.status == 1)
        #expect(r.stderr.contains("error: 'args.filename' of tracepoint 'syscalls:sys_enter_openat' cannot be typed without tracefs"), "\(r.stderr)")
        #expect(r.stderr.contains("run as root or make tracefs readable"))
        guard let w = try Self.checkAsNobody("tracepoint:sched:sched_* { @[probe] = count(); }") else { return }
        #expect(w.status == 1 && w.stderr.contains("cannot expand 'tracepoint:sched:sched_*' without tracefs"), "\(w.stderr)")
    }

    @Test func otherProbeTypesCheckUnprivileged() throws {
        var script = """
        BEGIN { @start = nsecs; } interval:s:1 { exit(); } profile:hz:99 { @[kstack] = count(); }
        software:cpu-clock:1000 { @sw = count(); } rawtracepoint:sched_switch { @raw = count(); }
        uprobe:/bin/bash:readline { @u = count(); } END { clear(@start); }
        """
        // USDT markers of the test fixture, when it can be built.
        var files: [String] = []
        if let dir = try? TracerUserFixtures.directory() {
            files.append(dir + "/usdt")
            script += "\nusdt:{{dir}}/usdt:plumbu:add { printf(\"%d %s\\n\", arg0, str(arg3)); }\n"
        }
        guard let r = try Self.checkAsNobody(script, files: files) else { return }
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
    }
}
