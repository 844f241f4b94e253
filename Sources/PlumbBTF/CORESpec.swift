import PlumbELF

// The access-spec model and the type-compatibility rules of libbpf's relo_core.c, written
// anew in Swift: parsing a local access string, matching it against a target candidate,
// and the three compatibility relations (types_are_compat, fields_are_compat, types_match).

/// What the CO-RE internals throw: a reason, which `COREResolver.solve` turns into a
/// `BTFError.relocation` naming the relocation. Not public: callers see only BTFError.
struct COREFailure: Error {
    var reason: COREReason
    static func badBTF(_ r: String) -> COREFailure { COREFailure(reason: .badBTF(r)) }
    static func badAccessString(_ r: String) -> COREFailure { COREFailure(reason: .badAccessString(r)) }
    static let arrayAccess = COREFailure(reason: .arrayAccess)
    static let bitfieldTooWide = COREFailure(reason: .bitfieldTooWide)
}

/// A BTF with the cache CO-RE needs: decoded types (big structs are matched many times).
/// Sizes come from the BTF's own layout cache.
final class COREBTF: @unchecked Sendable {
    let btf: BTF
    private var decoded: [TypeID: BTFType] = [:]

    init(_ btf: BTF) { self.btf = btf }

    func type(_ id: TypeID) throws(COREFailure) -> BTFType {
        if let t = decoded[id] { return t }
        do {
            let t = try btf.type(id)
            decoded[id] = t
            return t
        } catch { throw .badBTF(error.description) }
    }

    func kind(_ id: TypeID) -> BTFKind { btf.kind(of: id) }

    /// skip_mods_and_typedefs: follows typedefs and modifiers; returns the id reached and its type.
    func skip(_ id: TypeID) throws(COREFailure) -> (TypeID, BTFType) {
        var id = id
        for _ in 0..<btf.maxChain {
            let t = try type(id)
            guard t.kind == .typedef || t.kind.isModifier else { return (id, t) }
            id = t.type
        }
        throw .badBTF("type chain through [\(id)] is too long or cyclic")
    }

    /// btf__resolve_size, from the BTF's one layout calculator (void has no size).
    func resolveSize(_ id: TypeID) throws(COREFailure) -> Int {
        guard id != 0 else { throw .badBTF("type [0] has no size (void)") }
        do { return try btf.size(of: id) } catch { throw .badBTF(error.description) }
    }

    func name(_ id: TypeID) -> String { btf.name(of: id) }
}

/// One high-level step of an access: a named member, or an array index (name nil).
struct COREAccessor: Equatable {
    var typeID: TypeID
    var index: Int
    var name: String?
}

/// A parsed access: libbpf's bpf_core_spec.
struct CORESpec {
    var btf: COREBTF
    var rootTypeID: TypeID
    var kind: CORERelocationKind
    /// High-level accessors: named fields and array indices.
    var accessors: [COREAccessor] = []
    /// Low-level indices, one per access-string element (target specs include anonymous members).
    var raw: [Int] = []
    var bitOffset: Int = 0

    static let maxLength = 64

    init(btf: COREBTF, rootTypeID: TypeID, kind: CORERelocationKind) {
        self.btf = btf; self.rootTypeID = rootTypeID; self.kind = kind
    }

    /// bpf_core_format_spec: `<byte_off> [2] struct foo.a[1] (0:0:1 @ offset 4)`.
    func format(withKind: Bool = true) -> String {
        let t = (try? btf.type(rootTypeID)) ?? .void
        var s = withKind ? "<\(kind.name)> " : ""
        s += "[\(rootTypeID)] \(BTF.coreKindString(t.kind)) \(t.name.isEmpty ? "<anon>" : t.name)"
        if kind.isTypeBased { return s }
        if kind.isEnumValueBased {
            if let (_, et) = try? btf.skip(rootTypeID), let i = raw.first, i >= 0, i < et.enumerators.count {
                let e = et.enumerators[i]
                let v: String
                if et.kind == .enum {
                    // libbpf prints the 32-bit value with %d or %u by signedness.
                    v = et.kindFlag ? "\(Int32(truncatingIfNeeded: e.value))" : "\(UInt32(truncatingIfNeeded: e.value))"
                } else {
                    v = et.kindFlag ? "\(Int64(bitPattern: e.value))" : "\(e.value)"
                }
                s += "::\(e.name) = \(v)"
            }
            return s
        }
        s += accessPath
        s += " (" + raw.map(String.init).joined(separator: ":")
        if bitOffset % 8 != 0 {
            s += " @ offset \(bitOffset / 8).\(bitOffset % 8))"
        } else {
            s += " @ offset \(bitOffset / 8))"
        }
        return s
    }

    /// The C-like path of the access: `.mm.arg_start`, `[3].a`.
    var accessPath: String {
        var s = ""
        for (i, a) in accessors.enumerated() {
            if let n = a.name { s += "." + n } else if i > 0 || a.index > 0 { s += "[\(a.index)]" }
        }
        return s
    }
}

/// `index * size * 8` as a bit offset, or an error when it leaves libbpf's 32-bit range.
func coreBitOffset(_ index: Int, _ size: Int) throws(COREFailure) -> Int {
    let (a, o1) = index.multipliedReportingOverflow(by: size)
    let (b, o2) = a.multipliedReportingOverflow(by: 8)
    guard !o1, !o2, b <= Int(UInt32.max) else { throw .badAccessString("index \(index) of \(size)-byte elements is past any offset BPF can address") }
    return b
}

/// Adds bit offsets, keeping them in libbpf's 32-bit range.
func coreAdd(_ a: Int, _ b: Int) throws(COREFailure) -> Int {
    let r = a + b
    guard r <= Int(UInt32.max) else { throw .badAccessString("field offset \(r) bits is past any offset BPF can address") }
    return r
}

enum CORECompat {
    /// btf_kind_core_compat: same kind, or both enums (ENUM and ENUM64 stand for each other).
    static func kindsCompatible(_ a: BTFKind, _ b: BTFKind) -> Bool {
        a == b || (a.isEnum && b.isEnum)
    }

    /// bpf_core_parse_spec.
    static func parse(btf: COREBTF, rootTypeID: TypeID, accessString: String, kind: CORERelocationKind) throws(COREFailure) -> CORESpec {
        var spec = CORESpec(btf: btf, rootTypeID: rootTypeID, kind: kind)
        guard !accessString.isEmpty, !accessString.hasPrefix(":") else {
            throw .badAccessString("'\(accessString)' is empty or starts with ':'")
        }
        if kind.isTypeBased {
            guard accessString == "0" else { throw .badAccessString("type-based relocations take access string '0', not '\(accessString)'") }
            return spec
        }
        for part in accessString.split(separator: ":", omittingEmptySubsequences: false) {
            guard let v = Int(part), v >= 0, v <= Int(Int32.max) else {
                throw .badAccessString("'\(accessString)': '\(part)' is not a non-negative index")
            }
            guard spec.raw.count < CORESpec.maxLength else { throw .badAccessString("'\(accessString)' is deeper than \(CORESpec.maxLength) levels") }
            spec.raw.append(v)
        }
        var (id, t) = try btf.skip(rootTypeID)
        let first = spec.raw[0]
        spec.accessors.append(COREAccessor(typeID: id, index: first, name: nil))

        if kind.isEnumValueBased {
            guard t.kind.isEnum else { throw .badAccessString("enum value relocation against [\(id)], which is \(t.kind.name), not an enum") }
            guard spec.raw.count == 1, first < t.enumerators.count else {
                throw .badAccessString("'\(accessString)' does not name one of the \(t.enumerators.count) enumerators of [\(id)]")
            }
            spec.accessors[0].name = t.enumerators[first].name
            return spec
        }
        guard kind.isFieldBased else { throw .badAccessString("unknown relocation kind") }

        let size = try btf.resolveSize(id)
        spec.bitOffset = try coreBitOffset(first, size)
        for i in 1..<spec.raw.count {
            (id, t) = try btf.skip(id)
            let idx = spec.raw[i]
            if t.kind.isComposite {
                let ms = t.members
                guard idx < ms.count else {
                    throw .badAccessString("'\(accessString)': member \(idx) of \(BTF.coreKindString(t.kind)) [\(id)] does not exist (\(ms.count) members)")
                }
                let m = ms[idx]
                spec.bitOffset = try coreAdd(spec.bitOffset, Int(m.bitOffset))
                if !m.name.isEmpty {
                    spec.accessors.append(COREAccessor(typeID: id, index: idx, name: m.name))
                }
                id = m.type
            } else if t.kind == .array, let a = t.arrayInfo {
                let (elem, _) = try btf.skip(a.elementType)
                let flex = isFlexibleArray(btf: btf, previous: spec.accessors.last, count: a.count)
                guard flex || idx < Int(a.count) else {
                    throw .badAccessString("'\(accessString)': index \(idx) is out of bounds of array [\(id)] (\(a.count) elements)")
                }
                spec.accessors.append(COREAccessor(typeID: elem, index: idx, name: nil))
                id = elem
                spec.bitOffset = try coreAdd(spec.bitOffset, try coreBitOffset(idx, try btf.resolveSize(elem)))
            } else {
                throw .badAccessString("'\(accessString)' (at index \(i)) reaches [\(id)] of kind \(t.kind.name), which has no members or elements")
            }
        }
        return spec
    }

    /// is_flex_arr: a zero-length array that is the last member of the struct holding it.
    static func isFlexibleArray(btf: COREBTF, previous: COREAccessor?, count: UInt32) -> Bool {
        guard let p = previous, p.name != nil, count == 0 else { return false }
        guard let t = try? btf.type(p.typeID) else { return false }
        return p.index == t.members.count - 1
    }

    /// bpf_core_fields_are_compat.
    static func fieldsCompatible(_ lb: COREBTF, _ lid: TypeID, _ tb: COREBTF, _ tid: TypeID) throws(COREFailure) -> Bool {
        var lid = lid, tid = tid
        // libbpf's MAX_RESOLVE_DEPTH for array nesting.
        for _ in 0..<32 {
            let (l, lt) = try lb.skip(lid)
            let (t, tt) = try tb.skip(tid)
            if lt.kind.isComposite && tt.kind.isComposite { return true }
            guard kindsCompatible(lt.kind, tt.kind) else { return false }
            switch lt.kind {
            case .pointer, .float: return true
            case .forward, .enum, .enum64:
                let ln = BTF.coreEssentialNameLength(lt.name), tn = BTF.coreEssentialNameLength(tt.name)
                return ln == 0 || tn == 0 || (ln == tn && lt.name.utf8.prefix(ln).elementsEqual(tt.name.utf8.prefix(tn)))
            case .int:
                return (lt.intInfo?.offset ?? 0) == 0 && (tt.intInfo?.offset ?? 0) == 0
            case .array:
                lid = lt.arrayInfo!.elementType
                tid = tt.arrayInfo!.elementType
                _ = (l, t)
            default:
                return false
            }
        }
        throw .badBTF("array nesting too deep")
    }

    /// __bpf_core_types_are_compat (for type-based relocations).
    static func typesCompatible(_ lb: COREBTF, _ lid: TypeID, _ tb: COREBTF, _ tid: TypeID, level: Int = 32) throws(COREFailure) -> Bool {
        guard kindsCompatible(try lb.type(lid).kind, try tb.type(tid).kind) else { return false }
        var lid = lid, tid = tid
        var depth = 32
        while true {
            depth -= 1
            if depth < 0 { throw .badBTF("type nesting too deep comparing [\(lid)] and [\(tid)]") }
            let (l, lt) = try lb.skip(lid)
            let (t, tt) = try tb.skip(tid)
            guard kindsCompatible(lt.kind, tt.kind) else { return false }
            switch lt.kind {
            case .unknown, .struct, .union, .enum, .forward, .enum64:
                return true
            case .int:
                return (lt.intInfo?.offset ?? 0) == 0 && (tt.intInfo?.offset ?? 0) == 0
            case .pointer:
                lid = lt.type; tid = tt.type
            case .array:
                lid = lt.arrayInfo!.elementType; tid = tt.arrayInfo!.elementType
            case .functionProto:
                let lp = lt.params, tp = tt.params
                guard lp.count == tp.count else { return false }
                for i in 0..<lp.count {
                    if level <= 0 { throw .badBTF("function prototypes nest too deeply") }
                    let (a, _) = try lb.skip(lp[i].type)
                    let (b, _) = try tb.skip(tp[i].type)
                    if !(try typesCompatible(lb, a, tb, b, level: level - 1)) { return false }
                }
                lid = try lb.skip(lt.type).0
                tid = try tb.skip(tt.type).0
            default:
                _ = (l, t)
                return false
            }
        }
    }

    /// bpf_core_names_match: flavor-less names equal; an anonymous target matches only anonymous.
    static func namesMatch(_ local: String, _ target: String) -> Bool {
        if target.isEmpty { return local.isEmpty }
        let ln = BTF.coreEssentialNameLength(local), tn = BTF.coreEssentialNameLength(target)
        return ln == tn && local.utf8.prefix(ln).elementsEqual(target.utf8.prefix(tn))
    }

    /// __bpf_core_types_match (for type_matches relocations).
    static func typesMatch(_ lb: COREBTF, _ lid: TypeID, _ tb: COREBTF, _ tid: TypeID, behindPointer: Bool = false, level: Int = 32) throws(COREFailure) -> Bool {
        if level <= 0 { throw .badBTF("types nest too deeply") }
        var lid = lid, tid = tid, behindPointer = behindPointer
        var depth = 32
        while true {
            depth -= 1
            if depth < 0 { throw .badBTF("type nesting too deep comparing [\(lid)] and [\(tid)]") }
            let (_, lt) = try lb.skip(lid)
            let (_, tt) = try tb.skip(tid)
            guard namesMatch(lt.name, tt.name) else { return false }
            let lk = lt.kind, tk = tt.kind
            switch lk {
            case .unknown:
                return lk == tk
            case .forward:
                if behindPointer {
                    if lk == tk { return lt.kindFlag == tt.kindFlag }
                    return (tk == .struct && !lt.kindFlag) || (tk == .union && lt.kindFlag)
                }
                return lk == tk && lt.kindFlag == tt.kindFlag
            case .enum, .enum64:
                guard tk.isEnum else { return false }
                guard lt.size == tt.size else { return false }
                let le = lt.enumerators, te = tt.enumerators
                guard le.count <= te.count else { return false }
                for e in le where !te.contains(where: { namesMatch(e.name, $0.name) }) { return false }
                return true
            case .struct, .union:
                if behindPointer {
                    if lk == tk { return true }
                    guard tk == .forward else { return false }
                    return (lk == .union) == tt.kindFlag
                }
                guard lk == tk else { return false }
                let lm = lt.members, tm = tt.members
                guard lm.count <= tm.count else { return false }
                for m in lm {
                    var matched = false
                    for n in tm where namesMatch(m.name, n.name) {
                        if try typesMatch(lb, m.type, tb, n.type, behindPointer: behindPointer, level: level - 1) {
                            matched = true
                            break
                        }
                    }
                    if !matched { return false }
                }
                return true
            case .int:
                guard lk == tk else { return false }
                let ls = (lt.intInfo?.encoding ?? []).contains(.signed)
                let ts = (tt.intInfo?.encoding ?? []).contains(.signed)
                return lt.size == tt.size && ls == ts
            case .pointer:
                guard lk == tk else { return false }
                behindPointer = true
                lid = lt.type; tid = tt.type
            case .array:
                guard lk == tk, let la = lt.arrayInfo, let ta = tt.arrayInfo, la.count == ta.count else { return false }
                lid = la.elementType; tid = ta.elementType
            case .functionProto:
                guard lk == tk else { return false }
                let lp = lt.params, tp = tt.params
                guard lp.count == tp.count else { return false }
                for i in 0..<lp.count {
                    if !(try typesMatch(lb, lp[i].type, tb, tp[i].type, behindPointer: behindPointer, level: level - 1)) { return false }
                }
                lid = lt.type; tid = tt.type
            default:
                return false
            }
        }
    }

    /// bpf_core_match_member: finds the local accessor's member in target composite `targetID`,
    /// searching anonymous members, extending `spec`. Returns the member's type when found and compatible.
    static func matchMember(local: CORESpec, accessor: COREAccessor, target tb: COREBTF, targetID: TypeID,
                            spec: inout CORESpec) throws(COREFailure) -> TypeID? {
        let (tid, tt) = try tb.skip(targetID)
        guard tt.kind.isComposite else { return nil }
        let lt = try local.btf.type(accessor.typeID)
        let lm = lt.members[accessor.index]
        for (i, m) in tt.members.enumerated() {
            guard spec.raw.count < CORESpec.maxLength else { throw .badAccessString("target access nests deeper than \(CORESpec.maxLength) levels") }
            // Speculate this member is the one.
            spec.bitOffset += Int(m.bitOffset)
            spec.raw.append(i)
            if m.name.isEmpty {
                if let found = try matchMember(local: local, accessor: accessor, target: tb, targetID: m.type, spec: &spec) {
                    return found
                }
            } else if m.name == lm.name {
                spec.accessors.append(COREAccessor(typeID: tid, index: i, name: m.name))
                if try fieldsCompatible(local.btf, lm.type, tb, m.type) { return m.type }
                spec.accessors.removeLast()
                return nil
            }
            spec.bitOffset -= Int(m.bitOffset)
            spec.raw.removeLast()
        }
        return nil
    }

    /// bpf_core_spec_match: the target spec for candidate `targetID`, or nil when it does not match.
    static func match(local: CORESpec, target tb: COREBTF, targetID: TypeID) throws(COREFailure) -> CORESpec? {
        var spec = CORESpec(btf: tb, rootTypeID: targetID, kind: local.kind)
        if local.kind.isTypeBased {
            let ok = local.kind == .typeMatches
                ? try typesMatch(local.btf, local.rootTypeID, tb, targetID)
                : try typesCompatible(local.btf, local.rootTypeID, tb, targetID)
            return ok ? spec : nil
        }
        if local.kind.isEnumValueBased {
            let (tid, tt) = try tb.skip(targetID)
            guard tt.kind.isEnum, let lname = local.accessors.first?.name else { return nil }
            for (i, e) in tt.enumerators.enumerated() where namesMatch(lname, e.name) && !e.name.isEmpty {
                spec.accessors.append(COREAccessor(typeID: tid, index: i, name: e.name))
                spec.raw.append(i)
                return spec
            }
            return nil
        }
        guard local.kind.isFieldBased else { return nil }
        var tid = targetID
        for (i, la) in local.accessors.enumerated() {
            let (sid, st) = try tb.skip(tid)
            tid = sid
            if la.name != nil {
                guard let next = try matchMember(local: local, accessor: la, target: tb, targetID: tid, spec: &spec) else { return nil }
                tid = next
            } else {
                if i > 0 {
                    guard st.kind == .array, let a = st.arrayInfo else { return nil }
                    let flex = isFlexibleArray(btf: tb, previous: spec.accessors.last, count: a.count)
                    if !flex && la.index >= Int(a.count) { return nil }
                    tid = try tb.skip(a.elementType).0
                }
                guard spec.raw.count < CORESpec.maxLength else { throw .badAccessString("target access nests deeper than \(CORESpec.maxLength) levels") }
                spec.accessors.append(COREAccessor(typeID: tid, index: la.index, name: nil))
                spec.raw.append(la.index)
                spec.bitOffset = try coreAdd(spec.bitOffset, try coreBitOffset(la.index, try tb.resolveSize(tid)))
            }
        }
        return spec
    }
}
