import PlumbELF

/// One attribute specification of an abbreviation.
struct AttrSpec {
    var at: UInt16
    var form: UInt16
    var implicitConst: Int64
}

/// An abbreviation: the shape shared by many DIEs.
struct Abbrev {
    var tag: UInt16
    var hasChildren: Bool
    var specs: [AttrSpec]
}

/// The abbreviations of one table; codes are usually dense from 1, so an array serves most.
struct AbbrevTable {
    var dense: [Abbrev?] = []
    var sparse: [UInt64: Abbrev] = [:]

    @inline(__always) func lookup(_ code: UInt64) -> Abbrev? {
        if code < UInt64(dense.count) { return dense[Int(code)] }
        return sparse[code]
    }

    static let maxDense = 1 << 16

    /// Bytes read, so the caller can bound the total work over all tables.
    var bytesRead = 0

    init(data: ByteView, offset: Int) throws(DWARFError) {
        var c = Cursor(data, section: ".debug_abbrev", offset: offset)
        var count = 0
        defer { bytesRead = c.offset - offset }
        while true {
            let code = try c.uleb()
            if code == 0 { break }
            let tag = try c.uleb()
            let children = try c.u8()
            var specs: [AttrSpec] = []
            while true {
                let at = try c.uleb(), form = try c.uleb()
                var implicit: Int64 = 0
                if form == UInt64(DW.FORM.implicitConst) { implicit = try c.sleb() }
                if at == 0 && form == 0 { break }
                guard form <= 0xffff else { throw .unsupportedForm(offset: c.offset, form: form) }
                specs.append(AttrSpec(at: UInt16(clamping: at), form: UInt16(form), implicitConst: implicit))
            }
            let a = Abbrev(tag: UInt16(clamping: tag), hasChildren: children != 0, specs: specs)
            count += 1
            // Dense only while codes stay near the count: a hostile code cannot make a huge array.
            if code < UInt64(Self.maxDense) && code <= UInt64(2 * count + 64) {
                let i = Int(code)
                if i >= dense.count { dense.append(contentsOf: repeatElement(nil, count: i + 1 - dense.count)) }
                dense[i] = a
            } else {
                sparse[code] = a
            }
        }
    }
}

/// One unit of .debug_info (or .debug_types): its header and what its root DIE says.
public struct DWARFUnit: Sendable {
    /// Offset of the header. Units in .debug_types are numbered after .debug_info's end.
    public var offset: Int
    /// Offset just past the unit.
    public var end: Int
    public var version: Int
    public var unitType: UInt8
    public var addressSize: Int
    public var offsetSize: Int
    var abbrevIndex: Int
    /// Offset of the root DIE.
    public var firstDIE: Int
    public var typeSignature: UInt64 = 0
    public var typeOffset: Int = 0
    var inTypesSection: Bool
    /// A partial unit of the dwz file (.gnu_debugaltlink): its strings are that file's.
    var inAlt = false

    // From the root DIE.
    public var name: String = ""
    public var compDir: String = ""
    public var baseAddress: UInt64 = 0
    public var stmtList: UInt64?
    /// DW_AT_dwo_name of a skeleton unit (split DWARF).
    public var dwoName: String?
    var strOffsetsBase: UInt64 = 0
    var addrBase: UInt64 = 0
    var rnglistsBase: UInt64 = 0
    var loclistsBase: UInt64 = 0
    var rootTag: UInt16 = 0
    var rangesValue: FormValue?
    var highPCValue: FormValue?
    var lowPCValue: FormValue?
}

/// An attribute value as encoded; strings, addresses and references are resolved on demand
/// through the unit (they need its bases).
enum FormValue {
    case data(UInt64)          // data1/2/4/8, udata, flag
    case signed(Int64)         // sdata, implicit_const
    case address(UInt64)
    case addrx(UInt64)
    case strp(UInt64)
    case strpAlt(UInt64)       // DW_FORM_GNU_strp_alt: .debug_str of the dwz file
    case lineStrp(UInt64)
    case strx(UInt64)
    case inlineString(ByteView, Int)
    case reference(Int)        // absolute DIE offset
    case signature(UInt64)
    case block(ByteView)       // block*, exprloc
    case flag(Bool)
    case secOffset(UInt64)
    case loclistx(UInt64)
    case rnglistx(UInt64)
    case unusable              // data16, alternate-file forms: skipped, never interpreted
}

/// A decoded DIE: tag, attributes and where its children start.
struct DIE {
    var offset: Int
    var unit: Int
    var tag: UInt16
    var hasChildren: Bool
    var attrs: [(UInt16, FormValue)]
    /// Offset just past the attributes: the first child, if any.
    var childrenOffset: Int

    func value(_ at: UInt16) -> FormValue? {
        for (a, v) in attrs where a == at { return v }
        return nil
    }
    func has(_ at: UInt16) -> Bool { attrs.contains { $0.0 == at } }
}

extension DWARF {
    /// The view and local offset for an absolute DIE offset.
    @inline(__always) func sectionView(forAbsolute offset: Int) -> (ByteView, Int, String) {
        if let alt = altSections, offset >= altBase { return (alt.info, offset - altBase, ".debug_info (dwz file)") }
        if offset >= sections.info.count { return (sections.types, offset - sections.info.count, ".debug_types") }
        return (sections.info, offset, ".debug_info")
    }

    /// Parses unit headers of .debug_info then .debug_types and each root DIE.
    func parseUnits() throws(DWARFError) {
        var abbrevByOffset: [UInt64: Int] = [:]
        // Tables at overlapping offsets could make parsing quadratic: bound the total work.
        var abbrevBudget = 16 &* (sections.abbrev.count &+ (altSections?.abbrev.count ?? 0)) &+ (1 << 20)
        var sets: [(ByteView, Bool, DWARFSections)] = [(sections.info, false, sections), (sections.types, true, sections)]
        // A dwz file's partial units follow, numbered from `altBase` (DW_FORM_GNU_ref_alt).
        if let alt = altSections { sets.append((alt.info, false, alt)) }
        for (view, isTypes, owner) in sets {
            let inAlt = owner !== sections
            let secName = inAlt ? ".debug_info (dwz file)" : isTypes ? ".debug_types" : ".debug_info"
            var c = Cursor(view, section: secName)
            while c.remaining > 0 {
                let start = c.offset
                let (length, offsetSize) = try c.initialLength()
                let bodyStart = c.offset
                guard length <= UInt64(c.remaining) else {
                    throw .truncated(section: secName, offset: start, what: "unit of \(length) bytes")
                }
                let end = bodyStart + Int(length)
                let version = Int(try c.u16())
                guard (2...5).contains(version) else { throw .unsupportedVersion(section: secName, offset: start, version: version) }
                var unitType = DW.UT.compile
                var addressSize = 0
                var abbrevOffset: UInt64 = 0
                var sig: UInt64 = 0, typeOff: UInt64 = 0
                if version >= 5 {
                    unitType = try c.u8()
                    addressSize = Int(try c.u8())
                    abbrevOffset = try c.unsigned(size: offsetSize)
                    switch unitType {
                    case DW.UT.skeleton, DW.UT.splitCompile: _ = try c.u64()
                    case DW.UT.type, DW.UT.splitType:
                        sig = try c.u64(); typeOff = try c.unsigned(size: offsetSize)
                    default: break
                    }
                } else {
                    abbrevOffset = try c.unsigned(size: offsetSize)
                    addressSize = Int(try c.u8())
                    if isTypes {
                        unitType = DW.UT.type
                        sig = try c.u64(); typeOff = try c.unsigned(size: offsetSize)
                    }
                }
                guard addressSize == 4 || addressSize == 8 else {
                    throw .malformed(section: secName, offset: start, reason: "address size \(addressSize) (expected 4 or 8)")
                }
                guard c.offset <= end else { throw .truncated(section: secName, offset: start, what: "unit header") }
                let abbrevIndex: Int
                let abbrevKey = abbrevOffset | (inAlt ? 1 << 63 : 0)
                if let i = abbrevByOffset[abbrevKey] {
                    abbrevIndex = i
                } else {
                    guard let ao = Int(exactly: abbrevOffset), ao < owner.abbrev.count else {
                        throw .malformed(section: secName, offset: start, reason: "abbreviation offset \(abbrevOffset) is outside .debug_abbrev")
                    }
                    let table = try AbbrevTable(data: owner.abbrev, offset: ao)
                    abbrevBudget -= table.bytesRead
                    guard abbrevBudget >= 0 else {
                        throw .malformed(section: ".debug_abbrev", offset: ao,
                                         reason: "units point into overlapping abbreviation tables (read 16 times the section); the file is corrupt")
                    }
                    abbrevs.append(table)
                    abbrevIndex = abbrevs.count - 1
                    abbrevByOffset[abbrevKey] = abbrevIndex
                }
                let shift = inAlt ? altBase : isTypes ? sections.info.count : 0
                var u = DWARFUnit(offset: start + shift, end: end + shift, version: version, unitType: unitType,
                                  addressSize: addressSize, offsetSize: offsetSize, abbrevIndex: abbrevIndex,
                                  firstDIE: c.offset + shift, typeSignature: sig,
                                  typeOffset: Int(clamping: typeOff) &+ start &+ shift, inTypesSection: isTypes)
                u.inAlt = inAlt
                if version >= 5 { u.strOffsetsBase = UInt64(offsetSize == 8 ? 16 : 8) }
                units.append(u)
                let index = units.count - 1
                if unitType == DW.UT.type || unitType == DW.UT.splitType {
                    typeUnitsBySignature[sig] = index
                }
                try readRootDIE(unit: index)
                c.offset = end
            }
        }
    }

    /// Reads the root DIE's bases first (other attributes of the same DIE may need them).
    private func readRootDIE(unit index: Int) throws(DWARFError) {
        guard units[index].firstDIE < units[index].end else { return }
        let die = try readDIE(at: units[index].firstDIE, unit: index)
        guard let die else { return }
        var u = units[index]
        u.rootTag = die.tag
        for (at, v) in die.attrs {
            switch at {
            case DW.AT.strOffsetsBase: if case .secOffset(let o) = v { u.strOffsetsBase = o } else if case .data(let o) = v { u.strOffsetsBase = o }
            case DW.AT.addrBase, DW.AT.gnuAddrBase: if case .secOffset(let o) = v { u.addrBase = o } else if case .data(let o) = v { u.addrBase = o }
            case DW.AT.rnglistsBase: if case .secOffset(let o) = v { u.rnglistsBase = o } else if case .data(let o) = v { u.rnglistsBase = o }
            case DW.AT.loclistsBase: if case .secOffset(let o) = v { u.loclistsBase = o } else if case .data(let o) = v { u.loclistsBase = o }
            case DW.AT.stmtList: if case .secOffset(let o) = v { u.stmtList = o } else if case .data(let o) = v { u.stmtList = o }
            case DW.AT.lowPC: u.lowPCValue = v
            case DW.AT.highPC: u.highPCValue = v
            case DW.AT.ranges: u.rangesValue = v
            default: break
            }
        }
        units[index] = u
        units[index].name = string(die.value(DW.AT.name), unit: index) ?? ""
        units[index].compDir = string(die.value(DW.AT.compDir), unit: index) ?? ""
        if let dwo = die.value(DW.AT.dwoName) ?? die.value(0x2130) { units[index].dwoName = string(dwo, unit: index) }
        if let low = die.value(DW.AT.lowPC), let a = address(low, unit: index) { units[index].baseAddress = a }
    }

    /// The unit holding an absolute offset (binary search; units are in offset order).
    func unitIndex(containing offset: Int) -> Int? {
        var lo = 0, hi = units.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if units[mid].end <= offset { lo = mid + 1 } else { hi = mid }
        }
        guard lo < units.count, units[lo].offset <= offset, offset < units[lo].end else { return nil }
        return lo
    }

    /// Decodes the DIE at an absolute offset; nil for a null entry (end of siblings).
    func readDIE(at offset: Int, unit: Int) throws(DWARFError) -> DIE? {
        let u = units[unit]
        let (view, local, name) = sectionView(forAbsolute: offset)
        var c = Cursor(view, section: name, offset: local)
        let code = try c.uleb()
        if code == 0 { return nil }
        guard let ab = abbrevs[u.abbrevIndex].lookup(code) else {
            throw .malformed(section: name, offset: local, reason: "abbreviation code \(code) is not in the unit's table")
        }
        var attrs: [(UInt16, FormValue)] = []
        attrs.reserveCapacity(ab.specs.count)
        let shift = offset - local
        for s in ab.specs {
            attrs.append((s.at, try readForm(s.form, implicit: s.implicitConst, &c, unit: u, shift: shift)))
        }
        let next = c.offset + shift
        guard next <= u.end else { throw .truncated(section: name, offset: local, what: "DIE past the end of its unit") }
        return DIE(offset: offset, unit: unit, tag: ab.tag, hasChildren: ab.hasChildren, attrs: attrs, childrenOffset: next)
    }

    /// Reads one value of `form`. `shift` turns section-local offsets into absolute ones.
    func readForm(_ form0: UInt16, implicit: Int64, _ c: inout Cursor, unit u: DWARFUnit, shift: Int) throws(DWARFError) -> FormValue {
        var form = form0
        var hops = 0
        while form == DW.FORM.indirect {
            hops += 1
            guard hops < 8 else { throw .tooDeep(what: "DW_FORM_indirect chain", limit: 8) }
            let f = try c.uleb()
            guard f <= 0xffff else { throw .unsupportedForm(offset: c.offset, form: f) }
            form = UInt16(f)
        }
        switch form {
        case DW.FORM.addr: return .address(try c.unsigned(size: u.addressSize))
        case DW.FORM.data1: return .data(UInt64(try c.u8()))
        case DW.FORM.data2: return .data(UInt64(try c.u16()))
        case DW.FORM.data4: return .data(UInt64(try c.u32()))
        case DW.FORM.data8: return .data(try c.u64())
        case DW.FORM.data16: try c.skip(16); return .unusable
        case DW.FORM.udata: return .data(try c.uleb())
        case DW.FORM.sdata: return .signed(try c.sleb())
        case DW.FORM.implicitConst: return .signed(implicit)
        case DW.FORM.flag: return .flag(try c.u8() != 0)
        case DW.FORM.flagPresent: return .flag(true)
        case DW.FORM.string:
            let start = c.offset
            try c.skipCString()
            return .inlineString(c.data, start)
        case DW.FORM.strp: return .strp(try c.unsigned(size: u.offsetSize))
        case DW.FORM.lineStrp: return .lineStrp(try c.unsigned(size: u.offsetSize))
        case DW.FORM.strx, DW.FORM.gnuStrIndex: return .strx(try c.uleb())
        case DW.FORM.strx1: return .strx(UInt64(try c.u8()))
        case DW.FORM.strx2: return .strx(UInt64(try c.u16()))
        case DW.FORM.strx3: return .strx(UInt64(try c.u24()))
        case DW.FORM.strx4: return .strx(UInt64(try c.u32()))
        case DW.FORM.addrx, DW.FORM.gnuAddrIndex: return .addrx(try c.uleb())
        case DW.FORM.addrx1: return .addrx(UInt64(try c.u8()))
        case DW.FORM.addrx2: return .addrx(UInt64(try c.u16()))
        case DW.FORM.addrx3: return .addrx(UInt64(try c.u24()))
        case DW.FORM.addrx4: return .addrx(UInt64(try c.u32()))
        case DW.FORM.ref1: return .reference(u.offset &+ Int(try c.u8()))
        case DW.FORM.ref2: return .reference(u.offset &+ Int(try c.u16()))
        case DW.FORM.ref4: return .reference(u.offset &+ Int(try c.u32()))
        case DW.FORM.ref8: return .reference(u.offset &+ Int(clamping: try c.u64()))
        case DW.FORM.refUdata: return .reference(u.offset &+ Int(clamping: try c.uleb()))
        case DW.FORM.refAddr:
            // DWARF 2 wrote ref_addr with the address size; later versions with the offset size.
            return .reference(Int(clamping: try c.unsigned(size: u.version <= 2 ? u.addressSize : u.offsetSize)))
        case DW.FORM.refSig8: return .signature(try c.u64())
        case DW.FORM.secOffset: return .secOffset(try c.unsigned(size: u.offsetSize))
        case DW.FORM.exprloc, DW.FORM.block: return .block(try c.bytes(try c.uleb()))
        case DW.FORM.block1: return .block(try c.bytes(UInt64(try c.u8())))
        case DW.FORM.block2: return .block(try c.bytes(UInt64(try c.u16())))
        case DW.FORM.block4: return .block(try c.bytes(UInt64(try c.u32())))
        case DW.FORM.loclistx: return .loclistx(try c.uleb())
        case DW.FORM.rnglistx: return .rnglistx(try c.uleb())
        case DW.FORM.refSup4: try c.skip(4); return .unusable
        case DW.FORM.refSup8: try c.skip(8); return .unusable
        case DW.FORM.gnuStrpAlt: return .strpAlt(try c.unsigned(size: u.offsetSize))
        case DW.FORM.gnuRefAlt:
            let o = try c.unsigned(size: u.offsetSize)
            guard altSections != nil else { return .unusable }
            return .reference(altBase &+ Int(clamping: o))
        case DW.FORM.strpSup: try c.skip(u.offsetSize); return .unusable
        default: throw .unsupportedForm(offset: c.offset + shift, form: UInt64(form))
        }
    }

    /// Skips one value of `form` without building it (the index pass). Mirrors `readForm`.
    @inline(__always)
    func skipForm(_ form: UInt16, _ c: inout Cursor, unit u: DWARFUnit) throws(DWARFError) {
        switch form {
        case DW.FORM.flagPresent, DW.FORM.implicitConst: return
        case DW.FORM.data1, DW.FORM.ref1, DW.FORM.flag, DW.FORM.strx1, DW.FORM.addrx1: try c.skip(1)
        case DW.FORM.data2, DW.FORM.ref2, DW.FORM.strx2, DW.FORM.addrx2: try c.skip(2)
        case DW.FORM.strx3, DW.FORM.addrx3: try c.skip(3)
        case DW.FORM.data4, DW.FORM.ref4, DW.FORM.strx4, DW.FORM.addrx4, DW.FORM.refSup4: try c.skip(4)
        case DW.FORM.data8, DW.FORM.ref8, DW.FORM.refSig8, DW.FORM.refSup8: try c.skip(8)
        case DW.FORM.data16: try c.skip(16)
        case DW.FORM.addr: try c.skip(u.addressSize)
        case DW.FORM.strp, DW.FORM.lineStrp, DW.FORM.secOffset, DW.FORM.strpSup, DW.FORM.gnuRefAlt, DW.FORM.gnuStrpAlt:
            try c.skip(u.offsetSize)
        case DW.FORM.refAddr: try c.skip(u.version <= 2 ? u.addressSize : u.offsetSize)
        case DW.FORM.udata, DW.FORM.sdata, DW.FORM.refUdata, DW.FORM.strx, DW.FORM.addrx, DW.FORM.loclistx,
             DW.FORM.rnglistx, DW.FORM.gnuAddrIndex, DW.FORM.gnuStrIndex:
            _ = try c.uleb()
        case DW.FORM.string: try c.skipCString()
        case DW.FORM.exprloc, DW.FORM.block: try c.skip(try c.uleb())
        case DW.FORM.block1: try c.skip(Int(try c.u8()))
        case DW.FORM.block2: try c.skip(Int(try c.u16()))
        case DW.FORM.block4: try c.skip(UInt64(try c.u32()))
        default: _ = try readForm(form, implicit: 0, &c, unit: u, shift: 0)
        }
    }

    // MARK: Value resolution

    func string(_ v: FormValue?, unit: Int) -> String? {
        guard let v else { return nil }
        switch v {
        case .inlineString(let view, let o): return view.cString(at: o)
        case .strp(let o): return units[unit].inAlt ? altSections?.str.string(at: o) : sections.str.string(at: o)
        case .strpAlt(let o): return altSections?.str.string(at: o)
        case .lineStrp(let o): return sections.lineStr.string(at: o)
        case .strx(let i):
            let u = units[unit]
            let (p, o) = i.multipliedReportingOverflow(by: UInt64(u.offsetSize))
            guard !o, let at = Int(exactly: u.strOffsetsBase &+ p) else { return nil }
            var c = Cursor(sections.strOffsets, section: ".debug_str_offsets", offset: at)
            guard let off = try? c.unsigned(size: u.offsetSize) else { return nil }
            return sections.str.string(at: off)
        default: return nil
        }
    }

    func address(_ v: FormValue?, unit: Int) -> UInt64? {
        guard let v else { return nil }
        switch v {
        case .address(let a): return a
        case .addrx(let i): return indexedAddress(i, unit: unit)
        default: return nil
        }
    }

    func indexedAddress(_ i: UInt64, unit: Int) -> UInt64? {
        let u = units[unit]
        let (p, o) = i.multipliedReportingOverflow(by: UInt64(u.addressSize))
        guard !o, let at = Int(exactly: u.addrBase &+ p) else { return nil }
        var c = Cursor(sections.addr, section: ".debug_addr", offset: at)
        return try? c.unsigned(size: u.addressSize)
    }

    /// An unsigned constant (data forms, udata; sdata when not negative).
    func constant(_ v: FormValue?) -> UInt64? {
        guard let v else { return nil }
        switch v {
        case .data(let d): return d
        case .signed(let s): return s >= 0 ? UInt64(s) : nil
        default: return nil
        }
    }

    /// A signed constant: data forms are taken at their width (sign-extended when `signedWidth`).
    func signedConstant(_ v: FormValue?) -> Int64? {
        guard let v else { return nil }
        switch v {
        case .data(let d): return Int64(bitPattern: d)
        case .signed(let s): return s
        default: return nil
        }
    }

    /// The absolute DIE offset a reference names (ref_sig8 through the type units).
    func reference(_ v: FormValue?) -> Int? {
        guard let v else { return nil }
        switch v {
        case .reference(let o): return o
        case .signature(let s):
            guard let i = typeUnitsBySignature[s] else { return nil }
            return units[i].typeOffset
        default: return nil
        }
    }

    func flag(_ v: FormValue?) -> Bool {
        guard let v else { return false }
        switch v {
        case .flag(let f): return f
        case .data(let d): return d != 0
        default: return false
        }
    }

    /// A DIE at an absolute offset, with its unit found for it.
    func die(at offset: Int) throws(DWARFError) -> DIE? {
        guard let u = unitIndex(containing: offset) else {
            throw .malformed(section: ".debug_info", offset: offset, reason: "reference to offset \(offset) is outside every unit")
        }
        return try readDIE(at: offset, unit: u)
    }

    /// The direct children of a DIE (null-terminated sibling chain; grandchildren skipped).
    func children(of d: DIE) throws(DWARFError) -> [DIE] {
        guard d.hasChildren else { return [] }
        var out: [DIE] = []
        var off = d.childrenOffset
        var steps = 0
        while off < units[d.unit].end {
            steps += 1
            guard steps < 1 << 22 else { throw .tooDeep(what: "sibling chain", limit: 1 << 22) }
            guard let child = try readDIE(at: off, unit: d.unit) else { break }
            out.append(child)
            off = try offsetAfterSubtree(child)
        }
        return out
    }

    /// The offset just past a DIE and all its descendants.
    func offsetAfterSubtree(_ d: DIE) throws(DWARFError) -> Int {
        guard d.hasChildren else { return d.childrenOffset }
        // DW_AT_sibling lets us jump, when it points forward inside the unit.
        if let s = reference(d.value(DW.AT.sibling)), s > d.offset, s <= units[d.unit].end { return s }
        let u = units[d.unit]
        let (view, local, name) = sectionView(forAbsolute: d.childrenOffset)
        let shift = d.childrenOffset - local
        var c = Cursor(view, section: name, offset: local)
        var depth = 1
        let table = abbrevs[u.abbrevIndex]
        while depth > 0 {
            guard c.offset + shift < u.end else { throw .truncated(section: name, offset: c.offset, what: "children of the DIE at \(d.offset)") }
            let code = try c.uleb()
            if code == 0 { depth -= 1; continue }
            guard let ab = table.lookup(code) else {
                throw .malformed(section: name, offset: c.offset, reason: "abbreviation code \(code) is not in the unit's table")
            }
            for s in ab.specs { try skipForm(s.form, &c, unit: u) }
            if ab.hasChildren { depth += 1 }
        }
        return c.offset + shift
    }
}
