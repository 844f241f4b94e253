import PlumbELF
import Synchronization

/// A parsed BTF blob: the header checked and an offset index of every type built in one
/// pass; types are decoded on demand from the bytes, which are read in place.
///
/// Split BTF (kernel modules) sits on a base: its type ids and string offsets continue
/// after the base's, and lookups fall through to the base.
public final class BTF: @unchecked Sendable {
    public let base: BTF?
    public let order: ByteOrder
    /// The whole blob (header, types, strings).
    public let data: ByteView
    public let headerLength: Int
    let types: ByteView
    let strings: ByteView
    /// Offset of each of this blob's own types in `types`; index = id - firstID.
    let offsets: [UInt32]
    /// The first id this blob defines: 1 for base BTF, the base's `count` for split BTF.
    public let firstID: TypeID
    /// The first string offset this blob defines (the base's string length for split BTF).
    let firstStringOffset: UInt32
    private let nameIndex = Mutex<[String: [TypeID]]?>(nil)
    /// Sizes and alignments computed so far (Layout.swift).
    let layout = Mutex(LayoutCache())

    /// One past the last valid type id (ids 0..<count are valid; 0 is void).
    public var count: Int { Int(firstID) + offsets.count }
    /// Number of types this blob defines itself (not counting the base or void).
    public var ownCount: Int { offsets.count }
    /// Total length of the string section including the base's (what split BTF continues from).
    public var stringsEnd: UInt32 { firstStringOffset + UInt32(strings.count) }

    public static let magic: UInt16 = 0xeb9f

    /// Parses raw BTF (the format of /sys/kernel/btf/*). `base` makes this split BTF.
    public init(bytes: Bytes, base: BTF? = nil) throws(BTFError) {
        guard bytes.count >= 24 else { throw .tooShort(bytes.count) }
        let raw = bytes.base.load(as: UInt16.self)
        if raw == UInt16(littleEndian: BTF.magic) { order = .little }
        else if raw == UInt16(bigEndian: BTF.magic) { order = .big }
        else { throw .badMagic(UInt16(littleEndian: raw)) }
        let v = ByteView(bytes, order: order)
        data = v
        self.base = base
        guard let version = v.u8(2), version == 1 else { throw .badVersion(v.u8(2) ?? 0) }
        let hdrLen = Int(v.u32(4)!)
        guard hdrLen >= 24, hdrLen <= v.count else {
            throw .badHeader("hdr_len \(hdrLen) at offset 4 is below 24 or past the end of the data (\(v.count) bytes)")
        }
        headerLength = hdrLen
        let typeOff = Int(v.u32(8)!), typeLen = Int(v.u32(12)!)
        let strOff = Int(v.u32(16)!), strLen = Int(v.u32(20)!)
        let body = v.count - hdrLen
        guard typeOff <= body, typeLen <= body - typeOff else {
            throw .badHeader("type section \(typeOff)+\(typeLen) (offsets 8, 12) runs past the end of the data (\(body) bytes after the header)")
        }
        guard strOff <= body, strLen <= body - strOff else {
            throw .badHeader("string section \(strOff)+\(strLen) (offsets 16, 20) runs past the end of the data (\(body) bytes after the header)")
        }
        guard typeOff % 4 == 0 else { throw .badHeader("type section offset \(typeOff) is not 4-byte aligned") }
        guard typeOff + typeLen <= strOff || strOff + strLen <= typeOff else {
            throw .badHeader("type section \(typeOff)+\(typeLen) overlaps string section \(strOff)+\(strLen)")
        }
        types = v.slice(hdrLen + typeOff, typeLen)!
        strings = v.slice(hdrLen + strOff, strLen)!
        if base == nil, strLen == 0 || strings.u8(0) != 0 {
            throw .badHeader("string section must start with a NUL byte (the empty name)")
        }
        if strLen > 0, strings.u8(strLen - 1) != 0 {
            throw .badHeader("string section does not end with a NUL byte")
        }
        firstID = base.map { TypeID($0.count) } ?? 1
        firstStringOffset = base?.stringsEnd ?? 0
        offsets = try BTF.index(types, firstID: firstID)
    }

    /// The one pass over the type section: record offsets, check each record fits.
    /// This is the whole cost of opening BTF, so it reads words directly and writes into
    /// preallocated storage.
    private static func index(_ types: ByteView, firstID: TypeID) throws(BTFError) -> [UInt32] {
        let end = types.count
        let p = types.pointer
        let swap = types.order != .host
        var failure: BTFError?
        // A type record is at least 12 bytes, which bounds the count.
        let offsets = [UInt32](unsafeUninitializedCapacity: end / 12 + 1) { buf, initialized in
            var n = 0
            var o = 0
            while o < end {
                let id = firstID &+ TypeID(n)
                guard end - o >= 12 else { failure = .truncatedType(id: id, offset: o); break }
                var info = p.loadUnaligned(fromByteOffset: o + 4, as: UInt32.self)
                if swap { info = info.byteSwapped }
                let kind = UInt8(truncatingIfNeeded: info >> 24) & 0x1f
                let vlen = Int(info & 0xffff)
                let trailer: Int
                switch kind {
                case 2, 7, 8, 9, 10, 11, 12, 16, 18: trailer = 0 // PTR, FWD, TYPEDEF, modifiers, FUNC, FLOAT, TYPE_TAG
                case 1, 14, 17: trailer = 4 // INT, VAR, DECL_TAG
                case 3: trailer = 12 // ARRAY
                case 4, 5, 15, 19: trailer = 12 &* vlen // members, secinfos, enum64 values
                case 6, 13: trailer = 8 &* vlen // enum values, params
                default:
                    failure = .unknownKind(id: id, kind: kind, offset: o)
                    initialized = n
                    return
                }
                guard trailer <= end - o - 12 else { failure = .truncatedType(id: id, offset: o); break }
                buf[n] = UInt32(truncatingIfNeeded: o)
                n += 1
                o += 12 + trailer
            }
            initialized = n
        }
        if let failure { throw failure }
        return offsets
    }

    /// Parses BTF from a raw file or from an ELF object's .BTF section. Only regular files
    /// are read (sysfs's /sys/kernel/btf/* are): a device such as /dev/zero never ends.
    public convenience init(path: String, base: BTF? = nil) throws(BTFError) {
        let bytes: Bytes
        do { bytes = try Bytes.read(path: path) } catch { throw .file(path: path, error) }
        if ELFFile.isELF(bytes) {
            let elf: ELFFile
            do { elf = try ELFFile(bytes: bytes) } catch { throw .file(path: path, error) }
            try self.init(elf: elf, path: path, base: base)
        } else {
            try self.init(bytes: bytes, base: base)
        }
    }

    /// Parses the .BTF section of an ELF object.
    public convenience init(elf: ELFFile, path: String = "object", base: BTF? = nil) throws(BTFError) {
        guard let s = elf.section(named: ".BTF") else { throw .noBTFSection(path) }
        let view = elf.contents(of: s)
        try self.init(bytes: Bytes(UnsafeRawBufferPointer(start: view.pointer, count: view.count)), base: base)
    }

    // MARK: - The running kernel

    private static let kernelCache = Mutex<BTF?>(nil)

    /// The running kernel's BTF (/sys/kernel/btf/vmlinux), parsed once per process.
    public static func kernel() throws(BTFError) -> BTF {
        if let k = kernelCache.withLock({ $0 }) { return k }
        let k = try BTF(path: "/sys/kernel/btf/vmlinux")
        kernelCache.withLock { if $0 == nil { $0 = k } }
        return kernelCache.withLock { $0! }
    }

    /// A kernel module's split BTF on top of the kernel's.
    public static func kernelModule(_ name: String) throws(BTFError) -> BTF {
        try BTF(path: "/sys/kernel/btf/\(name)", base: kernel())
    }

    /// Names of the kernel modules that carry BTF.
    public static func kernelModuleNames() -> [String] {
        guard let dir = opendir("/sys/kernel/btf") else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." && name != "vmlinux" { names.append(name) }
        }
        return names.sorted()
    }

    // MARK: - Raw access (no decoding)

    /// The blob that defines `id`, or nil when out of range.
    @inline(__always) func owner(of id: TypeID) -> BTF? {
        if id >= firstID { return Int(id) < count ? self : nil }
        return base?.owner(of: id)
    }

    @inline(__always) private func word(_ id: TypeID, _ index: Int) -> UInt32 {
        // Callers checked `owner(of:) === self`, so the record fits.
        types.u32(Int(offsets[Int(id - firstID)]) + index * 4)!
    }

    /// The kind of `id` without decoding it (void for 0 or out of range).
    public func kind(of id: TypeID) -> BTFKind {
        guard id != 0, let o = owner(of: id) else { return .unknown }
        return BTFKind(rawValue: UInt8((o.word(id, 1) >> 24) & 0x1f)) ?? .unknown
    }

    /// The raw name offset of `id`.
    func nameOffset(of id: TypeID) -> UInt32? {
        guard id != 0, let o = owner(of: id) else { return nil }
        return o.word(id, 0)
    }

    /// The name of `id` ("" when anonymous or invalid).
    public func name(of id: TypeID) -> String {
        guard let off = nameOffset(of: id) else { return "" }
        return string(at: off) ?? ""
    }

    /// The string at a (possibly base-relative) string offset.
    public func string(at offset: UInt32) -> String? {
        if offset < firstStringOffset { return base?.string(at: offset) }
        return strings.cString(at: Int(offset - firstStringOffset))
    }

    /// Whether the string at `offset` equals `name` (compared in place, no allocation).
    func stringEquals(_ offset: UInt32, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
        if offset < firstStringOffset { return base?.stringEquals(offset, name) ?? false }
        let o = Int(offset - firstStringOffset)
        guard o < strings.count, name.count < strings.count - o else { return false }
        let p = strings.pointer + o
        if name.count > 0 && memcmp(p, name.baseAddress!, name.count) != 0 { return false }
        return p.load(fromByteOffset: name.count, as: UInt8.self) == 0
    }

    // MARK: - Decoding

    /// Decodes one type. Names and referenced ids are checked; a bad record gives a typed error.
    public func type(_ id: TypeID) throws(BTFError) -> BTFType {
        if id == 0 { return .void }
        guard let o = owner(of: id) else { throw .noSuchType(id) }
        if o !== self { return try o.type(id) }
        let off = Int(offsets[Int(id - firstID)])
        let t = types
        let nameOff = t.u32(off)!, info = t.u32(off + 4)!, third = t.u32(off + 8)!
        let kind = BTFKind(rawValue: UInt8((info >> 24) & 0x1f))!
        let vlen = Int(info & 0xffff)
        let kflag = info >> 31 == 1
        func str(_ so: UInt32) throws(BTFError) -> String {
            guard let s = string(at: so) else { throw .badStringOffset(id: id, offset: so) }
            return s
        }
        func ref(_ r: UInt32) throws(BTFError) -> TypeID {
            guard Int(r) < count else { throw .typeOutOfRange(id: id, reference: r) }
            return r
        }
        let name = try str(nameOff)
        let body = off + 12
        var payload = BTFType.Payload.none
        switch kind {
        case .int:
            let w = t.u32(body)!
            payload = .int(BTFInt(encoding: IntEncoding(rawValue: UInt8((w >> 24) & 0x0f)),
                                  offset: UInt8((w >> 16) & 0xff), bits: UInt8(w & 0xff)))
        case .array:
            payload = .array(BTFArray(elementType: try ref(t.u32(body)!), indexType: try ref(t.u32(body + 4)!),
                                      count: t.u32(body + 8)!))
        case .struct, .union:
            var members: [BTFMember] = []
            members.reserveCapacity(vlen)
            for i in 0..<vlen {
                let m = body + i * 12
                let raw = t.u32(m + 8)!
                members.append(BTFMember(name: try str(t.u32(m)!), type: try ref(t.u32(m + 4)!),
                                         bitOffset: kflag ? raw & 0xffffff : raw,
                                         bitfieldSize: kflag ? UInt8(raw >> 24) : 0))
            }
            payload = .members(members)
        case .enum:
            var es: [BTFEnumerator] = []
            es.reserveCapacity(vlen)
            for i in 0..<vlen {
                let e = body + i * 8
                let raw = t.u32(e + 4)!
                // Signed enums keep their sign in all 64 bits, so the value compares as the kernel means it.
                let value = kflag ? UInt64(bitPattern: Int64(Int32(bitPattern: raw))) : UInt64(raw)
                es.append(BTFEnumerator(name: try str(t.u32(e)!), value: value))
            }
            payload = .enumerators(es)
        case .enum64:
            var es: [BTFEnumerator] = []
            es.reserveCapacity(vlen)
            for i in 0..<vlen {
                let e = body + i * 12
                let value = UInt64(t.u32(e + 4)!) | (UInt64(t.u32(e + 8)!) << 32)
                es.append(BTFEnumerator(name: try str(t.u32(e)!), value: value))
            }
            payload = .enumerators(es)
        case .functionProto:
            var ps: [BTFParam] = []
            ps.reserveCapacity(vlen)
            for i in 0..<vlen {
                let p = body + i * 8
                ps.append(BTFParam(name: try str(t.u32(p)!), type: try ref(t.u32(p + 4)!)))
            }
            payload = .params(ps)
        case .function:
            payload = .functionLinkage(UInt32(vlen))
        case .variable:
            payload = .variableLinkage(t.u32(body)!)
        case .dataSection:
            var vs: [BTFVarSecInfo] = []
            vs.reserveCapacity(vlen)
            for i in 0..<vlen {
                let s = body + i * 12
                vs.append(BTFVarSecInfo(type: try ref(t.u32(s)!), offset: t.u32(s + 4)!, size: t.u32(s + 8)!))
            }
            payload = .sectionVariables(vs)
        case .declTag:
            payload = .componentIndex(Int32(bitPattern: t.u32(body)!))
        case .pointer, .forward, .typedef, .volatile, .const, .restrict, .float, .typeTag, .unknown:
            break
        }
        let sizeOrType = kind.hasSize || kind == .forward ? third : try ref(third)
        return BTFType(kind: kind, name: name, kindFlag: kflag, sizeOrType: sizeOrType, payload: payload)
    }

    /// All type ids, 1..<count (including the base's, for split BTF).
    public var ids: Range<TypeID> { 1..<TypeID(count) }
    /// The ids this blob defines itself.
    public var ownIDs: Range<TypeID> { firstID..<TypeID(count) }

    /// Calls `body(from, to)` for every type reference in this BTF (base first), read
    /// straight from the records in one pass with no names decoded: for whole-graph walks.
    public func forEachReference(_ body: (_ from: TypeID, _ to: TypeID) -> Void) {
        base?.forEachReference(body)
        let p = types.pointer
        let swap = types.order != .host
        @inline(__always) func word(_ o: Int) -> UInt32 {
            let v = p.loadUnaligned(fromByteOffset: o, as: UInt32.self)
            return swap ? v.byteSwapped : v
        }
        // Every record was bounds-checked by the index pass.
        for (n, o32) in offsets.enumerated() {
            let id = firstID + TypeID(n)
            let off = Int(o32)
            let info = word(off + 4)
            let vlen = Int(info & 0xffff)
            let rec = off + 12
            switch UInt8((info >> 24) & 0x1f) {
            case 2, 8, 9, 10, 11, 12, 14, 17, 18: // PTR, TYPEDEF, modifiers, FUNC, VAR, tags
                body(id, word(off + 8))
            case 3: // ARRAY
                body(id, word(rec)); body(id, word(rec + 4))
            case 4, 5: // STRUCT, UNION
                for i in 0..<vlen { body(id, word(rec + i * 12 + 4)) }
            case 13: // FUNC_PROTO
                body(id, word(off + 8))
                for i in 0..<vlen { body(id, word(rec + i * 8 + 4)) }
            case 15: // DATASEC
                for i in 0..<vlen { body(id, word(rec + i * 12)) }
            default:
                break
            }
        }
    }

    // MARK: - Lookup by name

    /// The first type (lowest id, base first) named `name`, optionally of one kind.
    /// A linear scan comparing names in place: no index is built for one lookup.
    public func firstID(named name: String, kind: BTFKind? = nil) -> TypeID? {
        if let b = base, let id = b.firstID(named: name, kind: kind) { return id }
        var name = name
        return name.withUTF8 { target -> TypeID? in
            let t = types
            for i in 0..<offsets.count {
                let off = Int(offsets[i])
                if let kind {
                    let info = t.u32(off + 4)!
                    if UInt8((info >> 24) & 0x1f) != kind.rawValue { continue }
                }
                if stringEquals(t.u32(off)!, target) { return firstID + TypeID(i) }
            }
            return nil
        }
    }

    /// Every type named `name` (a hash index built on first use, then shared).
    public func ids(named name: String) -> [TypeID] {
        let own = nameIndex.withLock { index -> [TypeID] in
            if index == nil { index = buildNameIndex() }
            return index![name] ?? []
        }
        return (base?.ids(named: name) ?? []) + own
    }

    private func buildNameIndex() -> [String: [TypeID]] {
        var index: [String: [TypeID]] = [:]
        index.reserveCapacity(offsets.count / 2)
        for id in ownIDs {
            guard let off = nameOffset(of: id), off != 0, let n = string(at: off) else { continue }
            index[n, default: []].append(id)
        }
        return index
    }

    /// Every type named `name` of the given kind.
    public func ids(named name: String, kind: BTFKind) -> [TypeID] {
        ids(named: name).filter { self.kind(of: $0) == kind }
    }
}

import Glibc
