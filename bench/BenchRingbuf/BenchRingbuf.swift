// Measures what bench/ringbuf_libbpf.c measures for libbpf, with Plumb's API only: loads
// bench/out/ringbuf.bpf.o, and delivers N 64-byte records from the `events` ring buffer,
// checking every sequence number. Prints one line:
//   <records/s> <records> <failed reservations> <elapsed ms>
// Usage: BenchRingbuf OBJECT [stream|drain] [N [BURST]]
//   stream: a producer thread test-runs `produce` (BURST records a run) while this thread
//           polls; the time is from the start until the N-th record is delivered.
//   drain:  fill the ring (test runs until it is full), then time consume() emptying it;
//           repeated until N records; the time is the consumer's alone.
import PlumbBPF
import PlumbSys
import Synchronization
import Glibc

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func fail(_ message: String) -> Never {
    let line = "BenchRingbuf: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

/// Asks `produce` for `count` records; returns how many it emitted (fewer: the ring is full).
func produce(_ program: Program, _ count: UInt32) -> UInt32 {
    let ctx = withUnsafeBytes(of: count) { Array($0) }
    do {
        // Syscall programs take no repeat count (the kernel wants 0).
        return try program.testRun(context: ctx, repeat: 0).returnValue
    } catch {
        fail("test run: \(error)")
    }
}

final class Producer: @unchecked Sendable {
    let program: Program
    let total: UInt64
    let burst: UInt64
    let go = Atomic<Bool>(false)

    init(program: Program, total: UInt64, burst: UInt64) {
        self.program = program
        self.total = total
        self.burst = burst
    }

    func run() {
        while !go.load(ordering: .acquiring) {}
        var emitted: UInt64 = 0
        while emitted < total {
            let n = produce(program, UInt32(min(total - emitted, burst)))
            emitted += UInt64(n)
            if n == 0 { sched_yield() }   // ring full: let the consumer run
        }
    }
}

/// The producer thread's entry point (a free function: not isolated to the main actor).
func producerThread(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let raw else { return nil }
    Unmanaged<Producer>.fromOpaque(raw).takeRetainedValue().run()
    return nil
}

@main struct BenchRingbuf {
    static func main() {
        let args = CommandLine.arguments
        guard args.count > 1 else { fail("usage: BenchRingbuf OBJECT [stream|drain] [N [BURST]]") }
        let mode = args.count > 2 ? args[2] : "stream"
        let total = args.count > 3 ? UInt64(args[3]) ?? 10_000_000 : 10_000_000
        let burst = args.count > 4 ? UInt64(args[4]) ?? 4096 : 4096
        guard mode == "stream" || mode == "drain" else { fail("mode must be stream or drain") }

        let rate: Double, received: UInt64, drops: UInt64, elapsed: Double
        do {
            let object = try Object(path: args[1])
            let program = try object.program("produce")
            let events = try object.map("events")
            let stats = try object.map("stats")

            // State in plain locals, checked by a non-escaping body passed to poll/consume: the
            // reader's fast path. (A stored escaping handler capturing `var`s would box them
            // and pay Swift's dynamic exclusivity checks per record.)
            var expected: UInt64 = 0, errors: UInt64 = 0
            let ring = try RingBuffer(map: events) { _ in }

            if mode == "stream" {
                let producer = Producer(program: program, total: total, burst: burst)
                var thread = pthread_t()
                let context = Unmanaged.passRetained(producer).toOpaque()
                let rc = pthread_create(&thread, nil, producerThread, context)
                guard rc == 0 else { fail("pthread_create: \(rc)") }
                let t0 = now()
                producer.go.store(true, ordering: .releasing)
                while ring.delivered < total {
                    try ring.poll(timeout: 100) { _, record in
                        let seq = record.loadUnaligned(as: UInt64.self)
                        if seq != expected || record.count != 64 { errors &+= 1 }
                        expected = seq &+ 1
                    }
                }
                elapsed = now() - t0
                pthread_join(thread, nil)
            } else {
                var spent = 0.0
                while ring.delivered < total {
                    var remaining = total - ring.delivered
                    while remaining > 0 {
                        let want = UInt32(min(remaining, 1 << 20))
                        let n = produce(program, want)
                        remaining -= UInt64(n)
                        if n < want { break }   // full
                    }
                    let t0 = now()
                    try ring.consume { _, record in
                        let seq = record.loadUnaligned(as: UInt64.self)
                        if seq != expected || record.count != 64 { errors &+= 1 }
                        expected = seq &+ 1
                    }
                    spent += now() - t0
                }
                elapsed = spent
            }
            received = ring.delivered
            guard errors == 0 else { fail("\(errors) records out of order or malformed") }
            drops = try stats.lookup(UInt32(0), as: UInt64.self) ?? 0
            rate = Double(received) / elapsed
        } catch {
            fail("\(error)")
        }
        // Everything (object, maps, program, ring) is released here: nothing stays loaded.
        print(String(format: "%.0f %llu %llu %.1f", rate, received, drops, elapsed * 1e3))
    }
}

#if canImport(Foundation)
import Foundation
#endif
