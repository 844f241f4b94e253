/// `plumb btf show`: one type and the types it needs, as C, with each member's offset and
/// size in a pahole-style comment, so the layout a tracing program reads is visible.
extension BTF {
    /// The C for type `id` and its dependencies (in the order btf_dump gives a single
    /// root), every struct and union member annotated `/* offset size */` (bitfields
    /// `/* byte:bit size */`), holes marked, and each definition closed by its size.
    /// Functions print as a prototype, variables as an `extern` declaration.
    public func cShow(_ id: TypeID) throws(BTFError) -> String {
        let d = CDumper(btf: self)
        d.annotateLayout = true
        let t = try type(id)
        switch t.kind {
        case .function:
            let proto = t.type
            guard kind(of: proto) == .functionProto else {
                throw .wrongKind(id: proto, expected: "FUNC_PROTO", actual: kind(of: proto))
            }
            // What the arguments point to is what a program reads: define it in full.
            let p = try type(proto)
            for ref in [p.type] + p.params.map(\.type) { try d.dumpType(try pointee(ref)) }
            try d.dumpType(proto)
            d.out += "extern "
            try d.emitTypeDecl(proto, name: t.name, level: 0)
            d.out += ";\n"
        case .variable:
            try d.dumpType(try pointee(t.type))
            try d.dumpType(t.type)
            d.out += "extern "
            try d.emitTypeDecl(t.type, name: t.name, level: 0)
            d.out += ";\t/* size: \(try size(of: t.type)) */\n"
        case .dataSection, .declTag:
            throw .wrongKind(id: id, expected: "a type, function or variable", actual: t.kind)
        default:
            try d.dumpType(id)
            if d.out.isEmpty {
                // Base types (int, pointers, ...) define nothing; show their spelling.
                d.out += "/* \(cTypeName(id)): size \(try size(of: id)), align \(try alignment(of: id)) */\n"
            } else if d.out.hasSuffix("\n\n") {
                d.out.removeLast()
            }
        }
        return d.out
    }

    /// The type at the end of a chain of pointers, arrays and modifiers (typedefs kept).
    private func pointee(_ id: TypeID) throws(BTFError) -> TypeID {
        var id = id
        for _ in 0..<maxChain {
            let t = try type(id)
            switch t.kind {
            case .pointer, .const, .volatile, .restrict, .typeTag: id = t.type
            case .array: id = t.arrayInfo!.elementType
            default: return id
            }
        }
        throw .cycle(id)
    }
}
