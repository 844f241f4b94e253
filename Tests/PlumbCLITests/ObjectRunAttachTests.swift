// `plumb object run --attach PROG=TARGET` (bare SEC("uprobe")/SEC("uretprobe")/SEC("usdt")
// programs) and `-c CMD [--pid-global NAME]`, against the real kernel with real processes.
import Foundation
import Glibc
import Testing
import TestSupport

@Suite(.serialized) struct ObjectRunAttachTests {
    /// Tests/Fixtures/uprobe/target.c: prints its pid, reads a byte, calls plumb_target() argv[1] times.
    static let target: Result<String, FixtureError> = {
        let dir = TestEnv.root.appendingPathComponent(".build/fixtures/uprobe").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let out = dir + "/target-cli-pie"
        let src = TestEnv.fixturesSource.appendingPathComponent("uprobe/target.c").path
        let r = TestEnv.run("/usr/bin/env", ["cc", "-O2", "-g0", "-fPIE", "-pie", "-o", out, src])
        return r.status == 0 ? .success(out) : .failure(FixtureError(message: r.stderr))
    }()

    struct FixtureError: Error, CustomStringConvertible {
        var message: String
        var description: String { "cc failed: \(message)" }
    }

    /// `hits` (array of counters by enum hit_kind) and target_pid from `object run --json`'s maps at exit.
    func counters(_ stdout: String) throws -> (hits: [Int: UInt64], targetPid: Int?) {
        var hits: [Int: UInt64] = [:]
        var pid: Int?
        for line in stdout.split(separator: "\n") where line.hasPrefix("{") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            guard let map = object?["map"] as? String, let entries = object?["entries"] as? [[String: Any]] else { continue }
            if map == "hits" {
                for e in entries { if let k = e["key"] as? Int, let v = e["value"] as? NSNumber { hits[k] = v.uint64Value } }
            } else if map.hasSuffix(".rodata") {
                pid = (entries.first?["value"] as? [String: Any])?["target_pid"] as? Int
            }
        }
        return (hits, pid)
    }

    enum Slot { static let entry = 0, ret = 1, usdt = 2, named = 3, matched = 4 }

    @Test func uprobeAndUretprobeTargetsForBareSectionsWithACommand() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let target = try Self.target.get()
        let object = try fixturePath("bare_attach.bpfel.o")
        let r = TestEnv.run(TestEnv.plumb, ["object", "run", object, "--json", "-c", "\(target) 5", "--pid-global", "target_pid",
                                            "--attach", "on_entry=uprobe:\(target):plumb_target",
                                            "--attach", "on_return=uretprobe:\(target):plumb_target"], stdin: Data("x".utf8))
        #expect(r.status == 0, "\(r.stderr)")
        // The command's own output (its pid, then a sum) shares stdout with the records.
        let childPid = r.stdout.split(separator: "\n").lazy.compactMap { Int($0) }.first
        #expect(childPid != nil, "\(r.stdout)")
        #expect(r.stderr.contains("started \(target) 5: pid \(childPid ?? -1)"), "\(r.stderr)")
        #expect(r.stderr.contains("attached on_entry: uprobe \(target):plumb_target"), "\(r.stderr)")
        #expect(r.stderr.contains("attached on_return: uretprobe \(target):plumb_target"), "\(r.stderr)")
        #expect(r.stderr.contains("not attached on_usdt: section 'usdt' does not auto-attach; name a target with --attach on_usdt=usdt:"))
        #expect(r.stderr.contains("exited with status 0"), "stops when the command exits: \(r.stderr)")
        let (hits, pid) = try counters(r.stdout)
        #expect(pid == childPid, "--pid-global wrote the command's pid")
        #expect(hits[Slot.entry] == 5 && hits[Slot.ret] == 5, "\(hits)")
        // Every hit came from the command (the uprobes filter on its pid) and matched target_pid.
        #expect(hits[Slot.matched] == (hits[Slot.entry] ?? 0) + (hits[Slot.ret] ?? 0) + (hits[Slot.named] ?? 0), "\(hits)")
        // Records: the enum prints by name.
        #expect(r.stdout.contains("\"kind\":\"HIT_ENTRY\"") && r.stdout.contains("\"kind\":\"HIT_RETURN\""))
    }

    @Test func withoutPidGlobalTheGlobalStaysZeroAndAttachOverridesANamedSection() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let target = try Self.target.get()
        let r = TestEnv.run(TestEnv.plumb, ["object", "run", try fixturePath("bare_attach.bpfel.o"), "--json", "-c", "\(target) 3",
                                            "--attach", "on_named=uprobe:\(target):plumb_target"], stdin: Data("x".utf8))
        #expect(r.status == 0, "\(r.stderr)")
        // on_named's section says libc's getppid; --attach moves it (as bpf_program__attach_uprobe would).
        #expect(r.stderr.contains("(--attach, instead of section 'uprobe/libc.so.6:getppid')"), "\(r.stderr)")
        #expect(r.stderr.contains("not attached on_entry: section 'uprobe' does not auto-attach; name a target with --attach on_entry=uprobe:BINARY:FUNCTION"))
        let (hits, pid) = try counters(r.stdout)
        #expect(pid == 0)
        #expect(hits[Slot.named] == 3 && hits[Slot.matched] == 0 && hits[Slot.entry] == 0, "\(hits)")
    }

    @Test func usdtTargetForABareUSDTSection() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let fixtures: USDTFixtures
        do { fixtures = try USDTFixtures.build() } catch {
            if TestEnv.skipsAreFailures { Issue.record("\(error)") }
            return
        }
        let binary = fixtures.pie
        let r = TestEnv.run(TestEnv.plumb, ["object", "run", try fixturePath("bare_attach.bpfel.o"), "--json", "-c", "\(binary) 4",
                                            "--pid-global", "target_pid", "--attach", "on_usdt=usdt:\(binary):plumb:tick"],
                            stdin: Data("x".utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("attached on_usdt: usdt \(binary):plumb:tick"), "\(r.stderr)")
        let (hits, _) = try counters(r.stdout)
        let usdt = hits[Slot.usdt] ?? 0
        // Four iterations, each at every site of plumb:tick that readelf lists.
        let sites = TestEnv.readelfUSDT(binary).filter { $0.provider == "plumb" && $0.name == "tick" }.count
        #expect(sites > 0 && usdt == UInt64(4 * sites), "\(hits), \(sites) sites")
        #expect(hits[Slot.matched] == usdt + (hits[Slot.named] ?? 0), "\(hits)")
    }

    @Test func aFailedAttachNeverRunsTheCommand() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-held-\(getpid())").path
        defer { unlink(marker) }
        let r = plumb(["object", "run", try fixturePath("bare_attach.bpfel.o"), "-c", "touch \(marker)",
                       "--attach", "on_entry=uprobe:/bin/sh:no_such_function_plumb"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no_such_function_plumb"), "\(r.stderr)")
        usleep(200_000)
        #expect(access(marker, F_OK) != 0, "the held command ran although attaching failed")
    }

    /// Refused while parsing: a non-zero exit, the message, nothing loaded, no command started.
    func expectRefused(_ args: [String], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = plumb(["object", "run", try fixturePath("bare_attach.bpfel.o"), "--duration", "0s"] + args)
        #expect(r.status != 0, sourceLocation: sourceLocation)
        #expect(r.stderr.contains(message), "\(r.stderr)", sourceLocation: sourceLocation)
        let status = r.stderr.split(separator: "\n").filter { $0.hasPrefix("loaded ") || $0.hasPrefix("started ") }
        #expect(status.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func badAttachSpecsAreRefusedBeforeLoading() throws {
        try expectRefused(["--attach", "on_entyr=uprobe:/bin/bash:readline"], "no program 'on_entyr'")
        try expectRefused(["--attach", "on_entyr=uprobe:/bin/bash:readline"], "Did you mean 'on_entry'?")
        try expectRefused(["--attach", "on_entry=uprbe:/bin/bash:readline"], "unknown attach kind 'uprbe'; did you mean 'uprobe'?")
        try expectRefused(["--attach", "on_entry=uprobe:/bin/bash"], "write the target as uprobe:BINARY:FUNCTION")
        try expectRefused(["--attach", "on_entry"], "write it as PROG=uprobe:BINARY:FUNCTION")
        try expectRefused(["--attach", "on_entry=uprobe:/no/such/binary:f"], "cannot read /no/such/binary")
        try expectRefused(["--attach", "on_usdt=usdt:/bin/bash"], "write the target as usdt:BINARY:PROVIDER:NAME")
        try expectRefused(["--attach", "on_entry=uprobe:/bin/bash:readline", "--program", "on_return"], "program 'on_entry' is not loaded")
        try expectRefused(["--pid-global", "target_pid"], "--pid-global needs -c CMD")
        try expectRefused(["-c", "true", "--pid-global", "target_pdi"], "Did you mean 'target_pid'?")
        try expectRefused(["-c", "true", "--pid-global", "unused_hit"], "unused_hit is struct hit *, not an integer")
        try expectRefused(["-c", "true", "--pid", "1"], "-c and --pid both name the process")
        // A tracepoint program cannot take a user-space probe.
        let r = plumb(["object", "run", try fixturePath("attach.bpfel.o"), "--duration", "0s", "--attach", "on_tracepoint=uprobe:/bin/bash:readline"])
        #expect(r.status != 0 && r.stderr.contains("is a tracepoint program"), "\(r.stderr)")
    }

    @Test func unknownUSDTProbesAreRefusedBeforeLoading() throws {
        guard let fixtures = try? USDTFixtures.build() else { return }
        try expectRefused(["--attach", "on_usdt=usdt:\(fixtures.pie):plumb:tikc"], "no USDT probe 'plumb:tikc'")
        try expectRefused(["--attach", "on_usdt=usdt:\(fixtures.pie):plumb:tikc"], "did you mean 'plumb:tick'?")
    }
}
