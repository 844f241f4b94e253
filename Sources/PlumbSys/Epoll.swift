import CPlumbSys
import Glibc

/// An epoll instance (the ring/perf buffer readers wait on many fds at once).
/// Swift's Glibc module does not export <sys/epoll.h>, so the shim header does.
package struct Epoll: ~Copyable, Sendable {
    package let fd: OwnedFD

    package init() throws(SysError) {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw .file(path: "epoll_create1", errno: .current) }
        self.fd = OwnedFD(taking: fd)
    }

    /// Watches `target` for readability; `token` comes back from `wait` when it is ready.
    package func add(_ target: Int32, token: UInt64) throws(SysError) {
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.u64 = token
        if epoll_ctl(fd.rawValue, EPOLL_CTL_ADD, target, &ev) != 0 {
            throw .file(path: "epoll_ctl(ADD fd \(target))", errno: .current)
        }
    }

    package func remove(_ target: Int32) throws(SysError) {
        var ev = epoll_event()
        if epoll_ctl(fd.rawValue, EPOLL_CTL_DEL, target, &ev) != 0 {
            throw .file(path: "epoll_ctl(DEL fd \(target))", errno: .current)
        }
    }

    /// Waits up to `timeout` ms (-1 forever) and returns the tokens of the ready fds (empty on
    /// timeout or EINTR). `max` bounds how many are reported per call.
    package func wait(timeout: Int32, max: Int) throws(SysError) -> [UInt64] {
        let count = Swift.max(max, 1)
        var events = [epoll_event](repeating: epoll_event(), count: count)
        let n = events.withUnsafeMutableBufferPointer { epoll_wait(fd.rawValue, $0.baseAddress, Int32(count), timeout) }
        if n < 0 {
            let e = Errno.current
            if e == .interrupted { return [] }
            throw .file(path: "epoll_wait", errno: e)
        }
        return events.prefix(Int(n)).map { $0.data.u64 }
    }
}
