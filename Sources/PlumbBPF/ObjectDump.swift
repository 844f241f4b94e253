import PlumbAsm
import PlumbBTF

extension ObjectSpec {
    /// A listing of the object as `plumb object dump` prints it: maps, globals, externs, then
    /// each program's instructions in llvm-objdump's syntax, numbered by 8-byte slot, with the
    /// source line (from line_info) above and each CO-RE patch noted below its instruction.
    public func dump(relocations: [String: [AppliedRelocation]] = [:]) -> String {
        var out = ""
        func typeName(_ id: TypeID, size: UInt32) -> String {
            guard id != 0, let btf else { return "\(size) bytes" }
            return "\(btf.cTypeName(id)) (\(size) bytes)"
        }
        out += "object \(name): \(order == .little ? "little" : "big")-endian, license \(license.isEmpty ? "(none)" : license)"
        out += kernelVersion != 0 ? ", kernel version \(kernelVersion)\n" : "\n"

        let defined = maps.filter { $0.dataSection == nil }
        out += "\nmaps (\(defined.count)):\n"
        for m in defined {
            out += "  \(m.name): \(m.type) key \(typeName(m.keyType, size: m.keySize)) value \(typeName(m.valueType, size: m.valueSize)) max_entries \(m.maxEntries)"
            if m.flags != 0 { out += " flags 0x\(String(m.flags, radix: 16))" }
            if m.pinning == .byName { out += " pinned by name" }
            if let inner = m.innerMap?.spec { out += " inner \(inner.type) key \(inner.keySize) value \(inner.valueSize) max_entries \(inner.maxEntries)" }
            for v in m.initialInnerMaps { out += "\n    [\(v.slot)] = \(v.map)" }
            out += "\n"
        }

        let data = maps.filter { $0.dataSection != nil }
        out += "\nglobals (\(data.reduce(0) { $0 + $1.variables.count })):\n"
        for m in data {
            out += "  \(m.dataSection!) -> map \(m.name), \(m.valueSize) bytes\(m.isReadOnlyData ? ", read-only" : "")\n"
            for v in m.variables {
                out += "    \(v.isStatic ? "static " : "")\(v.type != 0 ? (btf?.cTypeName(v.type) ?? "?") : "?") \(v.name) @ \(v.offset) (\(v.size) bytes)"
                if m.dataSection != ".kconfig", let bytes = bytes(of: v, in: m) {
                    out += " = " + bytes.withUnsafeBytes { ValueFormatter.hex($0) }
                }
                out += "\n"
            }
        }
        if !externs.isEmpty {
            out += "\nexterns (\(externs.count)):\n"
            for e in externs {
                let kind = e.kind == .kconfig ? "kconfig" : e.kind == .ksymFunction ? "ksym function" : "ksym variable"
                out += "  \(e.name): \(kind)\(e.isWeak ? " (weak)" : "")\n"
            }
        }

        out += "\nprograms (\(programs.count)):\n"
        for p in programs {
            let slots = p.instructions.slotCount
            out += "  \(p.name): \(p.type) section \(p.section)"
            if let a = p.kind.expectedAttachType { out += " attach type \(a.rawValue)" }
            out += ", \(slots) slots, \(p.coreRelocations.count) CO-RE relocations\n"
        }
        for p in programs {
            out += "\n"
            out += disassemble(p, relocations: relocations[p.name] ?? [])
        }
        return out
    }

    func bytes(of v: GlobalVariable, in m: MapSpec) -> [UInt8]? {
        let end = Int(v.offset) + Int(v.size)
        guard v.size > 0, v.size <= 64, end <= m.contents.count else { return nil }
        return Array(m.contents[Int(v.offset)..<end])
    }

    /// One program's listing.
    public func disassemble(_ p: ProgramSpec, relocations: [AppliedRelocation] = []) -> String {
        let slotOf = p.instructions.slotIndices
        let symbols = p.functions.map { Disassembler.Symbol(name: $0.name, address: UInt64(slotOf.indices.contains($0.index) ? slotOf[$0.index] * 8 : 0)) }
        let dis = Disassembler(symbols: symbols)
        var functionAt: [Int: String] = [:]
        for f in p.functions { functionAt[f.index] = f.name }
        var lineAt: [Int: String] = [:]
        if let btf {
            for l in p.lineInfo {
                if let text = btf.string(at: l.lineOffset), !text.isEmpty { lineAt[l.slot] = text }
            }
        }
        var notes: [Int: [String]] = [:]
        for r in relocations {
            // The summary says old -> new; the patch adds what it does not (a load size change).
            var note = r.summary
            if case .offset(_, _, let size?) = r.patch { note += " (load size \(size.old) -> \(size.new) bytes)" }
            notes[r.index, default: []].append(note)
        }
        for (i, ref) in p.references {
            let text: String
            switch ref {
            case .map(let m): text = "map \(m)"
            case .mapValue(let m, let off): text = "map \(m) value + \(off)"
            case .kconfig(let n): text = "kconfig \(n)"
            case .ksym(let n, let isFunction): text = isFunction ? "kfunc \(n)" : "ksym \(n)"
            }
            notes[i, default: []].insert(text, at: 0)
        }
        var out = ""
        var lastLine: String?
        for (i, insn) in p.instructions.enumerated() {
            if let f = functionAt[i] {
                if i != 0 { out += "\n" }
                out += "<\(f)>:\n"
            }
            if let line = lineAt[i], line != lastLine {
                out += "; \(line.trimmingLeadingSpace)\n"
                lastLine = line
            }
            out += dis.line(insn, slot: slotOf[i], byteOrder: order) + "\n"
            for n in notes[i] ?? [] { out += "\t\t; \(n)\n" }
        }
        return out
    }
}

extension String {
    var trimmingLeadingSpace: Substring { drop { $0 == " " || $0 == "\t" } }
}
