import Synchronization

/// The one layout calculator: sizeof, alignof and the pointer size, with libbpf's semantics
/// (btf__resolve_size, btf__align_of), memoized per type id in one cache per BTF. The
/// queries, the C dumper and CO-RE all read it, so a layout is computed once per process
/// and every query is linear in the types it touches (nested structs are not re-walked).
struct LayoutCache: Sendable {
    /// Sizes by id; -1 when not computed yet.
    var sizes: [Int64] = []
    /// Alignments by id; -1 when not computed yet, -2 while being computed (a cycle).
    var alignments: [Int32] = []
    var pointerSize: Int?
}

extension BTF {
    /// Struct nesting deeper than this is refused instead of overflowing the stack
    /// (type chains are walked iteratively and bounded by the type count instead).
    static let maxNesting = 1024

    /// Pointer size of the BTF's target: the size of `long`, else 8.
    public var pointerSize: Int {
        if let p = layout.withLock({ $0.pointerSize }) { return p }
        var p = 8
        for n in ["long", "long int", "long unsigned int", "unsigned long", "long unsigned"] {
            if let id = firstID(named: n, kind: .int), let t = try? type(id), t.size == 4 || t.size == 8 {
                p = Int(t.size)
                break
            }
        }
        layout.withLock { $0.pointerSize = p }
        return p
    }

    /// The size in bytes of a type, as C's sizeof sees it (libbpf's btf__resolve_size:
    /// typedefs, modifiers, variables and decl tags followed, arrays multiplied out, sizes
    /// past 4 GiB refused).
    public func size(of id: TypeID) throws(BTFError) -> Int {
        guard Int(id) < count else { throw .noSuchType(id) }
        if let s = layout.withLock({ c -> Int64? in
            guard Int(id) < c.sizes.count, c.sizes[Int(id)] >= 0 else { return nil }
            return c.sizes[Int(id)]
        }) { return Int(s) }
        let s = try computeSize(id)
        layout.withLock { c in
            if c.sizes.isEmpty { c.sizes = Array(repeating: -1, count: count) }
            c.sizes[Int(id)] = Int64(s)
        }
        return s
    }

    private func computeSize(_ start: TypeID) throws(BTFError) -> Int {
        var id = start
        var elements: UInt64 = 1
        // A chain longer than the number of types revisits one: a real cycle.
        for _ in 0...count {
            let t = try type(id)
            let size: UInt64
            switch t.kind {
            case .int, .struct, .union, .enum, .enum64, .dataSection, .float:
                size = UInt64(t.size)
            case .pointer:
                size = UInt64(pointerSize)
            case .typedef, .volatile, .const, .restrict, .variable, .declTag, .typeTag:
                id = t.type
                continue
            case .array:
                let n = UInt64(t.arrayInfo!.count)
                if elements != 0 && n != 0 && UInt64(UInt32.max) / n < elements {
                    throw .invalid(id: id, reason: "array size overflows")
                }
                elements *= n
                id = t.arrayInfo!.elementType
                continue
            default:
                throw .wrongKind(id: id, expected: "a type with a size", actual: t.kind)
            }
            if elements != 0 && size > UInt64(UInt32.max) / elements { throw .invalid(id: id, reason: "size overflows") }
            return Int(elements * size)
        }
        throw .cycle(id)
    }

    /// The alignment of a type in bytes, inferring `packed` when a member sits off its natural
    /// alignment or the size is not a multiple of it (libbpf's semantics).
    public func alignment(of id: TypeID) throws(BTFError) -> Int {
        let a = try layoutAlignment(id)
        if a > 0 { return a }
        let k = try type(try resolve(id)).kind
        switch k {
        case .int, .enum, .enum64, .float, .struct, .union, .pointer: return 1
        default: throw .wrongKind(id: id, expected: "a type with an alignment", actual: k)
        }
    }

    /// btf__align_of: the alignment, or 0 where libbpf has none (void, functions, forward
    /// declarations, a zero-sized int). Memoized per id, so nested structs cost one walk.
    func layoutAlignment(_ id: TypeID) throws(BTFError) -> Int {
        guard Int(id) < count else { throw .noSuchType(id) }
        let ptr = pointerSize
        return try layout.withLock { (c: inout LayoutCache) throws(BTFError) -> Int in
            if c.alignments.isEmpty { c.alignments = Array(repeating: -1, count: count) }
            return try alignment(id, ptr, &c, depth: 0)
        }
    }

    private func alignment(_ start: TypeID, _ ptr: Int, _ c: inout LayoutCache, depth: Int) throws(BTFError) -> Int {
        // Typedefs, modifiers and arrays share the alignment of what they lead to: walk the
        // chain without recursion, then record the answer for every id on it.
        var chain: [TypeID] = []
        var id = start
        var result: Int?
        var members: BTFType?
        for _ in 0...count {
            let cached = c.alignments[Int(id)]
            if cached >= 0 { result = Int(cached); break }
            if cached == -2 { throw .cycle(id) }
            let t = try type(id)
            switch t.kind {
            case .int, .enum, .enum64, .float: result = min(ptr, Int(t.size))
            case .pointer: result = ptr
            case .typedef, .volatile, .const, .restrict, .typeTag:
                chain.append(id); id = t.type; continue
            case .array:
                chain.append(id); id = t.arrayInfo!.elementType; continue
            case .struct, .union: members = t
            default: result = 0
            }
            break
        }
        if result == nil, let t = members {
            guard depth < BTF.maxNesting else { throw .tooDeep(id: id, limit: BTF.maxNesting) }
            c.alignments[Int(id)] = -2
            var maxAlign = 1
            var a = 0
            for m in t.members {
                let ma = try alignment(m.type, ptr, &c, depth: depth + 1)
                if ma <= 0 { a = ma; break }
                maxAlign = max(maxAlign, ma)
                // A member off its natural alignment means the struct is packed.
                if m.bitfieldSize == 0 && Int(m.bitOffset) % (8 * ma) != 0 { a = 1; break }
                a = maxAlign
            }
            if t.members.isEmpty { a = 1 }
            if a == maxAlign && Int(t.size) % maxAlign != 0 { a = 1 }
            result = a
            c.alignments[Int(id)] = Int32(a)
        }
        guard let result else { throw .cycle(id) }
        c.alignments[Int(id)] = Int32(result)
        for i in chain { c.alignments[Int(i)] = Int32(result) }
        return result
    }
}
