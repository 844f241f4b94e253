// Printing a record typed by a binary's DWARF (`print(var("g_conn"))`, `@c = *args.req`,
// `print($pt)` at a statement probe). Its type lives in that binary's BTF, which the runtime
// does not have, so the record's type is copied into the plan's BTF and printed from there
// as kernel records are printed from vmlinux: `{ .fd = 42, .user = 0x4052a0 }`.
import PlumbBTF

extension Compiler {
    /// How the runtime prints a DWARF-typed record; nil when `id` is not one.
    func printedUserRecord(_ id: TypeID, size: Int) -> ValueType? {
        guard let u = userRecord(id), let copied = copyUserType(u.local, binary: u.k, btf: u.btf, depth: 0) else { return nil }
        return .record(type: copied, size: size, inPlanBTF: true)
    }

    /// `id` of binary `k`'s BTF, copied into the plan's BTF with what printing needs: integers,
    /// enums, floats, arrays, nested records and typedefs as they are; pointers as `void *`
    /// (printed as addresses, so their targets need not come along).
    private func copyUserType(_ id: TypeID, binary k: Int, btf: BTF, depth: Int) -> TypeID? {
        let key = "user\(k):\(id)"
        if let done = argsTypeCache[key] { return done }
        guard depth < 16, let t = try? btf.type(id) else { return nil }
        var copy = t
        switch t.kind {
        case .unknown:
            return 0
        case .int, .enum, .enum64, .float, .forward:
            break
        case .pointer:
            copy = BTFType(kind: .pointer, sizeOrType: 0)
        case .array:
            guard let a = t.arrayInfo, let element = copyUserType(a.elementType, binary: k, btf: btf, depth: depth + 1) else { return nil }
            copy.payload = .array(BTFArray(elementType: element, indexType: planType(.u32, cache: &argsTypeCache), count: a.count))
        case .struct, .union:
            var members: [BTFMember] = []
            for m in t.members {
                guard let type = copyUserType(m.type, binary: k, btf: btf, depth: depth + 1) else { return nil }
                var c = m
                c.type = type
                members.append(c)
            }
            copy.payload = .members(members)
        case .typedef, .const, .volatile, .restrict:
            guard let target = copyUserType(t.type, binary: k, btf: btf, depth: depth + 1) else { return nil }
            copy.sizeOrType = target
        default:
            return nil
        }
        let added = planBTF.add(copy)
        argsTypeCache[key] = added
        return added
    }
}
