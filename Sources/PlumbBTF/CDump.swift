/// BTF as C: the output of `bpftool btf dump file F format c` (bpftool 7.1, libbpf 1.1),
/// byte for byte. The semantics are libbpf's btf_dump.c: a topological sort of named
/// definitions with strong (embedding) and weak (through a pointer) edges, forward
/// declarations where a weak edge closes a cycle, `___N` suffixes for repeated names,
/// anonymous types inlined, explicit padding members and inferred `packed`.
extension BTF {
    /// The whole BTF as a vmlinux.h, exactly as bpftool prints it.
    public func cDump(into out: inout String) throws(BTFError) {
        let d = CDumper(btf: self)
        d.out.reserveCapacity(ownCount * 48)
        d.out += CDumper.header
        // bpftool 7.1 walks every id from 1 (for split BTF, the base's too).
        for id in ids { try d.dumpType(id) }
        d.out += CDumper.footer
        out += d.out
    }

    /// The whole BTF as a vmlinux.h.
    public func cDump() throws(BTFError) -> String {
        var s = ""
        try cDump(into: &s)
        return s
    }
}

/// One C dump session (libbpf's `struct btf_dump`): state carries over between
/// `dumpType` calls, so a type emitted for one root is not emitted again for the next.
public final class CDumper {
    public let btf: BTF
    /// What has been emitted so far.
    @exclusivity(unchecked) public var out = ""
    /// When set, struct and union members get pahole-style `/* offset size */` comments.
    public var annotateLayout = false

    static let header = """
        #ifndef __VMLINUX_H__
        #define __VMLINUX_H__

        #ifndef BPF_NO_PRESERVE_ACCESS_INDEX
        #pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
        #endif


        """
    static let footer = """
        #ifndef BPF_NO_PRESERVE_ACCESS_INDEX
        #pragma clang attribute pop
        #endif

        #endif /* __VMLINUX_H__ */

        """

    private enum OrderState: UInt8 { case notOrdered, ordering, ordered }
    private enum EmitState: UInt8 { case notEmitted, emitting, emitted }

    private let count: Int
    private let ptrSize: Int
    /// Decoded types: `slot[id]` is 1 + the index in `decoded` (0: not decoded yet). Sparse
    /// on purpose: one-type dumps touch a few hundred of vmlinux's 100k+ types.
    @exclusivity(unchecked) private var slot: [Int32]
    @exclusivity(unchecked) private var decoded: [BTFType] = []
    @exclusivity(unchecked) private var orderState: [OrderState]
    @exclusivity(unchecked) private var emitState: [EmitState]
    @exclusivity(unchecked) private var fwdEmitted: [Bool]
    @exclusivity(unchecked) private var nameResolved: [Bool]
    @exclusivity(unchecked) private var referenced: [Bool]
    /// `name___N` for types whose names repeat.
    @exclusivity(unchecked) private var cachedNames: [TypeID: String] = [:]
    /// struct/union/enum/fwd names seen, with their counts.
    @exclusivity(unchecked) private var typeNames: [String: Int] = [:]
    /// typedef and enumerator names seen, with their counts.
    @exclusivity(unchecked) private var identNames: [String: Int] = [:]
    @exclusivity(unchecked) private var emitQueue: [TypeID] = []
    /// Recursion depth across all the mutually recursive walks; bounded so cyclic or
    /// absurdly deep BTF gives an error instead of overflowing the stack.
    @exclusivity(unchecked) private var depth = 0
    /// Anonymous structs and unions whose inline definition is being written.
    @exclusivity(unchecked) private var definingInline: Set<TypeID> = []
    /// Real cycles are caught by the ordering states (and chains by the type count); this
    /// only keeps absurd but acyclic nesting from exhausting the stack.
    static let maxDepth = BTF.maxNesting

    /// Layout comments: offset (bits) of the struct being emitted, from the annotated root.
    @exclusivity(unchecked) private var annotationBase: [UInt32] = []

    public init(btf: BTF) {
        self.btf = btf
        count = btf.count
        ptrSize = btf.pointerSize
        slot = Array(repeating: 0, count: count)
        orderState = Array(repeating: .notOrdered, count: count)
        emitState = Array(repeating: .notEmitted, count: count)
        fwdEmitted = Array(repeating: false, count: count)
        nameResolved = Array(repeating: false, count: count)
        referenced = Array(repeating: false, count: count)
        // void is always defined.
        orderState[0] = .ordered
        emitState[0] = .emitted
        markReferenced()
    }

    // MARK: - Types

    @inline(__always) private func type(_ id: TypeID) throws(BTFError) -> BTFType {
        guard Int(id) < count else { throw .noSuchType(id) }
        let s = slot[Int(id)]
        if s != 0 { return decoded[Int(s) - 1] }
        let t = try btf.type(id)
        decoded.append(t)
        slot[Int(id)] = Int32(decoded.count)
        return t
    }

    @inline(__always) private func enter(_ id: TypeID) throws(BTFError) {
        depth += 1
        if depth > CDumper.maxDepth { throw .tooDeep(id: id, limit: CDumper.maxDepth) }
    }

    /// Marks every type referenced from another one: an anonymous enum nobody references is
    /// a top-level declaration of constants; a referenced one is emitted inline.
    private func markReferenced() {
        // Reference slots read straight from the records: decoding every type (names and
        // all) here would cost more than the rest of a one-type dump.
        let count = self.count
        referenced.withUnsafeMutableBufferPointer { marks in
            btf.forEachReference { _, r in if Int(r) < count { marks[Int(r)] = true } }
        }
    }

    // MARK: - Dumping one type with its dependencies

    /// Emits `id` and everything it needs that was not emitted yet (btf_dump__dump_type).
    public func dumpType(_ id: TypeID) throws(BTFError) {
        guard Int(id) < count else { throw .noSuchType(id) }
        emitQueue.removeAll(keepingCapacity: true)
        depth = 0
        _ = try orderType(id, throughPointer: false)
        for q in emitQueue {
            depth = 0
            try emitType(q, container: 0)
        }
    }

    /// Topological sort. Returns true when the edge to `id` is strong (the definition
    /// must come first), false when a forward declaration satisfies it.
    private func orderType(_ id: TypeID, throughPointer: Bool) throws(BTFError) -> Bool {
        let i = Int(id)
        if orderState[i] == .ordered { return true }
        let t = try type(id)
        if orderState[i] == .ordering {
            // A loop, resolvable through a forward declaration.
            if t.kind.isComposite && throughPointer && !t.name.isEmpty { return false }
            throw .cycle(id)
        }
        try enter(id)
        defer { depth -= 1 }
        switch t.kind {
        case .int, .float:
            orderState[i] = .ordered
            return false
        case .pointer:
            // Marked while its target is ordered: meeting it again is a loop of pointers
            // (named structs, the legal way back, return before recursing).
            orderState[i] = .ordering
            let r = try orderType(t.type, throughPointer: true)
            orderState[i] = .ordered
            return r
        case .array:
            return try orderType(t.arrayInfo!.elementType, throughPointer: false)
        case .struct, .union:
            // Part of a strong link only when embedded, or anonymous (defined inline).
            if throughPointer && !t.name.isEmpty { return false }
            orderState[i] = .ordering
            for m in t.members { _ = try orderType(m.type, throughPointer: false) }
            if !t.name.isEmpty { emitQueue.append(id) }
            orderState[i] = .ordered
            return true
        case .enum, .enum64, .forward:
            if !t.name.isEmpty || !referenced[i] { emitQueue.append(id) }
            orderState[i] = .ordered
            return true
        case .typedef:
            let strong = try orderType(t.type, throughPointer: throughPointer)
            if throughPointer && !strong { return false }
            emitQueue.append(id)
            orderState[i] = .ordered
            return true
        case .volatile, .const, .restrict, .typeTag:
            return try orderType(t.type, throughPointer: throughPointer)
        case .functionProto:
            var strong = try orderType(t.type, throughPointer: throughPointer)
            for p in t.params {
                if try orderType(p.type, throughPointer: throughPointer) { strong = true }
            }
            return strong
        case .function, .variable, .dataSection, .declTag:
            orderState[i] = .ordered
            return false
        case .unknown:
            throw .invalid(id: id, reason: "unexpected kind in a type graph")
        }
    }

    private func isBlacklisted(_ t: BTFType) -> Bool {
        // A compiler built-in: clang defines it, and redefining it breaks the header.
        t.name == "__builtin_va_list"
    }

    /// Emits the definition of `id` at top level (container 0) or what a type inside the
    /// definition of `container` needs first (btf_dump_emit_type).
    private func emitType(_ id: TypeID, container: TypeID) throws(BTFError) {
        let i = Int(id)
        if emitState[i] == .emitted { return }
        let t = try type(id)
        let topLevel = container == 0
        try enter(id)
        defer { depth -= 1 }

        if emitState[i] == .emitting {
            if fwdEmitted[i] { return }
            switch t.kind {
            case .struct, .union:
                // A reference to the struct being defined needs no forward declaration.
                if id == container { return }
                if t.name.isEmpty { return }  // anonymous struct/union loop
                emitStructForward(id, t)
                out += ";\n\n"
                fwdEmitted[i] = true
            case .typedef:
                // The typedef goes out now and serves references through pointers.
                if !isBlacklisted(t) {
                    try emitTypedefDef(id, t, level: 0)
                    out += ";\n\n"
                }
                fwdEmitted[i] = true
            default:
                break
            }
            return
        }

        switch t.kind {
        case .int:
            emitMissingAliases(id, t)
            emitState[i] = .emitted
        case .enum, .enum64:
            if topLevel {
                emitEnumDef(id, t, level: 0)
                out += ";\n\n"
            }
            emitState[i] = .emitted
        case .pointer, .volatile, .const, .restrict, .typeTag:
            try emitType(t.type, container: container)
        case .array:
            try emitType(t.arrayInfo!.elementType, container: container)
        case .forward:
            emitForwardDef(id, t)
            out += ";\n\n"
            emitState[i] = .emitted
        case .typedef:
            emitState[i] = .emitting
            try emitType(t.type, container: id)
            if !fwdEmitted[i] && !isBlacklisted(t) {
                try emitTypedefDef(id, t, level: 0)
                out += ";\n\n"
            }
            emitState[i] = .emitted
        case .struct, .union:
            emitState[i] = .emitting
            if topLevel || t.name.isEmpty {
                // Members are spelled out here, so what they reference must be declared.
                let inner = t.name.isEmpty ? container : id
                for m in t.members { try emitType(m.type, container: inner) }
            } else if !fwdEmitted[i] && id != container {
                emitStructForward(id, t)
                out += ";\n\n"
                fwdEmitted[i] = true
            }
            if topLevel {
                try emitStructDef(id, t, level: 0)
                out += ";\n\n"
                emitState[i] = .emitted
            } else {
                emitState[i] = .notEmitted
            }
        case .functionProto:
            try emitType(t.type, container: container)
            for p in t.params { try emitType(p.type, container: container) }
        default:
            break
        }
    }

    // MARK: - Layout (libbpf's btf__align_of and btf__resolve_size)

    /// Alignment as libbpf computes it (0 when unknown), from the BTF's one layout cache.
    private func alignOf(_ id: TypeID) throws(BTFError) -> Int {
        try btf.layoutAlignment(id)
    }

    /// sizeof, as libbpf's btf__resolve_size; nil where it gives an error.
    private func resolveSize(_ id: TypeID) -> Int? {
        try? btf.size(of: id)
    }

    private func isStructPacked(_ t: BTFType) throws(BTFError) -> Bool {
        var maxAlign = 1
        // Every non-bitfield member of an unpacked struct is naturally aligned...
        for m in t.members {
            let a = try alignOf(m.type)
            if a != 0 && m.bitfieldSize == 0 && Int(m.bitOffset) % (8 * a) != 0 { return true }
            maxAlign = max(a, maxAlign)
        }
        // ...and its size is a multiple of its alignment.
        return Int(t.size) % maxAlign != 0
    }

    // MARK: - Names

    private func nameDups(_ map: inout [String: Int], _ name: String) -> Int {
        let n = (map[name] ?? 0) + 1
        map[name] = n
        return n
    }

    private func resolveName(_ id: TypeID, ident: Bool) -> String {
        let i = Int(id)
        guard let t = try? type(id), !t.name.isEmpty else { return "" }
        if nameResolved[i] { return cachedNames[id] ?? t.name }
        if t.kind == .forward || (t.kind == .enum && t.vlen == 0) {
            nameResolved[i] = true
            return t.name
        }
        let dups = ident ? nameDups(&identNames, t.name) : nameDups(&typeNames, t.name)
        if dups > 1 { cachedNames[id] = "\(t.name)___\(dups)" }
        nameResolved[i] = true
        return cachedNames[id] ?? t.name
    }

    private func typeName(_ id: TypeID) -> String { resolveName(id, ident: false) }
    private func identName(_ id: TypeID) -> String { resolveName(id, ident: true) }

    // MARK: - Definitions

    @inline(__always) private func indent(_ level: Int) {
        for _ in 0..<min(level, 13) { out += "\t" }
    }

    private func emitStructForward(_ id: TypeID, _ t: BTFType) {
        out += t.kind == .struct ? "struct" : "union"
        if !t.name.isEmpty { out += " " }
        out += typeName(id)
    }

    /// Explicit padding from bit `cur` to bit `next` (btf_dump_emit_bit_padding): the
    /// largest of long/int/short/char that reaches an aligned boundary, a `type: 0` marker
    /// where the compiler would not get there by itself, then whole units.
    /// Gaps larger than this are malformed BTF (they would print millions of padding lines).
    static let maxPaddingBits = 8 << 16

    private func emitBitPadding(from cur: Int, to next: Int, nextAlign: Int, inBitfield: Bool, level: Int,
                                in id: TypeID) throws(BTFError) {
        var cur = cur
        if cur >= next { return }
        guard next - cur <= CDumper.maxPaddingBits else {
            throw .invalid(id: id, reason: "a gap of \((next - cur) / 8) bytes inside the struct; no real layout has one (corrupt member offsets or size?)")
        }
        let pads: [(String, Int)] = [("long", ptrSize * 8), ("int", 32), ("short", 16), ("char", 8)]
        func roundUp(_ x: Int, _ y: Int) -> Int { y == 0 ? x : (x + y - 1) / y * y }
        var newOff = 0, padBits = 0, padType = ""
        for (name, bits) in pads {
            padBits = bits
            padType = name
            newOff = roundUp(cur, bits)
            if newOff <= next { break }
        }
        if newOff > cur && newOff <= next {
            if inBitfield || (newOff == next && roundUp(cur, nextAlign * 8) != newOff)
                || (newOff != next && next - newOff <= newOff - cur) {
                out += "\n"
                indent(level)
                out += "\(padType): \(inBitfield ? newOff - cur : 0);"
            }
            cur = newOff
        }
        while cur != next {
            let bits = min(next - cur, padBits)
            if bits == padBits {
                out += "\n"
                indent(level)
                out += "\(padType): \(padBits);"
                cur += bits
                continue
            }
            // The remainder: the smallest type that holds it.
            for (name, size) in pads.reversed() where size >= bits {
                padType = name
                padBits = size
                out += "\n"
                indent(level)
                out += "\(name): \(bits);"
                cur += bits
                break
            }
        }
    }

    private func emitStructDef(_ id: TypeID, _ t: BTFType, level: Int) throws(BTFError) {
        try enter(id)
        defer { depth -= 1 }
        // An anonymous struct is defined where it is used: one that reaches itself would be
        // defined inside itself forever.
        if t.name.isEmpty {
            if definingInline.contains(id) { throw .cycle(id) }
            definingInline.insert(id)
        }
        defer { if t.name.isEmpty { definingInline.remove(id) } }
        let isStruct = t.kind == .struct
        let align = try alignOf(id)
        let packed = isStruct ? try isStructPacked(t) : false
        out += isStruct ? "struct" : "union"
        if !t.name.isEmpty { out += " " }
        out += typeName(id)
        out += " {"
        var off = 0
        var prevBitfield = false
        let base = annotationBase.last ?? 0
        for m in t.members {
            let mOff = Int(m.bitOffset)
            var mSize = Int(m.bitfieldSize)
            let mAlign = packed ? 1 : try alignOf(m.type)
            let inBitfield = prevBitfield && mSize != 0
            if annotateLayout { annotateHole(bits: mOff - off, level: level + 1) }
            try emitBitPadding(from: off, to: mOff, nextAlign: mAlign, inBitfield: inBitfield, level: level + 1, in: id)
            out += "\n"
            indent(level + 1)
            if annotateLayout { annotationBase.append(base &+ m.bitOffset) }
            try emitTypeDecl(m.type, name: m.name, level: level + 1)
            if annotateLayout { annotationBase.removeLast() }
            if mSize != 0 {
                out += ": \(mSize)"
                off = mOff + mSize
                prevBitfield = true
            } else {
                mSize = max(0, resolveSize(m.type) ?? 0)
                off = mOff + mSize * 8
                prevBitfield = false
            }
            out += ";"
            if annotateLayout { try annotateMember(m, base: base) }
        }
        if isStruct {
            if annotateLayout { annotateHole(bits: Int(t.size) * 8 - off, level: level + 1, tail: true) }
            try emitBitPadding(from: off, to: Int(t.size) * 8, nextAlign: align, inBitfield: false, level: level + 1, in: id)
        }
        if annotateLayout && level == 0 {
            out += "\n"
            indent(level + 1)
            let lines = (Int(t.size) + 63) / 64
            out += "/* size: \(t.size), cachelines: \(lines), members: \(t.members.count) */"
        }
        if !t.members.isEmpty || t.size != 0 {
            out += "\n"
            indent(level)
            out += "}"
        } else {
            out += "}"
        }
        if packed { out += " __attribute__((packed))" }
    }

    private func emitMissingAliases(_ id: TypeID, _ t: BTFType) {
        // GCC's Arm SIMD typedefs point at these internal names.
        let aliases = [("__Poly8_t", "unsigned char"), ("__Poly16_t", "unsigned short"),
                       ("__Poly64_t", "unsigned long long"), ("__Poly128_t", "unsigned __int128")]
        let name = typeName(id)
        for (alias, real) in aliases where alias == name {
            out += "typedef \(real) \(name);\n\n"
            break
        }
    }

    private func emitEnumDef(_ id: TypeID, _ t: BTFType, level: Int) {
        out += "enum"
        if !t.name.isEmpty { out += " " }
        out += typeName(id)
        let values = t.enumerators
        if values.isEmpty { return }
        out += " {"
        for e in values {
            // Enumerators share the namespace of typedef names.
            let dups = nameDups(&identNames, e.name)
            out += "\n"
            indent(level + 1)
            out += e.name
            if dups > 1 { out += "___\(dups)" }
            out += " = "
            if t.kind == .enum {
                out += t.kindFlag ? String(Int32(truncatingIfNeeded: e.value)) : String(UInt32(truncatingIfNeeded: e.value))
            } else {
                out += t.kindFlag ? "\(Int64(bitPattern: e.value))LL" : "\(e.value)ULL"
            }
            out += ","
        }
        out += "\n"
        indent(level)
        out += "}"
    }

    private func emitForwardDef(_ id: TypeID, _ t: BTFType) {
        out += t.kindFlag ? "union " : "struct "
        out += typeName(id)
    }

    private func emitTypedefDef(_ id: TypeID, _ t: BTFType, level: Int) throws(BTFError) {
        let name = identName(id)
        // Old GCC emits __gnuc_va_list as a typedef of void.
        if t.type == 0 && name == "__gnuc_va_list" {
            out += "typedef __builtin_va_list __gnuc_va_list"
            return
        }
        out += "typedef "
        try emitTypeDecl(t.type, name: name, level: level)
    }

    // MARK: - Declarators

    /// The declaration of `name` with type `id` in C syntax (btf_dump_emit_type_decl):
    /// the chain of pointers, arrays, prototypes and modifiers down to a named type is
    /// collected, then written inside out.
    func emitTypeDecl(_ id: TypeID, name: String, level: Int) throws(BTFError) {
        var stack: [TypeID] = []
        var id = id
        try enter(id)
        defer { depth -= 1 }
        while true {
            stack.append(id)
            if id == 0 { break }
            let t = try type(id)
            var done = false
            switch t.kind {
            case .pointer, .volatile, .const, .restrict, .functionProto, .typeTag:
                id = t.type
            case .array:
                id = t.arrayInfo!.elementType
            case .int, .enum, .enum64, .forward, .struct, .union, .typedef, .float:
                done = true
            default:
                done = true  // unexpected kind in a declaration: libbpf warns and stops
            }
            if done { break }
            // Longer than the number of types: the chain revisits one.
            if stack.count > count { throw .cycle(id) }
        }
        var n = stack.count
        // An anonymous struct reached through a pointer or a prototype is not part of the
        // layout being annotated: its members' offsets would mean something else.
        let annotating = annotateLayout
        if annotating {
            for i in stack {
                let k = try type(i).kind
                if k == .pointer || k == .functionProto { annotateLayout = false }
            }
        }
        defer { annotateLayout = annotating }
        try emitTypeChain(&stack, &n, name: name, level: level)
    }

    /// Writes the modifiers on top of the stack, left of a named type.
    private func emitMods(_ stack: [TypeID], _ n: inout Int) throws(BTFError) {
        while n > 0 {
            switch try type(stack[n - 1]).kind {
            case .volatile: out += "volatile "
            case .const: out += "const "
            case .restrict: out += "restrict "
            default: return
            }
            n -= 1
        }
    }

    private func dropMods(_ stack: [TypeID], _ n: inout Int) throws(BTFError) {
        while n > 0, try type(stack[n - 1]).kind.isModifier { n -= 1 }
    }

    private func emitName(_ name: String, lastWasPointer: Bool) {
        if !name.isEmpty && !lastWasPointer { out += " " }
        out += name
    }

    private func emitTypeChain(_ stack: inout [TypeID], _ n: inout Int, name: String, level: Int) throws(BTFError) {
        try enter(0)
        defer { depth -= 1 }
        // Whether the last thing written was `*`, so `int ***` gets no inner spaces.
        var lastWasPointer = true
        while n > 0 {
            n -= 1
            let id = stack[n]
            if id == 0 {
                try emitMods(stack, &n)
                out += "void"
                lastWasPointer = false
                continue
            }
            let t = try type(id)
            switch t.kind {
            case .int, .float:
                try emitMods(stack, &n)
                out += t.name
            case .struct, .union:
                try emitMods(stack, &n)
                if t.name.isEmpty {
                    try emitStructDef(id, t, level: level)
                } else {
                    emitStructForward(id, t)
                }
            case .enum, .enum64:
                try emitMods(stack, &n)
                if t.name.isEmpty {
                    emitEnumDef(id, t, level: level)
                } else {
                    out += "enum "
                    out += typeName(id)
                }
            case .forward:
                try emitMods(stack, &n)
                emitForwardDef(id, t)
            case .typedef:
                try emitMods(stack, &n)
                out += identName(id)
            case .pointer:
                out += lastWasPointer ? "*" : " *"
            case .volatile:
                out += " volatile"
            case .const:
                out += " const"
            case .restrict:
                out += " restrict"
            case .typeTag:
                try emitMods(stack, &n)
                out += " __attribute__((btf_type_tag(\"\(t.name)\")))"
            case .array:
                let count = t.arrayInfo!.count
                // GCC puts an array's element qualifiers on the array too; they mean nothing there.
                try dropMods(stack, &n)
                if n == 0 {
                    emitName(name, lastWasPointer: lastWasPointer)
                    out += "[\(count)]"
                    return
                }
                let multidim = try type(stack[n - 1]).kind == .array
                if !name.isEmpty && !lastWasPointer { out += " " }
                if !multidim { out += "(" }
                try emitTypeChain(&stack, &n, name: name, level: level)
                if !multidim { out += ")" }
                out += "[\(count)]"
                return
            case .functionProto:
                // GCC marks noreturn function pointers volatile; drop such qualifiers.
                try dropMods(stack, &n)
                if n > 0 {
                    out += " ("
                    try emitTypeChain(&stack, &n, name: name, level: level)
                    out += ")"
                } else {
                    emitName(name, lastWasPointer: lastWasPointer)
                }
                out += "("
                let params = t.params
                // No parameters, or clang's single void one: `(void)`.
                if params.isEmpty || (params.count == 1 && params[0].type == 0) {
                    out += "void)"
                    return
                }
                for (i, p) in params.enumerated() {
                    if i > 0 { out += ", " }
                    // A last parameter of type void means varargs.
                    if i == params.count - 1 && p.type == 0 {
                        out += "..."
                        break
                    }
                    try emitTypeDecl(p.type, name: p.name, level: level)
                }
                out += ")"
                return
            default:
                // libbpf warns about an unexpected kind in a declaration and stops here.
                return
            }
            lastWasPointer = t.kind == .pointer
        }
        emitName(name, lastWasPointer: lastWasPointer)
    }

    // MARK: - Layout comments (plumb btf show)

    private func lastLineStart() -> String.UTF8View.Index {
        let u = out.utf8
        var i = u.endIndex
        while i > u.startIndex {
            let p = u.index(before: i)
            if u[p] == UInt8(ascii: "\n") { return i }
            i = p
        }
        return u.startIndex
    }

    /// Display width of the current (last) line, tabs at 8.
    private func currentColumn() -> Int {
        let u = out.utf8
        var col = 0
        var i = lastLineStart()
        while i < u.endIndex {
            col = u[i] == UInt8(ascii: "\t") ? (col / 8 + 1) * 8 : col + 1
            i = u.index(after: i)
        }
        return col
    }

    private func padToCommentColumn() {
        let col = currentColumn()
        let target = max(56, col + 1)
        out += String(repeating: " ", count: target - col)
    }

    /// A gap before the next member (or the end) gets its own line, as in pahole; the
    /// padding members btf_dump writes there follow it.
    private func annotateHole(bits: Int, level: Int, tail: Bool = false) {
        guard bits > 0 else { return }
        out += "\n"
        indent(level)
        let what = bits % 8 == 0 ? "\(bits / 8) byte\(bits == 8 ? "" : "s")" : "\(bits) bit\(bits == 1 ? "" : "s")"
        out += tail ? "/* padding: \(what) */" : "/* XXX \(what) hole */"
    }

    private func annotateMember(_ m: BTFMember, base: UInt32) throws(BTFError) {
        let off = Int(base &+ m.bitOffset)
        let size = resolveSize(m.type) ?? 0
        padToCommentColumn()
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: " ", count: w - s.count) + s
        }
        if m.bitfieldSize != 0 && size > 0 {
            // pahole's byte:bit, the byte being the start of the storage unit.
            let unitBits = size * 8
            let unitStart = off / unitBits * unitBits
            out += "/* \(pad(unitStart / 8, 5)):\(pad(off - unitStart, 2)) \(pad(size, 2)) */"
        } else {
            out += "/* \(pad(off / 8, 5)) \(pad(size, 5)) */"
        }
    }
}
