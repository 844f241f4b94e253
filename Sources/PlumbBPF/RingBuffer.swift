import PlumbSys
import Glibc

/// Reads BPF_MAP_TYPE_RINGBUF maps (one or several, in one epoll set) without copying.
///
/// Each committed record is handed to its ring's handler as a view straight into the ring's
/// pages, valid only during the call. Discarded records are skipped; a record still being
/// written (busy bit) ends the pass, to be picked up by the next one.
///
/// Drops: the kernel counts nothing when bpf_ringbuf_output/reserve fails for lack of room —
/// the BPF program sees the failure (a negative return or NULL) and must count it itself,
/// e.g. in an array map; `delivered` here is the other half of that sum.
///
/// One thread at a time: `poll`/`consume` mutate the reader's positions and counters.
public final class RingBuffer: @unchecked Sendable {
    public typealias Handler = (UnsafeRawBufferPointer) -> Void

    static let busyBit: UInt32 = 1 << 31
    static let discardBit: UInt32 = 1 << 30
    static let headerSize = 8

    final class Ring {
        let map: Map
        let consumer: MappedRegion      // consumer position page, read-write
        let producer: MappedRegion      // producer position page + data mapped twice, read-only
        let size: Int
        let handler: Handler
        var delivered: UInt64 = 0
        var discarded: UInt64 = 0

        init(map: Map, consumer: consuming MappedRegion, producer: consuming MappedRegion, size: Int, handler: @escaping Handler) {
            self.map = map
            self.consumer = consumer
            self.producer = producer
            self.size = size
            self.handler = handler
        }
    }

    private let epoll: Epoll
    private var rings: [Ring] = []

    /// An empty reader; add rings with `add(_:handler:)`.
    public init() throws(BPFError) {
        do { epoll = try Epoll() } catch { throw .system(error) }
    }

    /// A reader of one ring buffer map.
    public convenience init(map: Map, handler: @escaping Handler) throws(BPFError) {
        try self.init()
        try add(map, handler: handler)
    }

    /// Adds a ring buffer map to this reader's epoll set. Returns its index (see `delivered(ring:)`).
    @discardableResult
    public func add(_ map: Map, handler: @escaping Handler) throws(BPFError) -> Int {
        guard map.type == .ringbuf else {
            throw .mapMismatch(map: map.name, reason: "a ring buffer reader needs a ringbuf map, this is \(map.type)\(map.type == .perfEventArray ? " (use PerfBuffer)" : "")")
        }
        let page = Perf.pageSize
        let size = map.maxEntries
        guard size > 0, size & (size - 1) == 0, size % page == 0 else {
            throw .mapMismatch(map: map.name, reason: "ring size \(size) is not a power-of-two multiple of the page size")
        }
        let index = rings.count
        do {
            let consumer = try MappedRegion(fd: map.fd.rawValue, length: page, writable: true, offset: 0)
            // The kernel maps the data area twice in a row, so a record that wraps is contiguous here.
            let producer = try MappedRegion(fd: map.fd.rawValue, length: page + 2 * size, writable: false, offset: page)
            try epoll.add(map.fd.rawValue, token: UInt64(index))
            rings.append(Ring(map: map, consumer: consumer, producer: producer, size: size, handler: handler))
        } catch {
            throw .system(error)
        }
        return index
    }

    /// Records delivered so far, over all rings.
    public var delivered: UInt64 { rings.reduce(0) { $0 + $1.delivered } }

    /// Records delivered from ring `index`.
    public func delivered(ring index: Int) -> UInt64 { rings.indices.contains(index) ? rings[index].delivered : 0 }

    /// Discarded records skipped so far (bpf_ringbuf_discard), over all rings.
    public var discarded: UInt64 { rings.reduce(0) { $0 + $1.discarded } }

    /// Bytes written but not yet consumed, per ring.
    public func pending(ring index: Int) -> Int {
        guard rings.indices.contains(index) else { return 0 }
        let r = rings[index]
        let cons = SharedMemory.loadAcquire64(r.consumer.base)
        let prod = SharedMemory.loadAcquire64(r.producer.base)
        return Int(truncatingIfNeeded: prod &- cons)
    }

    /// Waits up to `timeout` milliseconds (-1: forever, 0: don't wait) for data, then delivers
    /// every committed record of the rings that have some. Returns how many were delivered.
    @discardableResult
    public func poll(timeout: Int32) throws(BPFError) -> Int {
        try poll(timeout: timeout) { ring, record in rings[ring].handler(record) }
    }

    /// `poll`, with the records handed to `body(ring index, record)` instead of the rings'
    /// stored handlers. `body` does not escape, so state it captures is checked statically:
    /// the fast path for hot consumers.
    @discardableResult
    public func poll(timeout: Int32, _ body: (Int, UnsafeRawBufferPointer) -> Void) throws(BPFError) -> Int {
        if rings.isEmpty { return 0 }
        let ready: [UInt64]
        do { ready = try epoll.wait(timeout: timeout, max: rings.count) } catch { throw .system(error) }
        var total = 0
        for token in ready {
            let index = Int(truncatingIfNeeded: token)
            guard rings.indices.contains(index) else { continue }
            total += try process(rings[index]) { body(index, $0) }
        }
        return total
    }

    /// Delivers every committed record of every ring without waiting.
    @discardableResult
    public func consume() throws(BPFError) -> Int {
        try consume { ring, record in rings[ring].handler(record) }
    }

    /// `consume`, with the records handed to `body(ring index, record)` (see `poll(timeout:_:)`).
    @discardableResult
    public func consume(_ body: (Int, UnsafeRawBufferPointer) -> Void) throws(BPFError) -> Int {
        var total = 0
        for (index, r) in rings.enumerated() { total += try process(r) { body(index, $0) } }
        return total
    }

    /// Delivers ring `index`'s committed records without waiting.
    @discardableResult
    public func consume(ring index: Int) throws(BPFError) -> Int {
        guard rings.indices.contains(index) else { throw .invalidArgument("no ring \(index)") }
        let r = rings[index]
        return try process(r) { r.handler($0) }
    }

    private func process(_ r: Ring, _ deliver: (UnsafeRawBufferPointer) -> Void) throws(BPFError) -> Int {
        let mask = UInt64(r.size - 1)
        let data = UnsafeRawPointer(r.producer.base) + Perf.pageSize
        let consumerPos = r.consumer.base
        var cons = SharedMemory.loadAcquire64(consumerPos)
        var count = 0
        while true {
            var progressed = false
            let prod = SharedMemory.loadAcquire64(r.producer.base)
            while cons < prod {
                let header = data + Int(cons & mask)
                let len = SharedMemory.loadAcquire32(header)
                if len & Self.busyBit != 0 { return count }   // still being written: next pass
                let payload = Int(len & ~(Self.busyBit | Self.discardBit))
                // A record can never be larger than the ring; anything else is corruption.
                guard payload <= r.size - Self.headerSize else {
                    throw .malformedRecord("ring buffer '\(r.map.name)': record of \(payload) bytes in a \(r.size)-byte ring at position \(cons)")
                }
                progressed = true
                if len & Self.discardBit == 0 {
                    deliver(UnsafeRawBufferPointer(start: header + Self.headerSize, count: payload))
                    r.delivered &+= 1
                    count += 1
                } else {
                    r.discarded &+= 1
                }
                cons &+= UInt64((payload + Self.headerSize + 7) & ~7)
                // Release: our reads of the record happen before the kernel may reuse its space.
                SharedMemory.storeRelease64(consumerPos, cons)
            }
            if !progressed { return count }
        }
    }
}
