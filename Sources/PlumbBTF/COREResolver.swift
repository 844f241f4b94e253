import PlumbELF

/// Resolves CO-RE relocations of one object (its `local` BTF) against target BTF, with
/// libbpf's semantics (relo_core.c, libbpf.c's candidate search):
///
/// - candidates are the target types whose kind is compatible with the local root type and
///   whose name equals it once `___flavor` suffixes are stripped;
/// - `targets[0]` is searched first (vmlinux or a custom target); the others (kernel module
///   BTF) only when it has no candidate at all;
/// - every candidate that matches must agree on the value, else the relocation is ambiguous;
/// - the candidate list of a local type is cached and pruned to the candidates that matched,
///   so later relocations against the same type see only those (as libbpf does, in order);
/// - when nothing matches, field and enum value relocations poison the instruction, the
///   `*_exists` kinds and the type-based kinds yield 0.
///
/// One deviation from libbpf 1.1: 32-bit enumerator values of unsigned enums are not sign
/// extended (libbpf 1.1 reads them through an `__s32`); values follow the enum's kind_flag.
public struct COREResolver {
    public let local: BTF
    public let targets: [BTF]
    /// The byte order the object's programs run in (lshift_u64 depends on it).
    public let order: ByteOrder
    let localC: COREBTF
    let targetsC: [COREBTF]
    /// Candidates per local root type id: (target index, type id). Pruned as relocations match.
    private var candidates: [TypeID: [(Int, TypeID)]] = [:]
    /// Per target: essential name -> ids of types whose names carry a ___flavor suffix.
    private var flavored: [Int: [String: [TypeID]]] = [:]

    /// `targets[0]` is the main target (vmlinux or a custom BTF); further entries are kernel
    /// module BTFs (split on the first), consulted only when the main one has no candidate.
    public init(local: BTF, targets: [BTF], order: ByteOrder? = nil) {
        self.local = local
        self.targets = targets
        self.order = order ?? local.order
        localC = COREBTF(local)
        targetsC = targets.map(COREBTF.init)
    }

    /// The target types a relocation against `localID` may resolve to (cached, pruned).
    public mutating func candidates(for localID: TypeID) throws(BTFError) -> [(target: Int, id: TypeID)] {
        if let c = candidates[localID] { return c.map { (target: $0.0, id: $0.1) } }
        let lt = try local.type(localID)
        guard !lt.name.isEmpty else { throw .invalid(id: localID, reason: "anonymous types have no CO-RE candidates") }
        let essential = BTF.coreEssentialName(lt.name)
        var found: [(Int, TypeID)] = []
        for (i, t) in targets.enumerated() {
            if i > 0 && !found.isEmpty { break }
            // Module BTF is split on vmlinux: search only the module's own types.
            let range = (i > 0 && t.base != nil) ? t.ownIDs : t.ids
            for id in candidateIDs(in: i, essential: essential, range: range)
            where CORECompat.kindsCompatible(t.kind(of: id), lt.kind) {
                found.append((i, id))
            }
        }
        candidates[localID] = found
        return found.map { (target: $0.0, id: $0.1) }
    }

    /// Ids in `range` whose name is `essential` or `essential___flavor`, in id order.
    private mutating func candidateIDs(in target: Int, essential: String, range: Range<TypeID>) -> [TypeID] {
        let t = targets[target]
        var out: [TypeID] = t.ids(named: essential)
        // Flavored target names (bpftool's ___2 for dedup duplicates, or hand-written ones).
        if flavored[target] == nil {
            var m: [String: [TypeID]] = [:]
            for id in t.ids {
                let n = t.name(of: id)
                guard n.utf8.count > 4 else { continue }
                let len = BTF.coreEssentialNameLength(n)
                if len != n.utf8.count { m[BTF.coreEssentialName(n), default: []].append(id) }
            }
            flavored[target] = m
        }
        out += flavored[target]?[essential] ?? []
        return out.filter { range.contains($0) }.sorted()
    }

    /// Resolves relocation number `index` (its position in its .BTF.ext section, for messages).
    public mutating func solve(_ r: CORERelocation, index: Int = 0, context: String? = nil) throws(BTFError) -> CORESolution {
        func fail(_ reason: COREReason, _ spec: String? = nil) -> BTFError {
            .relocation(index: index, instruction: r.instructionIndex, kind: r.kind,
                        spec: spec ?? "[\(r.typeID)] + \(r.accessString)", context: context, reason: reason)
        }
        guard Int(r.typeID) < local.count, r.typeID != 0 || r.kind.isTypeBased else { throw fail(.noSuchType(r.typeID)) }
        let localSpec: CORESpec
        do {
            localSpec = try CORECompat.parse(btf: localC, rootTypeID: r.typeID, accessString: r.accessString, kind: r.kind)
        } catch { throw fail(error.reason) }
        let localText = localSpec.format(withKind: false)

        if r.kind == .typeIDLocal {
            return CORESolution(kind: r.kind, localValue: UInt64(r.typeID), targetValue: UInt64(r.typeID), poison: false,
                                validate: false, failMemorySizeAdjust: false, localSize: 0, targetSize: 0,
                                localSpec: localText, targetSpec: localText, targetBTF: nil, targetTypeID: r.typeID, candidates: 0)
        }
        let cands: [(target: Int, id: TypeID)]
        do { cands = try candidates(for: r.typeID) } catch {
            if case .invalid = error { throw fail(.anonymousType, localText) }
            throw fail(.badBTF(error.description), localText)
        }

        var result: CORESolution? = nil
        var resultBits = 0
        var kept: [(Int, TypeID)] = []
        for c in cands {
            let cspec: CORESpec?
            do { cspec = try CORECompat.match(local: localSpec, target: targetsC[c.target], targetID: c.id) } catch { throw fail(error.reason, localText) }
            guard let cspec else { continue }
            var res: CORESolution
            do { res = try calculate(r, local: localSpec, target: cspec) } catch { throw fail(error.reason, localText) }
            res.targetBTF = c.target
            res.targetTypeID = c.id
            if let first = result {
                if cspec.bitOffset != resultBits {
                    throw fail(.fieldOffsetAmbiguity(UInt64(cspec.bitOffset), UInt64(resultBits)), localText)
                }
                if res.poison != first.poison || res.targetValue != first.targetValue {
                    throw fail(.decisionAmbiguity(poison: res.poison, value: res.targetValue,
                                                  otherPoison: first.poison, otherValue: first.targetValue), localText)
                }
            } else {
                result = res
                resultBits = cspec.bitOffset
            }
            kept.append((c.target, c.id))
        }
        if var result {
            candidates[r.typeID] = kept
            result.candidates = kept.count
            return result
        }
        do { return try calculate(r, local: localSpec, target: nil) } catch { throw fail(error.reason, localText) }
    }

    /// bpf_core_calc_relo: the local and target values for one candidate (nil: no candidate).
    func calculate(_ r: CORERelocation, local: CORESpec, target: CORESpec?) throws(COREFailure) -> CORESolution {
        var res = CORESolution(kind: r.kind, localValue: 0, targetValue: 0, poison: false, validate: true,
                               failMemorySizeAdjust: false, localSize: 0, targetSize: 0,
                               localSpec: local.format(withKind: false), targetSpec: target?.format(withKind: false),
                               targetBTF: nil, targetTypeID: nil, candidates: 0)
        if r.kind.isFieldBased {
            let l = try fieldValue(r.kind, local, isLocal: true)
            res.localValue = l.value; res.localSize = l.size; res.validate = l.validate
            guard let target else {
                if r.kind == .fieldExists { res.targetValue = 0 } else { res.poison = true }
                return res
            }
            let t = try fieldValue(r.kind, target, isLocal: false)
            res.targetValue = t.value; res.targetSize = t.size
            if res.localSize != res.targetSize {
                // Safe only for pointers and unsigned integers (zero extension keeps the value).
                let lt = try local.btf.type(l.typeID), tt = try target.btf.type(t.typeID)
                let unsignedInts = lt.kind == .int && tt.kind == .int
                    && lt.intInfo?.encoding != .signed && tt.intInfo?.encoding != .signed
                if !(lt.kind == .pointer && tt.kind == .pointer) && !unsignedInts {
                    res.failMemorySizeAdjust = true
                }
            }
        } else if r.kind.isTypeBased {
            res.localValue = try typeValue(r.kind, local)
            res.validate = r.kind != .typeIDTarget
            res.targetValue = try target.map { (s) throws(COREFailure) in try typeValue(r.kind, s) } ?? 0
        } else {
            res.localValue = try enumValue(r.kind, local) ?? 0
            if let target {
                res.targetValue = try enumValue(r.kind, target) ?? 0
            } else if r.kind == .enumValue {
                res.poison = true
            }
        }
        return res
    }

    private struct FieldValue { var value: UInt64; var size: UInt32; var typeID: TypeID; var validate: Bool }

    /// bpf_core_calc_field_relo for a spec that exists.
    private func fieldValue(_ kind: CORERelocationKind, _ spec: CORESpec, isLocal: Bool) throws(COREFailure) -> FieldValue {
        if kind == .fieldExists { return FieldValue(value: 1, size: 0, typeID: 0, validate: true) }
        guard let acc = spec.accessors.last else { throw .badAccessString("empty access") }
        let b = spec.btf
        if acc.name == nil {
            // An array element (or the root object itself): only offset and size apply.
            let sz = try b.resolveSize(acc.typeID)
            switch kind {
            case .fieldByteOffset: return FieldValue(value: UInt64(spec.bitOffset / 8), size: UInt32(sz), typeID: acc.typeID, validate: true)
            case .fieldByteSize: return FieldValue(value: UInt64(sz), size: 0, typeID: 0, validate: true)
            default: throw .arrayAccess
            }
        }
        let parent = try b.type(acc.typeID)
        let m = parent.members[acc.index]
        let (fieldType, mt) = try b.skip(m.type)
        let bitOff = spec.bitOffset
        var bitSize = Int(m.bitfieldSize)
        let bitfield = bitSize > 0
        var byteSize: Int, byteOff: Int
        if bitfield {
            byteSize = Int(mt.size)
            guard byteSize > 0 else { throw .badBTF("bitfield base type [\(fieldType)] has size 0") }
            byteOff = bitOff / 8 / byteSize * byteSize
            // The smallest load that holds the whole bitfield.
            while bitOff + bitSize - byteOff * 8 > byteSize * 8 {
                if byteSize >= 8 { throw .bitfieldTooWide }
                byteSize *= 2
                byteOff = bitOff / 8 / byteSize * byteSize
            }
        } else {
            byteSize = try b.resolveSize(fieldType)
            byteOff = bitOff / 8
            bitSize = byteSize * 8
        }
        // Bitfield layout is ambiguous (the compiler may pick another load), so only the
        // unambiguous values are checked against the instruction.
        var validate = !bitfield
        var value: UInt64
        var size: UInt32 = 0
        var typeID: TypeID = 0
        switch kind {
        case .fieldByteOffset:
            value = UInt64(byteOff)
            if !bitfield { size = UInt32(byteSize); typeID = fieldType }
        case .fieldByteSize:
            value = UInt64(byteSize)
        case .fieldSigned:
            value = (mt.kind.isEnum && mt.kindFlag) || (mt.kind == .int && (mt.intInfo?.encoding.contains(.signed) ?? false)) ? 1 : 0
            validate = true
        case .fieldLShiftU64:
            // libbpf computes this for the host's byte order; we use the object's. Fields wider
            // than 8 bytes give nonsense either way; like libbpf's, the arithmetic is 32-bit.
            if order == .little {
                value = UInt64(UInt32(truncatingIfNeeded: 64 - (bitOff + bitSize - byteOff * 8)))
            } else {
                value = UInt64(UInt32(truncatingIfNeeded: (8 - byteSize) * 8 + (bitOff - byteOff * 8)))
            }
        case .fieldRShiftU64:
            value = UInt64(UInt32(truncatingIfNeeded: 64 - bitSize))
            validate = true
        default:
            throw .badAccessString("not a field relocation")
        }
        _ = isLocal
        return FieldValue(value: value, size: size, typeID: typeID, validate: validate)
    }

    private func typeValue(_ kind: CORERelocationKind, _ spec: CORESpec) throws(COREFailure) -> UInt64 {
        switch kind {
        case .typeIDTarget: return UInt64(spec.rootTypeID)
        case .typeExists, .typeMatches: return 1
        case .typeSize: return UInt64(try spec.btf.resolveSize(spec.rootTypeID))
        default: throw .badAccessString("not a type relocation")
        }
    }

    private func enumValue(_ kind: CORERelocationKind, _ spec: CORESpec) throws(COREFailure) -> UInt64? {
        switch kind {
        case .enumValueExists: return 1
        case .enumValue:
            guard let acc = spec.accessors.first else { return nil }
            let t = try spec.btf.type(acc.typeID)
            let es = t.enumerators
            guard acc.index < es.count else { throw .badBTF("enumerator \(acc.index) of [\(acc.typeID)] does not exist") }
            // BTFEnumerator.value is already sign-extended for signed 32-bit enums and
            // zero-extended for unsigned ones (the kernel's reading; libbpf 1.1 sign-extends both).
            return es[acc.index].value
        default: throw .badAccessString("not an enum value relocation")
        }
    }
}

