import PlumbELF

/// How to compute the canonical frame address (what DW_OP_call_frame_cfa pushes, and what
/// DW_OP_fbreg offsets usually build on) at one pc.
public enum CFARule: Equatable, Sendable {
    /// CFA = register + offset (x86-64 DWARF numbering: 7 rsp, 6 rbp).
    case register(Int, Int64)
    /// CFA = value of a DWARF expression (rare: signal frames, PLT stubs).
    case expression([DWARFOp])
}

/// Call frame information (.eh_frame, or .debug_frame): only the CFA column is evaluated.
struct CallFrameTable {
    struct FDE {
        var start: UInt64
        var end: UInt64
        var cie: Int
        var instructions: ByteView
    }
    struct CIE {
        var codeAlign: UInt64
        var dataAlign: Int64
        var fdeEncoding: UInt8
        var addressSize: Int
        var instructions: ByteView
    }
    var cies: [Int: CIE] = [:]
    var fdes: [FDE] = []
    let section: String
    let sectionAddress: UInt64
    let data: ByteView

    static let maxEntries = 1 << 20

    init(data: ByteView, sectionAddress: UInt64, isEH: Bool, addressSize: Int) throws(DWARFError) {
        self.data = data
        self.sectionAddress = sectionAddress
        section = isEH ? ".eh_frame" : ".debug_frame"
        var c = Cursor(data, section: section)
        var count = 0
        while c.remaining >= 4 {
            count += 1
            guard count < Self.maxEntries else { throw .tooDeep(what: "call frame entries", limit: Self.maxEntries) }
            let start = c.offset
            let (length, offsetSize) = try c.initialLength()
            if length == 0 { if isEH { break } else { continue } }
            guard length <= UInt64(c.remaining) else { throw .truncated(section: section, offset: start, what: "entry of \(length) bytes") }
            let end = c.offset + Int(length)
            let idOffset = c.offset
            let id = try c.unsigned(size: offsetSize)
            let isCIE = isEH ? id == 0 : (offsetSize == 4 ? id == 0xffff_ffff : id == .max)
            if isCIE {
                let version = try c.u8()
                let aug = try c.cString()
                var addrSize = addressSize
                if !isEH && version >= 4 { addrSize = Int(try c.u8()); _ = try c.u8() }
                if aug.contains("eh") { _ = try c.unsigned(size: addressSize) }
                let codeAlign = try c.uleb()
                let dataAlign = try c.sleb()
                if version == 1 { _ = try c.u8() } else { _ = try c.uleb() }
                var fdeEncoding: UInt8 = 0
                if aug.hasPrefix("z") {
                    let augLen = try c.uleb()
                    let augEnd = c.offset + Int(clamping: augLen)
                    for ch in aug.utf8.dropFirst() {
                        switch ch {
                        case UInt8(ascii: "R"): fdeEncoding = try c.u8()
                        case UInt8(ascii: "L"): _ = try c.u8()
                        case UInt8(ascii: "P"):
                            let enc = try c.u8()
                            _ = try Self.readEncoded(&c, encoding: enc, addressSize: addressSize, sectionAddress: sectionAddress)
                        default: break
                        }
                    }
                    guard augEnd >= c.offset, augEnd <= end else { throw .malformed(section: section, offset: start, reason: "CIE augmentation data runs past the entry") }
                    c.offset = augEnd
                }
                guard c.offset <= end, let ins = data.slice(c.offset, end - c.offset) else {
                    throw .truncated(section: section, offset: start, what: "CIE")
                }
                cies[start] = CIE(codeAlign: codeAlign, dataAlign: dataAlign, fdeEncoding: fdeEncoding,
                                  addressSize: addrSize, instructions: ins)
            } else {
                // .eh_frame: the CIE is `id` bytes before the id field; .debug_frame: an offset.
                let cieOffset = isEH ? idOffset - Int(clamping: id) : Int(clamping: id)
                guard let cie = cies[cieOffset] else {
                    c.offset = end
                    continue  // a CIE we could not read, or one after its FDE (allowed, rare): skip
                }
                let enc = isEH ? cie.fdeEncoding : 0
                let startPC = try Self.readEncoded(&c, encoding: enc, addressSize: cie.addressSize, sectionAddress: sectionAddress)
                let range = try Self.readEncoded(&c, encoding: enc & 0x0f, addressSize: cie.addressSize, sectionAddress: sectionAddress)
                if isEH, (try? c.uleb()).map({ c.offset += Int(clamping: $0) }) == nil { throw c.fail("FDE augmentation") }
                guard c.offset <= end, let ins = data.slice(c.offset, end - c.offset) else {
                    throw .truncated(section: section, offset: start, what: "FDE")
                }
                fdes.append(FDE(start: startPC, end: startPC &+ range, cie: cieOffset, instructions: ins))
            }
            c.offset = end
        }
        fdes.sort { $0.start < $1.start }
    }

    /// A pointer in DW_EH_PE encoding; pc-relative values are made absolute.
    static func readEncoded(_ c: inout Cursor, encoding: UInt8, addressSize: Int, sectionAddress: UInt64) throws(DWARFError) -> UInt64 {
        if encoding == 0xff { return 0 }
        let fieldAddress = sectionAddress &+ UInt64(c.offset)
        var v: UInt64
        switch encoding & 0x0f {
        case 0x00: v = try c.unsigned(size: addressSize)
        case 0x01: v = try c.uleb()
        case 0x02: v = UInt64(try c.u16())
        case 0x03: v = UInt64(try c.u32())
        case 0x04: v = try c.u64()
        case 0x09: v = UInt64(bitPattern: try c.sleb())
        case 0x0a: v = UInt64(bitPattern: Int64(Int16(bitPattern: try c.u16())))
        case 0x0b: v = UInt64(bitPattern: Int64(Int32(bitPattern: try c.u32())))
        case 0x0c: v = try c.u64()
        default: throw .malformed(section: ".eh_frame", offset: c.offset, reason: "pointer encoding 0x\(String(encoding, radix: 16))")
        }
        if encoding & 0x70 == 0x10 { v = v &+ fieldAddress }
        return v
    }

    func fde(containing pc: UInt64) -> FDE? {
        var lo = 0, hi = fdes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if fdes[mid].start <= pc { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0, pc < fdes[lo - 1].end else { return nil }
        return fdes[lo - 1]
    }

    /// Runs the CIE's then the FDE's instructions up to `pc`, tracking the CFA column only.
    func cfa(at pc: UInt64, decode: (ByteView) throws(DWARFError) -> [DWARFOp]) throws(DWARFError) -> CFARule? {
        guard let fde = fde(containing: pc), let cie = cies[fde.cie] else { return nil }
        var rule = CFARule.register(0, 0)
        var stack: [CFARule] = []
        var loc = fde.start
        func run(_ ins: ByteView, stopAtPC: Bool) throws(DWARFError) -> Bool {
            var c = Cursor(ins, section: section)
            var steps = 0
            while !c.atEnd {
                steps += 1
                guard steps < 1 << 20 else { throw .tooDeep(what: "call frame program", limit: 1 << 20) }
                let op = try c.u8()
                var advance: UInt64? = nil
                switch op >> 6 {
                case 1: advance = UInt64(op & 0x3f)
                case 2: _ = try c.uleb()
                case 3: break
                default:
                    switch op {
                    case 0x00: break
                    case 0x01:
                        let target = try Self.readEncoded(&c, encoding: cie.fdeEncoding, addressSize: cie.addressSize, sectionAddress: sectionAddress)
                        if stopAtPC && target > pc { return true }
                        loc = target
                    case 0x02: advance = UInt64(try c.u8())
                    case 0x03: advance = UInt64(try c.u16())
                    case 0x04: advance = UInt64(try c.u32())
                    case 0x05, 0x09, 0x14, 0x2f: _ = try c.uleb(); _ = try c.uleb()
                    case 0x11, 0x15: _ = try c.uleb(); _ = try c.sleb()
                    case 0x06, 0x07, 0x08, 0x2e: _ = try c.uleb()
                    case 0x0a:
                        guard stack.count < 64 else { throw .tooDeep(what: "DW_CFA_remember_state", limit: 64) }
                        stack.append(rule)
                    case 0x0b: if let r = stack.popLast() { rule = r }
                    case 0x0c:
                        let r = Int(clamping: try c.uleb())
                        rule = .register(r, Int64(bitPattern: try c.uleb()))
                    case 0x0d:
                        let r = Int(clamping: try c.uleb())
                        if case .register(_, let off) = rule { rule = .register(r, off) } else { rule = .register(r, 0) }
                    case 0x0e:
                        let off = Int64(bitPattern: try c.uleb())
                        if case .register(let r, _) = rule { rule = .register(r, off) }
                    case 0x0f: rule = .expression(try decode(try c.bytes(try c.uleb())))
                    case 0x10, 0x16: _ = try c.uleb(); _ = try c.bytes(try c.uleb())
                    case 0x12:
                        let r = Int(clamping: try c.uleb())
                        rule = .register(r, try c.sleb() &* cie.dataAlign)
                    case 0x13:
                        let off = try c.sleb() &* cie.dataAlign
                        if case .register(let r, _) = rule { rule = .register(r, off) }
                    default:
                        throw .malformed(section: section, offset: c.offset - 1, reason: "unknown call frame instruction 0x\(String(op, radix: 16))")
                    }
                }
                if let a = advance {
                    let next = loc &+ a &* cie.codeAlign
                    if stopAtPC && next > pc { return true }
                    loc = next
                }
            }
            return false
        }
        _ = try run(cie.instructions, stopAtPC: false)
        _ = try run(fde.instructions, stopAtPC: true)
        return rule
    }
}

extension DWARF {
    /// The CFA rule at `pc`, from the binary's .eh_frame (or .debug_frame): what the code
    /// generator needs to evaluate DW_OP_call_frame_cfa (and fbreg over it). nil: no CFI there.
    public func cfa(at pc: UInt64) throws(DWARFError) -> CFARule? {
        if callFrames == nil {
            var tables: [CallFrameTable] = []
            for elf in symbolFiles.reversed() {
                for (name, isEH) in [(".eh_frame", true), (".debug_frame", false)] {
                    guard let s = elf.section(named: name), s.type != ELFSection.SHT_NOBITS else { continue }
                    let data = try DWARFSections.contents(of: s, in: elf, legacyZ: false)
                    tables.append(try CallFrameTable(data: data, sectionAddress: s.address, isEH: isEH,
                                                     addressSize: units.first?.addressSize ?? 8))
                }
            }
            callFrames = tables
        }
        let ui = units.indices.first ?? 0
        for t in callFrames ?? [] {
            if let r = try t.cfa(at: pc, decode: { (b) throws(DWARFError) -> [DWARFOp] in
                guard !units.isEmpty else { return try DWARFOp.decode(b.toArray()) }
                return try decodeExpression(b, unit: ui)
            }) { return r }
        }
        return nil
    }
}
