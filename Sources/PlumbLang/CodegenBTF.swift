// BTF for the plan's maps: key and value types, so `bpftool map dump` shows fields and
// the kernel checks the sizes. Built into the plan's own BTF next to the programs' FUNCs.
import PlumbBTF

extension Compiler {
    /// How the runtime prints a value of `t`. Kernel records are printed from the kernel's
    /// BTF; the script's own structs (split BTF the runtime does not have) become tuples of
    /// their members.
    func printed(_ t: SType, depth: Int = 0) -> ValueType {
        if case .argsRecord(let members, let size) = t { return printedArgsRecord(members, size: size) }
        if case .record(let id, _, let size) = t, let user = printedUserRecord(id, size: size) { return user }
        guard case .record(let id, _, let size) = t, let btf, let kernel = env.kernelBTF(), Int(id) >= kernel.count || depth > 0 else {
            if case .tuple(let elems) = t {
                let l = t.tupleLayout
                return .tuple(zip(l.offsets, elems).map { Field(offset: $0, type: printed($1, depth: depth + 1)) }, size: l.size)
            }
            return t.valueType(strlen: options.stringLength)
        }
        guard depth < 8, let type = try? btf.type(id) else { return .none }
        let fields = type.members.map { m in
            Field(offset: Int(m.bitOffset / 8), type: printed(stype(fromBTF: m.type, btf: btf, space: .kernel), depth: depth + 1))
        }
        return .tuple(fields, size: size)
    }

    /// A BTF type for `t` (scalars as C integers, strings as char arrays, tuples as structs).
    func planType(_ t: SType, cache: inout [String: TypeID]) -> TypeID {
        let key = t.description
        if let id = cache[key] { return id }
        let id: TypeID
        switch t {
        case .int(let size, let signed):
            let names = [1: "char", 2: "short", 4: "int", 8: "long"]
            let name = (signed ? "" : "unsigned ") + (names[size] ?? "long")
            id = planBTF.add(BTFType(kind: .int, name: name, sizeOrType: UInt32(clamping: size),
                                     payload: .int(BTFInt(encoding: signed ? .signed : [], offset: 0, bits: UInt8(clamping: size * 8)))))
        case .bool:
            id = planBTF.add(BTFType(kind: .int, name: "_Bool", sizeOrType: 1, payload: .int(BTFInt(encoding: .bool, offset: 0, bits: 8))))
        case .pointer, .ksym, .username, .kstack, .ctx, .timestamp, .strerror, .macaddr:
            id = planType(.u64, cache: &cache)
        case .string(let n):
            let char = planType(.int(size: 1, signed: true), cache: &cache)
            let index = planType(.u32, cache: &cache)
            id = planBTF.add(BTFType(kind: .array, payload: .array(BTFArray(elementType: char, indexType: index, count: UInt32(clamping: n)))))
        case .argsRecord(let members, let size):
            id = argsRecordType(members, size: size, cache: &cache)
        case .tuple(let elems):
            let layout = t.tupleLayout
            let members = elems.enumerated().map { i, e in
                BTFMember(name: "e\(i)", type: planType(e, cache: &cache), bitOffset: UInt32(clamping: layout.offsets[i] * 8))
            }
            id = planBTF.add(BTFType(kind: .struct, name: "", sizeOrType: UInt32(clamping: layout.size), payload: .members(members)))
        default:
            id = bytes(t.size, cache: &cache)
        }
        cache[key] = id
        return id
    }

    func bytes(_ n: Int, cache: inout [String: TypeID]) -> TypeID {
        let k = "bytes\(n)"
        if let id = cache[k] { return id }
        let byte = planType(.int(size: 1, signed: false), cache: &cache)
        let index = planType(.u32, cache: &cache)
        let id = planBTF.add(BTFType(kind: .array, payload: .array(BTFArray(elementType: byte, indexType: index, count: UInt32(clamping: n)))))
        cache[k] = id
        return id
    }

    /// A struct of 8-byte members named as given.
    func pairStruct(_ names: [String], signed: Bool, cache: inout [String: TypeID]) -> TypeID {
        let first = planType(signed ? .i64 : .u64, cache: &cache), rest = planType(.u64, cache: &cache)
        let members = names.enumerated().map { BTFMember(name: $1, type: $0 == 0 ? first : rest, bitOffset: UInt32(clamping: $0 * 64)) }
        return planBTF.add(BTFType(kind: .struct, sizeOrType: UInt32(clamping: 8 * names.count), payload: .members(members)))
    }

    /// Key and value type ids of a map whose kernel layout is `keySize`/`valueSize`.
    func mapTypes(_ m: MapState, keySize: Int, valueSize: Int, cache: inout [String: TypeID]) -> (key: TypeID, value: TypeID) {
        let isHist: Bool = { if case .hist = m.value { return true }; if case .lhist = m.value { return true }; return false }()
        var key: TypeID
        if m.keys.isEmpty && !isHist {
            key = planType(.u64, cache: &cache)
        } else {
            let layout = keyLayout(m.keys, histogram: isHist)
            var members: [BTFMember] = []
            if m.keys.isEmpty { members.append(BTFMember(name: "zero", type: planType(.u64, cache: &cache), bitOffset: 0)) }
            for (i, k) in m.keys.enumerated() {
                let t = k.isScalar ? (k.isSigned ? SType.i64 : .u64) : k
                members.append(BTFMember(name: "k\(i)", type: planType(t, cache: &cache), bitOffset: UInt32(clamping: layout.offsets[i] * 8)))
            }
            if isHist { members.append(BTFMember(name: "bucket", type: planType(.u64, cache: &cache), bitOffset: UInt32(clamping: (keySize - 8) * 8))) }
            key = planBTF.add(BTFType(kind: .struct, sizeOrType: UInt32(clamping: keySize), payload: .members(members)))
        }
        let value: TypeID
        switch m.value {
        case .count, .hist, .lhist: value = planType(.u64, cache: &cache)
        case .sum(let s): value = planType(s ? .i64 : .u64, cache: &cache)
        case .min(let s), .max(let s): value = pairStruct(["value", "is_set"], signed: s, cache: &cache)
        case .avg(let s), .stats(let s): value = pairStruct(["total", "count"], signed: s, cache: &cache)
        case .value(let t):
            let inner = planType(t.isScalar ? (t.isSigned ? .i64 : .u64) : t, cache: &cache)
            if (t.isScalar ? 8 : t.size) == valueSize {
                value = inner
            } else {
                value = planBTF.add(BTFType(kind: .struct, sizeOrType: UInt32(clamping: valueSize),
                                            payload: .members([BTFMember(name: "value", type: inner, bitOffset: 0)])))
            }
        }
        return (key, value)
    }
}
