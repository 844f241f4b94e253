import PlumbAsm
import PlumbBTF
import PlumbSys
import Glibc

/// A set of processes followed as they fork and exit, kept in a BPF hash map that other
/// programs consult as their pid filter (key: tgid as u32, value: parent tgid as u32), plus a
/// ring buffer of process begin/exec/end records (for `process:begin` / `process:end`).
///
/// Seeded with pids (and all their current descendants, read from /proc/*/stat) or with a
/// launched command; after that the kernel keeps the set: the child of a tracked process is
/// added on `sched_process_fork` (threads are not processes and are skipped), and a process
/// leaves on `sched_process_exit` when its last thread goes (`group_dead`). Exec keeps the pid.
///
/// Processes already running when tracking starts get synthetic begin records, as SystemTap's
/// `process.begin` fires for them: `events(timeout:)` returns those first.
public final class ProcessTracker: @unchecked Sendable {
    public struct Event: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: UInt32, Sendable { case begin = 1, exec = 2, end = 3 }
        public var pid: Int32
        public var parent: Int32
        public var kind: Kind
        /// True for the begin records of processes that were running when tracking started.
        public var synthetic: Bool
        /// The thread concerned: the new process's (= pid) at begin, the last thread to exit at end.
        public var tid: Int32
        /// CLOCK_MONOTONIC ns (as bpf_ktime_get_ns) when it happened (when tracking started, for synthetic begins).
        public var nanoseconds: UInt64
        /// Real uid and gid (the parent's at fork, which the child inherits).
        public var uid: UInt32
        public var gid: UInt32
        /// The command name: the parent's at fork (a child keeps it until it execs), the new one at exec.
        public var comm: String
        public init(pid: Int32, parent: Int32, kind: Kind, synthetic: Bool = false, tid: Int32? = nil,
                    nanoseconds: UInt64 = 0, uid: UInt32 = 0, gid: UInt32 = 0, comm: String = "") {
            self.pid = pid; self.parent = parent; self.kind = kind; self.synthetic = synthetic
            self.tid = tid ?? pid; self.nanoseconds = nanoseconds; self.uid = uid; self.gid = gid; self.comm = comm
        }
        /// The same thing said about the same process (time, thread, ids and comm are details).
        public static func == (a: Event, b: Event) -> Bool {
            a.pid == b.pid && a.parent == b.parent && a.kind == b.kind && a.synthetic == b.synthetic
        }
        public var description: String { "\(kind) pid \(pid) parent \(parent)\(synthetic ? " (already running)" : "")" }
    }

    /// The record layout the programs write: pid, parent, kind, tid (u32 each), ktime ns (u64),
    /// uid | gid << 32 (u64), comm (16 bytes).
    public static let recordSize = 48
    public static let pidMapName = "plumb_pids"
    public static let eventMapName = "plumb_proc_ev"

    public let object: Object
    /// The tracked set: u32 tgid -> u32 parent tgid. Generated programs look the current tgid up here.
    public let pidMap: Map
    /// BPF_MAP_TYPE_RINGBUF of `recordSize`-byte records.
    public let eventMap: Map
    private var links: [Link] = []
    private var pendingSynthetic: [Event] = []
    private var reader: RingBuffer?
    private var received: [Event] = []

    /// Starts tracking `pids` and (with `descendants`) every process below them now. The
    /// programs are attached before the set is seeded, and /proc is rescanned after each
    /// seeding pass, so a fork racing with the start is seen by one or the other.
    public init(pids: [Int32], descendants: Bool = true, maxProcesses: Int = 65536, ringBytes: Int = 256 * 1024) throws(BPFError) {
        guard !pids.isEmpty else { throw .invalidArgument("process tracking needs at least one pid (-p PID) or a command (-c CMD)") }
        for pid in pids where pid <= 0 || !ProcessTracker.isRunning(pid) {
            throw .invalidArgument("no process \(pid) (see /proc); is it still running?")
        }
        let spec = try ProcessTracker.objectSpec(maxProcesses: maxProcesses, ringBytes: ringBytes)
        object = try spec.load()
        pidMap = try object.map(ProcessTracker.pidMapName)
        eventMap = try object.map(ProcessTracker.eventMapName)
        for name in ["plumb_fork", "plumb_exec", "plumb_exit"] {
            if let link = try object.attach(name) { links.append(link) }
        }
        try seed(pids, descendants: descendants)
    }

    /// Adds processes (and optionally their current descendants) to the set; each one new to
    /// the set gets a synthetic begin record.
    public func seed(_ pids: [Int32], descendants: Bool = true) throws(BPFError) {
        var known = Set(try self.pids)
        var frontier: [Int32: Int32] = [:]
        for pid in pids { frontier[pid] = ProcessTracker.parent(of: pid) ?? 0 }
        // Each pass inserts the frontier, then one /proc scan gives every descendant of the set
        // not yet in it, however deep the tree; more passes only pick up forks made meanwhile.
        var pass = 0
        while !frontier.isEmpty, pass < 8 {
            pass += 1
            for (pid, parent) in frontier.sorted(by: { $0.key < $1.key }) where !known.contains(pid) {
                try pidMap.update(UInt32(bitPattern: pid), UInt32(bitPattern: parent))
                known.insert(pid)
                // Gone between the scan and the insert: the exit program will not see it again.
                if !ProcessTracker.isRunning(pid) { _ = try pidMap.delete(UInt32(bitPattern: pid)); known.remove(pid); continue }
                pendingSynthetic.append(ProcessTracker.describe(Event(pid: pid, parent: parent, kind: .begin, synthetic: true)))
            }
            guard descendants else { break }
            frontier = [:]
            var children: [Int32: [Int32]] = [:]
            for (pid, parent) in ProcessTracker.processTable() { children[parent, default: []].append(pid) }
            var queue = Array(known), reached = known
            while let p = queue.popLast() {
                for c in children[p] ?? [] where reached.insert(c).inserted {
                    frontier[c] = p
                    queue.append(c)
                }
            }
        }
    }

    /// The tracked pids now.
    public var pids: [Int32] {
        get throws(BPFError) { try pidMap.keys(as: UInt32.self).map { Int32(bitPattern: $0) }.sorted() }
    }

    public func contains(_ pid: Int32) throws(BPFError) -> Bool {
        try pidMap.lookup(UInt32(bitPattern: pid), as: UInt32.self) != nil
    }

    /// Begin/exec/end records: the synthetic begins of already-running processes first (once),
    /// then what the kernel reported, waiting up to `timeout` ms (0: only what is there).
    public func events(timeout: Int32 = 0) throws(BPFError) -> [Event] {
        if reader == nil {
            reader = try RingBuffer(map: eventMap) { [unowned self] bytes in
                guard bytes.count >= ProcessTracker.recordSize else { return }
                self.received.append(contentsOf: ProcessTracker.decode(bytes).map { [$0] } ?? [])
            }
        }
        var out = pendingSynthetic
        pendingSynthetic = []
        if let reader {
            if timeout > 0 { _ = try reader.poll(timeout: timeout) } else { _ = try reader.consume() }
        }
        out += received
        received = []
        return out
    }

    /// Detaches the programs (the maps live as long as the tracker or a program using them).
    public func detach() throws(BPFError) {
        for link in links { try link.detach() }
        links = []
    }

    /// True when no process is tracked any more (one key lookup, cheap enough to ask every poll).
    public var isEmpty: Bool {
        get throws(BPFError) {
            var next: UInt32 = 0
            let found: Result<Bool, SysError> = withUnsafeMutableBytes(of: &next) { n in
                do throws(SysError) { return .success(try Sys.mapNextKey(pidMap.fd, key: nil, next: n)) } catch { return .failure(error) }
            }
            switch found {
            case .success(let more): return !more
            case .failure(let e): throw .system(e)
            }
        }
    }

    /// One ring record (see `recordSize`), nil when short or of an unknown kind.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Event? {
        guard bytes.count >= recordSize,
              let kind = Event.Kind(rawValue: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) else { return nil }
        let ids = bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        let comm = String(decoding: bytes[32..<48].prefix { $0 != 0 }, as: UTF8.self)
        return Event(pid: bytes.loadUnaligned(fromByteOffset: 0, as: Int32.self), parent: bytes.loadUnaligned(fromByteOffset: 4, as: Int32.self),
                     kind: kind, tid: bytes.loadUnaligned(fromByteOffset: 12, as: Int32.self),
                     nanoseconds: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
                     uid: UInt32(truncatingIfNeeded: ids), gid: UInt32(truncatingIfNeeded: ids >> 32), comm: comm)
    }

    /// A synthetic record's details from /proc (comm, real uid/gid) and the clock now.
    static func describe(_ event: Event) -> Event {
        var e = event
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        e.nanoseconds = UInt64(max(0, ts.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, ts.tv_nsec))
        if let comm = readSmallFile("/proc/\(e.pid)/comm") { e.comm = String(comm.prefix { $0 != "\n" }) }
        if let status = readSmallFile("/proc/\(e.pid)/status") {
            for line in status.split(separator: "\n") {
                // "Uid:\treal\teffective\tsaved\tfs": the real id, as bpf_get_current_uid_gid gives.
                let parts = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
                guard parts.count >= 2, let id = UInt32(parts[1]) else { continue }
                if parts[0] == "Uid:" { e.uid = id } else if parts[0] == "Gid:" { e.gid = id }
            }
        }
        return e
    }

    // MARK: - /proc

    static func isRunning(_ pid: Int32) -> Bool { kill(pid, 0) == 0 || errno == EPERM }

    /// The parent of `pid` from /proc/pid/stat (field 4), nil when it is gone.
    public static func parent(of pid: Int32) -> Int32? {
        guard let text = readSmallFile("/proc/\(pid)/stat") else { return nil }
        return parseParent(stat: text)
    }

    /// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    public static func parseParent(stat: String) -> Int32? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let rest = stat[stat.index(after: close)...].split(separator: " ")
        guard rest.count >= 2 else { return nil }
        return Int32(rest[1])
    }

    /// Every process now: pid -> parent pid.
    public static func processTable() -> [Int32: Int32] {
        var table: [Int32: Int32] = [:]
        guard let dir = opendir("/proc") else { return table }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int32(name), let parent = parent(of: pid) else { continue }
            table[pid] = parent
        }
        return table
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n), as: UTF8.self)
    }

    // MARK: - The programs

    /// Offset of `field` in the sched_process_exit tracepoint's record, from tracefs (nil when
    /// the kernel has no such field: `group_dead` arrived in Linux 6.16).
    static func exitFieldOffset(_ field: String) -> Int16? {
        for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
            guard let text = readSmallFile("\(dir)/events/sched/sched_process_exit/format") else { continue }
            for line in text.split(separator: "\n") where line.contains(" \(field);") {
                // "\tfield:bool group_dead;\toffset:32;\tsize:1;..."
                guard let part = line.split(separator: "\t").first(where: { $0.hasPrefix("offset:") }) else { continue }
                return Int16(part.dropFirst("offset:".count).prefix { $0.isNumber })
            }
            return nil
        }
        return nil
    }

    /// The three programs and two maps, built in memory and loaded like any object.
    public static func objectSpec(maxProcesses: Int = 65536, ringBytes: Int = 256 * 1024) throws(BPFError) -> ObjectSpec {
        guard maxProcesses > 0, maxProcesses <= Int(UInt32.max), ringBytes >= 4096, ringBytes <= 1 << 30, ringBytes & (ringBytes - 1) == 0 else {
            throw .invalidArgument("process tracker sizes: maxProcesses 1...2^32-1, ring buffer a power of two of at least 4096 bytes")
        }
        // task_struct.pid, .tgid and .comm, from the running kernel's BTF: the fork tracepoint
        // gives the child's task, and only a child that leads its own thread group is a process.
        let kernel: BTF
        let pidOffset: Int32, tgidOffset: Int32, commOffset: Int32
        do {
            kernel = try BTF.kernel()
            let task = try kernel.lookup("task_struct", kind: .struct)
            guard let pid = try kernel.findMember("pid", in: task), let tgid = try kernel.findMember("tgid", in: task),
                  let comm = try kernel.findMember("comm", in: task) else {
                throw BPFError.invalidArgument("the kernel's task_struct has no pid/tgid/comm members")
            }
            pidOffset = Int32(pid.bitOffset / 8); tgidOffset = Int32(tgid.bitOffset / 8); commOffset = Int32(comm.bitOffset / 8)
        } catch let e as BTFError {
            throw .btf(path: "/sys/kernel/btf/vmlinux", e)
        } catch let e as BPFError { throw e } catch { throw .invalidArgument("\(error)") }

        // The record is built at fp-48 (see `recordSize`): pid -48, parent -44, kind -40, tid -36,
        // ns -32, uid/gid -24, comm -16. fp-56 is scratch.
        let fork = try program("plumb_fork", section: "raw_tp/sched_process_fork") { b in
            let out = b.newLabel()
            b.emit(.load(.r7, .r1, offset: 8, size: .doubleWord))       // args[1]: the child's task
            // child tgid -> record pid, child pid -> record tid
            for (slot, offset) in [(Int32(Rec.pid), tgidOffset), (Int32(Rec.tid), pidOffset)] {
                b.emit(.mov64(.r1, .r10)); b.emit(.add64(.r1, slot))
                b.emit(.mov64(.r2, 4))
                b.emit(.mov64(.r3, .r7)); b.emit(.add64(.r3, offset))
                b.emit(.call(.probeReadKernel))
                b.jump(.jne, .r0, imm: 0, to: out)
            }
            b.emit(.load(.r1, .r10, offset: Rec.pid, size: .word))
            b.emit(.load(.r2, .r10, offset: Rec.tid, size: .word))
            b.jump(.jne, .r1, .r2, to: out)                             // a new thread, not a process
            // The forking task is the parent: its tgid -> record parent (the lookup key).
            b.emit(.call(.getCurrentPidTgid))
            b.emit(.rsh64(.r0, 32))
            b.emit(.store(.r10, offset: Rec.parent, .r0, size: .word))
            lookup(&b, keySlot: Int32(Rec.parent))
            b.jump(.jeq, .r0, imm: 0, to: out)
            b.emit(.loadMapFD(.r1, fd: 0))
            b.emit(.mov64(.r2, .r10)); b.emit(.add64(.r2, Int32(Rec.pid)))
            b.emit(.mov64(.r3, .r10)); b.emit(.add64(.r3, Int32(Rec.parent)))
            b.emit(.mov64(.r4, 0))
            b.emit(.call(.mapUpdateElem))
            // The child's comm (its parent's until it execs); a failed read leaves it empty.
            b.emit(.store(.r10, offset: Rec.comm, imm: 0, size: .doubleWord))
            b.emit(.store(.r10, offset: Rec.comm + 8, imm: 0, size: .doubleWord))
            b.emit(.mov64(.r1, .r10)); b.emit(.add64(.r1, Int32(Rec.comm)))
            b.emit(.mov64(.r2, 16))
            b.emit(.mov64(.r3, .r7)); b.emit(.add64(.r3, commOffset))
            b.emit(.call(.probeReadKernel))
            emitRecord(&b, kind: .begin, currentComm: false)
            b.bind(out)
        }
        let exec = try program("plumb_exec", section: "tracepoint/sched/sched_process_exec") { b in
            let out = b.newLabel()
            b.emit(.call(.getCurrentPidTgid))
            b.emit(.store(.r10, offset: Rec.tid, .r0, size: .word))
            b.emit(.rsh64(.r0, 32))
            b.emit(.store(.r10, offset: Rec.pid, .r0, size: .word))
            lookup(&b, keySlot: Int32(Rec.pid))
            b.jump(.jeq, .r0, imm: 0, to: out)
            b.emit(.load(.r1, .r0, offset: 0, size: .word))
            b.emit(.store(.r10, offset: Rec.parent, .r1, size: .word))
            emitRecord(&b, kind: .exec, currentComm: true)
            b.bind(out)
        }
        let groupDead = exitFieldOffset("group_dead")
        let exit = try program("plumb_exit", section: "tracepoint/sched/sched_process_exit") { b in
            let out = b.newLabel()
            b.emit(.mov64(.r6, .r1))
            b.emit(.call(.getCurrentPidTgid))
            b.emit(.mov64(.r7, .r0))
            if let groupDead {
                b.emit(.load(.r1, .r6, offset: groupDead, size: .byte))
                b.jump(.jeq, .r1, imm: 0, to: out)                      // other threads live on
            } else {
                // Older kernels: the group leader's exit stands for the process's.
                b.emit(.mov32(.r1, .r7))
                b.emit(.mov64(.r2, .r7)); b.emit(.rsh64(.r2, 32))
                b.jump(.jne, .r1, .r2, to: out)
            }
            b.emit(.store(.r10, offset: Rec.tid, .r7, size: .word))
            b.emit(.rsh64(.r7, 32))
            b.emit(.store(.r10, offset: Rec.pid, .r7, size: .word))
            lookup(&b, keySlot: Int32(Rec.pid))
            b.jump(.jeq, .r0, imm: 0, to: out)
            b.emit(.load(.r1, .r0, offset: 0, size: .word))
            b.emit(.store(.r10, offset: Rec.parent, .r1, size: .word))
            b.emit(.loadMapFD(.r1, fd: 0))
            b.emit(.mov64(.r2, .r10)); b.emit(.add64(.r2, Int32(Rec.pid)))
            b.emit(.call(.mapDeleteElem))
            emitRecord(&b, kind: .end, currentComm: true)
            b.bind(out)
        }
        let maps = [
            MapSpec(name: pidMapName, type: .hash, keySize: 4, valueSize: 4, maxEntries: UInt32(maxProcesses)),
            MapSpec(name: eventMapName, type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: UInt32(ringBytes)),
        ]
        return ObjectSpec(name: "plumb_procs", maps: maps, programs: [fork, exec, exit])
    }

    /// Where the programs build their record on the stack (offsets from r10).
    private enum Rec {
        static let pid: Int16 = -48, parent: Int16 = -44, kind: Int16 = -40, tid: Int16 = -36
        static let nanoseconds: Int16 = -32, ids: Int16 = -24, comm: Int16 = -16
    }

    /// r0 = pids[*(u32 *)(fp + keySlot)].
    private static func lookup(_ b: inout ProgramBuilder, keySlot: Int32) {
        b.emit(.loadMapFD(.r1, fd: 0))
        b.emit(.mov64(.r2, .r10)); b.emit(.add64(.r2, keySlot))
        b.emit(.call(.mapLookupElem))
    }

    /// Completes and sends the record at fp-48 (pid, parent and tid stored already; the comm
    /// too unless `currentComm`).
    private static func emitRecord(_ b: inout ProgramBuilder, kind: Event.Kind, currentComm: Bool) {
        b.emit(.store(.r10, offset: Rec.kind, imm: Int32(kind.rawValue), size: .word))
        b.emit(.call(.ktimeGetNs))
        b.emit(.store(.r10, offset: Rec.nanoseconds, .r0, size: .doubleWord))
        b.emit(.call(HelperID(rawValue: 15)))                           // bpf_get_current_uid_gid
        b.emit(.store(.r10, offset: Rec.ids, .r0, size: .doubleWord))
        if currentComm {
            b.emit(.mov64(.r1, .r10)); b.emit(.add64(.r1, Int32(Rec.comm)))
            b.emit(.mov64(.r2, 16))
            b.emit(.call(.getCurrentComm))
        }
        b.emit(.loadMapFD(.r1, fd: 1))
        b.emit(.mov64(.r2, .r10)); b.emit(.add64(.r2, Int32(Rec.pid)))
        b.emit(.mov64(.r3, Int32(recordSize)))
        b.emit(.mov64(.r4, 0))
        b.emit(.call(.ringbufOutput))
    }

    /// Wraps a body in `return 0`, and turns the placeholder map fds (0: pids, 1: events) into references.
    private static func program(_ name: String, section: String, _ body: (inout ProgramBuilder) -> Void) throws(BPFError) -> ProgramSpec {
        var b = ProgramBuilder()
        body(&b)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        let insns: [Instruction]
        do { insns = try b.finish() } catch { throw .instructions(section: section, error) }
        var references: [Int: ProgramReference] = [:]
        for (i, insn) in insns.enumerated() where insn.isWide && insn.src.rawValue == PseudoSource.mapFD.rawValue {
            references[i] = .map(insn.imm == 0 ? pidMapName : eventMapName)
        }
        guard let kind = ProgramKind(section: section) else { throw .badSection(section, "not a known program section") }
        return ProgramSpec(name: name, kind: kind, instructions: insns, references: references)
    }
}
