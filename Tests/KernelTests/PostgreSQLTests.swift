// PostgreSQL 15's USDT probes in a live throwaway cluster: one hand-built program on all 71
// sites, filtered by a ProcessTracker seeded with the postmaster, sees every backend forked
// after attaching — query texts, transaction ids and the MyProcPid global checked against
// what each session says about itself.
import PlumbBPF
import PlumbELF
import PlumbAsm
import PlumbSys
import Foundation
import Glibc
import Testing
import TestSupport

@Suite(.serialized) struct PostgreSQLTests {
    static func unavailable() -> String? {
        if let r = PostgreSQLCluster.unavailableReason() { return r }
        if let r = bpfUnavailableReason() { return r }
        if !Features.uprobes().isSupported { return "uprobes: \(Features.uprobes())" }
        if Features.uprobeMultiLinks() != .supported { return "uprobe_multi links: \(Features.uprobeMultiLinks())" }
        return nil
    }

    enum Kind: UInt32 { case queryStart = 1, transactionStart = 2, transactionCommit = 3 }

    /// kind u32, tgid u32, MyProcPid u32, pad u32, arg0 u64, text[256].
    struct Record { var kind: UInt32; var tgid: Int32; var myProcPid: Int32; var arg: UInt64; var text: String }
    static let recordSize: Int32 = 280

    /// One program for every site: skip processes outside the tracker's set, count hits per
    /// cookie, and for the query/transaction probes send arg0 (and the query text, and the
    /// backend's MyProcPid read from user memory) to the ring buffer.
    static func program(sites: [(cookie: UInt64, probe: USDTProbe)], kinds: [UInt64: Kind], tracker: Map, hits: Map, events: Map,
                        bias: UInt64, myProcPid: UInt64) throws -> [UInt8] {
        var b = ProgramBuilder()
        let out = b.newLabel("out"), record = b.newLabel("record"), submit = b.newLabel("submit")
        b.emit(.mov64(.r6, .r1))
        b.emit(.call(.getCurrentPidTgid))
        b.emit(.rsh64(.r0, 32))
        b.emit(.store(.r10, offset: -4, .r0, size: .word))
        b.emit(.loadMapFD(.r1, fd: tracker.fd.rawValue))
        b.emit(.mov64(.r2, .r10)); b.emit(.add64(.r2, -4))
        b.emit(.call(.mapLookupElem))
        b.jump(.jeq, .r0, imm: 0, to: out)                          // not a tracked process
        b.emit(.mov64(.r1, .r6))
        b.emit(.call(.getAttachCookie))
        b.emit(.mov64(.r7, .r0))
        b.emit(.store(.r10, offset: -8, .r7, size: .word))
        b.emit(.loadMapFD(.r1, fd: hits.fd.rawValue))
        b.emit(.mov64(.r2, .r10)); b.emit(.add64(.r2, -8))
        b.emit(.call(.mapLookupElem))
        let counted = b.newLabel()
        b.jump(.jeq, .r0, imm: 0, to: counted)
        b.emit(.mov64(.r1, 1))
        b.emit(.atomic(.add, .r0, offset: 0, .r1, size: .doubleWord))
        b.bind(counted)
        for site in sites {
            guard let kind = kinds[site.cookie], let arg0 = site.probe.arguments?.first else { continue }
            let next = b.newLabel()
            b.jump(.jne, .r7, imm: Int32(site.cookie), to: next)
            try arg0.emitLoad(into: &b, context: .r6, destination: .r8, loadBias: .constant(bias), stackOffset: -16)
            b.emit(.mov64(.r9, Int32(kind.rawValue)))
            b.goto(record)
            b.bind(next)
        }
        b.goto(out)
        b.bind(record)
        b.emit(.loadMapFD(.r1, fd: events.fd.rawValue))
        b.emit(.mov64(.r2, recordSize))
        b.emit(.mov64(.r3, 0))
        b.emit(.call(.ringbufReserve))
        b.jump(.jeq, .r0, imm: 0, to: out)
        b.emit(.mov64(.r7, .r0))
        b.emit(.store(.r7, offset: 0, .r9, size: .word))
        b.emit(.load(.r1, .r10, offset: -4, size: .word))
        b.emit(.store(.r7, offset: 4, .r1, size: .word))
        b.emit(.store(.r7, offset: 8, imm: 0, size: .doubleWord))
        b.emit(.store(.r7, offset: 16, .r8, size: .doubleWord))
        b.emit(.store(.r7, offset: 24, imm: 0, size: .byte))
        // MyProcPid: a 4-byte global at its file address plus the backend's load bias.
        b.emit(.mov64(.r1, .r7)); b.emit(.add64(.r1, 8))
        b.emit(.mov64(.r2, 4))
        b.emit(.loadImm64(.r3, Int64(bitPattern: myProcPid &+ bias)))
        b.emit(.call(.probeReadUser))
        b.jump(.jne, .r9, imm: Int32(Kind.queryStart.rawValue), to: submit)
        b.emit(.mov64(.r1, .r7)); b.emit(.add64(.r1, 24))
        b.emit(.mov64(.r2, 256))
        b.emit(.mov64(.r3, .r8))
        b.emit(.call(HelperID(rawValue: 114)))                      // bpf_probe_read_user_str
        b.bind(submit)
        b.emit(.mov64(.r1, .r7))
        b.emit(.mov64(.r2, 0))
        b.emit(.call(.ringbufSubmit))
        b.bind(out)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        return Instruction.encode(try b.finish())
    }

    /// Each session: its pid, its virtual transaction id inside an explicit transaction, some
    /// catalog and table work (lwlocks), in known statements.
    static func script(_ i: Int) -> [String] {
        [
            "SELECT pg_backend_pid();",
            "BEGIN;",
            "SELECT virtualtransaction FROM pg_locks WHERE locktype = 'virtualxid' AND pid = pg_backend_pid();",
            "CREATE TABLE IF NOT EXISTS plumb_t\(i) (a int);",
            "INSERT INTO plumb_t\(i) SELECT g FROM generate_series(1, \(100 * (i + 1))) g;",
            "COMMIT;",
            "SELECT count(*) FROM plumb_t\(i);",
        ]
    }

    @Test("backends forked after attach: query__start texts, transaction__start local xids, MyProcPid, lwlock probes")
    func backendsSeenThroughTheTracker() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let path = PostgreSQLCluster.postgres
        let cluster = try PostgreSQLCluster()
        defer { cluster.stop() }
        try withRuntimeLeakCheck { leaks in
            let tracker = try ProcessTracker(pids: [cluster.postmasterPID])
            leaks.track(tracker.object)
            #expect(try tracker.contains(cluster.postmasterPID))
            #expect(try tracker.pids.count >= 3, "the postmaster's helpers (checkpointer, walwriter, ...) are seeded too")

            let elf = try ELFFile(path: path)
            let symbol = try #require(try elf.symbols(dynamic: true).first { $0.name == "MyProcPid" } ?? elf.symbols().first { $0.name == "MyProcPid" })
            #expect(symbol.size == 4)
            let bias = try USDTResolver.loadBias(pid: cluster.postmasterPID, binary: path)
            #expect(bias != 0, "Debian's postgres is PIE")

            let (_, probes) = try USDTResolver.probes(binary: path)
            let all = USDTResolver.matching(probes, provider: "postgresql", name: "*")
            var kinds: [UInt64: Kind] = [:]
            for (i, p) in all.enumerated() {
                switch p.name {
                case "query__start": kinds[UInt64(i)] = .queryStart
                case "transaction__start": kinds[UInt64(i)] = .transactionStart
                case "transaction__commit": kinds[UInt64(i)] = .transactionCommit
                default: break
                }
            }
            #expect(kinds.values.filter { $0 == .queryStart }.count >= 1 && kinds.values.contains(.transactionStart))
            let hits = try counterMap("pg_hits", slots: all.count)
            let events = try Map.create(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: 1 << 20, name: "pg_events")
            leaks.track(hits); leaks.track(events)
            let sites = all.enumerated().map { (cookie: UInt64($0.offset), probe: $0.element) }
            let code = try Self.program(sites: sites, kinds: kinds, tracker: tracker.pidMap, hits: hits, events: events,
                                        bias: bias, myProcPid: symbol.value)
            let prog = try Program.load(ProgramAttributes(type: .kprobe, instructions: code, name: "pg_usdt", expectedAttachType: .traceUprobeMulti))
            leaks.track(prog)
            let attachment = try prog.attachUSDT(binary: path, provider: "postgresql", name: "*")
            for l in attachment.links { leaks.track(l) }
            #expect(attachment.sites.map(\.probe) == all)

            // The workload: three sessions, each a backend the postmaster forks now.
            var sessions: [(pid: Int32, lxid: UInt64)] = []
            var expectedQueries: [String] = []
            for i in 0..<3 {
                let output = try cluster.psql(Self.script(i).joined(separator: "\n") + "\n")
                let lines = output.split(separator: "\n").map(String.init)
                try #require(lines.count >= 3, "psql said: \(output)")
                let pid = try #require(Int32(lines[0]))
                let vxid = lines[1].split(separator: "/")
                let lxid = try #require(vxid.count == 2 ? UInt64(vxid[1]) : nil, "virtualtransaction '\(lines[1])'")
                #expect(lines[2] == "\(100 * (i + 1))")
                sessions.append((pid, lxid))
                expectedQueries += Self.script(i)
            }

            var records: [Record] = []
            let reader = try RingBuffer(map: events) { bytes in
                guard bytes.count >= Int(Self.recordSize) else { return }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[24..<280]).prefix { $0 != 0 }, as: UTF8.self)
                records.append(Record(kind: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self),
                                      tgid: bytes.loadUnaligned(fromByteOffset: 4, as: Int32.self),
                                      myProcPid: bytes.loadUnaligned(fromByteOffset: 8, as: Int32.self),
                                      arg: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self), text: text))
            }
            _ = try reader.consume()
            try attachment.detach()

            // query__start: exactly the workload's statements, each from its session's backend.
            let queries = records.filter { $0.kind == Kind.queryStart.rawValue }
            #expect(queries.map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }.sorted() == expectedQueries.sorted(),
                    "query__start texts: \(queries.map(\.text))")
            #expect(Set(queries.map(\.tgid)) == Set(sessions.map(\.pid)), "query__start fired in every backend forked after attach, and only there")
            #expect(queries.allSatisfy { $0.arg != 0 }, "arg0 is the char * of the query text")
            // MyProcPid read from each backend's memory is that backend's pid.
            let mismatched = records.filter { $0.myProcPid != $0.tgid }
            #expect(mismatched.isEmpty, "MyProcPid differs from the tgid in \(mismatched.count) of \(records.count) records")
            #expect(Set(queries.map(\.myProcPid)) == Set(sessions.map(\.pid)), "MyProcPid == pg_backend_pid()")
            // transaction__start's arg0 is the local transaction id the session saw in pg_locks.
            for s in sessions {
                let starts = records.filter { $0.kind == Kind.transactionStart.rawValue && $0.tgid == s.pid }.map(\.arg)
                #expect(starts.contains(s.lxid), "backend \(s.pid): local xid \(s.lxid) not among transaction__start \(starts)")
                let commits = records.filter { $0.kind == Kind.transactionCommit.rawValue && $0.tgid == s.pid }.map(\.arg)
                #expect(commits.contains(s.lxid), "backend \(s.pid): transaction__commit of \(s.lxid) missing: \(commits)")
            }
            // lwlock probes (semaphore-gated like all of PostgreSQL's) fired.
            func hitsFor(_ name: String) throws -> UInt64 {
                try attachment.sites.filter { $0.probe.name == name }.reduce(0) { $0 + (try count(hits, key: UInt32($1.cookie))) }
            }
            let acquire = try hitsFor("lwlock__acquire"), release = try hitsFor("lwlock__release")
            #expect(acquire > 0 && release > 0, "lwlock__acquire \(acquire), lwlock__release \(release)")
            #expect(try hitsFor("query__start") == UInt64(expectedQueries.count))
            print("PostgreSQL: \(sessions.count) backends, \(queries.count) query__start texts, "
                + "\(records.filter { $0.kind == Kind.transactionStart.rawValue }.count) transaction__start, lwlock__acquire \(acquire), "
                + "MyProcPid == pg_backend_pid() in \(records.count - mismatched.count)/\(records.count) records")

            // The tracker saw the backends begin; after they exit they have left the set.
            let procEvents = try tracker.events(timeout: 100)
            let begun = Set(procEvents.filter { $0.kind == .begin && !$0.synthetic && $0.parent == cluster.postmasterPID }.map(\.pid))
            #expect(begun.isSuperset(of: sessions.map(\.pid)))
            for s in sessions { #expect(try !tracker.contains(s.pid), "backend \(s.pid) exited") }
            try tracker.detach()
        }
    }
}
