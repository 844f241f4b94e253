// Following processes through the plumb CLI (issue 10): -p/-c cover every descendant forked or
// exec'd after attach, process:begin/end fire per process with its own pid/ppid/comm, the run
// ends when the followed processes have exited, and nothing stays attached — not even after a
// SIGKILL of a tracer holding a USDT semaphore up.
import PlumbBPF
import PlumbSys
import Foundation
import Glibc
import Testing
import TestSupport

/// A plumb run in the background: its stdout read as it comes, its kernel objects (from
/// /proc/PID/fdinfo) noted while it runs, so a test can check they are gone after it ends.
final class BackgroundTracer {
    let process = Process()
    private let out = Pipe(), err = Pipe()
    private var text = ""

    init(_ args: [String]) throws {
        process.executableURL = URL(fileURLWithPath: TestEnv.plumb)
        process.arguments = args
        process.standardOutput = out
        process.standardError = err
        try process.run()
    }

    /// Reads stdout until `predicate` holds for all of it so far (false at EOF or `seconds`).
    func waitForOutput(seconds: Double = 20, _ predicate: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        let fd = out.fileHandleForReading.fileDescriptor
        while !predicate(text) {
            guard Date() < deadline else { return false }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) >= 0 else { continue }
            if p.revents == 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return predicate(text) }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        return true
    }

    /// Waits for it to end by itself (false after `seconds`: then it is killed).
    func waitForExit(seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate(); process.waitUntilExit(); return false }
        return true
    }

    /// Everything it printed (after it ended).
    func output() -> String {
        text += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text
    }
    func errors() -> String { String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }

    /// The ids of the BPF programs, maps and links its fds hold now.
    func kernelObjects() -> [(ObjectKind, UInt32)] {
        let pid = process.processIdentifier
        var found: [(ObjectKind, UInt32)] = []
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fdinfo") else { return [] }
        for fd in fds {
            guard let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8) else { continue }
            for line in info.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, let id = UInt32(parts[1]) else { continue }
                switch parts[0] {
                case "prog_id": found.append((.program, id))
                case "map_id": found.append((.map, id))
                case "link_id": found.append((.link, id))
                default: break
                }
            }
        }
        return found
    }

    deinit { if process.isRunning { process.terminate() } }
}

/// Fails the test when any of `objects` still exists `seconds` after its owner ended.
func expectGone(_ objects: [(ObjectKind, UInt32)], seconds: Int = 5, sourceLocation: SourceLocation = #_sourceLocation) throws {
    for _ in 0..<(seconds * 50) {
        if try objects.allSatisfy({ try !Sys.exists(id: $0.1, kind: $0.0) }) { return }
        usleep(20_000)
    }
    let alive = try objects.filter { try Sys.exists(id: $0.1, kind: $0.0) }
    Issue.record("left behind: \(alive.map { "\($0.0) \($0.1)" })", sourceLocation: sourceLocation)
}

/// A workload started with its stdin held, so it waits at `wait` until released.
final class HeldWorkload {
    let process = Process()
    private let input = Pipe()
    var pid: Int32 { process.processIdentifier }

    init(_ args: [String]) throws {
        process.executableURL = URL(fileURLWithPath: try ScriptCorpus.workload())
        process.arguments = args
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }
    func release() { try? input.fileHandleForWriting.close() }
    deinit { release(); if process.isRunning { process.terminate() } }
}

@Suite(.serialized) struct TracerProcessTests {
    static func unavailable() -> String? {
        if let r = bpfUnavailableReason() { return r }
        if (try? ScriptCorpus.workload()) == nil { return "the workload fixture does not build (cc)" }
        return nil
    }

    /// Map lines `@name[key]: value` of the output, by their text before the colon.
    static func maps(_ out: String) -> [String: String] {
        var m: [String: String] = [:]
        for line in out.split(separator: "\n") where line.hasPrefix("@") {
            guard let colon = line.range(of: ": ", options: .backwards) else { continue }
            m[String(line[..<colon.lowerBound])] = String(line[colon.upperBound...])
        }
        return m
    }

    @Test("-c: uprobe hits of children forked and exec'd after attach are counted; process:begin/end once each")
    func commandWithForksAndExec() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let w = try ScriptCorpus.workload()
        let script = """
        uprobe:\(w):work { @n = count(); @own[pid == cpid] = count(); }
        process:begin { @begin = count(); }
        process:end { @end = count(); }
        """
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", "\(w) children 3 4 spawn work 5"])
        #expect(r.status == 0, "\(r.stderr)")
        let m = Self.maps(r.stdout)
        // 3 children x 4 calls + 5 in the exec'd grandchild; the command itself calls none.
        #expect(m["@n"] == "17" && m["@own[0]"] == "17" && m["@own[1]"] == nil, "\(r.stdout)")
        // The command (already running, held) + 3 children + the spawned one.
        #expect(m["@begin"] == "5" && m["@end"] == "5", "\(r.stdout)")
    }

    @Test("process:begin/end see the process's own pid, ppid and comm")
    func processProbeBuiltins() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let w = try ScriptCorpus.workload()
        let script = """
        process:begin { printf("begin %d %d %d %d %s\\n", pid, tid, ppid, cpid, comm); }
        process:end { printf("end %d %s\\n", pid, comm); }
        """
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", "\(w) children 2 1"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines: [[String]] = r.stdout.split(separator: "\n").map { line in line.split(separator: " ").map { String($0) } }
        let begins: [[String]] = lines.filter { $0.first == "begin" && $0.count == 6 }
        let ends: [[String]] = lines.filter { $0.first == "end" && $0.count == 3 }
        try #require(begins.count == 3 && ends.count == 3, "\(r.stdout)")
        let cpid: String = begins[0][4]
        // First the command (running at start), then its two children.
        #expect(begins[0][1] == cpid && begins[0][2] == cpid, "\(r.stdout)")
        for b in begins.dropFirst() {
            // pid == tid, parent is the command, comm inherited from it.
            #expect(b[1] == b[2] && b[1] != cpid && b[3] == cpid && b[5] == "workload", "\(r.stdout)")
        }
        #expect(Set(ends.map { $0[1] }) == Set(begins.map { $0[1] }), "\(r.stdout)")
        #expect(ends.allSatisfy { $0[2] == "workload" }, "\(r.stdout)")
        // The command ends last: its children were waited for.
        #expect(ends.last?[1] == cpid, "\(r.stdout)")
    }

    @Test("-p on a parent that forks after attach: its children's hits counted, the run ends with the processes, nothing left")
    func runningParent() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let w = try ScriptCorpus.workload()
        let parent = try HeldWorkload(["wait", "children", "2", "3"])
        let tracer = try BackgroundTracer(["-p", "\(parent.pid)", "-e", """
            uprobe:\(w):work { @[pid] = count(); }
            process:begin { printf("begin %d\\n", pid); }
            process:end { printf("end %d\\n", pid); }
            """])
        // process:begin of the already-running parent comes once everything is attached.
        #expect(tracer.waitForOutput { $0.contains("begin \(parent.pid)\n") })
        let objects = tracer.kernelObjects()
        #expect(objects.contains { $0.0 == ObjectKind.link }, "the tracer holds its links")
        parent.release()
        parent.process.waitUntilExit()
        #expect(tracer.waitForExit(), "the run ends when the followed processes have exited")
        let out = tracer.output()
        let children = out.split(separator: "\n").filter { $0.hasPrefix("begin ") }.map { String($0.dropFirst(6)) }.filter { $0 != "\(parent.pid)" }
        #expect(children.count == 2, "\(out)")
        for c in children {
            #expect(out.contains("@[\(c)]: 3"), "\(out)")
            #expect(out.contains("end \(c)\n"), "\(out)")
        }
        #expect(!out.contains("@[\(parent.pid)]"), "\(out)")
        #expect(out.contains("end \(parent.pid)\n"), "\(out)")
        try expectGone(objects)
    }

    @Test("-p twice: both followed; the run ends when the last has exited")
    func twoPIDs() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let w = try ScriptCorpus.workload()
        let a = try HeldWorkload(["wait", "children", "1", "2"]), b = try HeldWorkload(["wait", "work", "3"])
        let tracer = try BackgroundTracer(["-p", "\(a.pid)", "-p", "\(b.pid)", "-e",
                                           "uprobe:\(w):work { @n = count(); } process:begin { printf(\"begin %d\\n\", pid); }"])
        #expect(tracer.waitForOutput { $0.contains("begin \(a.pid)\n") && $0.contains("begin \(b.pid)\n") })
        a.release()
        a.process.waitUntilExit()
        usleep(300_000)
        #expect(tracer.process.isRunning, "one followed process is left")
        b.release()
        b.process.waitUntilExit()
        #expect(tracer.waitForExit())
        let out = tracer.output()
        #expect(Self.maps(out)["@n"] == "5", "\(out)")
    }

    @Test("without -p/-c, process:begin covers every process already running (this one too)")
    func everyProcessWithoutTarget() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let me = getpid()
        let r = TestEnv.run(TestEnv.plumb, ["-e", "process:begin /pid == \(me)/ { printf(\"me %d %d\\n\", pid, ppid); exit(); }"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("me \(me) \(getppid())\n"), "\(r.stdout)")
    }

    @Test("process probes: builtins that need the task are errors; listing")
    func diagnosticsAndListing() throws {
        let r = TestEnv.run(TestEnv.plumb, ["-e", "process:begin { print(args); printf(\"%d\\n\", arg0); @[ustack] = count(); } process:end { print(retval); }"])
        #expect(r.status == 1)
        for what in ["args", "arg0", "ustack", "retval"] {
            #expect(r.stderr.contains("error: '\(what)' is not available in process:"), "\(r.stderr)")
        }
        let unknown = TestEnv.run(TestEnv.plumb, ["-e", "process:begn { }"])
        #expect(unknown.status == 1 && unknown.stderr.contains("did you mean 'process:begin'?"), "\(unknown.stderr)")
        // Outside process probes ppid is the current task's parent: the -c command's is plumb.
        // (BEGIN runs in plumb's own process, so its pid is plumb's.)
        let ppid = TestEnv.run(TestEnv.plumb, ["-c", "/bin/true", "-e", "BEGIN { printf(\"tracer %d\\n\", pid); } tracepoint:sched:sched_process_exit /pid == cpid/ { printf(\"parent %d\\n\", ppid); }"])
        #expect(ppid.status == 0, "\(ppid.stderr)")
        func number(_ prefix: String) -> Int32? { ppid.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int32($0.dropFirst(prefix.count)) } }
        #expect(number("parent ") != nil && number("parent ") == number("tracer "), "\(ppid.stdout)")
        #expect(TestEnv.run(TestEnv.plumb, ["-l", "process:*"]).stdout == "process:begin\nprocess:end\n")
    }

    /// The semaphore of `plumb:gated` in the non-PIE USDT target (its ELF address is its address).
    static func semaphore(_ pid: Int32, address: UInt64) -> UInt16? {
        let fd = open("/proc/\(pid)/mem", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var value: UInt16 = 0
        guard pread(fd, &value, 2, off_t(address)) == 2 else { return nil }
        return value
    }

    @Test("SIGKILL of a plumb tracing a semaphore-gated USDT probe: no uprobe left, the semaphore back at 0")
    func killedTracerLowersSemaphore() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let fx = try USDTFixtures.build()
        let nm = TestEnv.run("/usr/bin/env", ["nm", fx.nopie]).stdout.split(separator: "\n")
        let symbol = try #require(nm.first { $0.hasSuffix(" plumb_gated_semaphore") })
        let address = try #require(UInt64(symbol.split(separator: " ")[0], radix: 16))
        for perSite in ["0", "1"] {
            let target = try USDTChild(fx.nopie, iterations: 5)
            #expect(Self.semaphore(target.pid, address: address) == 0)
            setenv("PLUMB_USDT_PER_SITE", perSite, 1)
            let tracer = try BackgroundTracer(["-p", "\(target.pid)", "-e", "usdt:\(fx.nopie):plumb:gated { @ = count(); }"])
            unsetenv("PLUMB_USDT_PER_SITE")
            #expect(tracer.waitForOutput { $0.contains("Attaching 1 probe") })
            var raised = false
            for _ in 0..<250 where !raised {
                raised = Self.semaphore(target.pid, address: address) == 1
                if !raised { usleep(20_000) }
            }
            #expect(raised, "the semaphore is raised while attached (per-site \(perSite))")
            #expect(target.round().open == 5)
            let objects = tracer.kernelObjects()
            #expect(objects.contains { $0.0 == ObjectKind.link })
            kill(tracer.process.processIdentifier, SIGKILL)
            tracer.process.waitUntilExit()
            var lowered = false
            for _ in 0..<250 where !lowered {
                lowered = Self.semaphore(target.pid, address: address) == 0
                if !lowered { usleep(20_000) }
            }
            #expect(lowered, "the semaphore is back at 0 (per-site \(perSite))")
            #expect(target.round().open == 0, "the probe is gated off again")
            try expectGone(objects)
            #expect(target.finish() == 0)
        }
    }
}
