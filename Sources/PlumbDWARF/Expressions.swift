import PlumbELF

/// One operation of a DWARF location expression, decoded. The code generator compiles these
/// to BPF loads; operations it need not understand are kept as `.other` with their opcode.
public enum DWARFOp: Equatable, Sendable {
    /// DW_OP_addr / addrx (resolved through .debug_addr): a static address.
    case addr(UInt64)
    /// DW_OP_reg0..31 / regx: the value lives in a register.
    case reg(Int)
    /// DW_OP_breg0..31 / bregx: register plus offset (an address).
    case breg(Int, Int64)
    /// DW_OP_fbreg: frame base plus offset.
    case fbreg(Int64)
    /// DW_OP_call_frame_cfa: the canonical frame address (from .eh_frame/.debug_frame).
    case callFrameCFA
    case piece(size: UInt64)
    case bitPiece(size: UInt64, offset: UInt64)
    /// DW_OP_stack_value: the top of stack is the value, not its address.
    case stackValue
    /// Constants (lit0..31, const1u..8s, constu, consts, constx).
    case const(Int64)
    case implicitValue([UInt8])
    case implicitPointer(die: Int, offset: Int64)
    case entryValue([DWARFOp])
    /// DW_OP_form_tls_address / GNU_push_tls_address: the top of stack is a TLS offset.
    case tlsAddress
    case deref
    case derefSize(Int)
    case plusUconst(UInt64)
    case dup, drop, over, pick(Int), swap, rot
    case abs, and, div, minus, mod, mul, neg, not, or, plus, shl, shr, shra, xor
    case eq, ge, gt, le, lt, ne
    case skip(Int), bra(Int)
    case nop
    case convert(Int)
    case regvalType(reg: Int, typeDIE: Int)
    case constType(typeDIE: Int, bytes: [UInt8])
    case parameterRef(Int)
    case other(UInt8)
}

/// A location over an address range (a location list entry, or the whole scope for exprloc).
public struct DWARFLocationRange: Equatable, Sendable {
    /// nil for a location valid over the whole scope (a single expression, or a default entry).
    public var range: Range<UInt64>?
    public var expression: [DWARFOp]
}

public enum DWARFLocation: Equatable, Sendable {
    /// One expression for the whole scope.
    case expression([DWARFOp])
    /// A location list: the expression depends on the pc.
    case list([DWARFLocationRange])
    /// No location at all (optimized out everywhere).
    case none

    /// The expression that applies at `pc`, or nil when the value is optimized out there.
    public func expression(at pc: UInt64) -> [DWARFOp]? {
        switch self {
        case .expression(let e): return e.isEmpty ? nil : e
        case .none: return nil
        case .list(let entries):
            for e in entries where e.range?.contains(pc) ?? false { return e.expression.isEmpty ? nil : e.expression }
            for e in entries where e.range == nil { return e.expression.isEmpty ? nil : e.expression }
            return nil
        }
    }
}

enum DWARFExpression {
    static let maxOps = 4096

    /// Whether an exprloc is a static address: DW_OP_addr/addrx, possibly then a TLS operator.
    static func isStaticLocation(_ b: ByteView) -> Bool {
        guard let op = b.u8(0) else { return false }
        if op == 0x03 || op == 0xa1 || op == 0xfb { return true }     // addr, addrx, GNU_addr_index
        // const*u / constu + form_tls_address / GNU_push_tls_address: a thread-local.
        guard let last = b.u8(b.count - 1) else { return false }
        return last == 0x9b || last == 0xe0
    }

    /// Decodes an expression. `addrx` resolves DW_OP_addrx/constx through the unit.
    static func decode(_ data: ByteView, addressSize: Int, offsetSize: Int, version: Int, unitOffset: Int,
                       addrx: (UInt64) -> UInt64?, depth: Int = 0) throws(DWARFError) -> [DWARFOp] {
        guard depth < 4 else { throw .tooDeep(what: "DW_OP_entry_value nesting", limit: 4) }
        var c = Cursor(data, section: "location expression")
        var ops: [DWARFOp] = []
        while !c.atEnd {
            guard ops.count < maxOps else { throw .tooDeep(what: "location expression length", limit: maxOps) }
            let op = try c.u8()
            switch op {
            case 0x03: ops.append(.addr(try c.unsigned(size: addressSize)))
            case 0x06: ops.append(.deref)
            case 0x08: ops.append(.const(Int64(try c.u8())))
            case 0x09: ops.append(.const(Int64(Int8(bitPattern: try c.u8()))))
            case 0x0a: ops.append(.const(Int64(try c.u16())))
            case 0x0b: ops.append(.const(Int64(Int16(bitPattern: try c.u16()))))
            case 0x0c: ops.append(.const(Int64(try c.u32())))
            case 0x0d: ops.append(.const(Int64(Int32(bitPattern: try c.u32()))))
            case 0x0e: ops.append(.const(Int64(bitPattern: try c.u64())))
            case 0x0f: ops.append(.const(Int64(bitPattern: try c.u64())))
            case 0x10: ops.append(.const(Int64(bitPattern: try c.uleb())))
            case 0x11: ops.append(.const(try c.sleb()))
            case 0x12: ops.append(.dup)
            case 0x13: ops.append(.drop)
            case 0x14: ops.append(.over)
            case 0x15: ops.append(.pick(Int(try c.u8())))
            case 0x16: ops.append(.swap)
            case 0x17: ops.append(.rot)
            case 0x19: ops.append(.abs)
            case 0x1a: ops.append(.and)
            case 0x1b: ops.append(.div)
            case 0x1c: ops.append(.minus)
            case 0x1d: ops.append(.mod)
            case 0x1e: ops.append(.mul)
            case 0x1f: ops.append(.neg)
            case 0x20: ops.append(.not)
            case 0x21: ops.append(.or)
            case 0x22: ops.append(.plus)
            case 0x23: ops.append(.plusUconst(try c.uleb()))
            case 0x24: ops.append(.shl)
            case 0x25: ops.append(.shr)
            case 0x26: ops.append(.shra)
            case 0x27: ops.append(.xor)
            case 0x28: ops.append(.bra(Int(Int16(bitPattern: try c.u16()))))
            case 0x29: ops.append(.eq)
            case 0x2a: ops.append(.ge)
            case 0x2b: ops.append(.gt)
            case 0x2c: ops.append(.le)
            case 0x2d: ops.append(.lt)
            case 0x2e: ops.append(.ne)
            case 0x2f: ops.append(.skip(Int(Int16(bitPattern: try c.u16()))))
            case 0x30...0x4f: ops.append(.const(Int64(op - 0x30)))
            case 0x50...0x6f: ops.append(.reg(Int(op - 0x50)))
            case 0x70...0x8f: ops.append(.breg(Int(op - 0x70), try c.sleb()))
            case 0x90: ops.append(.reg(Int(clamping: try c.uleb())))
            case 0x91: ops.append(.fbreg(try c.sleb()))
            case 0x92:
                let r = Int(clamping: try c.uleb())
                ops.append(.breg(r, try c.sleb()))
            case 0x93: ops.append(.piece(size: try c.uleb()))
            case 0x94: ops.append(.derefSize(Int(try c.u8())))
            case 0x96: ops.append(.nop)
            case 0x9c: ops.append(.callFrameCFA)
            case 0x9d:
                let size = try c.uleb()
                ops.append(.bitPiece(size: size, offset: try c.uleb()))
            case 0x9e:
                let n = try c.uleb()
                ops.append(.implicitValue(try c.bytes(n).toArray()))
            case 0x9f: ops.append(.stackValue)
            case 0x9b, 0xe0: ops.append(.tlsAddress)
            case 0xa0, 0xf2:  // implicit_pointer, GNU_implicit_pointer
                let ref = try c.unsigned(size: version <= 2 ? addressSize : offsetSize)
                ops.append(.implicitPointer(die: Int(clamping: ref), offset: try c.sleb()))
            case 0xa1, 0xa2, 0xfb, 0xfc:  // addrx, constx, GNU_addr_index, GNU_const_index
                let i = try c.uleb()
                guard let a = addrx(i) else {
                    throw .malformed(section: ".debug_addr", offset: Int(clamping: i), reason: "address index \(i) is outside .debug_addr")
                }
                ops.append(op == 0xa1 || op == 0xfb ? .addr(a) : .const(Int64(bitPattern: a)))
            case 0xa3, 0xf3:  // entry_value, GNU_entry_value
                let n = try c.uleb()
                let inner = try c.bytes(n)
                ops.append(.entryValue(try decode(inner, addressSize: addressSize, offsetSize: offsetSize, version: version,
                                                  unitOffset: unitOffset, addrx: addrx, depth: depth + 1)))
            case 0xa4, 0xf4:  // const_type
                let t = try c.uleb()
                let n = try c.u8()
                ops.append(.constType(typeDIE: unitOffset &+ Int(clamping: t), bytes: try c.bytes(UInt64(n)).toArray()))
            case 0xa5, 0xf5:  // regval_type
                let r = Int(clamping: try c.uleb())
                ops.append(.regvalType(reg: r, typeDIE: unitOffset &+ Int(clamping: try c.uleb())))
            case 0xa6, 0xf6:  // deref_type
                let size = try c.u8()
                _ = try c.uleb()
                ops.append(.derefSize(Int(size)))
            case 0xa8, 0xa9, 0xf7, 0xf9:  // convert, reinterpret
                ops.append(.convert(unitOffset &+ Int(clamping: try c.uleb())))
            case 0xfa: ops.append(.parameterRef(Int(try c.u32())))
            case 0x98: _ = try c.u16(); ops.append(.other(op))   // call2
            case 0x99: _ = try c.u32(); ops.append(.other(op))   // call4
            case 0x9a: _ = try c.unsigned(size: offsetSize); ops.append(.other(op))  // call_ref
            case 0x95: _ = try c.u8(); ops.append(.other(op))    // xderef_size
            case 0x18, 0x97, 0xf0: ops.append(.other(op))        // xderef, push_object_address, GNU_uninit
            default:
                // An operator we cannot size: stop here rather than misread what follows.
                ops.append(.other(op))
                return ops
            }
        }
        return ops
    }
}

extension DWARF {
    func decodeExpression(_ b: ByteView, unit ui: Int) throws(DWARFError) -> [DWARFOp] {
        let u = units[ui]
        return try DWARFExpression.decode(b, addressSize: u.addressSize, offsetSize: u.offsetSize, version: u.version,
                                          unitOffset: u.offset, addrx: { self.indexedAddress($0, unit: ui) })
    }

    /// A DW_AT_location (or DW_AT_frame_base) value: an expression, or a location list.
    func location(_ v: FormValue?, unit ui: Int) throws(DWARFError) -> DWARFLocation {
        guard let v else { return .none }
        let u = units[ui]
        switch v {
        case .block(let b): return .expression(try decodeExpression(b, unit: ui))
        case .secOffset(let o): return try locationList(at: o, unit: ui)
        case .data(let o) where u.version < 4: return try locationList(at: o, unit: ui)
        case .loclistx(let i):
            let (p, ovf) = i.multipliedReportingOverflow(by: UInt64(u.offsetSize))
            guard !ovf, let at = Int(exactly: u.loclistsBase &+ p) else { return .none }
            var c = Cursor(try sections.lazy(".debug_loclists"), section: ".debug_loclists", offset: at)
            let rel = try c.unsigned(size: u.offsetSize)
            return try locationList(at: u.loclistsBase &+ rel, unit: ui)
        default: return .none
        }
    }

    static let maxListEntries = 1 << 16

    func locationList(at offset: UInt64, unit ui: Int) throws(DWARFError) -> DWARFLocation {
        // Many variables may share one list (hostile files: one huge list): decode it once.
        let key = LocationListKey(offset: offset, unit: ui)
        if let l = locationLists[key] { return l }
        let l = try decodeLocationList(at: offset, unit: ui)
        locationLists[key] = l
        return l
    }

    private func decodeLocationList(at offset: UInt64, unit ui: Int) throws(DWARFError) -> DWARFLocation {
        let u = units[ui]
        var out: [DWARFLocationRange] = []
        var base = u.baseAddress
        if u.version >= 5 {
            guard let at = Int(exactly: offset) else { return .none }
            var c = Cursor(try sections.lazy(".debug_loclists"), section: ".debug_loclists", offset: at)
            while out.count < Self.maxListEntries {
                let kind = try c.u8()
                var range: Range<UInt64>?? = nil   // .some(nil): default location
                switch kind {
                case 0: return .list(out)
                case 1: base = try addrx(try c.uleb(), ui)
                    continue
                case 2: let s = try addrx(try c.uleb(), ui), e = try addrx(try c.uleb(), ui); range = .some(Self.range(s, e))
                case 3: let s = try addrx(try c.uleb(), ui), l = try c.uleb(); range = .some(Self.range(s, s &+ l))
                case 4: let s = try c.uleb(), e = try c.uleb(); range = .some(Self.range(base &+ s, base &+ e))
                case 5: range = .some(nil)
                case 6: base = try c.unsigned(size: u.addressSize)
                    continue
                case 7: let s = try c.unsigned(size: u.addressSize), e = try c.unsigned(size: u.addressSize); range = .some(Self.range(s, e))
                case 8: let s = try c.unsigned(size: u.addressSize), l = try c.uleb(); range = .some(Self.range(s, s &+ l))
                default:
                    throw .malformed(section: ".debug_loclists", offset: c.offset - 1, reason: "unknown entry kind \(kind)")
                }
                let n = try c.uleb()
                let expr = try decodeExpression(try c.bytes(n), unit: ui)
                if case .some(let r) = range { out.append(DWARFLocationRange(range: r, expression: expr)) }
            }
            throw .tooDeep(what: "location list", limit: Self.maxListEntries)
        }
        guard let at = Int(exactly: offset) else { return .none }
        var c = Cursor(try sections.lazy(".debug_loc"), section: ".debug_loc", offset: at)
        let maxAddr: UInt64 = u.addressSize == 4 ? 0xffff_ffff : .max
        while out.count < Self.maxListEntries {
            let s = try c.unsigned(size: u.addressSize), e = try c.unsigned(size: u.addressSize)
            if s == 0 && e == 0 { return .list(out) }
            if s == maxAddr { base = e; continue }
            let n = try c.u16()
            let expr = try decodeExpression(try c.bytes(UInt64(n)), unit: ui)
            out.append(DWARFLocationRange(range: Self.range(base &+ s, base &+ e), expression: expr))
        }
        throw .tooDeep(what: "location list", limit: Self.maxListEntries)
    }

    private func addrx(_ i: UInt64, _ ui: Int) throws(DWARFError) -> UInt64 {
        guard let a = indexedAddress(i, unit: ui) else {
            throw .malformed(section: ".debug_addr", offset: Int(clamping: units[ui].addrBase), reason: "address index \(i) is outside .debug_addr")
        }
        return a
    }

    static func range(_ s: UInt64, _ e: UInt64) -> Range<UInt64> { s..<max(s, e) }

    /// The address ranges a DIE covers: low_pc/high_pc, or DW_AT_ranges.
    func ranges(of d: DIE) throws(DWARFError) -> [Range<UInt64>] {
        if let low = address(d.value(DW.AT.lowPC), unit: d.unit) {
            guard let hv = d.value(DW.AT.highPC) else { return [low..<(low &+ 1)] }
            if let high = address(hv, unit: d.unit) { return [Self.range(low, high)] }
            if let len = constant(hv) { return [Self.range(low, low &+ len)] }
            return []
        }
        guard let rv = d.value(DW.AT.ranges) else { return [] }
        return try rangeList(rv, unit: d.unit)
    }

    func rangeList(_ v: FormValue, unit ui: Int) throws(DWARFError) -> [Range<UInt64>] {
        let u = units[ui]
        var offset: UInt64
        switch v {
        case .secOffset(let o), .data(let o): offset = o
        case .rnglistx(let i):
            let (p, ovf) = i.multipliedReportingOverflow(by: UInt64(u.offsetSize))
            guard !ovf, let at = Int(exactly: u.rnglistsBase &+ p) else { return [] }
            var c = Cursor(try sections.lazy(".debug_rnglists"), section: ".debug_rnglists", offset: at)
            offset = u.rnglistsBase &+ (try c.unsigned(size: u.offsetSize))
        default: return []
        }
        var out: [Range<UInt64>] = []
        var base = u.baseAddress
        guard let at = Int(exactly: offset) else { return [] }
        if u.version >= 5 {
            // Split-free DWARF 5 with ranges in sec_offset form and a DW_AT_rnglists_base: the
            // offset is from the section start either way for DW_AT_ranges.
            var c = Cursor(try sections.lazy(".debug_rnglists"), section: ".debug_rnglists", offset: at)
            while out.count < Self.maxListEntries {
                let kind = try c.u8()
                switch kind {
                case 0: return out
                case 1: base = try addrx(try c.uleb(), ui)
                case 2: let s = try addrx(try c.uleb(), ui), e = try addrx(try c.uleb(), ui); out.append(Self.range(s, e))
                case 3: let s = try addrx(try c.uleb(), ui), l = try c.uleb(); out.append(Self.range(s, s &+ l))
                case 4: let s = try c.uleb(), e = try c.uleb(); out.append(Self.range(base &+ s, base &+ e))
                case 5: base = try c.unsigned(size: u.addressSize)
                case 6: let s = try c.unsigned(size: u.addressSize), e = try c.unsigned(size: u.addressSize); out.append(Self.range(s, e))
                case 7: let s = try c.unsigned(size: u.addressSize), l = try c.uleb(); out.append(Self.range(s, s &+ l))
                default: throw .malformed(section: ".debug_rnglists", offset: c.offset - 1, reason: "unknown entry kind \(kind)")
                }
            }
            throw .tooDeep(what: "range list", limit: Self.maxListEntries)
        }
        var c = Cursor(try sections.lazy(".debug_ranges"), section: ".debug_ranges", offset: at)
        let maxAddr: UInt64 = u.addressSize == 4 ? 0xffff_ffff : .max
        while out.count < Self.maxListEntries {
            let s = try c.unsigned(size: u.addressSize), e = try c.unsigned(size: u.addressSize)
            if s == 0 && e == 0 { return out }
            if s == maxAddr { base = e; continue }
            out.append(Self.range(base &+ s, base &+ e))
        }
        throw .tooDeep(what: "range list", limit: Self.maxListEntries)
    }
}

extension DWARFOp {
    /// Decodes a standalone location expression (DW_OP_addrx/constx cannot be resolved here
    /// and are rejected). For tools and tests; locations from a file come decoded already.
    public static func decode(_ bytes: [UInt8], addressSize: Int = 8, order: ByteOrder = .host) throws(DWARFError) -> [DWARFOp] {
        guard addressSize == 4 || addressSize == 8 else {
            throw .malformed(section: "location expression", offset: 0, reason: "address size \(addressSize)")
        }
        return try DWARFExpression.decode(ByteView(Bytes(bytes), order: order), addressSize: addressSize, offsetSize: 4,
                                          version: 5, unitOffset: 0, addrx: { _ in nil })
    }
}

struct LocationListKey: Hashable {
    var offset: UInt64
    var unit: Int
}
