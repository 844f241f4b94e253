// Following processes (issue 10): `process:begin` / `process:end`, and the pid-set filter of
// user probes under -p/-c.
//
// - With -p/-c, uprobe/uretprobe/usdt programs are attached by inode for every process
//   (pid -1) and begin with a lookup of the current tgid in `plumb_pids`, the hash map the
//   runtime's `ProcessTracker` keeps (the -p processes and -c command plus everything they fork
//   later); the loader is handed the tracker's map for that name (LoadOptions.reuseMaps).
//   Kernel probes are not filtered, as bpftrace 0.17's -p filters none of them.
// - process:begin / process:end (after SystemTap's process.begin/end) fire once per tracked
//   process when it is forked / when its last thread exits, and process:begin once at start for
//   every process already tracked then. Without -p/-c they cover every user process (all of
//   init's descendants), as SystemTap's do without a target.
//   They are not attached in the kernel: the runtime reads the tracker's records and runs the
//   probe's raw_tp program with BPF_PROG_TEST_RUN (as BEGIN/END run), its context carrying the
//   process's details (`ProcessProbeContext`). That one path serves the already-running
//   processes (which no kernel event announces) and the new ones alike, and tests can drive it;
//   the cost is that the body runs in the tracer's task, so every builtin that would read the
//   current task reads the context instead, and those with no meaning there are errors.
import PlumbAsm
import PlumbBPF

/// The context a process probe's program is run with (u64 slots; raw_tp test runs take up to 96 bytes).
public enum ProcessProbeContext {
    public static let pid = 0, tid = 8, parent = 16, nanoseconds = 24, ids = 32, comm = 40
    public static let size = 56

    /// The bytes for one process event.
    public static func bytes(pid: Int32, tid: Int32, parent: Int32, nanoseconds: UInt64, uid: UInt32, gid: UInt32, comm: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        func put(_ v: UInt64, _ at: Int) { for i in 0..<8 { out[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        put(UInt64(UInt32(bitPattern: pid)), self.pid)
        put(UInt64(UInt32(bitPattern: tid)), self.tid)
        put(UInt64(UInt32(bitPattern: parent)), self.parent)
        put(nanoseconds, self.nanoseconds)
        put(UInt64(uid) | UInt64(gid) << 32, ids)
        for (i, c) in comm.utf8.prefix(15).enumerated() { out[self.comm + i] = c }
        return out
    }
}

extension Compiler {
    /// The tracker's pid set as the generated programs name it (= ProcessTracker.pidMapName).
    static let processFilterMap = "plumb_pids"

    /// `process:begin`, `process:end`, `process:*`.
    func processProbe(_ ap: AttachPoint) -> [Expansion] {
        guard ap.fields.count == 1, let which = ap.fields.first, !which.isEmpty else {
            error("process probes are written process:begin or process:end", ap.range)
            return []
        }
        let out: [Expansion] = ["begin", "end"].filter { glob(which, $0) }.map { event in
            (event == "begin" ? .processBegin : .processEnd, "process:" + event, kind("raw_tp/plumb_process_" + event), .none)
        }
        if out.isEmpty {
            error("unknown process probe '\(which)': process probes are process:begin and process:end", ap.range,
                  notes: nearest(which, in: ["begin", "end"]).map { [.init("did you mean 'process:\($0)'?")] } ?? [])
        }
        return out
    }

    var isProcessProbe: Bool { probeName == "process:begin" || probeName == "process:end" }

    /// `ppid` (current bpftrace's builtin) outside process probes: the current task's
    /// real_parent->tgid, read from the kernel with offsets from BTF.
    func parentPID(_ e: Expr) -> Val {
        guard let btf, let task = btf.firstID(named: "task_struct", kind: .struct),
              let parent = try? btf.findMember("real_parent", in: task), let tgid = try? btf.findMember("tgid", in: task) else {
            error("ppid needs the kernel's BTF (struct task_struct's real_parent and tgid)", e.range)
            return .poison
        }
        let current = helperResult(H.currentTask, .u64)
        let parentTask = readScalar(.u64, base: current.loc, offset: Int(parent.bitOffset / 8), space: .kernel)
        release(current)
        let value = readScalar(.u32, base: parentTask.loc, offset: Int(tgid.bitOffset / 8), space: .kernel)
        release(parentTask)
        return value
    }

    /// Builtins in process probes read the context (the process concerned, not the tracer);
    /// nil: compile `name` as everywhere else.
    func processBuiltin(_ name: String, _ e: Expr) -> Val? {
        guard isProcessProbe else {
            if name == "ppid" { return parentPID(e) }
            return nil
        }
        typealias C = ProcessProbeContext
        func field(_ offset: Int, _ size: Size, _ type: SType) -> Val {
            b.emit(.load(.r0, .r6, offset: Int16(offset), size: size))
            return result(type, from: .r0)
        }
        switch name {
        case "pid": return field(C.pid, .word, .u32)
        case "tid": return field(C.tid, .word, .u32)
        case "ppid": return field(C.parent, .word, .u32)
        case "nsecs": return field(C.nanoseconds, .doubleWord, .u64)
        case "elapsed":
            b.emit(.load(.r0, .r6, offset: Int16(C.nanoseconds), size: .doubleWord))
            b.emit(.loadImm64(.r1, Int64(bitPattern: Compiler.startTime)))
            b.emit(.sub64(.r0, .r1))
            return result(.u64, from: .r0)
        case "uid": return field(C.ids, .word, .u32)
        case "username": return field(C.ids, .word, .username)
        case "gid": return field(C.ids + 4, .word, .u32)
        case "comm":
            let o = frame.allocate(16)
            for half in [0, 8] {
                b.emit(.load(.r0, .r6, offset: Int16(C.comm + half), size: .doubleWord))
                b.emit(.store(.r10, offset: Int16(clamping: o + half), .r0, size: .doubleWord))
            }
            return Val(type: .string(size: 16), loc: .slot(o))
        case "args", "retval", "func", "curtask", "kstack", "ustack", "cgroup", "ctx":
            break
        default:
            let isArg = (name.hasPrefix("arg") && Int(name.dropFirst(3)) != nil) || (name.hasPrefix("sarg") && Int(name.dropFirst(4)) != nil)
            guard isArg else { return nil }
        }
        error("'\(name)' is not available in \(probeName) probes; they have pid, tid, ppid, comm, uid, gid, username, nsecs and elapsed of the process concerned",
              e.range, notes: [.init("the probe runs in the tracer when the process begins or ends, with no registers, arguments or stack of its own")])
        return .poison
    }

    /// Under -p/-c, a user probe returns at once unless the current process is in the tracker's set.
    func emitProcessFilter(_ target: ProbeTarget) {
        guard options.pid != nil || options.childPID != nil, let exit = exitLabel else { return }
        switch target {
        case .uprobe, .usdt: break
        default: return
        }
        let o = frame.allocate(8)
        b.emit(.call(helper: H.pidTgid))
        b.emit(.rsh64(.r0, 32))
        b.emit(.store(.r10, offset: Int16(clamping: o), .r0, size: .word))
        references[b.pending.count] = .map(Compiler.processFilterMap)
        b.emit(.loadImm64(.r1, 0))
        address(ofSlot: o, into: .r2)
        b.emit(.call(helper: H.mapLookup))
        b.jump(.jeq, .r0, imm: 0, to: exit)
        frame.reset()
    }

    /// The pid set's spec when some program filters on it (the runtime swaps in the tracker's map).
    func processFilterMaps() -> [MapSpec] {
        guard programs.contains(where: { $0.references.values.contains(.map(Compiler.processFilterMap)) }) else { return [] }
        return [MapSpec(name: Compiler.processFilterMap, type: .hash, keySize: 4, valueSize: 4, maxEntries: 65536)]
    }
}
