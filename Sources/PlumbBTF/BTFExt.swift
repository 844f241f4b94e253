import PlumbELF

/// A parsed .BTF.ext section: per ELF section, function info, line info and CO-RE
/// relocation records. Strings (section names, file names, source lines, access strings)
/// come from the object's .BTF string section.
///
/// Layout (either byte order, taken from the magic):
/// header { u16 magic 0xeb9f; u8 version 1; u8 flags; u32 hdr_len; u32 func_info_off,
/// func_info_len; u32 line_info_off, line_info_len; [u32 core_relo_off, core_relo_len] }
/// then, at header-relative offsets, each info block: u32 rec_size, then repeated
/// { u32 sec_name_off; u32 num_info; num_info records of rec_size bytes }.
/// rec_size may be larger than the fields we know (newer compilers): extra bytes are skipped.
public struct BTFExt: Sendable {
    public var version: UInt8
    public var flags: UInt8
    public var headerLength: Int
    public var order: ByteOrder
    public var functionInfo: [BTFExtSection<BTFFuncInfo>]
    public var lineInfo: [BTFExtSection<BTFLineInfo>]
    public var coreRelocations: [BTFExtSection<CORERelocation>]

    public static let magic: UInt16 = 0xeb9f
    /// Known record sizes (the minimum each rec_size must have).
    public static let funcInfoSize = 8, lineInfoSize = 16, coreReloSize = 16

    /// The CO-RE relocations of one ELF section (empty when it has none).
    public func coreRelocations(forSection name: String) -> [CORERelocation] {
        coreRelocations.first { $0.name == name }?.records ?? []
    }

    /// Parses .BTF.ext bytes; `btf` is the same object's .BTF (for strings).
    public init(_ data: ByteView, btf: BTF) throws(BTFError) {
        guard data.count >= 4 else { throw .extTooShort(data.count) }
        let p = data.pointer
        let raw = p.loadUnaligned(as: UInt16.self)
        if raw == UInt16(littleEndian: BTFExt.magic) { order = .little }
        else if raw == UInt16(bigEndian: BTFExt.magic) { order = .big }
        else { throw .extBadMagic(UInt16(littleEndian: raw)) }
        let v = ByteView(data.bytes, order: order, start: data.start, count: data.count)
        version = v.u8(2)!
        guard version == 1 else { throw .extBadVersion(version) }
        flags = v.u8(3)!
        guard let hdrLen32 = v.u32(4) else { throw .extTooShort(data.count) }
        let hdrLen = Int(hdrLen32)
        // func_info and line_info are mandatory; core_relo came later (hdr_len >= 32).
        guard hdrLen >= 24 else { throw .extBadHeader(offset: 4, "hdr_len \(hdrLen) is below 24") }
        guard hdrLen <= v.count else { throw .extBadHeader(offset: 4, "hdr_len \(hdrLen) runs past the end of the data (\(v.count) bytes)") }
        headerLength = hdrLen
        let body = v.count - hdrLen

        func block(_ name: String, at field: Int) throws(BTFError) -> ByteView? {
            guard field + 8 <= hdrLen else { return nil }
            let off = Int(v.u32(field)!), len = Int(v.u32(field + 4)!)
            if len == 0 { return nil }
            guard off <= body, len <= body - off else {
                throw .extBadHeader(offset: field, "\(name) \(off)+\(len) runs past the end of the data (\(body) bytes after the header)")
            }
            guard off % 4 == 0 else { throw .extBadHeader(offset: field, "\(name) offset \(off) is not 4-byte aligned") }
            return v.slice(hdrLen + off, len)!
        }

        functionInfo = try BTFExt.sections(block("func_info", at: 8), what: "func_info", minSize: BTFExt.funcInfoSize, btf: btf) {
            (r: ByteView, _: Int) throws(BTFError) in BTFFuncInfo(insnOffset: r.u32(0)!, typeID: r.u32(4)!)
        }
        lineInfo = try BTFExt.sections(block("line_info", at: 16), what: "line_info", minSize: BTFExt.lineInfoSize, btf: btf) {
            (r: ByteView, at: Int) throws(BTFError) in
            let fileOff = r.u32(4)!, lineOff = r.u32(8)!, lineCol = r.u32(12)!
            guard let file = btf.string(at: fileOff) else { throw .extBadString(what: "line_info file name", offset: at + 4, stringOffset: fileOff) }
            guard let line = btf.string(at: lineOff) else { throw .extBadString(what: "line_info source line", offset: at + 8, stringOffset: lineOff) }
            return BTFLineInfo(insnOffset: r.u32(0)!, fileNameOffset: fileOff, fileName: file, lineOffset: lineOff, line: line,
                               lineNumber: lineCol >> 10, column: lineCol & 0x3ff)
        }
        coreRelocations = try BTFExt.sections(block("core_relo", at: 24), what: "core_relo", minSize: BTFExt.coreReloSize, btf: btf) {
            (r: ByteView, at: Int) throws(BTFError) in
            let insnOff = r.u32(0)!, typeID = r.u32(4)!, strOff = r.u32(8)!, kindRaw = r.u32(12)!
            guard insnOff % 8 == 0 else { throw .extBadRecord(what: "core_relo", offset: at, "insn_off \(insnOff) is not a multiple of 8") }
            guard let kind = CORERelocationKind(rawValue: kindRaw) else {
                throw .extBadRecord(what: "core_relo", offset: at + 12, "unknown relocation kind \(kindRaw)")
            }
            guard Int(typeID) < btf.count else { throw .extBadRecord(what: "core_relo", offset: at + 4, "type id \(typeID) does not exist in .BTF (\(btf.count) types)") }
            guard let access = btf.string(at: strOff) else { throw .extBadString(what: "core_relo access string", offset: at + 8, stringOffset: strOff) }
            return CORERelocation(insnOffset: insnOff, typeID: typeID, accessString: access, kind: kind, accessStringOffset: strOff)
        }
    }

    /// Parses the .BTF.ext section of an ELF object; nil when there is none.
    public init?(elf: ELFFile, btf: BTF) throws(BTFError) {
        guard let s = elf.section(named: ".BTF.ext") else { return nil }
        try self.init(elf.contents(of: s), btf: btf)
    }

    /// Walks one info block: u32 rec_size, then per ELF section a header and its records.
    /// Offsets in errors are from the start of the block.
    private static func sections<R>(_ block: ByteView?, what: String, minSize: Int, btf: BTF,
                                    _ record: (ByteView, Int) throws(BTFError) -> R) throws(BTFError) -> [BTFExtSection<R>] {
        guard let block else { return [] }
        guard block.count >= 4 else { throw .extBadRecord(what: what, offset: 0, "\(what) block of \(block.count) bytes has no record size") }
        let recSize = Int(block.u32(0)!)
        guard recSize >= minSize else {
            throw .extBadRecord(what: what, offset: 0, "record size \(recSize) is below the minimum \(minSize)")
        }
        guard recSize % 4 == 0 else { throw .extBadRecord(what: what, offset: 0, "record size \(recSize) is not a multiple of 4") }
        var out: [BTFExtSection<R>] = []
        var o = 4
        while o < block.count {
            guard o + 8 <= block.count else { throw .extBadRecord(what: what, offset: o, "section header (8 bytes) runs past the end of the \(what) block") }
            let nameOff = block.u32(o)!, n = Int(block.u32(o + 4)!)
            guard let name = btf.string(at: nameOff), !name.isEmpty else {
                throw .extBadString(what: "\(what) section name", offset: o, stringOffset: nameOff)
            }
            guard n > 0 else { throw .extBadRecord(what: what, offset: o + 4, "section '\(name)' has no records") }
            let recordsStart = o + 8
            guard n <= (block.count - recordsStart) / recSize else {
                throw .extBadRecord(what: what, offset: o + 4, "section '\(name)' claims \(n) records of \(recSize) bytes, past the end of the \(what) block")
            }
            var records: [R] = []
            records.reserveCapacity(n)
            for i in 0..<n {
                let ro = recordsStart + i * recSize
                records.append(try record(block.slice(ro, recSize)!, ro))
            }
            out.append(BTFExtSection(name: name, nameOffset: nameOff, recordSize: recSize, records: records))
            o = recordsStart + n * recSize
        }
        return out
    }
}

/// The records of one ELF section in one .BTF.ext block.
public struct BTFExtSection<Record: Sendable>: Sendable {
    public var name: String
    public var nameOffset: UInt32
    public var recordSize: Int
    public var records: [Record]
}

extension BTFExtSection: Equatable where Record: Equatable {}

/// bpf_func_info: the BTF FUNC of the function starting at a byte offset in its section.
public struct BTFFuncInfo: Sendable, Equatable {
    public var insnOffset: UInt32
    public var typeID: TypeID
    public init(insnOffset: UInt32, typeID: TypeID) { self.insnOffset = insnOffset; self.typeID = typeID }
}

/// bpf_line_info: the source line of an instruction (line_col: line << 10 | column).
public struct BTFLineInfo: Sendable, Equatable {
    public var insnOffset: UInt32
    public var fileNameOffset: UInt32
    public var fileName: String
    public var lineOffset: UInt32
    public var line: String
    public var lineNumber: UInt32
    public var column: UInt32
}
