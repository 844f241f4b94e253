import PlumbBPF
import PlumbAsm
import PlumbSys
import Glibc
import Testing
import TestSupport

/// One {seq, tid} record as the emitter programs write it.
struct Record: Equatable { var seq: UInt64; var tid: UInt64 }

func decode(_ bytes: UnsafeRawBufferPointer) -> Record? {
    guard bytes.count >= 16 else { return nil }
    return Record(seq: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), tid: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
}

@Suite("BPF runtime: ring buffer and perf buffer readers", .serialized)
struct RuntimeBufferTests {
    @Test("ring buffer: 10,000 records from a tracepoint arrive in order, intact, across many wraparounds")
    func ringBufferBurst() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let tid = currentTID()
            let ring = try Map.create(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: 4 * Perf.pageSize, name: "events")
            let state = try counterMap("state", slots: 2)
            leaks.track(ring); leaks.track(state)
            let prog = try Program.load(ProgramAttributes(type: .tracepoint, instructions: try Asm.emitter(.ringbufOutput, target: ring, state: state, tid: tid), name: "rb_out"))
            leaks.track(prog)
            let link = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
            leaks.track(link)
            var records: [Record] = []
            records.reserveCapacity(10_000)
            var bad = 0
            let reader = try RingBuffer(map: ring) { bytes in
                if bytes.count == 16, let r = decode(bytes) { records.append(r) } else { bad += 1 }
            }
            // The wakeup path: one record, then a blocking poll returns it.
            rawGetpid()
            #expect(try reader.poll(timeout: 1000) == 1)
            // 16 KiB ring, 24 bytes a record: read every 100 so nothing is dropped but the ring wraps ~15 times.
            for _ in 0..<99 {
                for _ in 0..<100 { rawGetpid() }
                try reader.consume()
            }
            for _ in 0..<99 { rawGetpid() }
            try reader.poll(timeout: 100)
            #expect(bad == 0)
            #expect(reader.delivered == 10_000)
            #expect(records.count == 10_000)
            #expect(records.map(\.seq) == (0..<10_000).map(UInt64.init), "out of order or missing")
            #expect(records.allSatisfy { $0.tid == UInt64(tid) })
            #expect(try count(state, key: 1) == 0, "the program counted drops")
            #expect(reader.pending(ring: 0) == 0)
        }
    }

    @Test("ring buffer: reserve/submit/discard — discarded records are skipped; overflow is counted by the program")
    func ringBufferDiscardAndDrops() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let tid = currentTID()
            let ring = try Map.create(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: Perf.pageSize, name: "small")
            let state = try counterMap("state", slots: 2)
            leaks.track(ring); leaks.track(state)
            let prog = try Program.load(ProgramAttributes(type: .tracepoint, instructions: try Asm.emitter(.ringbufReserveDiscardOdd, target: ring, state: state, tid: tid), name: "rb_reserve"))
            leaks.track(prog)
            let link = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
            leaks.track(link)
            var seqs: [UInt64] = []
            let reader = try RingBuffer(map: ring) { bytes in if let r = decode(bytes) { seqs.append(r.seq) } }
            for _ in 0..<100 { rawGetpid() }
            try reader.consume()
            #expect(seqs == stride(from: 0, to: 100, by: 2).map(UInt64.init))
            #expect(reader.discarded == 50)
            // No reading: a 4 KiB ring holds 170 records of 24 bytes; the rest fail to reserve.
            for _ in 0..<1000 { rawGetpid() }
            try reader.consume()
            let drops = try count(state, key: 1)
            #expect(drops > 0)
            #expect(reader.delivered + reader.discarded + drops == 1100, "delivered \(reader.delivered) discarded \(reader.discarded) dropped \(drops)")
        }
    }

    @Test("two ring buffers in one reader (one epoll set)")
    func twoRings() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let tid = currentTID()
            let reader = try RingBuffer()
            var perRing: [[UInt64]] = [[], []]
            var links: [Link] = []
            for i in 0..<2 {
                let ring = try Map.create(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: 16 * Perf.pageSize, name: "ring\(i)")
                let state = try counterMap("state\(i)", slots: 2)
                leaks.track(ring); leaks.track(state)
                let prog = try Program.load(ProgramAttributes(type: .tracepoint, instructions: try Asm.emitter(.ringbufOutput, target: ring, state: state, tid: tid), name: "rb\(i)"))
                leaks.track(prog)
                let link = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
                leaks.track(link)
                links.append(link)
                #expect(try reader.add(ring) { bytes in if let r = decode(bytes) { perRing[i].append(r.seq) } } == i)
            }
            for _ in 0..<500 { rawGetpid() }
            var total = 0
            while total < 1000, try reader.poll(timeout: 500) > 0 || total == 0 { total = Int(reader.delivered) }
            #expect(reader.delivered(ring: 0) == 500 && reader.delivered(ring: 1) == 500)
            #expect(perRing[0] == (0..<500).map(UInt64.init) && perRing[1] == perRing[0])
            #expect(throws: BPFError.self) { try reader.add(try counterMap("nope")) { _ in } }
        }
    }

    @Test("perf buffer: 10,000 bpf_perf_event_output samples, every one delivered intact, none lost")
    func perfBufferBurst() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let cpus = try CPUs.possible().count
        try withRuntimeLeakCheck { leaks in
            let tid = currentTID()
            let (events, state, link) = try attachedPerfEmitter("pe_out", cpus: cpus, leaks)
            var seqs: [UInt64] = []
            var bad = 0
            var lostCalls = 0
            let reader = try PerfBuffer(map: events, pagesPerCPU: 2, sample: { _, bytes in
                // 16 bytes sent; the kernel pads raw data to keep records 8-byte aligned.
                if bytes.count >= 16, let r = decode(bytes), r.tid == UInt64(tid) { seqs.append(r.seq) } else { bad += 1 }
            }, lost: { _, _ in lostCalls += 1 })
            #expect(reader.cpus == (try CPUs.online()))
            rawGetpid()
            #expect(try reader.poll(timeout: 1000) == 1)
            // 8 KiB per CPU, 32 bytes a sample: read every 100 (the ring wraps; some records straddle its end).
            for _ in 0..<99 {
                for _ in 0..<100 { rawGetpid() }
                try reader.consume()
            }
            for _ in 0..<99 { rawGetpid() }
            try reader.consume()
            #expect(bad == 0)
            #expect(reader.lostCount == 0 && lostCalls == 0)
            #expect(reader.delivered == 10_000)
            #expect(seqs.sorted() == (0..<10_000).map(UInt64.init))
            #expect(try count(state, key: 1) == 0)
            withExtendedLifetime(link) {}
        }
    }

    @Test("perf buffer overflow: tiny ring, big burst, no reading — lost > 0 and delivered + lost == sent")
    func perfBufferOverflow() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let cpus = try CPUs.possible().count
        let cpu = try CPUs.online()[0]
        try withRuntimeLeakCheck { leaks in
            let (events, state, link) = try attachedPerfEmitter("pe_over", cpus: cpus, leaks)
            var lostReported: UInt64 = 0
            let reader = try PerfBuffer(map: events, pagesPerCPU: 1, sample: { _, _ in }, lost: { _, n in lostReported += n })
            // Stay on one CPU: the kernel writes the LOST record into that CPU's ring with its next sample.
            var sent: UInt64 = 0
            try onCPU(cpu) {
                for _ in 0..<3000 { rawGetpid() }
                sent += 3000
                try reader.consume()
                // Flush: the next sample carries the LOST record in front of it.
                for _ in 0..<3 where reader.delivered + reader.lostCount < sent {
                    rawGetpid()
                    sent += 1
                    try reader.consume()
                }
            }
            #expect(reader.lostCount > 0)
            #expect(lostReported == reader.lostCount)
            #expect(reader.delivered + reader.lostCount == sent, "delivered \(reader.delivered) lost \(reader.lostCount) sent \(sent)")
            // The program saw no failures: the kernel counted the drops for us.
            #expect(try count(state, key: 0) == sent)
            withExtendedLifetime(link) {}
        }
    }

    @Test("perf buffer needs a perf_event_array with a slot per CPU")
    func perfBufferErrors() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let ring = try Map.create(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: Perf.pageSize, name: "rb")
            leaks.track(ring)
            do {
                _ = try PerfBuffer(map: ring, sample: { _, _ in })
                Issue.record("perf buffer on a ringbuf")
            } catch {
                #expect(String(describing: error).contains("use RingBuffer"))
            }
            if try CPUs.online().count > 1 {
                let tooSmall = try Map.create(type: .perfEventArray, keySize: 4, valueSize: 4, maxEntries: 1, name: "small")
                leaks.track(tooSmall)
                #expect(throws: BPFError.self) { _ = try PerfBuffer(map: tooSmall, sample: { _, _ in }) }
            }
        }
    }
}

/// A perf event array, a two-slot state map and an emitter program attached to
/// syscalls/sys_enter_getpid that writes one sample per getpid of this thread.
func attachedPerfEmitter(_ name: String, cpus: Int, _ leaks: RuntimeLeaks) throws -> (events: Map, state: Map, link: Link) {
    let events = try Map.create(type: .perfEventArray, keySize: 4, valueSize: 4, maxEntries: cpus, name: "events")
    let state = try counterMap("state", slots: 2)
    leaks.track(events); leaks.track(state)
    let prog = try Program.load(ProgramAttributes(type: .tracepoint, instructions: try Asm.emitter(.perfEventOutput, target: events, state: state, tid: currentTID()), name: name))
    leaks.track(prog)
    let link = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
    leaks.track(link)
    return (events, state, link)
}
