import PlumbSys
import Synchronization
import Glibc

/// An attachment of a program to an event. It owns everything the attachment holds — bpf
/// link fds and perf event fds (several for per-CPU events) — and detaches by closing them,
/// explicitly with `detach()` or when released. A killed process detaches too: the kernel
/// drops the attachment with the last fd.
public final class Link: CustomStringConvertible, @unchecked Sendable {
    public enum Kind: String, Sendable {
        case tracepoint, rawTracepoint = "raw_tracepoint", tracing, uprobe, uretprobe, kprobe, kretprobe, perfEvent = "perf_event"
    }

    /// One attached piece: a bpf link, a perf event, or a perf event with its bpf link.
    struct Piece {
        var linkFD: Int32 = -1
        var perfFD: Int32 = -1
    }

    public let kind: Kind
    /// What is attached where, e.g. "tracepoint syscalls/sys_enter_openat".
    public let description: String
    /// The attached program (kept alive for as long as the link).
    public let program: Program
    private let pieces = Mutex<[Piece]>([])
    private let ids = Mutex<(links: [UInt32], perf: [UInt64])>(([], []))

    init(kind: Kind, program: Program, description: String) {
        self.kind = kind
        self.program = program
        self.description = description
    }

    deinit { detachAll() }

    /// Adds a bpf link fd (and the perf event it is attached through, if any).
    func add(link: consuming OwnedFD, perfEvent: consuming OwnedFD? = nil) {
        let linkID = (try? Sys.linkInfo(link).id) ?? 0
        var perfID: UInt64 = 0
        var perfFD: Int32 = -1
        if let p = perfEvent.take() {
            perfID = (try? Perf.id(p)) ?? 0
            perfFD = p.release()
        }
        let piece = Piece(linkFD: link.release(), perfFD: perfFD)
        pieces.withLock { $0.append(piece) }
        ids.withLock {
            if linkID != 0 { $0.links.append(linkID) }
            if perfID != 0 { $0.perf.append(perfID) }
        }
    }

    /// Adds a perf event that carries the program itself (PERF_EVENT_IOC_SET_BPF).
    func add(perfEvent: consuming OwnedFD) {
        let perfID = (try? Perf.id(perfEvent)) ?? 0
        let piece = Piece(perfFD: perfEvent.release())
        pieces.withLock { $0.append(piece) }
        if perfID != 0 { ids.withLock { $0.perf.append(perfID) } }
    }

    /// Kernel ids of the bpf links this holds (none for PERF_EVENT_IOC_SET_BPF attachments).
    public var linkIDs: [UInt32] { ids.withLock { $0.links } }

    /// PERF_EVENT_IOC_ID of each perf event this holds.
    public var perfEventIDs: [UInt64] { ids.withLock { $0.perf } }

    /// The raw descriptors, for inspection (bpf link fds, then perf event fds). Do not close them.
    public var fileDescriptors: (links: [Int32], perfEvents: [Int32]) {
        pieces.withLock { p in (p.map(\.linkFD).filter { $0 >= 0 }, p.map(\.perfFD).filter { $0 >= 0 }) }
    }

    /// Number of attached pieces (e.g. one per CPU for perf events).
    public var count: Int { pieces.withLock { $0.count } }

    public var isAttached: Bool { pieces.withLock { !$0.isEmpty } }

    /// Detaches now. Throws `.detached` when already detached.
    public func detach() throws(BPFError) {
        guard isAttached else { throw .detached(description) }
        detachAll()
    }

    private func detachAll() {
        let all = pieces.withLock { p in
            let taken = p
            p.removeAll()
            return taken
        }
        for piece in all {
            // The link first: closing the perf event under a live link would leave it defunct briefly.
            if piece.linkFD >= 0 { _ = close(piece.linkFD) }
            if piece.perfFD >= 0 {
                if piece.linkFD < 0 { _ = Self.disable(piece.perfFD) }
                _ = close(piece.perfFD)
            }
        }
    }

    private static func disable(_ fd: Int32) -> Bool {
        // Borrow the number without taking ownership of it.
        let owned = OwnedFD(taking: fd)
        let ok = (try? Perf.disable(owned)) != nil
        _ = owned.release()
        return ok
    }

    /// Pins a single-bpf-link attachment on bpffs: it then stays attached after this object
    /// (and this process) goes away, until the pin is removed with `unpin`.
    public func pin(_ path: String) throws(BPFError) {
        let fds = fileDescriptors
        guard fds.links.count == 1 else {
            throw .invalidArgument("only attachments made of exactly one bpf link can be pinned (\(description) has \(fds.links.count))")
        }
        let owned = OwnedFD(taking: fds.links[0])
        var failure: SysError?
        do { try Sys.objPin(owned, path: path) } catch { failure = error }
        _ = owned.release()
        if let failure { throw .system(failure) }
    }

    /// Removes a pin made by `pin` (or any bpffs path).
    public static func unpin(_ path: String) throws(BPFError) {
        if unlink(path) != 0 { throw .system(.file(path: path, errno: .current)) }
    }
}
