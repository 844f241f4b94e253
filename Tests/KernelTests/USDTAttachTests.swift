// USDT probes attached for real: our gcc-built targets (PIE, non-PIE, a shared library, a
// semaphore-gated probe) and PostgreSQL 15's 71 sites. Serialized: the gated-probe test attaches
// without a pid filter, so nothing else may run the target meanwhile.
import PlumbBPF
import PlumbELF
import PlumbAsm
import PlumbSys
import Foundation
import Glibc
import Testing
import TestSupport

/// A started USDT target: one round of `n` iterations per `round()`, which returns the count of
/// open gates and the sum the target printed.
final class USDTChild {
    let process = Process()
    let input = Pipe(), output = Pipe()
    let pid: Int32

    init(_ binary: String, iterations: Int) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["\(iterations)"]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let line = readLine(output.fileHandleForReading)
        guard let pid = Int32(line) else { throw FixtureBuildError(message: "usdt target printed '\(line)'") }
        self.pid = pid
    }

    /// Runs one round; returns (open gates, sum).
    func round() -> (open: Int, sum: Int) {
        input.fileHandleForWriting.write(Data("r".utf8))
        let f = readLine(output.fileHandleForReading).split(separator: " ")
        return (f.count == 2 ? Int(f[0]) ?? -1 : -1, f.count == 2 ? Int(f[1]) ?? -1 : -1)
    }

    func finish() -> Int32 {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { if process.isRunning { process.terminate() } }
}

/// A program as generated code would build it: it dispatches on the attach cookie, fetches each
/// argument with `USDTArgument.emitLoad` and adds it into sums[cookie * 12 + index], and counts
/// hits into hits[cookie]. The load bias comes as a constant, from a register (r9), or from the
/// instruction pointer, as `biasMode` says.
enum USDTAsm {
    /// map[key in r2's slot] += r8; key given as a constant.
    static func add(_ b: inout ProgramBuilder, map: Map, key: Int32) {
        let done = b.newLabel()
        b.emit(.loadMapFD(.r1, fd: map.fd.rawValue))
        b.emit(.store(.r10, offset: -12, imm: key, size: .word))
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -12))
        b.emit(.call(.mapLookupElem))
        b.jump(.jeq, .r0, imm: 0, to: done)
        b.emit(.atomic(.add, .r0, offset: 0, .r8, size: .doubleWord))
        b.bind(done)
    }

    /// sites: (cookie, arguments, load bias of the site's binary).
    enum BiasMode: CaseIterable { case constant, register, instructionPointer }

    static func program(sites: [(cookie: UInt64, args: [USDTArgument], bias: UInt64, address: UInt64)], biasMode: BiasMode,
                        hits: Map, sums: Map) throws -> [UInt8] {
        var b = ProgramBuilder()
        let out = b.newLabel("out")
        b.emit(.mov64(.r6, .r1))
        b.emit(.call(.getAttachCookie))
        b.emit(.mov64(.r7, .r0))
        for site in sites {
            let next = b.newLabel()
            b.jump(.jne, .r7, imm: Int32(site.cookie), to: next)
            b.emit(.mov64(.r8, 1))
            add(&b, map: hits, key: Int32(site.cookie))
            for (i, arg) in site.args.enumerated() {
                switch biasMode {
                case .register:
                    b.emit(.loadImm64(.r9, Int64(bitPattern: site.bias)))
                    try arg.emitLoad(into: &b, context: .r6, destination: .r8, loadBias: .register(.r9), stackOffset: -24)
                case .constant:
                    try arg.emitLoad(into: &b, context: .r6, destination: .r8, loadBias: .constant(site.bias))
                case .instructionPointer:
                    try arg.emitLoad(into: &b, context: .r6, destination: .r8, loadBias: .instructionPointer(siteAddress: site.address))
                }
                add(&b, map: sums, key: Int32(site.cookie) * 12 + Int32(i))
            }
            b.goto(out)
            b.bind(next)
        }
        b.bind(out)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        return Instruction.encode(try b.finish())
    }
}

@Suite(.serialized) struct USDTAttachTests {
    static func unavailable() -> String? {
        if let r = bpfUnavailableReason() { return r }
        if !Features.uprobes().isSupported { return "uprobes: \(Features.uprobes())" }
        return nil
    }

    func fixtures() -> USDTFixtures? {
        do { return try USDTFixtures.build() } catch {
            _ = TestEnv.kernelAvailable("USDT fixtures: \(error)")
            return nil
        }
    }

    /// Expected per-argument sums over one round of n iterations of a fresh target.
    static func expectedSums(_ probe: String, n: Int) -> [UInt64] {
        var sums: [UInt64] = []
        func add(_ k: Int, _ v: Int64) {
            while sums.count <= k { sums.append(0) }
            sums[k] = sums[k] &+ UInt64(bitPattern: v)
        }
        var total: Int64 = 0
        for i in 0..<n {
            let i64 = Int64(i)
            switch probe {
            case "tick":
                total += i64
                for (k, v) in [i64, total, 100 + Int64(i & 63), 2 * total, 1000 + Int64(i & 63), -7, Int64(Int8(truncatingIfNeeded: i - 3))].enumerated() {
                    add(k, v)
                }
            case "twice@0": add(0, i64)
            case "twice@1": add(0, i64 + 1000)
            case "regs":
                let v = 0x1000000 + 0x10203 * i64
                for (k, x) in [(v >> 8) & 0xff, v & 0xff, v & 0xffff, Int64(Int32(truncatingIfNeeded: v)),
                               Int64(Int16(truncatingIfNeeded: v)), v & 0xff, v].enumerated() { add(k, x) }
            case "many": for k in 0..<12 { add(k, i64 + Int64(k)) }
            case "gated": add(0, i64)
            case "work": add(0, i64); add(1, 3 * (i64 + 1))
            default: break
            }
        }
        return sums
    }

    @Test("every site of every probe, by cookie: exact hits and argument values (registers, %ah, memory, RIP-relative, indexed, constants), PIE, non-PIE and a shared library")
    func sitesAndArguments() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()), let fx = fixtures() else { return }
        var configurations: [(String, Bool, USDTAsm.BiasMode)] = []
        for (i, mode) in USDTAsm.BiasMode.allCases.enumerated() {
            configurations += [(fx.pie, i % 2 == 0, mode), (fx.nopie, i % 2 == 1, mode)]
        }
        for (binary, multi, biasMode) in configurations {
            try withRuntimeLeakCheck { leaks in
                let n = 300
                let child = try USDTChild(binary, iterations: n)
                let (_, exeProbes) = try USDTResolver.probes(binary: binary)
                let (libPath, libProbes) = try USDTResolver.probes(binary: fx.library)
                let exeSites = USDTResolver.matching(exeProbes, provider: "plumb", name: "*")
                let libSites = USDTResolver.matching(libProbes, provider: nil, name: "w?rk")
                #expect(exeSites.count == 6 && libSites.count == 1)
                let exeBias = try USDTResolver.loadBias(pid: child.pid, binary: binary)
                let libBias = try USDTResolver.loadBias(pid: child.pid, binary: libPath)
                #expect((exeBias == 0) == (binary == fx.nopie))
                #expect(libBias != 0 && libBias % UInt64(Perf.pageSize) == 0)

                let hits = try counterMap("usdt_hits", slots: 32), sums = try counterMap("usdt_sums", slots: 32 * 12)
                leaks.track(hits); leaks.track(sums)
                var table: [(cookie: UInt64, args: [USDTArgument], bias: UInt64, address: UInt64)] = []
                for (i, p) in exeSites.enumerated() { table.append((UInt64(i), try #require(p.arguments), exeBias, p.address)) }
                for (i, p) in libSites.enumerated() { table.append((UInt64(20 + i), try #require(p.arguments), libBias, p.address)) }
                let code = try USDTAsm.program(sites: table, biasMode: biasMode, hits: hits, sums: sums)
                let prog = try Program.load(ProgramAttributes(type: .kprobe, instructions: code,
                                                              name: "usdt_args", expectedAttachType: multi ? .traceUprobeMulti : nil))
                leaks.track(prog)

                let exe = try prog.attachUSDT(binary: binary, provider: "plumb", name: "*", pid: child.pid)
                let lib = try prog.attachUSDT(binary: fx.library, name: "w?rk", pid: child.pid) { i, _ in UInt64(20 + i) }
                for l in exe.links + lib.links { leaks.track(l) }
                #expect(exe.links.count == (multi ? 1 : 6) && exe.links.allSatisfy { $0.linkIDs.count == 1 })
                #expect(exe.sites.map(\.cookie) == Array(0..<6))
                #expect(exe.sites.map(\.probe) == exeSites)
                #expect(lib.sites.map(\.cookie) == [20])
                #expect(exe.description == "usdt \(binary):plumb:* (6 sites\(multi ? ", uprobe_multi" : "")) pid \(child.pid)")
                if !multi { #expect(exe.links[0].description.contains("usdt \(binary):plumb:tick site 0 (offset 0x")) }

                // Another process of the same binary is not counted (pid filter).
                let other = TestEnv.run(binary, ["40"], stdin: Data("r".utf8))
                #expect(other.status == 0)

                let (open, _) = child.round()
                #expect(open == n, "the gate is open while attached")
                #expect(child.finish() == 0)

                var twiceSeen = 0
                for site in exe.sites + lib.sites {
                    var key = site.probe.name
                    if key == "twice" { key += "@\(twiceSeen)"; twiceSeen += 1 }
                    #expect(try count(hits, key: UInt32(site.cookie)) == UInt64(n), "\(binary) \(key) multi \(multi) \(biasMode)")
                    let expected = Self.expectedSums(key, n: n)
                    #expect(expected.count == site.probe.arguments?.count, "\(key)")
                    for (k, want) in expected.enumerated() {
                        let got = try count(sums, key: UInt32(site.cookie) * 12 + UInt32(k))
                        #expect(got == want, "\(binary) \(biasMode) \(key) arg \(k) \(site.probe.arguments?[k].text ?? ""): got \(Int64(bitPattern: got)), want \(Int64(bitPattern: want))")
                    }
                }
            }
        }
    }

    @Test("a semaphore-gated probe fires only while attached, in processes started before and after attaching")
    func semaphoreGate() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()), let fx = fixtures() else { return }
        for multi in [false, true] { try withRuntimeLeakCheck { leaks in
            let n = 50
            let before = try USDTChild(fx.pie, iterations: n)
            #expect(before.round().open == 0, "closed before attaching")
            let hits = try counterMap("usdt_gate", slots: 1)
            leaks.track(hits)
            let prog = try Program.load(ProgramAttributes(type: .kprobe, instructions: try Asm.counter(hits, tid: nil), name: "usdt_gate",
                                                          expectedAttachType: multi ? .traceUprobeMulti : nil))
            leaks.track(prog)
            var attachment: USDTAttachment? = try prog.attachUSDT(binary: fx.pie, provider: "plumb", name: "gated")
            for l in attachment?.links ?? [] { leaks.track(l) }
            #expect(attachment?.sites.count == 1)
            #expect(attachment?.sites.first?.probe.semaphoreFileOffset != nil)
            #expect(before.round().open == n, "raised in a process started before attaching")
            #expect(try count(hits) == UInt64(n))
            let after = try USDTChild(fx.pie, iterations: n)
            #expect(after.round().open == n, "raised in a process started after attaching")
            #expect(try count(hits) == UInt64(2 * n))
            try attachment?.detach()
            #expect(attachment?.isAttached == false)
            attachment = nil
            #expect(before.round().open == 0, "lowered again on detach")
            #expect(after.round().open == 0, "lowered again on detach")
            #expect(try count(hits) == UInt64(2 * n))
            #expect(before.finish() == 0 && after.finish() == 0)
        } }
    }

    @Test func uprobeMultiLinksAreDetected() {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        #expect(Features.uprobeMultiLinks() == .supported, "Linux 6.18 has uprobe_multi links")
    }

    @Test("listing and attach errors")
    func listingAndErrors() throws {
        guard let fx = fixtures() else { return }
        let listing = try USDTResolver.list(binary: fx.pie)
        #expect(listing.map(\.name) == ["tick", "twice", "regs", "many", "gated"])
        #expect(listing.first { $0.name == "twice" }?.sites.count == 2)
        #expect(listing.first { $0.name == "gated" }?.hasSemaphore == true)
        #expect(listing[0].description == "usdt:\(fx.pie):plumb:tick")
        #expect(listing[0].verboseDescription.contains("args: -4@%esi -8@g_total(%rip)"))
        #expect(try USDTResolver.list(binary: fx.pie, provider: "nope").isEmpty)
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let hits = try counterMap("usdt_err", slots: 1)
        let prog = try Program.load(ProgramAttributes(type: .kprobe, instructions: try Asm.counter(hits, tid: nil), name: "usdt_err"))
        do {
            _ = try prog.attachUSDT(binary: fx.pie, provider: "plumb", name: "missing")
            Issue.record("attached to a missing probe")
        } catch {
            #expect("\(error)".contains("no USDT probe 'plumb:missing'"))
            #expect("\(error)".contains("plumb:tick"))
        }
        do {
            _ = try prog.attachUSDT(binary: "/bin/true", name: "x")
            Issue.record("attached to a binary without notes")
        } catch {
            #expect("\(error)".contains("no .note.stapsdt"))
        }
    }

    @Test("PostgreSQL 15: all 71 sites attached and detached (timed)")
    func postgresAllSites() throws {
        let path = "/usr/lib/postgresql/15/bin/postgres"
        guard FileManager.default.fileExists(atPath: path) else {
            _ = TestEnv.kernelAvailable("\(path) missing (apt-get install postgresql-15; scripts/setup.sh does)")
            return
        }
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        for multi in [false, true] { try withRuntimeLeakCheck(seconds: 30) { leaks in
            let hits = try counterMap("usdt_pg", slots: 1)
            leaks.track(hits)
            let prog = try Program.load(ProgramAttributes(type: .kprobe, instructions: try Asm.counter(hits, tid: nil), name: "usdt_pg",
                                                          expectedAttachType: multi ? .traceUprobeMulti : nil))
            leaks.track(prog)
            let clock = ContinuousClock()
            let t0 = clock.now
            let a = try prog.attachUSDT(binary: path, provider: "postgresql", name: "*")
            let t1 = clock.now
            for l in a.links { leaks.track(l) }
            #expect(a.sites.count == 71)
            #expect(Set(a.sites.map(\.probe.qualifiedName)).count == 57)
            #expect(Set(a.links.flatMap(\.linkIDs)).count == (multi ? 1 : 71))
            #expect(a.sites.allSatisfy { $0.probe.semaphoreFileOffset != nil })
            try a.detach()
            let t2 = clock.now
            print("USDT postgres (\(multi ? "one uprobe_multi link" : "71 perf-event links")): attach 71 sites \(t1 - t0), detach \(t2 - t1)")
        } }
    }
}
