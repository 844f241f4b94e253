import CPlumbSys
import Glibc

public struct ProgramInfo: Sendable {
    public var type: ProgramType?
    public var rawType: UInt32
    public var id: UInt32
    public var name: String
    public var tag: [UInt8]
    public var jitedLength: UInt32
    public var xlatedLength: UInt32
    public var loadTime: UInt64
    public var createdByUID: UInt32
    public var mapCount: UInt32
    public var gplCompatible: Bool
    public var btfID: UInt32
    public var runTimeNs: UInt64
    public var runCount: UInt64
    public var verifiedInstructions: UInt32
    public var attachBTFObjID: UInt32
    public var attachBTFID: UInt32
}

public struct MapInfo: Sendable {
    public var type: MapType?
    public var rawType: UInt32
    public var id: UInt32
    public var name: String
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: MapFlags
    public var btfID: UInt32
    public var btfKeyTypeID: UInt32
    public var btfValueTypeID: UInt32
    public var btfVmlinuxValueTypeID: UInt32
    public var mapExtra: UInt64
}

package struct LinkInfo: Sendable {
    package var type: LinkType?
    package var rawType: UInt32
    package var id: UInt32
    package var programID: UInt32
}

package struct BTFInfo: Sendable {
    package var id: UInt32
    package var size: UInt32
    package var name: String
    package var isKernel: Bool
}

extension Sys {
    // MARK: pinning

    /// BPF_OBJ_PIN: makes `object` outlive this process at `path` on a bpffs mount.
    package static func objPin(_ object: borrowing OwnedFD, path: String) throws(SysError) {
        var arena = Arena()
        var attr = cbpf_obj_attr()
        attr.pathname = arena.cString(path)
        attr.bpf_fd = UInt32(bitPattern: object.rawValue)
        if case .failure(let e) = call(.objPin, &attr) {
            throw .syscall(command: .objPin, errno: e,
                           context: "\(path)\(e == .notPermitted || e == .invalidArgument ? "; is the directory on a bpffs mount?" : "")")
        }
    }

    /// BPF_OBJ_GET: opens a pinned object. `flags` may be O_RDONLY-style BPF_F_RDONLY/WRONLY.
    package static func objGet(path: String, flags: UInt32 = 0) throws(SysError) -> OwnedFD {
        var arena = Arena()
        var attr = cbpf_obj_attr()
        attr.pathname = arena.cString(path)
        attr.file_flags = flags
        return try callFD(.objGet, &attr, context: path)
    }

    // MARK: ids

    /// The next id of `kind` after `id` (0 starts), or nil at the end.
    package static func nextID(_ kind: ObjectKind, after id: UInt32) throws(SysError) -> UInt32? {
        var attr = cbpf_get_id_attr()
        attr.start_id = id
        switch call(kind.nextIDCommand, &attr) {
        case .success: return attr.next_id
        case .failure(let e) where e == .noSuchFileOrDirectory: return nil
        case .failure(let e): throw .syscall(command: kind.nextIDCommand, errno: e, context: "after \(kind) id \(id)")
        }
    }

    /// Every id of `kind` the kernel holds right now (needs CAP_SYS_ADMIN).
    package static func ids(_ kind: ObjectKind) throws(SysError) -> [UInt32] {
        var out: [UInt32] = []
        var cur: UInt32 = 0
        while let next = try nextID(kind, after: cur) {
            // Ids only grow; a non-increasing answer would loop forever.
            guard next > cur else { throw .malformedKernelOutput("\(kind.nextIDCommand) went from \(cur) to \(next)") }
            out.append(next)
            cur = next
        }
        return out
    }

    /// An fd for the object with `id`, or nil when no such object exists (any more).
    package static func fd(byID id: UInt32, kind: ObjectKind, openFlags: UInt32 = 0) throws(SysError) -> OwnedFD? {
        var attr = cbpf_get_id_attr()
        attr.start_id = id
        attr.open_flags = openFlags
        switch call(kind.fdByIDCommand, &attr) {
        case .success(let fd):
            guard let fd32 = Int32(exactly: fd) else { throw .malformedKernelOutput("fd \(fd)") }
            return OwnedFD(taking: fd32)
        case .failure(let e) where e == .noSuchFileOrDirectory: return nil
        case .failure(let e): throw .syscall(command: kind.fdByIDCommand, errno: e, context: "\(kind) id \(id)")
        }
    }

    /// Whether an object with `id` exists now (leak checks). Opens and closes an fd to ask.
    package static func exists(id: UInt32, kind: ObjectKind) throws(SysError) -> Bool {
        guard let fd = try fd(byID: id, kind: kind) else { return false }
        _ = consume fd
        return true
    }

    // MARK: info

    private static func info<I>(_ fd: Int32, _ value: inout I, what: String) throws(SysError) {
        let r: SysResult = withUnsafeMutableBytes(of: &value) { buf in
            var attr = cbpf_info_attr()
            attr.bpf_fd = UInt32(bitPattern: fd)
            attr.info_len = UInt32(buf.count)
            attr.info = address(buf.baseAddress)
            return call(.objGetInfoByFD, &attr)
        }
        if case .failure(let e) = r {
            throw .syscall(command: .objGetInfoByFD, errno: e, context: "\(what) fd \(fd)")
        }
    }

    package static func programInfo(_ prog: borrowing OwnedFD) throws(SysError) -> ProgramInfo {
        var i = cbpf_prog_info()
        try info(prog.rawValue, &i, what: "program")
        return ProgramInfo(type: ProgramType(rawValue: i.type), rawType: i.type, id: i.id, name: objectName(i.name),
                           tag: withUnsafeBytes(of: i.tag) { Array($0) }, jitedLength: i.jited_prog_len,
                           xlatedLength: i.xlated_prog_len, loadTime: i.load_time, createdByUID: i.created_by_uid,
                           mapCount: i.nr_map_ids, gplCompatible: i.flags_gpl_compatible & 1 != 0, btfID: i.btf_id,
                           runTimeNs: i.run_time_ns, runCount: i.run_cnt, verifiedInstructions: i.verified_insns,
                           attachBTFObjID: i.attach_btf_obj_id, attachBTFID: i.attach_btf_id)
    }

    package static func mapInfo(_ map: borrowing OwnedFD) throws(SysError) -> MapInfo {
        var i = cbpf_map_info()
        try info(map.rawValue, &i, what: "map")
        return MapInfo(type: MapType(rawValue: i.type), rawType: i.type, id: i.id, name: objectName(i.name),
                       keySize: i.key_size, valueSize: i.value_size, maxEntries: i.max_entries,
                       flags: MapFlags(rawValue: i.map_flags), btfID: i.btf_id, btfKeyTypeID: i.btf_key_type_id,
                       btfValueTypeID: i.btf_value_type_id, btfVmlinuxValueTypeID: i.btf_vmlinux_value_type_id,
                       mapExtra: i.map_extra)
    }

    package static func linkInfo(_ link: borrowing OwnedFD) throws(SysError) -> LinkInfo {
        var i = cbpf_link_info()
        try info(link.rawValue, &i, what: "link")
        return LinkInfo(type: LinkType(rawValue: i.type), rawType: i.type, id: i.id, programID: i.prog_id)
    }

    package static func btfInfo(_ btf: borrowing OwnedFD) throws(SysError) -> BTFInfo {
        var nameBuf = [UInt8](repeating: 0, count: 64)
        var i = cbpf_btf_info()
        let fd = btf.rawValue
        let r: Result<Void, SysError> = nameBuf.withUnsafeMutableBytes { nb in
            i.name = address(nb.baseAddress)
            i.name_len = UInt32(nb.count)
            do throws(SysError) { try info(fd, &i, what: "btf"); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
        return BTFInfo(id: i.id, size: i.btf_size, name: cString(nameBuf), isKernel: i.kernel_btf != 0)
    }

    // MARK: attach

    /// BPF_RAW_TRACEPOINT_OPEN: attaches a raw_tracepoint program to `name` (e.g. "sys_enter").
    /// A nil name attaches a tp_btf/tracing program to the target it was loaded for.
    package static func rawTracepointOpen(_ prog: borrowing OwnedFD, name: String?, cookie: UInt64 = 0) throws(SysError) -> OwnedFD {
        var arena = Arena()
        var attr = cbpf_raw_tp_attr()
        attr.name = name.map { arena.cString($0) } ?? 0
        attr.prog_fd = UInt32(bitPattern: prog.rawValue)
        attr.cookie = cookie
        do {
            return try callFD(.rawTracepointOpen, &attr, context: "raw tracepoint '\(name ?? "<from program>")'")
        } catch {
            if error.errno == .noSuchFileOrDirectory {
                throw .syscall(command: .rawTracepointOpen, errno: .noSuchFileOrDirectory,
                               context: "no raw tracepoint named '\(name ?? "")'; raw tracepoint names have no category (sys_enter, sched_switch)")
            }
            throw error
        }
    }

    /// BPF_LINK_CREATE for a perf event (tracepoint, kprobe/uprobe PMU, software event).
    /// `cookie` is what bpf_get_attach_cookie() returns inside the program.
    package static func linkCreatePerfEvent(_ prog: borrowing OwnedFD, perfEvent: borrowing OwnedFD, cookie: UInt64 = 0) throws(SysError) -> OwnedFD {
        var attr = cbpf_link_create_attr()
        attr.prog_fd = UInt32(bitPattern: prog.rawValue)
        attr.target_fd = UInt32(bitPattern: perfEvent.rawValue)
        attr.attach_type = AttachType.perfEvent.rawValue
        attr.perf_event_bpf_cookie = cookie
        return try callFD(.linkCreate, &attr, context: "perf event link (kernels before 5.15 lack it; fall back to PERF_EVENT_IOC_SET_BPF)")
    }

    /// BPF_LINK_CREATE for BTF-based tracing programs (tp_btf: `.traceRawTP`; fentry/fexit/fmod_ret; lsm).
    /// The target comes from the program's attach_btf_id unless `targetBTFID` is given (for ext programs with `targetFD`).
    package static func linkCreateTracing(_ prog: borrowing OwnedFD, attachType: AttachType, targetFD: Int32 = 0,
                                         targetBTFID: UInt32 = 0, cookie: UInt64 = 0) throws(SysError) -> OwnedFD {
        var attr = cbpf_link_create_attr()
        attr.prog_fd = UInt32(bitPattern: prog.rawValue)
        attr.target_fd = UInt32(bitPattern: targetFD)
        attr.attach_type = attachType.rawValue
        attr.target_btf_id = targetBTFID
        attr.tracing_cookie = cookie
        return try callFD(.linkCreate, &attr, context: "tracing link, attach type \(attachType.rawValue)")
    }

    /// BPF_LINK_DETACH: detaches while the link fd stays open (it reads as defunct afterwards).
    /// Only some link types (cgroup, xdp, netns, tcx, …) support it; others throw `.unsupported`.
    package static func linkDetach(_ link: borrowing OwnedFD) throws(SysError) {
        var attr = cbpf_link_detach_attr()
        attr.link_fd = UInt32(bitPattern: link.rawValue)
        if case .failure(let e) = call(.linkDetach, &attr) {
            // Tracing/perf-event links cannot be detached in place; closing them is how.
            if e.isNotSupported {
                throw .unsupported(command: .linkDetach, errno: e, context: "this link type cannot be detached; close its fd instead")
            }
            throw .syscall(command: .linkDetach, errno: e, context: "link fd \(link.rawValue)")
        }
    }
}
