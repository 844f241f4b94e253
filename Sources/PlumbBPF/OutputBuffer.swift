import Glibc

/// Text output collected in memory and written to a file descriptor in large pieces: one
/// write(2) per `capacity` bytes instead of one per line. Whoever fills it says when the
/// reader must see what is there (`flush()`): `EventLoop` flushes when it has nothing left
/// to read, on stop (signal, duration) and at exit; the buffer flushes itself when full and
/// when released.
///
/// Printers write into it in place (`write(reserving:_:)`), with no intermediate String.
/// Write errors end output quietly (a closed pipe, a full disk): `failed` says so, and
/// nothing more is written. One thread at a time.
public final class OutputBuffer: @unchecked Sendable {
    public let fd: Int32
    /// Flush once this many bytes are pending.
    public let capacity: Int
    /// A write failed; later output is dropped.
    public private(set) var failed = false
    /// write(2) calls made, for tests and benchmarks.
    public private(set) var writes = 0
    /// Bytes waiting for the next flush.
    public private(set) var pendingCount = 0

    private var storage: UnsafeMutablePointer<UInt8>
    private var storageSize: Int

    public init(fd: Int32 = 1, capacity: Int = 1 << 16) {
        self.fd = fd
        self.capacity = max(capacity, 1)
        // Room past `capacity` so a line that crosses it still fits before the flush.
        storageSize = self.capacity + 4096
        storage = .allocate(capacity: storageSize)
    }

    deinit {
        flush()
        storage.deallocate()
    }

    /// What is pending, as bytes.
    public var pending: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: pendingCount) }

    /// Lets `body` write up to `count` bytes in place; it returns how many it wrote.
    @inline(__always)
    public func write(reserving count: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        if pendingCount + count > storageSize { makeRoom(count) }
        let n = body(storage + pendingCount)
        precondition(n >= 0 && n <= count, "wrote \(n) bytes into \(count) reserved")
        pendingCount += n
        if pendingCount >= capacity { flush() }
    }

    public func append(_ data: UnsafeRawBufferPointer) {
        write(reserving: data.count) { p in
            if let base = data.baseAddress { p.update(from: base.assumingMemoryBound(to: UInt8.self), count: data.count) }
            return data.count
        }
    }

    public func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Flushes, and grows the storage when one piece is larger than it.
    private func makeRoom(_ count: Int) {
        flush()
        if count > storageSize {
            storage.deallocate()
            storageSize = count
            storage = .allocate(capacity: storageSize)
        }
    }

    /// Writes everything pending.
    public func flush() {
        guard pendingCount > 0 else { return }
        if !failed {
            if !OutputBuffer.writeAll(fd, pending) { failed = true }
            writes += 1
        }
        pendingCount = 0
    }

    /// Writes all of `data` to `fd`, retrying on EINTR and short writes. False on error.
    @discardableResult
    public static func writeAll(_ fd: Int32, _ data: UnsafeRawBufferPointer) -> Bool {
        guard var p = data.baseAddress else { return true }
        var left = data.count
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            if n == 0 { return false }
            p += n
            left -= n
        }
        return true
    }

    /// `writeAll` for text.
    @discardableResult
    public static func writeAll(_ fd: Int32, _ text: String) -> Bool {
        var text = text
        return text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
    }
}
