// `args` as a whole value: `print(args)`, `@x = args`, `@[args]`, `$a = args`. The value is
// a record of every argument the probe has (tracepoint fields from the format file without
// the common_ header, tp_btf/kfunc parameters from BTF, uprobe parameters from DWARF), laid
// out as a C struct would be, each member read as `args.NAME` reads it. It prints as
// bpftrace prints records: `{ .__syscall_nr = 257, .dfd = -100, .filename = 0x7ffd..., ... }`
// (pointers in hex), through a struct of the plan's own BTF built for it.
import PlumbAsm
import PlumbBTF

extension Compiler {
    /// The members `args` has in this probe, in order, as `args.NAME` types them.
    func argsMembers(_ e: Expr) -> [(name: String, type: SType)]? {
        if userTypes.functions[probeName] != nil, case .registers(false, true) = context {
            guard let (k, fn) = userFunction(e) else { return nil }
            // Parameters passed by value as structs or floats cannot be read (args.NAME refuses them too).
            return fn.parameters.compactMap { p in
                let t = userSType(p.type, binary: k)
                return t.isScalar && !p.name.isEmpty ? (p.name, t) : nil
            }
        }
        switch context {
        case .tracepoint(let category, _, let fields):
            return fields.map { f in
                // The C type decides the sign, as bpftrace's struct for the record has it: syscall
                // fields are `int dfd` in 8 bytes with `signed:0`, and print as -100.
                var t = fieldType(f, category: category)
                if case .int(let size, _) = t, let signed = Compiler.cSignedness(f.type) { t = .int(size: size, signed: signed) }
                return (f.name, t)
            }
        case .btf(let params, _):
            // Non-scalar parameters read as their u64 slot (as btfArg reads them).
            return params.map { ($0.name, $0.type.isScalar ? $0.type : .u64) }
        default:
            return nil
        }
    }

    /// The C size of a tracepoint field's integer type when the field is wider (syscall
    /// arguments: `int dfd` in 8 bytes holds a zero-extended 32-bit value).
    func argsNarrowing(_ name: String) -> SType? {
        guard case .tracepoint(_, _, let fields) = context, let f = fields.first(where: { $0.name == name }),
              f.arrayLength == nil, !f.isPointer, let signed = Compiler.cSignedness(f.type) else { return nil }
        let last = f.type.replacingConst.split(separator: " ").last.map(String.init) ?? ""
        let named: [String: Int] = ["int": 4, "short": 2, "char": 1]
        var size: Int? = named[last]
        if size == nil, last.first == "s" || last.first == "u" || last.hasPrefix("__") {
            size = last.hasSuffix("32") ? 4 : last.hasSuffix("16") ? 2 : last.hasSuffix("8") ? 1 : nil
        }
        guard let size, size < f.size else { return nil }
        return .int(size: size, signed: signed)
    }

    /// Whether a C integer type's text is signed (nil: a typedef whose sign the text does not say).
    static func cSignedness(_ type: String) -> Bool? {
        let words = type.replacingConst.split(separator: " ").map(String.init)
        if words.contains("unsigned") { return false }
        if words.contains("signed") { return true }
        guard let last = words.last else { return nil }
        if ["int", "long", "short"].contains(last) { return true }
        if last.hasPrefix("s") || last.hasPrefix("__s"), ["8", "16", "32", "64"].contains(where: { last.hasSuffix($0) }) { return true }
        if last.hasPrefix("u") || last.hasPrefix("__u"), ["8", "16", "32", "64"].contains(where: { last.hasSuffix($0) }) { return false }
        if ["size_t", "bool", "_Bool"].contains(last) { return false }
        if ["ssize_t", "pid_t", "loff_t", "off_t", "time_t", "clockid_t", "key_serial_t", "timer_t", "mqd_t"].contains(last) { return true }
        return nil
    }

    /// `args` evaluated as a value: the record in a stack buffer.
    func argsRecord(_ e: Expr) -> Val {
        guard let members = argsMembers(e) else {
            if !diagnostics.contains(where: { $0.range == e.range }) {
                error("the args builtin is only available in tracepoint, rawtracepoint, kfunc and uprobe (with DWARF) probes", e.range)
            }
            return .poison
        }
        guard !members.isEmpty else {
            error("'\(probeName)' has no arguments to make a record of", e.range)
            return .poison
        }
        var at = 0
        var laid: [RecordMember] = []
        for m in members {
            let a = max(1, m.type.alignment)
            at = (at + a - 1) / a * a
            laid.append(RecordMember(name: m.name, offset: at, type: m.type))
            at += m.type.size
        }
        let size = max(8, (at + 7) / 8 * 8)
        guard size <= Compiler.maxValueSize else { tooLarge(size); return .poison }
        let o = frame.allocate(size)
        // Padding zeroed: the record may be a map key, compared byte for byte.
        zero(slot: o, size: size)
        for m in laid {
            let v = argsField(m.name, e)
            if v.isPoison { return .poison }
            if let narrow = argsNarrowing(m.name), m.type.isScalar {
                let r = load(v, into: .r0)
                convert(r, to: narrow)
                release(v)
                b.emit(.store(.r10, offset: Int16(clamping: o + m.offset), r, size: Size(bytes: min(8, m.type.size)) ?? .doubleWord))
                continue
            }
            store(v, as: m.type, toSlot: o + m.offset)
            release(v)
        }
        return Val(type: .argsRecord(laid, size: size), loc: .slot(o))
    }

    /// `$a.NAME` of an args record held in a variable or buffer.
    func argsRecordMember(_ name: String, of members: [RecordMember], _ base: Val, _ e: Expr) -> Val {
        guard let m = members.first(where: { $0.name == name }) else {
            error("the args record has no field named '\(name)'", e.range,
                  notes: nearest(name, in: members.map(\.name)).map { [.init("did you mean '\($0)'?")] } ?? [])
            return .poison
        }
        guard case .slot(let o) = base.loc else { error("cannot access members of this args record", e.range); return .poison }
        if m.type.isScalar {
            b.emit(.load(.r0, .r10, offset: Int16(clamping: o + m.offset), size: Size(bytes: min(8, max(1, m.type.size))) ?? .doubleWord))
            if case .int = m.type { extend(.r0, m.type) }
            return result(m.type, from: .r0)
        }
        return Val(type: m.type, loc: .slot(o + m.offset))
    }

    /// A struct of the plan's BTF for an args record (named members, pointers as pointers so
    /// they print in hex, char arrays as text).
    func argsRecordType(_ members: [RecordMember], size: Int, cache: inout [String: TypeID]) -> TypeID {
        let key = "args{" + members.map { "\($0.name)@\($0.offset):\($0.type)" }.joined(separator: ",") + "}\(size)"
        if let id = cache[key] { return id }
        func member(_ t: SType) -> TypeID {
            switch t {
            case .pointer:
                if let p = cache["void *"] { return p }
                let p = planBTF.add(BTFType(kind: .pointer, sizeOrType: 0))
                cache["void *"] = p
                return p
            case .int, .bool, .string:
                return planType(t, cache: &cache)
            case .array(let e, let n) where e.isInteger:
                let element = planType(e, cache: &cache)
                let index = planType(.u32, cache: &cache)
                return planBTF.add(BTFType(kind: .array, payload: .array(BTFArray(elementType: element, indexType: index, count: UInt32(clamping: n)))))
            default:
                return bytes(max(1, t.size), cache: &cache)
            }
        }
        let btfMembers = members.map { BTFMember(name: $0.name, type: member($0.type), bitOffset: UInt32(clamping: $0.offset * 8)) }
        let id = planBTF.add(BTFType(kind: .struct, name: "", sizeOrType: UInt32(clamping: size), payload: .members(btfMembers)))
        cache[key] = id
        return id
    }

    /// How the runtime prints an args record: the plan's struct for it.
    func printedArgsRecord(_ members: [RecordMember], size: Int) -> ValueType {
        .record(type: argsRecordType(members, size: size, cache: &argsTypeCache), size: size, inPlanBTF: true)
    }
}
