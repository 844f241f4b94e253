import PlumbSys
import PlumbBTF
import PlumbAsm
import PlumbELF
import Glibc

// The kernel's live BPF state, as bpftool's nouns show it: programs, maps, links and BTF
// objects by id. Field names and shapes of the JSON follow bpftool 7.1 (`bpftool -j prog
// list` and friends), so scripts written against bpftool read ours unchanged.

/// A loaded program as `plumb prog list/show` describe it.
public struct ProgramRecord: Sendable {
    public var info: ProgramInfo
    public var mapIDs: [UInt32]
    /// From /proc/self/fdinfo: what the program charges to memlock (nil if unreadable).
    public var memlock: UInt64?
    /// Seconds since the epoch when the program was loaded (bpftool's `loaded_at`).
    public var loadedAt: UInt64
    /// bpffs paths it is pinned at (filled by `withPinned`, as bpftool -f).
    public var pinned: [String] = []

    public var tagHex: String { info.tag.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
    public var typeName: String { info.type?.description ?? "type \(info.rawType)" }

    public var json: JSONValue {
        var m: [(String, JSONValue)] = [("id", .uint(UInt64(info.id))), ("type", .string(typeName))]
        if !info.name.isEmpty { m.append(("name", .string(info.name))) }
        m.append(("tag", .string(tagHex)))
        m.append(("gpl_compatible", .bool(info.gplCompatible)))
        if info.runTimeNs != 0 {
            m.append(("run_time_ns", .uint(info.runTimeNs)))
            m.append(("run_cnt", .uint(info.runCount)))
        }
        m.append(("loaded_at", .uint(loadedAt)))
        m.append(("uid", .uint(UInt64(info.createdByUID))))
        m.append(("bytes_xlated", .uint(UInt64(info.xlatedLength))))
        m.append(("jited", .bool(info.jitedLength > 0)))
        if info.jitedLength > 0 { m.append(("bytes_jited", .uint(UInt64(info.jitedLength)))) }
        if let memlock { m.append(("bytes_memlock", .uint(memlock))) }
        if !mapIDs.isEmpty { m.append(("map_ids", .array(mapIDs.map { .uint(UInt64($0)) }))) }
        if info.btfID != 0 { m.append(("btf_id", .uint(UInt64(info.btfID)))) }
        if !pinned.isEmpty { m.append(("pinned", .array(pinned.map { .string($0) }))) }
        return .object(m)
    }

    /// bpftool's plain layout: a header line and indented detail lines.
    public var text: String {
        var s = "\(info.id): \(typeName)  "
        if !info.name.isEmpty { s += "name \(info.name)  " }
        s += "tag \(tagHex)"
        if info.gplCompatible { s += "  gpl" }
        if info.runTimeNs != 0 { s += " run_time_ns \(info.runTimeNs) run_cnt \(info.runCount)" }
        s += "\n\tloaded_at \(KernelObjects.isoTime(loadedAt))  uid \(info.createdByUID)\n"
        s += "\txlated \(info.xlatedLength)B"
        s += info.jitedLength > 0 ? "  jited \(info.jitedLength)B" : "  not jited"
        if let memlock { s += "  memlock \(memlock)B" }
        if !mapIDs.isEmpty { s += "  map_ids " + mapIDs.map(String.init).joined(separator: ",") }
        // bpftool's order: pinned paths before btf_id.
        for p in pinned { s += "\n\tpinned \(p)" }
        if info.btfID != 0 { s += "\n\tbtf_id \(info.btfID)" }
        return s + "\n"
    }
}

/// A map as `plumb map list/show` describe it.
public struct MapRecord: Sendable {
    public var info: MapInfo
    public var memlock: UInt64?
    public var frozen: Bool
    /// bpffs paths it is pinned at (filled by `withPinned`, as bpftool -f).
    public var pinned: [String] = []

    public var typeName: String { info.type?.description ?? "type \(info.rawType)" }

    public var json: JSONValue {
        var m: [(String, JSONValue)] = [("id", .uint(UInt64(info.id))), ("type", .string(typeName))]
        if !info.name.isEmpty { m.append(("name", .string(info.name))) }
        m.append(("flags", .uint(UInt64(info.flags.rawValue))))
        m.append(("bytes_key", .uint(UInt64(info.keySize))))
        m.append(("bytes_value", .uint(UInt64(info.valueSize))))
        m.append(("max_entries", .uint(UInt64(info.maxEntries))))
        if let memlock { m.append(("bytes_memlock", .uint(memlock))) }
        m.append(("frozen", .uint(frozen ? 1 : 0)))
        if info.btfID != 0 { m.append(("btf_id", .uint(UInt64(info.btfID)))) }
        if !pinned.isEmpty { m.append(("pinned", .array(pinned.map { .string($0) }))) }
        return .object(m)
    }

    public var text: String {
        var s = "\(info.id): \(typeName)  "
        if !info.name.isEmpty { s += "name \(info.name)  " }
        s += "flags 0x\(String(info.flags.rawValue, radix: 16))\n"
        s += "\tkey \(info.keySize)B  value \(info.valueSize)B  max_entries \(info.maxEntries)"
        if let memlock { s += "  memlock \(memlock)B" }
        // bpftool's order: pinned paths before btf_id.
        for p in pinned { s += "\n\tpinned \(p)" }
        if info.btfID != 0 { s += "\n\tbtf_id \(info.btfID)" }
        if frozen { s += "\n\tfrozen" }
        return s + "\n"
    }
}

/// A link as `plumb link list` describes it.
public struct LinkRecord: Sendable {
    public var id: UInt32
    public var rawType: UInt32
    public var typeName: String
    public var programID: UInt32
    public var tracepointName: String?
    public var attachType: UInt32?
    public var targetObjectID: UInt32?
    public var targetBTFID: UInt32?

    public var json: JSONValue {
        var m: [(String, JSONValue)] = [("id", .uint(UInt64(id))), ("type", .string(typeName)), ("prog_id", .uint(UInt64(programID)))]
        if let tracepointName { m.append(("tp_name", .string(tracepointName))) }
        if let attachType { m.append(("attach_type", .uint(UInt64(attachType)))) }
        if let targetObjectID { m.append(("target_obj_id", .uint(UInt64(targetObjectID)))) }
        if let targetBTFID { m.append(("target_btf_id", .uint(UInt64(targetBTFID)))) }
        return .object(m)
    }

    public var text: String {
        var s = "\(id): \(typeName)  prog \(programID)"
        if let tracepointName { s += "\n\ttp '\(tracepointName)'" }
        if let attachType { s += "\n\tattach_type \(attachType)" }
        if let targetObjectID, let targetBTFID { s += "  target_obj_id \(targetObjectID)  target_btf_id \(targetBTFID)" }
        return s + "\n"
    }
}

/// A BTF object as `plumb btf list` describes it.
public struct BTFRecord: Sendable {
    public var id: UInt32
    public var size: UInt32
    public var name: String
    public var isKernel: Bool
    public var programIDs: [UInt32]
    public var mapIDs: [UInt32]

    public var json: JSONValue {
        var m: [(String, JSONValue)] = [("id", .uint(UInt64(id))), ("size", .uint(UInt64(size))),
            ("prog_ids", .array(programIDs.map { .uint(UInt64($0)) })), ("map_ids", .array(mapIDs.map { .uint(UInt64($0)) })),
            ("kernel", .bool(isKernel))]
        if !name.isEmpty { m.append(("name", .string(name))) }
        return .object(m)
    }

    public var text: String {
        var s = "\(id): "
        if !name.isEmpty { s += "name \(name)  " }
        s += "size \(size)B"
        if !programIDs.isEmpty { s += "  prog_ids " + programIDs.map(String.init).joined(separator: ",") }
        if !mapIDs.isEmpty { s += "  map_ids " + mapIDs.map(String.init).joined(separator: ",") }
        return s + "\n"
    }
}

public enum KernelObjects {
    static func sys<T: ~Copyable>(_ body: () throws(SysError) -> T) throws(BPFError) -> T {
        do { return try body() } catch { throw .system(error) }
    }

    static func open(_ id: UInt32, _ kind: ObjectKind) throws(BPFError) -> OwnedFD {
        guard let fd = try sys({ () throws(SysError) in try Sys.fd(byID: id, kind: kind) }) else {
            throw .invalidArgument("no \(kind) with id \(id); list them with `plumb \(kind == .program ? "prog" : "\(kind)") list`")
        }
        return fd
    }

    // MARK: programs

    public static func programIDs() throws(BPFError) -> [UInt32] { try sys { () throws(SysError) in try Sys.ids(.program) } }
    public static func mapIDs() throws(BPFError) -> [UInt32] { try sys { () throws(SysError) in try Sys.ids(.map) } }
    public static func linkIDs() throws(BPFError) -> [UInt32] { try sys { () throws(SysError) in try Sys.ids(.link) } }
    public static func btfIDs() throws(BPFError) -> [UInt32] { try sys { () throws(SysError) in try Sys.ids(.btf) } }

    /// Every program loaded now; ones that vanish while listing are skipped.
    public static func programs() throws(BPFError) -> [ProgramRecord] {
        var out: [ProgramRecord] = []
        for id in try programIDs() { if let p = try? program(id: id) { out.append(p) } }
        return out
    }

    public static func program(id: UInt32) throws(BPFError) -> ProgramRecord {
        let fd = try open(id, .program)
        return try program(fd: fd)
    }

    public static func program(fd: borrowing OwnedFD) throws(BPFError) -> ProgramRecord {
        let info = try sys { () throws(SysError) in try Sys.programInfo(fd) }
        let details = try sys { () throws(SysError) in try Sys.programDetails(fd) }
        let fdinfo = fdInfo(fd.rawValue)
        return ProgramRecord(info: info, mapIDs: details.mapIDs, memlock: fdinfo["memlock"].flatMap { UInt64($0) },
                             loadedAt: wallClockSeconds(bootNanoseconds: info.loadTime))
    }

    // MARK: maps

    public static func maps() throws(BPFError) -> [MapRecord] {
        var out: [MapRecord] = []
        for id in try mapIDs() { if let m = try? map(id: id) { out.append(m) } }
        return out
    }

    public static func map(id: UInt32) throws(BPFError) -> MapRecord {
        let fd = try open(id, .map)
        return try map(fd: fd)
    }

    public static func map(fd: borrowing OwnedFD) throws(BPFError) -> MapRecord {
        let info = try sys { () throws(SysError) in try Sys.mapInfo(fd) }
        let fdinfo = fdInfo(fd.rawValue)
        return MapRecord(info: info, memlock: fdinfo["memlock"].flatMap { UInt64($0) }, frozen: fdinfo["frozen"] == "1")
    }

    /// The first map named `name` (names are not unique; bpftool takes them all, we want one).
    public static func mapID(named name: String) throws(BPFError) -> UInt32 {
        let matches = try maps().filter { $0.info.name == name }
        guard let first = matches.first else { throw .invalidArgument("no map named '\(name)'; names are cut to 15 characters (see `plumb map list`)") }
        guard matches.count == 1 else {
            throw .invalidArgument("\(matches.count) maps are named '\(name)' (ids \(matches.map { String($0.info.id) }.joined(separator: ", "))); pick one by id")
        }
        return first.info.id
    }

    // MARK: links

    public static func links() throws(BPFError) -> [LinkRecord] {
        var out: [LinkRecord] = []
        for id in try linkIDs() { if let l = try? link(id: id) { out.append(l) } }
        return out
    }

    public static func link(id: UInt32) throws(BPFError) -> LinkRecord {
        let fd = try open(id, .link)
        let info = try sys { () throws(SysError) in try Sys.linkInfo(fd) }
        let target = try sys { () throws(SysError) in try Sys.linkTarget(fd, type: info.type) }
        return LinkRecord(id: info.id, rawType: info.rawType, typeName: linkTypeName(info.rawType), programID: info.programID,
                          tracepointName: target.tracepointName, attachType: target.attachType,
                          targetObjectID: target.targetObjectID, targetBTFID: target.targetBTFID)
    }

    /// bpftool's names for `enum bpf_link_type`.
    public static func linkTypeName(_ raw: UInt32) -> String {
        let names = ["unspec", "raw_tracepoint", "tracing", "cgroup", "iter", "netns", "xdp", "perf_event",
                     "kprobe_multi", "struct_ops", "netfilter", "tcx", "uprobe_multi", "netkit", "sockmap"]
        return Int(raw) < names.count ? names[Int(raw)] : "type \(raw)"
    }

    /// Detaches the link with `id`: BPF_LINK_DETACH where the link type has it; tracepoint and
    /// perf links have none, so those are refused with what does work (ending its owner, or unpinning).
    public static func detachLink(id: UInt32) throws(BPFError) {
        let fd = try open(id, .link)
        try sys { () throws(SysError) in try Sys.linkDetach(fd) }
    }

    // MARK: BTF

    public static func btfObjects() throws(BPFError) -> [BTFRecord] {
        // Which programs and maps use each BTF object, as bpftool builds its table.
        var progs: [UInt32: [UInt32]] = [:], maps: [UInt32: [UInt32]] = [:]
        for p in (try? programs()) ?? [] where p.info.btfID != 0 { progs[p.info.btfID, default: []].append(p.info.id) }
        for m in (try? self.maps()) ?? [] where m.info.btfID != 0 { maps[m.info.btfID, default: []].append(m.info.id) }
        var out: [BTFRecord] = []
        for id in try btfIDs() {
            guard let fd = try? open(id, .btf), let info = try? Sys.btfInfo(fd) else { continue }
            out.append(BTFRecord(id: id, size: info.size, name: info.name, isKernel: info.isKernel,
                                 programIDs: progs[id] ?? [], mapIDs: (maps[id] ?? []).sorted(by: >)))
        }
        return out
    }

    /// The loaded BTF object with `id`, parsed (module BTF is split on vmlinux).
    public static func btf(id: UInt32) throws(BPFError) -> BTF {
        let fd = try open(id, .btf)
        let info = try sys { () throws(SysError) in try Sys.btfInfo(fd) }
        let data = try sys { () throws(SysError) in try Sys.btfData(fd) }
        do {
            if info.isKernel && info.name != "vmlinux" { return try BTF(bytes: Bytes(data), base: try BTF.kernel()) }
            return try BTF(bytes: Bytes(data))
        } catch { throw .btf(path: "btf id \(id)", error) }
    }

    // MARK: helpers

    /// `key: value` pairs of /proc/self/fdinfo/FD.
    static func fdInfo(_ fd: Int32) -> [String: String] {
        guard let text = readText("/proc/self/fdinfo/\(fd)") else { return [:] }
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
        }
        return out
    }

    static func readText(_ path: String) -> String? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Boot-relative nanoseconds as epoch seconds, the way bpftool converts `load_time`.
    static func wallClockSeconds(bootNanoseconds: UInt64) -> UInt64 {
        var real = timespec(), boot = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_BOOTTIME, &boot)
        let offset = (Int64(real.tv_sec) - Int64(boot.tv_sec)) * 1_000_000_000 + (Int64(real.tv_nsec) - Int64(boot.tv_nsec))
        let wall = offset + Int64(clamping: bootNanoseconds)
        return wall > 0 ? UInt64(wall / 1_000_000_000) : 0
    }

    static func isoTime(_ seconds: UInt64) -> String {
        var t = time_t(clamping: seconds)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))+0000"
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        return String(drop { chars.contains($0) }.reversed().drop { chars.contains($0) }.reversed())
    }
}

extension KernelObjects {
    /// Paths under `root` (a bpffs mount) where the object `id` of `kind` is pinned.
    public static func pins(of id: UInt32, kind: ObjectKindName, under root: String = BPFFS.defaultPath) -> [String] {
        var out: [String] = []
        walk(root, depth: 0) { path in
            guard let fd = try? Sys.objGet(path: path) else { return }
            let found: UInt32?
            switch kind {
            case .program: found = (try? Sys.programInfo(fd))?.id
            case .map: found = (try? Sys.mapInfo(fd))?.id
            case .link: found = (try? Sys.linkInfo(fd))?.id
            }
            if found == id { out.append(path) }
        }
        return out
    }

    /// The pinnable kinds, for `pins(of:kind:)`.
    public enum ObjectKindName: Sendable { case program, map, link }

    static func walk(_ dir: String, depth: Int, _ visit: (String) -> Void) {
        guard depth < 16, let d = opendir(dir) else { return }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let path = dir + "/" + name
            if e.pointee.d_type == UInt8(DT_DIR) { walk(path, depth: depth + 1, visit) } else { visit(path) }
        }
    }

    /// What `plumb link detach` did.
    public enum DetachOutcome: Sendable, Equatable {
        /// BPF_LINK_DETACH worked: the program is off its hook (the link object lives while fds hold it).
        case detached
        /// The link type has no detach; its bpffs pins were removed, and the link is gone (nothing else held it).
        case unpinned([String])
        /// Pins were removed but a process still holds the link open.
        case stillHeld(unpinned: [String])
    }

    /// Detaches link `id`; for link types without BPF_LINK_DETACH (tracepoint, perf event, raw
    /// tracepoint) removes its pins on bpffs instead, which releases a link nobody else holds.
    public static func detach(linkID id: UInt32, bpffs: String = BPFFS.defaultPath) throws(BPFError) -> DetachOutcome {
        do {
            try detachLink(id: id)
            return .detached
        } catch let e where e.systemError.map({ if case .unsupported = $0 { true } else { false } }) == true {
            let paths = pins(of: id, kind: .link, under: bpffs)
            guard !paths.isEmpty else {
                throw .unsupported(feature: "detaching this link type", reason: "BPF_LINK_DETACH is not supported and link \(id) is not pinned under \(bpffs)",
                                   suggestion: "end the process that holds it (see `plumb link list`)")
            }
            for p in paths { unlink(p) }
            // A link is freed once its last reference goes; wait briefly for that.
            for _ in 0..<100 {
                if (try? Sys.exists(id: id, kind: .link)) != true { return .unpinned(paths) }
                usleep(10_000)
            }
            return .stillHeld(unpinned: paths)
        }
    }
}

// MARK: pinned paths (bpftool -f / --bpffs)

/// Where programs, maps and links are pinned on the bpffs mounts: path lists by object id.
public struct PinnedPaths: Sendable {
    public var programs: [UInt32: [String]] = [:]
    public var maps: [UInt32: [String]] = [:]
    public var links: [UInt32: [String]] = [:]

    public init() {}
}

extension KernelObjects {
    /// Walks every bpffs mount (from /proc/mounts) and opens each pinned file once to learn its
    /// kind and id (from its fdinfo: `link_id`, else `prog_id`, else `map_id`), as bpftool -f does.
    /// Files that cannot be opened are skipped; paths are sorted.
    public static func pinnedPaths() -> PinnedPaths {
        var out = PinnedPaths()
        var seen = Set<String>()
        for mount in bpffsMounts() where seen.insert(mount).inserted {
            walk(mount, depth: 0) { path in
                guard let fd = try? Sys.objGet(path: path) else { return }
                let info = fdInfo(fd.rawValue)
                if info["link_type"] != nil, let id = info["link_id"].flatMap({ UInt32($0) }) {
                    out.links[id, default: []].append(path)
                } else if info["prog_type"] != nil, let id = info["prog_id"].flatMap({ UInt32($0) }) {
                    out.programs[id, default: []].append(path)
                } else if info["map_type"] != nil, let id = info["map_id"].flatMap({ UInt32($0) }) {
                    out.maps[id, default: []].append(path)
                }
            }
        }
        for k in out.programs.keys { out.programs[k]?.sort() }
        for k in out.maps.keys { out.maps[k]?.sort() }
        for k in out.links.keys { out.links[k]?.sort() }
        return out
    }

    static func bpffsMounts() -> [String] {
        guard let text = readText("/proc/mounts") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            // Mount points escape spaces as \040; bpffs folders rarely have any.
            return f.count >= 3 && f[2] == "bpf" ? String(f[1]).replacingOccurrences(of: "\\040", with: " ") : nil
        }
    }
}

extension ProgramRecord {
    /// This record with its pinned paths from `paths`.
    public func withPinned(_ paths: PinnedPaths) -> ProgramRecord {
        var r = self
        r.pinned = paths.programs[info.id] ?? []
        return r
    }
}

extension MapRecord {
    /// This record with its pinned paths from `paths`.
    public func withPinned(_ paths: PinnedPaths) -> MapRecord {
        var r = self
        r.pinned = paths.maps[info.id] ?? []
        return r
    }
}
