// BPF iterators (BPF_TRACE_ITER): a link made with BPF_LINK_CREATE, then BPF_ITER_CREATE
// turns the link into an fd whose read(2) runs the program once per kernel object.
import CPlumbSys
import Glibc

/// `union bpf_attr` for BPF_ITER_CREATE: the link, then flags (none defined).
struct IterCreateAttr {
    var linkFD: UInt32 = 0
    var flags: UInt32 = 0
}

extension Sys {
    /// BPF_ITER_CREATE: a fresh iterator over the target of an iterator link. Each fd runs the
    /// iteration once, from the start, as it is read.
    package static func iterCreate(link: borrowing OwnedFD) throws(SysError) -> OwnedFD {
        var attr = IterCreateAttr(linkFD: UInt32(bitPattern: link.rawValue))
        return try callFD(.iterCreate, &attr, context: "iterator from link fd \(link.rawValue)")
    }

    /// read(2) on an iterator fd: the bytes its program wrote with bpf_seq_write/printf, 0 at
    /// the end. EINTR is retried; EAGAIN means "read again" (the kernel stops after many objects).
    package static func readIterator(_ fd: borrowing OwnedFD, into buffer: UnsafeMutableRawBufferPointer) throws(SysError) -> Int {
        while true {
            let n = Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let e = Errno.current
            if e == .interrupted || e.rawValue == EAGAIN { continue }
            throw .syscall(command: .iterCreate, errno: e, context: "reading the iterator")
        }
    }
}
