import Glibc

/// Text output collected in memory and written to a file descriptor in large pieces: one
/// write(2) per `capacity` bytes instead of one per line. Whoever fills it says when the
/// reader must see what is there (`flush()`): `EventLoop` flushes when it has nothing left
/// to read, on stop (signal, duration) and at exit; the buffer flushes itself when full and
/// when released.
///
/// Write errors end output quietly (a closed pipe, a full disk): `failed` says so, and
/// nothing more is written. One thread at a time.
public final class OutputBuffer: @unchecked Sendable {
    public let fd: Int32
    /// Pending bytes. Printers append to it directly (`&output.bytes`); call `flushIfFull()`
    /// after each piece.
    public var bytes: [UInt8]
    /// Flush once this many bytes are pending.
    public let capacity: Int
    /// A write failed; later output is dropped.
    public private(set) var failed = false
    /// write(2) calls made, for tests and benchmarks.
    public private(set) var writes = 0

    public init(fd: Int32 = 1, capacity: Int = 1 << 16) {
        self.fd = fd
        self.capacity = max(capacity, 1)
        bytes = []
        bytes.reserveCapacity(self.capacity + 4096)
    }

    deinit { flush() }

    public func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
        flushIfFull()
    }

    public func append(_ data: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: data)
        flushIfFull()
    }

    @inline(__always)
    public func flushIfFull() {
        if bytes.count >= capacity { flush() }
    }

    /// Writes everything pending.
    public func flush() {
        guard !bytes.isEmpty else { return }
        if !failed {
            bytes.withUnsafeBytes { if !OutputBuffer.writeAll(fd, $0) { failed = true } }
            writes += 1
        }
        bytes.removeAll(keepingCapacity: true)
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
