import Glibc

/// A kernel file descriptor (map, program, link, BTF, perf event, pinned object) owned by exactly
/// one value. It is closed when that value goes away, so a dropped owner cannot leak an
/// attachment. `~Copyable` makes a second owner (and so a double close) a compile-time error.
public struct OwnedFD: ~Copyable, Sendable {
    /// The descriptor number; valid for as long as this owner lives.
    public let rawValue: Int32

    /// Takes ownership of `rawValue`; it will be closed when this value is destroyed.
    public init(taking rawValue: Int32) {
        self.rawValue = rawValue
    }

    deinit {
        if rawValue >= 0 { _ = Glibc.close(rawValue) }
    }

    /// Gives up ownership without closing: the caller now owns the number.
    public consuming func release() -> Int32 {
        let fd = rawValue
        discard self
        return fd
    }

    /// A second descriptor for the same kernel object (close-on-exec), with its own owner.
    public borrowing func duplicate() throws(SysError) -> OwnedFD {
        let fd = fcntl(rawValue, F_DUPFD_CLOEXEC, 3)
        if fd < 0 { throw .file(path: "fd \(rawValue) (F_DUPFD_CLOEXEC)", errno: .current) }
        return OwnedFD(taking: fd)
    }
}
