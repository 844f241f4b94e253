// Ring and perf buffers as async sequences: records decoded as Swift types, task cancellation
// ends the wait, lost samples arrive as events.
import PlumbBPF
import PlumbSys
import Glibc
import Testing
import TestSupport

@Suite("async ring and perf buffers", .serialized)
struct KernelStateAsyncTests {
    @Test func ringRecordsArriveTypedAndInOrder() async throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let ring = try Map.create(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: 1 << 16, name: "events")
        let state = try counterMap("state", slots: 2)
        let prog = try Program.load(ProgramAttributes(type: .tracepoint, instructions: try Asm.emitter(.ringbufOutput, target: ring, state: state, tid: currentTID()), name: "async_ring"))
        let link = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
        // Emit before the first await: the program filters on this thread's id.
        for _ in 0..<100 { rawGetpid() }
        var seqs: [UInt64] = []
        for try await r in try ring.records(as: Record.self) {
            seqs.append(r.seq)
            if seqs.count == 100 { break }
        }
        #expect(seqs == (0..<100).map(UInt64.init))
        withExtendedLifetime(link) {}
    }

    @Test func cancellingTheTaskEndsTheWait() async throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let ring = try Map.create(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: 4096, name: "quiet")
        let task = Task { () -> Int in
            var n = 0
            for try await _ in try ring.records(as: UInt64.self) { n += 1 }
            return n
        }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        task.cancel()
        let n = try await task.value
        #expect(n == 0)
        // Without cancellation the wait never ends (the ring stays empty); 5 s leaves room for a busy machine.
        #expect(ContinuousClock.now - start < .seconds(5), "the wait ends soon after the cancel")
    }

    @Test func shortRecordsAndWrongMapsThrow() async throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        struct Big { var a: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0) }
        let ring = try Map.create(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: 1 << 16, name: "events")
        let state = try counterMap("state", slots: 2)
        let prog = try Program.load(ProgramAttributes(type: .tracepoint, instructions: try Asm.emitter(.ringbufOutput, target: ring, state: state, tid: currentTID()), name: "async_short"))
        let link = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
        rawGetpid()
        await #expect(throws: BPFError.self) {
            for try await _ in try ring.records(as: Big.self) {}
        }
        #expect(throws: BPFError.self) { _ = try state.records(as: UInt64.self) }
        withExtendedLifetime(link) {}
    }

    @Test func perfRecordsCarryTheirCPU() async throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let cpus = try CPUs.possible().count
        try await withRuntimeLeakCheckAsync { leaks in
            let (events, _, link) = try attachedPerfEmitter("async_perf", cpus: cpus, leaks)
            let online = try CPUs.online()
            // The perf rings are installed in the map when the stream is made: emit after that.
            let stream = try events.perfRecords(as: Record.self, pagesPerCPU: 2)
            for _ in 0..<50 { rawGetpid() }
            var seqs: [UInt64] = []
            for try await e in stream {
                switch e {
                case .record(let cpu, let r):
                    #expect(online.contains(cpu))
                    seqs.append(r.seq)
                case .lost(_, let n):
                    Issue.record("lost \(n)")
                }
                if seqs.count == 50 { break }
            }
            #expect(seqs.sorted() == (0..<50).map(UInt64.init))
            withExtendedLifetime(link) {}
        }
    }
}

/// `withRuntimeLeakCheck` for async bodies: everything tracked is gone once the body's objects are released.
func withRuntimeLeakCheckAsync(_ body: (RuntimeLeaks) async throws -> Void) async throws {
    let leaks = RuntimeLeaks()
    try await body(leaks)
    // The reader thread lets go of its perf buffer within a poll interval.
    try await Task.sleep(for: .milliseconds(200))
    try leaks.verify()
}
