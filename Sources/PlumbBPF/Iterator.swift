// BPF iterators (SEC("iter/NAME"), e.g. iter/task): the program is attached with a link of
// type BPF_TRACE_ITER, and every BPF_ITER_CREATE fd of that link runs the program once per
// kernel object (plus a last call with a NULL object) as it is read, from the start.
import PlumbSys

/// One run of an iterator: read it to its end to visit every object. Closes its fd when released.
public final class IteratorRun: @unchecked Sendable {
    let fd: OwnedFD
    init(fd: consuming OwnedFD) { self.fd = fd }

    /// Reads what the program writes to the iterator's seq_file (bpf_seq_printf/write), in
    /// chunks, until the iteration ends; `chunk` sees each piece. Programs that write nothing
    /// there (tracer programs that send records over a ring buffer) finish in one read.
    public func readToEnd(_ chunk: (UnsafeRawBufferPointer) -> Void = { _ in }) throws(BPFError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let n: Int
            do { n = try Sys.readIterator(fd, into: buffer) } catch { throw .system(error) }
            if n == 0 { return }
            chunk(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        }
    }

    /// `readToEnd` on a thread of its own (so the caller can drain the ring buffer the program
    /// fills meanwhile); `done` is called there with the error, if any, once the run ends.
    public func readToEndInBackground(done: @escaping @Sendable (BPFError?) -> Void) {
        spawnThread { [self] in
            do throws(BPFError) { try self.readToEnd(); done(nil) } catch { done(error) }
        }
    }
}

extension Program {
    /// Attaches an iterator program (expected attach type BPF_TRACE_ITER, loaded against the
    /// kernel's `bpf_iter_NAME`) and opens a first run of it. The link stays attached for as
    /// long as the returned `Link` lives; `run` is read to drive the program.
    public func attachIterator() throws(BPFError) -> (link: Link, run: IteratorRun) {
        let linkFD = try iteratorLinkFD()
        let iterFD: OwnedFD
        do { iterFD = try Sys.iterCreate(link: linkFD) } catch { throw .system(error) }
        let link = Link(kind: .tracing, program: self, description: "iter \(iteratorTarget)")
        link.add(link: linkFD)
        return (link, IteratorRun(fd: iterFD))
    }

    /// Attaches an iterator program without running it: the link alone, to pin (`Link.pin`) so
    /// that every open and read of the pin file runs the program (`cat PIN`).
    public func attachIteratorForPinning() throws(BPFError) -> Link {
        let linkFD = try iteratorLinkFD()
        let link = Link(kind: .tracing, program: self, description: "iter \(iteratorTarget)")
        link.add(link: linkFD)
        return link
    }

    private var iteratorTarget: String {
        attachBTFID == 0 ? "<no attach_btf_id>" : Program.targetName(btfID: attachBTFID)
    }

    private func iteratorLinkFD() throws(BPFError) -> OwnedFD {
        try require([.tracing], for: "an iterator")
        do {
            return try Sys.linkCreateTracing(fd, attachType: .traceIter)
        } catch {
            if let errno = error.errno, errno == .notPermitted || errno.isNotSupported {
                throw .unsupported(feature: "BPF iterators", reason: "creating the iterator link for \(iteratorTarget) failed with \(errno == .notPermitted ? "EPERM" : "ENOTSUPP"): the kernel refuses BPF_TRACE_ITER links here",
                                   suggestion: "run as root on a kernel with CONFIG_BPF_SYSCALL and BTF (5.8+), or use a tracepoint instead")
            }
            throw .system(error)
        }
    }
}
