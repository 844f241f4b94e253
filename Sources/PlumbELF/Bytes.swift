import Glibc

/// Byte order of a file or a BTF blob.
public enum ByteOrder: Sendable, Equatable {
    case little, big
    public static var host: ByteOrder { 1.littleEndian == 1 ? .little : .big }
}

/// An immutable block of bytes owned by one object: a file's contents read once, or a copy of
/// an array. Parsers keep it alive and read through its base pointer after checking bounds.
public final class Bytes: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    private let mapped: Bool

    /// Copies `bytes`.
    public init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        let n = bytes.count
        let p = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(n, 1), alignment: 16)
        let buf = UnsafeMutableRawBufferPointer(start: p, count: n)
        buf.copyBytes(from: bytes)
        base = UnsafeRawPointer(p)
        count = n
        mapped = false
    }

    /// Takes ownership of memory allocated with `UnsafeMutableRawPointer.allocate`.
    init(adopting p: UnsafeMutableRawPointer, count: Int) {
        base = UnsafeRawPointer(p)
        self.count = count
        mapped = false
    }

    private init(mapping p: UnsafeRawPointer, count: Int) {
        base = p
        self.count = count
        mapped = true
    }

    /// Reads a whole file. Only regular files are read: a device (/dev/zero) or a pipe may
    /// never end. They are mapped; those whose size the kernel does not report (some sysfs
    /// and procfs files say 0) are read in chunks.
    /// `prefault`: fault every page in at once (parsers that touch all of the file, as BTF's);
    /// without it pages come in as they are touched (an ELF reader looking up a few symbols of
    /// a 2 MB libc touches a tenth of it).
    public static func read(path: String, prefault: Bool = true) throws(ELFError) -> Bytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .cannotRead(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw .cannotRead(path: path, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .notRegularFile(path: path) }
        // Map regular files (sysfs's vmlinux BTF too, on kernels that allow it); files that
        // refuse mapping are read instead.
        if st.st_size > 0 {
            let size = Int(st.st_size)
            if let p = mmap(nil, size, PROT_READ, MAP_PRIVATE | (prefault ? MAP_POPULATE : 0), fd, 0), p != MAP_FAILED {
                return Bytes(mapping: UnsafeRawPointer(p), count: size)
            }
        }
        var capacity = st.st_size > 0 ? Int(st.st_size) + 1 : 1 << 16
        var p = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        var used = 0
        while true {
            if used == capacity {
                let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 16)
                bigger.copyMemory(from: p, byteCount: used)
                p.deallocate()
                p = bigger
                capacity *= 2
            }
            let n = Glibc.read(fd, p + used, capacity - used)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                p.deallocate()
                throw .cannotRead(path: path, errno: e)
            }
            if n == 0 { break }
            used += n
        }
        return Bytes(adopting: p, count: used)
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// A copy of `range`, which the caller has bounds-checked.
    public func array(_ range: Range<Int>) -> [UInt8] {
        Array(UnsafeRawBufferPointer(rebasing: buffer[range]))
    }
}

/// Bounds-checked integer reads in a given byte order. Every read returns nil past the end,
/// so parsers of untrusted input turn that into a typed error.
public struct ByteView: Sendable {
    public let bytes: Bytes
    public let order: ByteOrder
    /// The window of `bytes` this view reads; offsets are relative to `start`.
    public let start: Int
    public let count: Int

    public init(_ bytes: Bytes, order: ByteOrder, start: Int = 0, count: Int? = nil) {
        self.bytes = bytes
        self.order = order
        self.start = start
        self.count = count ?? (bytes.count - start)
    }

    @inline(__always) public func contains(_ offset: Int, _ size: Int) -> Bool {
        offset >= 0 && size >= 0 && offset <= count && size <= count - offset
    }

    @inline(__always) public func u8(_ o: Int) -> UInt8? {
        guard contains(o, 1) else { return nil }
        return bytes.base.load(fromByteOffset: start + o, as: UInt8.self)
    }
    @inline(__always) public func u16(_ o: Int) -> UInt16? {
        guard contains(o, 2) else { return nil }
        let v = bytes.base.loadUnaligned(fromByteOffset: start + o, as: UInt16.self)
        return order == .little ? UInt16(littleEndian: v) : UInt16(bigEndian: v)
    }
    @inline(__always) public func u32(_ o: Int) -> UInt32? {
        guard contains(o, 4) else { return nil }
        let v = bytes.base.loadUnaligned(fromByteOffset: start + o, as: UInt32.self)
        return order == .little ? UInt32(littleEndian: v) : UInt32(bigEndian: v)
    }
    @inline(__always) public func u64(_ o: Int) -> UInt64? {
        guard contains(o, 8) else { return nil }
        let v = bytes.base.loadUnaligned(fromByteOffset: start + o, as: UInt64.self)
        return order == .little ? UInt64(littleEndian: v) : UInt64(bigEndian: v)
    }
    /// A sub-view; nil when it does not fit.
    public func slice(_ offset: Int, _ size: Int) -> ByteView? {
        guard contains(offset, size) else { return nil }
        return ByteView(bytes, order: order, start: start + offset, count: size)
    }
    /// The NUL-terminated string at `offset`, or nil when it runs past the end.
    public func cString(at offset: Int) -> String? {
        guard offset >= 0, offset < count else { return nil }
        let p = bytes.base + start + offset
        let remaining = count - offset
        guard let nul = memchr(p, 0, remaining) else { return nil }
        let len = UnsafeRawPointer(nul) - p
        return String(decoding: UnsafeRawBufferPointer(start: p, count: len), as: UTF8.self)
    }
    /// Copies the window's bytes.
    public func toArray() -> [UInt8] { bytes.array(start..<(start + count)) }
    public var pointer: UnsafeRawPointer { bytes.base + start }
}
