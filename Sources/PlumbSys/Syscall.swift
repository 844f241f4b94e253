import CPlumbSys
import Glibc

/// Typed bpf(2) commands. Every function maps one command; fds it returns are owned.
/// The raw command layer is for this package only: the library's face is PlumbBPF.
package enum Sys {}

/// The outcome of one raw syscall: its non-negative result or the errno.
package enum SysResult {
    case success(Int)
    case failure(Errno)
}

extension Sys {
    /// Issues one bpf(2) command with `attr` as its attribute block.
    /// Returns the non-negative result or the errno; EINTR is retried since no command has
    /// side effects when interrupted before completion.
    @usableFromInline
    static func call<A>(_ cmd: BPFCommand, _ attr: inout A) -> SysResult {
        while true {
            let r = withUnsafeMutablePointer(to: &attr) {
                cbpf_bpf(Int32(bitPattern: cmd.rawValue), UnsafeMutableRawPointer($0), UInt32(MemoryLayout<A>.size))
            }
            if r >= 0 { return .success(r) }
            let e = Errno.current
            if e == .interrupted { continue }
            return .failure(e)
        }
    }

    /// A command that returns a new fd.
    static func callFD<A>(_ cmd: BPFCommand, _ attr: inout A, context: @autoclosure () -> String) throws(SysError) -> OwnedFD {
        switch call(cmd, &attr) {
        case .success(let fd):
            guard let fd32 = Int32(exactly: fd) else { throw .malformedKernelOutput("\(cmd) returned fd \(fd)") }
            return OwnedFD(taking: fd32)
        case .failure(let e):
            throw .syscall(command: cmd, errno: e, context: context())
        }
    }
}

/// Owns heap copies of the buffers a bpf attr points to, for the duration of one call.
/// Pointers handed to the kernel must outlive the syscall; nesting `withUnsafe…` for six
/// buffers would bury the logic, so the copies live here and are freed together.
struct Arena: ~Copyable {
    private var blocks: [UnsafeMutableRawPointer] = []

    init() {}

    deinit {
        for b in blocks { b.deallocate() }
    }

    /// Copies `bytes` and returns the address as the u64 the kernel expects (0 when empty).
    mutating func copy(_ bytes: some Collection<UInt8>) -> UInt64 {
        if bytes.isEmpty { return 0 }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 8)
        blocks.append(p)
        let buf = UnsafeMutableRawBufferPointer(start: p, count: bytes.count)
        _ = buf.initializeMemory(as: UInt8.self, from: bytes)
        return UInt64(UInt(bitPattern: p))
    }

    /// A NUL-terminated copy of `s`.
    mutating func cString(_ s: String) -> UInt64 {
        var bytes = Array(s.utf8)
        bytes.append(0)
        return copy(bytes)
    }

    /// Zeroed scratch space of `count` bytes.
    mutating func zeroed(_ count: Int) -> UnsafeMutableRawBufferPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 8)
        blocks.append(p)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        return UnsafeMutableRawBufferPointer(start: p, count: count)
    }
}

@inline(__always)
func address(_ p: UnsafeRawPointer?) -> UInt64 {
    guard let p else { return 0 }
    return UInt64(UInt(bitPattern: p))
}

/// Copies a name into a kernel `char[16]` field (at most 15 bytes, NUL-terminated).
func setObjectName<T>(_ field: inout T, _ name: String) throws(SysError) {
    let bytes = Array(name.utf8)
    // The kernel accepts only [A-Za-z0-9_.] in object names; say so before it says EINVAL.
    for b in bytes where !(b == 0x5f || b == 0x2e || (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)) {
        throw .invalidArgument("object name '\(name)' may only contain letters, digits, '_' and '.'")
    }
    withUnsafeMutableBytes(of: &field) { raw in
        let n = min(bytes.count, raw.count - 1)
        for i in 0..<n { raw[i] = bytes[i] }
        raw[n] = 0
    }
}

/// Reads a NUL-terminated name out of a kernel `char[16]` field.
func objectName<T>(_ field: T) -> String {
    withUnsafeBytes(of: field) { raw in
        let end = raw.firstIndex(of: 0) ?? raw.count
        return String(decoding: raw[..<end], as: UTF8.self)
    }
}
