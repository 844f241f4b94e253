import PlumbELF
import PlumbBTF

/// DWARF types -> BTF types (what pahole does), on demand and memoized by DIE offset.
extension DWARF {
    /// The BTF of every type converted so far (encoded and parsed; cached until more are added).
    public func btf() throws(DWARFError) -> BTF {
        drainPendingComposites()
        if let b = cachedBTF { return b }
        var copy = builder
        let bytes = copy.encode()
        do {
            let b = try BTF(bytes: Bytes(bytes))
            cachedBTF = b
            return b
        } catch { throw .btf(error) }
    }

    /// One converted type, always current (unlike a `btf()` snapshot taken before the id existed).
    public func type(_ id: TypeID) throws(DWARFError) -> BTFType {
        drainPendingComposites()
        if id == 0 { return .void }
        guard Int(id) <= builder.types.count else { throw .btf(.noSuchType(id)) }
        return builder.types[Int(id) - 1]
    }

    /// Converts the type named `name` ("struct malloc_state", "union x", "enum y", or a
    /// typedef/base type name such as "size_t") and returns its id in `btf()`.
    public func typeID(named name: String) throws(DWARFError) -> TypeID {
        if let id = typeIDs[name] { return id }
        guard let dies = typeIndex[name], !dies.isEmpty else { throw .noSuchType(name) }
        // A definition beats a declaration.
        let die = dies.first { !typeDeclarations.contains($0) } ?? dies[0]
        let id = try typeID(forDIE: die, depth: 0)
        typeIDs[name] = id
        return id
    }

    /// Converts every named type the index knows (pahole-style whole-file conversion).
    public func convertAllNamedTypes() throws(DWARFError) -> BTF {
        for name in typeIndex.keys.sorted() { _ = try typeID(named: name) }
        return try btf()
    }

    func typeOf(_ d: DIE, depth: Int, viaPointer: Bool = false) throws(DWARFError) -> TypeID {
        guard let v = d.value(DW.AT.type) else { return 0 }
        guard let ref = reference(v) else { return 0 }
        return try typeID(forDIE: ref, depth: depth + 1, viaPointer: viaPointer)
    }

    /// Fills the structs and unions reached through pointers, whose members were deferred:
    /// converting them on the spot would recurse once per pointer hop (a big program's type
    /// graph is deep), so they wait in a worklist and recursion stays as deep as by-value nesting.
    func drainPendingComposites() {
        while let (off, id) = pendingComposites.popLast() {
            guard let d = try? die(at: off) else { continue }
            let name = string(d.value(DW.AT.name), unit: d.unit) ?? ""
            do {
                try fillComposite(d, id: id, name: name, depth: 0)
            } catch {
                // The struct keeps its name and size, without members.
                typeWarnings.append("\(name.isEmpty ? "anonymous type" : name) at DIE \(off): \(error)")
            }
        }
    }

    private func add(_ t: BTFType, dedupe: Bool = true) -> TypeID {
        cachedBTF = nil
        if dedupe {
            let key = String(describing: t)
            if let id = dedup[key] { return id }
            let id = builder.add(t)
            dedup[key] = id
            return id
        }
        return builder.add(t)
    }

    private func indexType() -> TypeID {
        if let t = arrayIndexType { return t }
        let t = add(BTFType(kind: .int, name: "__ARRAY_SIZE_TYPE__", sizeOrType: 4,
                            payload: .int(BTFInt(encoding: [], offset: 0, bits: 32))))
        arrayIndexType = t
        return t
    }

    /// The size in bytes of a converted type (through typedefs and modifiers).
    func byteSize(of id: TypeID) -> UInt64 {
        var id = id
        for _ in 0..<64 {
            guard id > 0, Int(id) <= builder.types.count else { return 0 }
            let t = builder.types[Int(id) - 1]
            switch t.kind {
            case .int, .struct, .union, .enum, .enum64, .float: return UInt64(t.size)
            case .pointer: return 8
            case .array:
                guard let a = t.arrayInfo else { return 0 }
                return UInt64(a.count) &* byteSize(of: a.elementType)
            case .typedef, .const, .volatile, .restrict, .typeTag: id = t.type
            default: return 0
            }
        }
        return 0
    }

    /// The BTF id for the type DIE at `offset`.
    func typeID(forDIE offset: Int, depth: Int, viaPointer: Bool = false) throws(DWARFError) -> TypeID {
        if let id = typeMemo[offset] { return id }
        guard depth < Self.maxTypeDepth else { throw .tooDeep(what: "type chain", limit: Self.maxTypeDepth) }
        guard let d = try die(at: offset) else { return 0 }
        // A stub standing for a type unit's type (-fdebug-types-section): use the type unit's.
        if let sig = d.value(DW.AT.signature), let target = reference(sig), target != offset {
            let id = try typeID(forDIE: target, depth: depth + 1, viaPointer: viaPointer)
            typeMemo[offset] = id
            return id
        }
        let name = string(d.value(DW.AT.name), unit: d.unit) ?? ""
        let id: TypeID
        switch d.tag {
        case DW.TAG.baseType:
            let size = constant(d.value(DW.AT.byteSize)) ?? 0
            let enc = constant(d.value(DW.AT.encoding)) ?? 0
            if enc == DW.ATE.float && (size == 2 || size == 4 || size == 8 || size == 12 || size == 16) {
                id = add(BTFType(kind: .float, name: name, sizeOrType: UInt32(size)))
            } else if size >= 1 && size <= 16 {
                var e: IntEncoding = []
                switch enc {
                case DW.ATE.signed: e = .signed
                case DW.ATE.signedChar: e = [.signed, .char]
                case DW.ATE.unsignedChar: e = .char
                case DW.ATE.boolean: e = .bool
                default: break
                }
                let bits = UInt8(clamping: (constant(d.value(DW.AT.bitSize)) ?? size * 8))
                id = add(BTFType(kind: .int, name: name, sizeOrType: UInt32(size),
                                 payload: .int(BTFInt(encoding: e, offset: 0, bits: bits))))
            } else {
                // BTF ints stop at 128 bits: wider base types (complex long double) become byte arrays.
                let byte = add(BTFType(kind: .int, name: "unsigned char", sizeOrType: 1,
                                       payload: .int(BTFInt(encoding: .char, offset: 0, bits: 8))))
                let arr = add(BTFType(kind: .array, payload: .array(BTFArray(elementType: byte, indexType: indexType(),
                                                                          count: UInt32(clamping: size)))))
                id = add(BTFType(kind: .typedef, name: name, sizeOrType: arr))
            }
        case DW.TAG.pointerType, DW.TAG.referenceType, DW.TAG.rvalueReferenceType, DW.TAG.ptrToMemberType:
            let target = try typeOf(d, depth: depth, viaPointer: true)
            id = add(BTFType(kind: .pointer, sizeOrType: target))
        case DW.TAG.constType:
            id = add(BTFType(kind: .const, sizeOrType: try typeOf(d, depth: depth, viaPointer: viaPointer)))
        case DW.TAG.volatileType:
            id = add(BTFType(kind: .volatile, sizeOrType: try typeOf(d, depth: depth, viaPointer: viaPointer)))
        case DW.TAG.restrictType:
            id = add(BTFType(kind: .restrict, sizeOrType: try typeOf(d, depth: depth, viaPointer: viaPointer)))
        case DW.TAG.atomicType:
            id = try typeOf(d, depth: depth, viaPointer: viaPointer)
        case DW.TAG.typedef:
            id = add(BTFType(kind: .typedef, name: name, sizeOrType: try typeOf(d, depth: depth, viaPointer: viaPointer)))
        case DW.TAG.arrayType:
            id = try convertArray(d, depth: depth)
        case DW.TAG.structureType, DW.TAG.classType, DW.TAG.unionType:
            id = try convertComposite(d, name: name, depth: depth, deferMembers: viaPointer)
        case DW.TAG.enumerationType:
            id = try convertEnum(d, name: name, depth: depth)
        case DW.TAG.subroutineType:
            id = try convertProto(d, depth: depth, names: false)
        default:
            // unspecified_type (void in C, nullptr_t in C++) and kinds BTF cannot say.
            id = 0
        }
        typeMemo[offset] = id
        // Named types converted along the way join the name map too (first one wins).
        if !name.isEmpty && id != 0 {
            let key: String?
            switch d.tag {
            case DW.TAG.structureType, DW.TAG.classType: key = "struct " + name
            case DW.TAG.unionType: key = "union " + name
            case DW.TAG.enumerationType: key = "enum " + name
            case DW.TAG.typedef, DW.TAG.baseType: key = name
            default: key = nil
            }
            if let key, typeIDs[key] == nil { typeIDs[key] = id }
        }
        return id
    }

    private func convertArray(_ d: DIE, depth: Int) throws(DWARFError) -> TypeID {
        var element = try typeOf(d, depth: depth)
        var counts: [UInt32] = []
        for c in try children(of: d) where c.tag == DW.TAG.subrangeType || c.tag == DW.TAG.enumerationType {
            if let n = constant(c.value(DW.AT.count)) {
                counts.append(UInt32(clamping: n))
            } else if let up = signedConstant(c.value(DW.AT.upperBound)) {
                let low = signedConstant(c.value(DW.AT.lowerBound)) ?? 0
                let (n, o) = up.subtractingReportingOverflow(low)
                counts.append(o || n < 0 ? 0 : UInt32(clamping: n &+ 1))
            } else {
                counts.append(0)  // flexible or variable-length
            }
            guard counts.count <= 64 else { throw .tooDeep(what: "array dimensions", limit: 64) }
        }
        if counts.isEmpty { counts = [0] }
        let idx = indexType()
        for n in counts.reversed() {
            element = add(BTFType(kind: .array, payload: .array(BTFArray(elementType: element, indexType: idx, count: n))))
        }
        return element
    }

    private func convertComposite(_ d: DIE, name: String, depth: Int, deferMembers: Bool) throws(DWARFError) -> TypeID {
        let isUnion = d.tag == DW.TAG.unionType
        if flag(d.value(DW.AT.declaration)) {
            // Resolve a declaration to a definition elsewhere, as a C compiler's linker would.
            let key = (isUnion ? "union " : "struct ") + name
            if !name.isEmpty, let defs = typeIndex[key], let def = defs.first(where: { !typeDeclarations.contains($0) }) {
                typeMemo[d.offset] = try typeID(forDIE: def, depth: depth + 1, viaPointer: deferMembers)
                return typeMemo[d.offset] ?? 0
            }
            return add(BTFType(kind: .forward, name: name, kindFlag: isUnion))
        }
        // Every compile unit repeats the structs it uses: one named definition stands for all
        // copies with the same size and member names, so ids compare equal across units.
        if !name.isEmpty, let canon = try canonicalDefinition(of: d, key: (isUnion ? "union " : "struct ") + name),
           canon != d.offset {
            return try typeID(forDIE: canon, depth: depth + 1, viaPointer: deferMembers)
        }
        let size = UInt32(clamping: constant(d.value(DW.AT.byteSize)) ?? 0)
        // Reserve the id before the members so self-references resolve to it.
        let id = add(BTFType(kind: isUnion ? .union : .struct, name: name, sizeOrType: size), dedupe: false)
        typeMemo[d.offset] = id
        if deferMembers {
            pendingComposites.append((d.offset, id))
        } else {
            try fillComposite(d, id: id, name: name, depth: depth)
        }
        return id
    }

    /// Converts the members of a struct or union whose id is reserved.
    func fillComposite(_ d: DIE, id: TypeID, name: String, depth: Int) throws(DWARFError) {
        let isUnion = d.tag == DW.TAG.unionType
        let size = UInt32(clamping: constant(d.value(DW.AT.byteSize)) ?? 0)
        var members: [BTFMember] = []
        var bitfields = false
        for m in try children(of: d) where m.tag == DW.TAG.member || m.tag == DW.TAG.inheritance {
            // Static data members (C++) have no place in the layout.
            if m.tag == DW.TAG.member && (flag(m.value(DW.AT.external)) || flag(m.value(DW.AT.declaration))) { continue }
            let t = try typeOf(m, depth: depth)
            let mname = string(m.value(DW.AT.name), unit: m.unit) ?? ""
            var bitOffset: UInt64 = 0
            var bitSize: UInt64 = 0
            if let loc = m.value(DW.AT.dataMemberLocation) {
                if let c = constant(loc) {
                    bitOffset = c &* 8
                } else if case .block(let b) = loc, let ops = try? decodeExpression(b, unit: m.unit),
                          ops.count == 1, case .plusUconst(let c) = ops[0] {
                    bitOffset = c &* 8
                }
            }
            if let bs = constant(m.value(DW.AT.bitSize)) {
                bitSize = bs
                if let dbo = constant(m.value(DW.AT.dataBitOffset)) {
                    bitOffset = dbo
                } else if let bo = signedConstant(m.value(DW.AT.bitOffset)) {
                    // DWARF 2/3: bits counted from the storage unit's most significant bit.
                    let storage = constant(m.value(DW.AT.byteSize)) ?? byteSize(of: t)
                    let fromLSB = Int64(bitPattern: storage &* 8) &- bo &- Int64(bitPattern: bs)
                    if sections.order == .little { bitOffset = bitOffset &+ UInt64(bitPattern: max(0, fromLSB)) }
                    else { bitOffset = bitOffset &+ UInt64(bitPattern: bo) }
                }
            } else if let dbo = constant(m.value(DW.AT.dataBitOffset)) {
                bitOffset = dbo
            }
            if bitSize > 0 { bitfields = true }
            members.append(BTFMember(name: mname, type: t, bitOffset: UInt32(clamping: bitOffset),
                                     bitfieldSize: UInt8(clamping: bitSize)))
            if members.count >= 0xffff { break }
        }
        builder.replace(id, with: BTFType(kind: isUnion ? .union : .struct, name: name, kindFlag: bitfields,
                                          sizeOrType: size, payload: .members(members)))
        cachedBTF = nil
    }

    /// The first indexed definition named `key` with the same size and member names as `d`.
    private func canonicalDefinition(of d: DIE, key: String) throws(DWARFError) -> Int? {
        guard let defs = typeIndex[key] else { return nil }
        guard let first = defs.first(where: { !typeDeclarations.contains($0) }), first != d.offset else { return nil }
        if let known = canonicalChecked[d.offset] { return known ? first : nil }
        guard let other = try die(at: first), other.tag == d.tag,
              constant(other.value(DW.AT.byteSize)) == constant(d.value(DW.AT.byteSize)) else {
            canonicalChecked[d.offset] = false
            return nil
        }
        func names(_ x: DIE) throws(DWARFError) -> [String] {
            try children(of: x).filter { $0.tag == DW.TAG.member }.map { string($0.value(DW.AT.name), unit: $0.unit) ?? "" }
        }
        let same = try names(other) == names(d)
        canonicalChecked[d.offset] = same
        return same ? first : nil
    }

    private func convertEnum(_ d: DIE, name: String, depth: Int) throws(DWARFError) -> TypeID {
        if flag(d.value(DW.AT.declaration)), !name.isEmpty, let defs = typeIndex["enum " + name],
           let def = defs.first(where: { !typeDeclarations.contains($0) }), def != d.offset {
            return try typeID(forDIE: def, depth: depth + 1)
        }
        let size = constant(d.value(DW.AT.byteSize)) ?? 4
        var signed = false
        if let u = reference(d.value(DW.AT.type)), let base = try die(at: u), base.tag == DW.TAG.baseType {
            let enc = constant(base.value(DW.AT.encoding)) ?? 0
            signed = enc == DW.ATE.signed || enc == DW.ATE.signedChar
        }
        var values: [BTFEnumerator] = []
        var wide = size > 4
        for e in try children(of: d) where e.tag == DW.TAG.enumerator {
            let n = string(e.value(DW.AT.name), unit: e.unit) ?? ""
            var v: UInt64 = 0
            switch e.value(DW.AT.constValue) {
            case .signed(let s)?:
                if s < 0 { signed = true }
                if s < Int64(Int32.min) || s > Int64(UInt32.max) { wide = true }
                v = UInt64(bitPattern: s)
            case .data(let x)?:
                if x > UInt64(UInt32.max) { wide = true }
                v = x
            default: break
            }
            values.append(BTFEnumerator(name: n, value: v))
            if values.count >= 0xffff { break }
        }
        return add(BTFType(kind: wide ? .enum64 : .enum, name: name, kindFlag: signed,
                           sizeOrType: UInt32(clamping: size), payload: .enumerators(values)))
    }

    /// A FUNC_PROTO from a subroutine type or a subprogram's parameters.
    func convertProto(_ d: DIE, depth: Int, names: Bool) throws(DWARFError) -> TypeID {
        let ret = try typeOf(d, depth: depth)
        var params: [BTFParam] = []
        for p in try children(of: d) {
            if p.tag == DW.TAG.formalParameter {
                let (pname, ptype) = try parameter(p, depth: depth)
                params.append(BTFParam(name: names ? pname : "", type: ptype))
            } else if p.tag == DW.TAG.unspecifiedParameters {
                params.append(BTFParam(name: "", type: 0))
            }
            if params.count >= 0xffff { break }
        }
        return add(BTFType(kind: .functionProto, sizeOrType: ret, payload: .params(params)))
    }

    /// A parameter's name and type, looking through DW_AT_abstract_origin (inlined and
    /// out-of-line copies carry only locations).
    func parameter(_ p: DIE, depth: Int) throws(DWARFError) -> (String, TypeID) {
        var name: String?
        var typed: DIE?
        var cur = p
        for _ in 0..<8 {
            if name == nil { name = string(cur.value(DW.AT.name), unit: cur.unit) }
            if typed == nil && cur.has(DW.AT.type) { typed = cur }
            if name != nil && typed != nil { break }
            guard let o = reference(cur.value(DW.AT.abstractOrigin)) ?? reference(cur.value(DW.AT.specification)),
                  let next = try die(at: o) else { break }
            cur = next
        }
        return (name ?? "", try typed.map { (t) throws(DWARFError) in try typeOf(t, depth: depth) } ?? 0)
    }
}
