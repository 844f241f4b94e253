// `struct name { ... }` written in the script: laid out as C lays them out and added as
// split BTF on top of the kernel's, so casts, member access and "did you mean" work the
// same for script and kernel types.
import PlumbBTF
import PlumbELF

extension Compiler {
    /// The kernel's BTF plus the script's structs (ids after the kernel's), built once.
    func buildTypeBTF(kernel: BTF?) -> BTF? {
        guard !script.structs.isEmpty else { return kernel }
        var builder = BTFBuilder(base: kernel)
        var intIDs: [String: TypeID] = [:]
        var sizes: [TypeID: (size: Int, align: Int)] = [:]
        var ids: [String: TypeID] = [:]
        let intTable: [String: (Int, Bool)] = [
            "int8": (1, true), "uint8": (1, false), "int16": (2, true), "uint16": (2, false), "int32": (4, true),
            "uint32": (4, false), "int64": (8, true), "uint64": (8, false), "char": (1, true), "unsigned char": (1, false),
            "signed char": (1, true), "short": (2, true), "unsigned short": (2, false), "int": (4, true),
            "unsigned int": (4, false), "unsigned": (4, false), "long": (8, true), "unsigned long": (8, false),
            "long long": (8, true), "unsigned long long": (8, false), "u8": (1, false), "s8": (1, true),
            "u16": (2, false), "s16": (2, true), "u32": (4, false), "s32": (4, true), "u64": (8, false), "s64": (8, true),
            "bool": (1, false), "_Bool": (1, false),
        ]
        func intType(_ size: Int, _ signed: Bool) -> TypeID {
            let key = "\(size)\(signed)"
            if let id = intIDs[key] { return id }
            let names = [1: "char", 2: "short", 4: "int", 8: "long"]
            let id = builder.add(BTFType(kind: .int, name: (signed ? "" : "unsigned ") + (names[size] ?? "long"), sizeOrType: UInt32(size),
                                         payload: .int(BTFInt(encoding: signed ? .signed : [], offset: 0, bits: UInt8(size * 8)))))
            intIDs[key] = id
            sizes[id] = (size, size)
            return id
        }
        // Placeholders first, so structs can point at themselves and at each other.
        for s in script.structs where ids[s.name] == nil {
            ids[s.name] = builder.add(BTFType(kind: s.isUnion ? .union : .struct, name: s.name))
        }
        func memberType(_ tn: TypeName) -> (id: TypeID, size: Int, align: Int)? {
            let n = tn.base.split(separator: " ").joined(separator: " ")
            var id: TypeID
            var size: Int, align: Int
            if let (sz, signed) = intTable[n] {
                id = intType(sz, signed)
                size = sz; align = sz
            } else if n.hasPrefix("struct ") || n.hasPrefix("union ") {
                let name = String(n.drop { $0 != " " }.dropFirst())
                if let own = ids[name] {
                    id = own
                    (size, align) = sizes[own] ?? (0, 1)
                    if sizes[own] == nil && tn.pointerDepth == 0 {
                        error("struct '\(name)' is used by value before its definition is complete", tn.range)
                        return nil
                    }
                } else if let kernel, let k = kernel.firstID(named: name, kind: n.hasPrefix("union ") ? .union : .struct) {
                    id = k
                    size = (try? kernel.size(of: k)) ?? 0
                    align = (try? kernel.alignment(of: k)) ?? 8
                } else if tn.pointerDepth > 0 {
                    // A pointer to an unknown struct: a forward declaration.
                    id = builder.add(BTFType(kind: .forward, name: name))
                    size = 0; align = 1
                } else {
                    error(n.hasPrefix("enum ") ? "unknown type '\(n)'" : "Unknown struct/union: '\(n)'", tn.range)
                    return nil
                }
            } else if let kernel, let k = kernel.firstID(named: n, kind: .typedef) ?? kernel.firstID(named: n, kind: .int) {
                id = k
                size = (try? kernel.size(of: k)) ?? 8
                align = (try? kernel.alignment(of: k)) ?? 8
            } else {
                error("unknown type '\(n)'", tn.range)
                return nil
            }
            for _ in 0..<tn.pointerDepth {
                id = builder.add(BTFType(kind: .pointer, sizeOrType: id))
                size = 8; align = 8
            }
            if let count = tn.arrayLength {
                guard count >= 0, count <= 1 << 20 else { error("array length \(count) is too large", tn.range); return nil }
                id = builder.add(BTFType(kind: .array, payload: .array(BTFArray(elementType: id, indexType: intType(4, false), count: UInt32(count)))))
                size *= count
            }
            return (id, size, max(1, align))
        }
        for s in script.structs {
            guard let sid = ids[s.name] else { continue }
            var members: [BTFMember] = []
            var offset = 0, maxAlign = 1, maxSize = 0
            var names = Set<String>()
            for f in s.fields {
                if !names.insert(f.name).inserted { error("duplicate member '\(f.name)' in struct '\(s.name)'", f.range) }
                guard let m = memberType(f.type) else { continue }
                if !s.isUnion { offset = (offset + m.align - 1) / m.align * m.align }
                members.append(BTFMember(name: f.name, type: m.id, bitOffset: UInt32(clamping: (s.isUnion ? 0 : offset) * 8)))
                if !s.isUnion { offset += m.size }
                maxSize = max(maxSize, m.size)
                maxAlign = max(maxAlign, m.align)
            }
            let size = ((s.isUnion ? maxSize : offset) + maxAlign - 1) / maxAlign * maxAlign
            builder.replace(sid, with: BTFType(kind: s.isUnion ? .union : .struct, name: s.name, sizeOrType: UInt32(clamping: size), payload: .members(members)))
            sizes[sid] = (size, maxAlign)
        }
        scriptStructIDs = ids
        let bytes = builder.encode()
        do { return try BTF(bytes: Bytes(bytes), base: kernel) } catch {
            self.error("internal: the script's structs do not form valid BTF: \(error)", script.structs[0].range)
            return kernel
        }
    }
}
