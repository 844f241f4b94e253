/// Type queries the loader, CO-RE and the tracer need. A chain of typedefs and modifiers
/// longer than the number of types must revisit one, so that bound makes a cycle in
/// malformed BTF an error, not a hang, while any real chain resolves.
extension BTF {
    /// Steps a chain may take before it is a cycle.
    var maxChain: Int { count + 1 }

    /// Follows typedefs and modifiers (const, volatile, restrict, type tags) to the underlying type.
    public func resolve(_ id: TypeID) throws(BTFError) -> TypeID {
        var id = id
        for _ in 0..<maxChain {
            let k = kind(of: id)
            guard k == .typedef || k.isModifier else { return id }
            id = try type(id).type
        }
        throw .cycle(id)
    }

    /// Follows modifiers only (typedef names are kept).
    public func skipModifiers(_ id: TypeID) throws(BTFError) -> TypeID {
        var id = id
        for _ in 0..<maxChain {
            guard kind(of: id).isModifier else { return id }
            id = try type(id).type
        }
        throw .cycle(id)
    }

    /// The one type named `name` of `kind`; errors when none or, with `unique`, several.
    public func lookup(_ name: String, kind: BTFKind) throws(BTFError) -> TypeID {
        // The empty name is every anonymous type's: never what a caller means.
        guard !name.isEmpty else { throw .emptyName }
        guard let id = firstID(named: name, kind: kind) else {
            throw .notFound(kind == .struct ? "struct \(name)" : kind == .union ? "union \(name)" : name)
        }
        return id
    }

    /// Looks up a C-style type name: `task_struct`, `struct task_struct`, `union bpf_attr`,
    /// `enum bpf_cmd`, `u64`. Without a tag, structs win, then unions, enums, typedefs, ints.
    public func lookup(cName: String) throws(BTFError) -> TypeID {
        guard !cName.allSatisfy({ $0 == " " }) else { throw .emptyName }
        let parts = cName.split(separator: " ", maxSplits: 1).map(String.init)
        if parts.count == 2 {
            switch parts[0] {
            case "struct": return try lookup(parts[1], kind: .struct)
            case "union": return try lookup(parts[1], kind: .union)
            case "enum":
                if let id = firstID(named: parts[1], kind: .enum) ?? firstID(named: parts[1], kind: .enum64) { return id }
                throw .notFound("enum \(parts[1])")
            default: break
            }
        }
        for k in [BTFKind.struct, .union, .enum, .enum64, .typedef, .int, .float, .function, .variable, .dataSection] {
            if let id = firstID(named: cName, kind: k) { return id }
        }
        throw .notFound(cName)
    }

    /// One step of a field path: the member reached and where it sits in its container.
    public struct FieldStep: Sendable, Equatable {
        public var name: String
        /// The member's type as declared (typedefs kept).
        public var type: TypeID
        /// Bit offset from the start of the object this step reads from.
        public var bitOffset: UInt32
        public var bitfieldSize: UInt8
        /// True when the previous step's value is a pointer this step reads through.
        public var throughPointer: Bool
        public var byteOffset: UInt32 { bitOffset / 8 }
    }

    /// Resolves a path such as `task_struct.mm.arg_start` (or `struct sk_buff.len`,
    /// `task_struct.comm[2]`) to the steps a program must take: offsets accumulate within one
    /// object and restart after each pointer. Anonymous struct/union members are searched through.
    public func fieldPath(_ path: String) throws(BTFError) -> [FieldStep] {
        var components = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard components.count >= 2, !components[0].isEmpty else {
            throw .badFieldPath("field path '\(path)' needs a type and at least one field, such as task_struct.pid")
        }
        let root = components.removeFirst()
        return try fieldPath(from: try lookup(cName: root), components, path: path)
    }

    /// Resolves member accesses starting at type `start`.
    public func fieldPath(from start: TypeID, fields: [String]) throws(BTFError) -> [FieldStep] {
        try fieldPath(from: start, fields, path: fields.joined(separator: "."))
    }

    private func fieldPath(from start: TypeID, _ components: [String], path: String) throws(BTFError) -> [FieldStep] {
        var current = start
        var steps: [FieldStep] = []
        var base: UInt32 = 0
        var throughPointer = false
        var containerName = cTypeName(start)
        for comp in components {
            var (field, indices) = try splitIndices(comp, path: path)
            var t = try type(try resolve(current))
            if t.kind == .pointer {
                current = t.type
                t = try type(try resolve(current))
                base = 0
                throughPointer = true
            }
            guard t.kind.isComposite else {
                throw .badFieldPath("in '\(path)': \(containerName) is not a struct or union, so it has no field '\(field)'")
            }
            guard let found = try findMember(field, in: try resolve(current)) else {
                let names = try memberNames(try resolve(current))
                let hint: String
                if let near = closest(to: field, in: names) {
                    hint = "; did you mean '\(near)'?"
                } else {
                    hint = names.isEmpty ? "" : "; it has: \(names.prefix(12).joined(separator: ", "))\(names.count > 12 ? ", ..." : "")"
                }
                throw .badFieldPath("in '\(path)': \(containerName) has no field '\(field)'\(hint)")
            }
            var (offset, overflow) = base.addingReportingOverflow(found.bitOffset)
            var memberType = found.type
            // Array subscripts: each moves by the element size.
            while !indices.isEmpty {
                let index = indices.removeFirst()
                let at = try type(try resolve(memberType))
                guard at.kind == .array, let a = at.arrayInfo else {
                    throw .badFieldPath("in '\(path)': '\(field)' is not an array, so it cannot be indexed")
                }
                guard index < a.count else {
                    throw .badFieldPath("in '\(path)': index \(index) is out of bounds for '\(field)' (\(a.count) elements)")
                }
                let (elementBits, o1) = try size(of: a.elementType).multipliedReportingOverflow(by: 8)
                let (step, o2) = elementBits.multipliedReportingOverflow(by: Int(index))
                guard !o1, !o2, let step32 = UInt32(exactly: step) else {
                    throw .badFieldPath("in '\(path)': offset of '\(field)[\(index)]' overflows")
                }
                let (next, o3) = offset.addingReportingOverflow(step32)
                offset = next
                overflow = overflow || o3
                memberType = a.elementType
                field += "[\(index)]"
            }
            guard !overflow else { throw .badFieldPath("in '\(path)': offset of '\(field)' overflows") }
            steps.append(FieldStep(name: field, type: memberType, bitOffset: offset, bitfieldSize: found.bitfieldSize,
                                   throughPointer: throughPointer))
            throughPointer = false
            base = offset
            current = memberType
            containerName = "'\(field)' (\(cTypeName(memberType)))"
        }
        // Steps that stay in one object carry the accumulated offset; collapse them so each
        // step is one read.
        var collapsed: [FieldStep] = []
        for s in steps {
            if let last = collapsed.last, !s.throughPointer {
                var merged = s
                merged.name = last.name + "." + s.name
                merged.throughPointer = last.throughPointer
                collapsed[collapsed.count - 1] = merged
            } else {
                collapsed.append(s)
            }
        }
        return collapsed
    }

    private func splitIndices(_ comp: String, path: String) throws(BTFError) -> (String, [UInt32]) {
        guard let open = comp.firstIndex(of: "[") else { return (comp, []) }
        let name = String(comp[..<open])
        var indices: [UInt32] = []
        var rest = comp[open...]
        while rest.first == "[" {
            guard let close = rest.firstIndex(of: "]"), let n = UInt32(rest[rest.index(after: rest.startIndex)..<close]) else {
                throw .badFieldPath("in '\(path)': bad array subscript in '\(comp)'")
            }
            indices.append(n)
            rest = rest[rest.index(after: close)...]
        }
        guard rest.isEmpty, !name.isEmpty else { throw .badFieldPath("in '\(path)': bad field '\(comp)'") }
        return (name, indices)
    }

    /// The name nearest to `word` within a small edit distance, for "did you mean" hints.
    func closest(to word: String, in names: [String]) -> String? {
        let w = Array(word.utf8)
        var best: (String, Int)?
        for n in names where !n.isEmpty {
            let d = editDistance(w, Array(n.utf8))
            if d <= max(1, w.count / 3), d < (best?.1 ?? Int.max) { best = (n, d) }
        }
        return best?.0
    }

    private func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var prev = Array(0...b.count)
        var cur = prev
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }

    /// A member found by name, searching through anonymous members; offset relative to `composite`.
    public func findMember(_ name: String, in composite: TypeID) throws(BTFError) -> BTFMember? {
        try findMember(name, in: composite, depth: 0)
    }

    private func findMember(_ name: String, in composite: TypeID, depth: Int) throws(BTFError) -> BTFMember? {
        guard depth < BTF.maxNesting else { throw .tooDeep(id: composite, limit: BTF.maxNesting) }
        let t = try type(composite)
        for m in t.members where m.name == name { return m }
        for m in t.members where m.name.isEmpty {
            let inner = try resolve(m.type)
            guard kind(of: inner).isComposite else { continue }
            if var found = try findMember(name, in: inner, depth: depth + 1) {
                found.bitOffset &+= m.bitOffset
                return found
            }
        }
        return nil
    }

    /// Member names, anonymous members flattened (for "did you mean" hints).
    public func memberNames(_ composite: TypeID) throws(BTFError) -> [String] {
        try memberNames(composite, depth: 0)
    }

    private func memberNames(_ composite: TypeID, depth: Int) throws(BTFError) -> [String] {
        guard depth < BTF.maxNesting else { throw .tooDeep(id: composite, limit: BTF.maxNesting) }
        var out: [String] = []
        for m in try type(composite).members {
            if m.name.isEmpty, kind(of: try resolve(m.type)).isComposite {
                out += try memberNames(try resolve(m.type), depth: depth + 1)
            } else {
                out.append(m.name)
            }
        }
        return out
    }

    /// A short C spelling of a type for messages: `struct task_struct`, `u64`, `char *`.
    /// Built in one pass down the chain (linear however deep); a chain that comes back to
    /// a type it passed is a cycle and spells `?` there.
    public func cTypeName(_ id: TypeID) -> String {
        var prefix = "", suffixes: [String] = []
        var id = id
        var seen = Set<TypeID>()
        var base = "?"
        while seen.insert(id).inserted, let t = try? type(id) {
            switch t.kind {
            case .unknown: base = "void"
            case .struct: base = "struct \(t.name.isEmpty ? "(anon)" : t.name)"
            case .union: base = "union \(t.name.isEmpty ? "(anon)" : t.name)"
            case .enum, .enum64: base = "enum \(t.name.isEmpty ? "(anon)" : t.name)"
            case .forward: base = (t.kindFlag ? "union " : "struct ") + t.name
            case .pointer: suffixes.append(" *"); id = t.type; continue
            case .const: prefix += "const "; id = t.type; continue
            case .volatile: prefix += "volatile "; id = t.type; continue
            case .restrict, .typeTag: id = t.type; continue
            case .array: suffixes.append("[\(t.arrayInfo!.count)]"); id = t.arrayInfo!.elementType; continue
            case .functionProto: base = "function"
            default: base = t.name
            }
            break
        }
        return prefix + base + suffixes.reversed().joined()
    }

    /// A function signature: return type and parameters.
    public struct FunctionProto: Sendable, Equatable {
        public var id: TypeID
        public var returnType: TypeID
        public var params: [BTFParam]
    }

    /// The prototype of a kernel function (a FUNC named `name`).
    public func functionProto(named name: String) throws(BTFError) -> FunctionProto {
        guard let f = firstID(named: name, kind: .function) else {
            throw .notFound("function \(name)")
        }
        let protoID = try type(f).type
        let proto = try type(protoID)
        guard proto.kind == .functionProto else { throw .wrongKind(id: protoID, expected: "FUNC_PROTO", actual: proto.kind) }
        return FunctionProto(id: protoID, returnType: proto.type, params: proto.params)
    }

    /// The arguments a raw tracepoint passes (from its `btf_trace_<name>` typedef, a pointer
    /// to a prototype whose first parameter is the context and is dropped here).
    public func rawTracepointProto(_ tracepoint: String) throws(BTFError) -> FunctionProto {
        let tname = "btf_trace_" + tracepoint
        guard let td = firstID(named: tname, kind: .typedef) else {
            throw .notFound("raw tracepoint \(tracepoint) (no typedef \(tname) in BTF; list them with `plumb btf dump | grep btf_trace_`)")
        }
        let ptr = try type(try resolve(td))
        guard ptr.kind == .pointer else { throw .wrongKind(id: td, expected: "pointer to FUNC_PROTO", actual: ptr.kind) }
        let protoID = try resolve(ptr.type)
        let proto = try type(protoID)
        guard proto.kind == .functionProto else { throw .wrongKind(id: protoID, expected: "FUNC_PROTO", actual: proto.kind) }
        return FunctionProto(id: protoID, returnType: proto.type, params: Array(proto.params.dropFirst()))
    }
}
