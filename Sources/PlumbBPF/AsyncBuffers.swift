import PlumbSys
import Glibc
import Synchronization

// Ring and perf buffers as async sequences:
//
//     for try await event in try map.records(as: Event.self) { ... }
//
// A dedicated thread (not a cooperative-pool one: it blocks in epoll_wait) polls the buffer and
// yields decoded values; when the consuming task is cancelled or stops iterating, the stream
// terminates, the thread sees it within one poll interval and releases the reader.

/// An event from a perf buffer: a sample from one CPU, or how many samples that CPU lost.
public enum PerfEvent<Record: Sendable>: Sendable {
    case record(cpu: Int, Record)
    case lost(cpu: Int, count: UInt64)
}

/// How long each wait lasts before the reader thread checks whether anyone still listens.
let asyncPollMilliseconds: Int32 = 50

/// Runs `body` on a new detached pthread.
func spawnThread(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { arg in
        guard let arg else { return nil }
        let b = Unmanaged<Box>.fromOpaque(arg).takeRetainedValue()
        b.body()
        return nil
    }, box)
    if rc == 0 { pthread_detach(thread) } else {
        // No thread: run inline would block the caller; release the box and let the body see nothing.
        Unmanaged<Box>.fromOpaque(box).release()
    }
}

/// Decodes one record as `T` (records shorter than `T` are malformed; longer ones are cut).
@inline(__always)
func decodeRecord<T: BitwiseCopyable>(_ bytes: UnsafeRawBufferPointer, as: T.Type) throws(BPFError) -> T {
    guard bytes.count >= MemoryLayout<T>.size else {
        throw .malformedRecord("a \(bytes.count)-byte record is shorter than \(T.self) (\(MemoryLayout<T>.size) bytes); check the record type against the program's")
    }
    return bytes.loadUnaligned(as: T.self)
}

extension Map {
    /// The records of this ring buffer map as `T`, in order, until the consuming task is cancelled
    /// or stops iterating. Throws at the first record too short for `T`.
    public func records<T: BitwiseCopyable & Sendable>(as type: T.Type) throws(BPFError) -> AsyncThrowingStream<T, any Error> {
        guard self.type == .ringbuf else {
            throw .mapMismatch(map: name, reason: "records(as:) reads ringbuf maps, this is \(self.type)\(self.type == .perfEventArray ? " (use perfRecords(as:))" : "")")
        }
        let (stream, continuation) = AsyncThrowingStream<T, any Error>.makeStream(bufferingPolicy: .unbounded)
        let stop = StopFlag()
        continuation.onTermination = { _ in stop.set() }
        let reader = try RingBuffer()
        let box = ReaderBox(reader)
        try reader.add(self) { _ in }
        spawnThread {
            var failure: BPFError?
            while !stop.isSet {
                do throws(BPFError) {
                    try box.reader.poll(timeout: asyncPollMilliseconds) { _, bytes in
                        guard failure == nil else { return }
                        do throws(BPFError) { continuation.yield(try decodeRecord(bytes, as: T.self)) } catch { failure = error }
                    }
                } catch { failure = error }
                if let f = failure { continuation.finish(throwing: f); return }
            }
            continuation.finish()
        }
        return stream
    }

    /// The samples of this perf event array map as `T` with their CPU, and each CPU's lost counts,
    /// until the consuming task is cancelled or stops iterating.
    public func perfRecords<T: BitwiseCopyable & Sendable>(as type: T.Type, pagesPerCPU: Int = 8) throws(BPFError) -> AsyncThrowingStream<PerfEvent<T>, any Error> {
        let (stream, continuation) = AsyncThrowingStream<PerfEvent<T>, any Error>.makeStream(bufferingPolicy: .unbounded)
        let stop = StopFlag()
        continuation.onTermination = { _ in stop.set() }
        let failure = Mutex<BPFError?>(nil)
        let reader = try PerfBuffer(map: self, pagesPerCPU: pagesPerCPU, sample: { cpu, bytes in
            do throws(BPFError) { continuation.yield(.record(cpu: cpu, try decodeRecord(bytes, as: T.self))) }
            catch { failure.withLock { if $0 == nil { $0 = error } } }
        }, lost: { cpu, count in continuation.yield(.lost(cpu: cpu, count: count)) })
        let box = ReaderBox(reader)
        spawnThread {
            while !stop.isSet {
                do { try box.reader.poll(timeout: asyncPollMilliseconds) } catch { continuation.finish(throwing: error); return }
                if let f = failure.withLock({ $0 }) { continuation.finish(throwing: f); return }
            }
            continuation.finish()
        }
        return stream
    }
}

/// Set once when the consumer goes away.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .releasing) }
    var isSet: Bool { flag.load(ordering: .acquiring) }
}

/// Hands a reader (used by one thread at a time) to the polling thread.
final class ReaderBox<R>: @unchecked Sendable {
    let reader: R
    init(_ r: R) { reader = r }
}
