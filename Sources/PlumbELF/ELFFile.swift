import Glibc

/// Errors reading an ELF file. Each names the offset or the section at fault.
public enum ELFError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be read at all.
    case cannotRead(path: String, errno: Int32)
    /// The path names a device, pipe or directory, whose reading may never end.
    case notRegularFile(path: String)
    case notELF
    case unsupportedClass(UInt8)
    case badByteOrder(UInt8)
    case truncated(what: String, offset: Int)
    case badSection(index: Int, reason: String)
    case noSuchSection(String)
    case badSymbol(index: Int, reason: String)
    case badRelocation(section: String, index: Int, reason: String)
    /// A `.note.stapsdt` note (by its index among the section's notes) is malformed.
    case badUSDTNote(index: Int, reason: String)
    /// A USDT argument spec (`SIZE@OPERAND`) of `probe` could not be parsed.
    case badUSDTArgument(probe: String, argument: String, reason: String)

    public var description: String {
        switch self {
        case .cannotRead(let path, let e):
            return "cannot read \(path): \(String(cString: strerror(e)))"
                + (e == EACCES || e == EPERM ? " (run as root or with read access to the file)" : "")
        case .notRegularFile(let path): return "\(path) is not a regular file: give a BTF or ELF file"
        case .notELF: return "not an ELF file (bad magic); pass a compiled object or binary"
        case .unsupportedClass(let c): return "unsupported ELF class \(c): only ELF64 is supported"
        case .badByteOrder(let d): return "unknown ELF data encoding \(d) (expected 1 = little or 2 = big endian)"
        case .truncated(let what, let off): return "ELF file truncated: \(what) at offset \(off) runs past the end of the file"
        case .badSection(let i, let r): return "ELF section #\(i) is malformed: \(r)"
        case .noSuchSection(let n): return "ELF file has no section named \(n)"
        case .badSymbol(let i, let r): return "ELF symbol #\(i) is malformed: \(r)"
        case .badRelocation(let s, let i, let r): return "relocation #\(i) in \(s) is malformed: \(r)"
        case .badUSDTNote(let i, let r):
            return "USDT note #\(i) in .note.stapsdt is malformed: \(r); compare with `readelf -n`"
        case .badUSDTArgument(let p, let a, let r):
            return "USDT argument '\(a)'\(p.isEmpty ? "" : " of \(p)") cannot be parsed: \(r); the probe can still be attached without reading its arguments"
        }
    }
}

public struct ELFSection: Sendable {
    public var index: Int
    public var name: String
    public var type: UInt32
    public var flags: UInt64
    public var address: UInt64
    public var offset: UInt64
    public var size: UInt64
    public var link: UInt32
    public var info: UInt32
    public var addressAlign: UInt64
    public var entrySize: UInt64

    public static let SHT_NULL: UInt32 = 0, SHT_PROGBITS: UInt32 = 1, SHT_SYMTAB: UInt32 = 2,
        SHT_STRTAB: UInt32 = 3, SHT_RELA: UInt32 = 4, SHT_NOTE: UInt32 = 7, SHT_NOBITS: UInt32 = 8,
        SHT_REL: UInt32 = 9, SHT_DYNSYM: UInt32 = 11
    public static let SHF_WRITE: UInt64 = 1, SHF_ALLOC: UInt64 = 2, SHF_EXECINSTR: UInt64 = 4

    public var isExecutable: Bool { flags & Self.SHF_EXECINSTR != 0 }
    public var isWritable: Bool { flags & Self.SHF_WRITE != 0 }
}

public struct ELFSymbol: Sendable {
    public var index: Int
    public var name: String
    public var value: UInt64
    public var size: UInt64
    public var info: UInt8
    public var other: UInt8
    public var sectionIndex: UInt16

    public var binding: UInt8 { info >> 4 }
    public var type: UInt8 { info & 0xf }
    public var visibility: UInt8 { other & 0x3 }

    public static let STB_LOCAL: UInt8 = 0, STB_GLOBAL: UInt8 = 1, STB_WEAK: UInt8 = 2
    public static let STT_NOTYPE: UInt8 = 0, STT_OBJECT: UInt8 = 1, STT_FUNC: UInt8 = 2,
        STT_SECTION: UInt8 = 3, STT_FILE: UInt8 = 4, STT_GNU_IFUNC: UInt8 = 10
    public static let SHN_UNDEF: UInt16 = 0, SHN_ABS: UInt16 = 0xfff1, SHN_COMMON: UInt16 = 0xfff2
}

public struct ELFRelocation: Sendable {
    public var offset: UInt64
    public var symbolIndex: UInt32
    public var type: UInt32
    public var addend: Int64
}

public struct ELFProgramHeader: Sendable {
    public var type: UInt32
    public var flags: UInt32
    public var offset: UInt64
    public var virtualAddress: UInt64
    public var fileSize: UInt64
    public var memorySize: UInt64
    public static let PT_LOAD: UInt32 = 1
    public static let PF_X: UInt32 = 1
}

public struct ELFNote: Sendable {
    public var name: String
    public var type: UInt32
    public var descriptor: ByteView
}

/// A parsed ELF64 file. Section contents are read in place from `bytes`.
public struct ELFFile: Sendable {
    public let bytes: Bytes
    public let order: ByteOrder
    public let type: UInt16
    public let machine: UInt16
    public let entry: UInt64
    public let sections: [ELFSection]
    public let programHeaders: [ELFProgramHeader]

    public static let EM_BPF: UInt16 = 247
    public static let EM_X86_64: UInt16 = 62
    public static let EM_AARCH64: UInt16 = 183
    public static let ET_REL: UInt16 = 1, ET_EXEC: UInt16 = 2, ET_DYN: UInt16 = 3

    public var view: ByteView { ByteView(bytes, order: order) }

    public static func isELF(_ bytes: Bytes) -> Bool {
        bytes.count >= 4 && bytes.base.load(as: UInt32.self) == UInt32(littleEndian: 0x464c_457f)
    }

    public init(path: String) throws(ELFError) {
        try self.init(bytes: try Bytes.read(path: path, prefault: false))
    }

    public init(bytes: Bytes) throws(ELFError) {
        self.bytes = bytes
        guard ELFFile.isELF(bytes), bytes.count >= 16 else { throw .notELF }
        let ident = ByteView(bytes, order: .little)
        let cls = ident.u8(4)!
        guard cls == 2 else { throw .unsupportedClass(cls) }
        let data = ident.u8(5)!
        switch data {
        case 1: order = .little
        case 2: order = .big
        default: throw .badByteOrder(data)
        }
        let v = ByteView(bytes, order: order)
        guard v.contains(0, 64) else { throw .truncated(what: "ELF header", offset: 0) }
        type = v.u16(16)!
        machine = v.u16(18)!
        entry = v.u64(24)!
        let phoff = v.u64(32)!, shoff = v.u64(40)!
        let phentsize = Int(v.u16(54)!), phnum = Int(v.u16(56)!)
        let shentsize = Int(v.u16(58)!)
        var shnum = Int(v.u16(60)!)
        var shstrndx = Int(v.u16(62)!)

        var sections: [ELFSection] = []
        if shoff != 0 {
            guard shentsize >= 64 else { throw .badSection(index: 0, reason: "section header size \(shentsize) is below 64") }
            guard let base = Int(exactly: shoff), v.contains(base, 64) else {
                throw .truncated(what: "section header table", offset: Int(clamping: shoff))
            }
            // Extended numbering: the real count and string-table index live in section 0.
            if shnum == 0 { shnum = Int(clamping: v.u64(base + 32)!) }
            if shstrndx == 0xffff { shstrndx = Int(v.u32(base + 40)!) }
            guard shnum <= (v.count - base) / shentsize else {
                throw .truncated(what: "section header table (\(shnum) entries)", offset: base)
            }
            sections.reserveCapacity(shnum)
            for i in 0..<shnum {
                let o = base + i * shentsize
                sections.append(ELFSection(
                    index: i, name: "", type: v.u32(o + 4)!, flags: v.u64(o + 8)!, address: v.u64(o + 16)!,
                    offset: v.u64(o + 24)!, size: v.u64(o + 32)!, link: v.u32(o + 40)!, info: v.u32(o + 44)!,
                    addressAlign: v.u64(o + 48)!, entrySize: v.u64(o + 56)!))
            }
            // Names come from the section-name string table.
            if shstrndx != 0 {
                guard shstrndx < sections.count else {
                    throw .badSection(index: shstrndx, reason: "section-name string table index out of range")
                }
                let strtab = sections[shstrndx]
                guard let strs = v.slice(Int(clamping: strtab.offset), Int(clamping: strtab.size)) else {
                    throw .truncated(what: "section-name string table", offset: Int(clamping: strtab.offset))
                }
                for i in 0..<sections.count {
                    let nameOff = Int(v.u32(base + i * shentsize)!)
                    guard let name = strs.cString(at: nameOff) else {
                        if nameOff == 0 && strs.count == 0 { continue }
                        throw .badSection(index: i, reason: "name offset \(nameOff) is outside the string table")
                    }
                    sections[i].name = name
                }
            }
            for s in sections where s.type != ELFSection.SHT_NOBITS && s.type != ELFSection.SHT_NULL {
                guard v.contains(Int(clamping: s.offset), Int(clamping: s.size)) else {
                    throw .badSection(index: s.index, reason: "\(s.name): contents at \(s.offset)+\(s.size) run past the end of the file (\(v.count) bytes)")
                }
            }
        }
        self.sections = sections

        var phdrs: [ELFProgramHeader] = []
        if phoff != 0 && phnum > 0 {
            guard phentsize >= 56, let base = Int(exactly: phoff), phnum <= (v.count - min(base, v.count)) / phentsize else {
                throw .truncated(what: "program header table", offset: Int(clamping: phoff))
            }
            for i in 0..<phnum {
                let o = base + i * phentsize
                phdrs.append(ELFProgramHeader(
                    type: v.u32(o)!, flags: v.u32(o + 4)!, offset: v.u64(o + 8)!, virtualAddress: v.u64(o + 16)!,
                    fileSize: v.u64(o + 32)!, memorySize: v.u64(o + 40)!))
            }
        }
        programHeaders = phdrs
    }

    public func section(named name: String) -> ELFSection? { sections.first { $0.name == name } }

    /// The bytes of a section (empty for SHT_NOBITS). Bounds were checked at parse time.
    public func contents(of section: ELFSection) -> ByteView {
        let empty = ByteView(bytes, order: order, start: 0, count: 0)
        if section.type == ELFSection.SHT_NOBITS || section.type == ELFSection.SHT_NULL { return empty }
        return view.slice(Int(clamping: section.offset), Int(clamping: section.size)) ?? empty
    }

    /// Symbols of `.symtab` (or `.dynsym` when `dynamic`).
    public func symbols(dynamic: Bool = false) throws(ELFError) -> [ELFSymbol] {
        let wanted = dynamic ? ELFSection.SHT_DYNSYM : ELFSection.SHT_SYMTAB
        guard let symtab = sections.first(where: { $0.type == wanted }) else { return [] }
        guard Int(symtab.link) < sections.count else {
            throw .badSection(index: symtab.index, reason: "symbol table links to missing string table \(symtab.link)")
        }
        let strs = contents(of: sections[Int(symtab.link)])
        let data = contents(of: symtab)
        let n = data.count / 24
        var out: [ELFSymbol] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            let o = i * 24
            let nameOff = Int(data.u32(o)!)
            guard let name = nameOff == 0 ? "" : strs.cString(at: nameOff) else {
                throw .badSymbol(index: i, reason: "name offset \(nameOff) is outside the string table")
            }
            out.append(ELFSymbol(index: i, name: name, value: data.u64(o + 8)!, size: data.u64(o + 16)!,
                                 info: data.u8(o + 4)!, other: data.u8(o + 5)!, sectionIndex: data.u16(o + 6)!))
        }
        return out
    }

    /// Relocations of a SHT_REL or SHT_RELA section.
    public func relocations(in section: ELFSection) throws(ELFError) -> [ELFRelocation] {
        let isRela = section.type == ELFSection.SHT_RELA
        let entSize = isRela ? 24 : 16
        let data = contents(of: section)
        guard data.count % entSize == 0 else {
            throw .badRelocation(section: section.name, index: data.count / entSize, reason: "section size \(data.count) is not a multiple of \(entSize)")
        }
        var out: [ELFRelocation] = []
        out.reserveCapacity(data.count / entSize)
        for i in 0..<(data.count / entSize) {
            let o = i * entSize
            let info = data.u64(o + 8)!
            out.append(ELFRelocation(offset: data.u64(o)!, symbolIndex: UInt32(truncatingIfNeeded: info >> 32),
                                     type: UInt32(truncatingIfNeeded: info), addend: isRela ? Int64(bitPattern: data.u64(o + 16)!) : 0))
        }
        return out
    }

    /// Notes of a SHT_NOTE section (4-byte aligned name and descriptor fields).
    public func notes(in section: ELFSection) throws(ELFError) -> [ELFNote] {
        let data = contents(of: section)
        var out: [ELFNote] = []
        var o = 0
        while o + 12 <= data.count {
            let namesz = Int(data.u32(o)!), descsz = Int(data.u32(o + 4)!), type = data.u32(o + 8)!
            let nameStart = o + 12
            let descStart = nameStart + ((namesz + 3) & ~3)
            guard namesz <= data.count, descsz <= data.count, data.contains(nameStart, namesz),
                  data.contains(descStart, descsz), let nameView = data.slice(nameStart, namesz),
                  let desc = data.slice(descStart, descsz) else {
                throw .badSection(index: section.index, reason: "note at offset \(o) runs past the end of \(section.name)")
            }
            let name = namesz > 0 ? (nameView.cString(at: 0) ?? "") : ""
            out.append(ELFNote(name: name, type: type, descriptor: desc))
            o = descStart + ((descsz + 3) & ~3)
        }
        return out
    }

    /// Maps a virtual address to its file offset through the PT_LOAD segments (for uprobes).
    public func fileOffset(ofVirtualAddress addr: UInt64) -> UInt64? {
        for p in programHeaders where p.type == ELFProgramHeader.PT_LOAD {
            if addr >= p.virtualAddress && addr < p.virtualAddress &+ p.memorySize {
                return addr - p.virtualAddress + p.offset
            }
        }
        // Objects without program headers: use the section that holds the address.
        for s in sections where s.flags & ELFSection.SHF_ALLOC != 0 && s.type != ELFSection.SHT_NOBITS {
            if addr >= s.address && addr < s.address &+ s.size { return addr - s.address + s.offset }
        }
        return nil
    }
}
