/// bpftool's plain-text BTF listing (`bpftool btf dump file F`), line for line.
extension BTF {
    public func rawDump(into out: inout String) throws(BTFError) {
        for id in ownIDs {
            try rawDump(id, into: &out)
        }
    }

    public func rawDump(_ id: TypeID, into out: inout String) throws(BTFError) {
        let t = try type(id)
        out += "[\(id)] \(t.kind.name) '\(t.name.isEmpty ? "(anon)" : t.name)'"
        switch t.kind {
        case .int:
            let i = t.intInfo!
            let enc: String
            switch i.encoding.rawValue {
            case 0: enc = "(none)"
            case 1: enc = "SIGNED"
            case 2: enc = "CHAR"
            case 4: enc = "BOOL"
            default: enc = "UNKN"
            }
            out += " size=\(t.size) bits_offset=\(i.offset) nr_bits=\(i.bits) encoding=\(enc)"
        case .pointer, .const, .volatile, .restrict, .typedef, .typeTag:
            out += " type_id=\(t.type)"
        case .array:
            let a = t.arrayInfo!
            out += " type_id=\(a.elementType) index_type_id=\(a.indexType) nr_elems=\(a.count)"
        case .struct, .union:
            out += " size=\(t.size) vlen=\(t.vlen)"
            for m in t.members {
                out += "\n\t'\(m.name.isEmpty ? "(anon)" : m.name)' type_id=\(m.type) bits_offset=\(m.bitOffset)"
                if m.bitfieldSize != 0 { out += " bitfield_size=\(m.bitfieldSize)" }
            }
        case .enum, .enum64:
            out += " encoding=\(t.kindFlag ? "SIGNED" : "UNSIGNED") size=\(t.size) vlen=\(t.vlen)"
            for e in t.enumerators {
                out += "\n\t'\(e.name.isEmpty ? "(anon)" : e.name)' val="
                if t.kind == .enum {
                    out += t.kindFlag ? "\(Int32(truncatingIfNeeded: e.value))" : "\(UInt32(truncatingIfNeeded: e.value))"
                } else {
                    out += t.kindFlag ? "\(Int64(bitPattern: e.value))LL" : "\(e.value)ULL"
                }
            }
        case .forward:
            out += " fwd_kind=\(t.kindFlag ? "union" : "struct")"
        case .function:
            let l = t.linkage.map(\.name) ?? "UNKN"
            out += " type_id=\(t.type) linkage=\(l)"
        case .functionProto:
            out += " ret_type_id=\(t.type) vlen=\(t.vlen)"
            for p in t.params {
                out += "\n\t'\(p.name.isEmpty ? "(anon)" : p.name)' type_id=\(p.type)"
            }
        case .variable:
            let l = t.linkage.map(\.name) ?? "UNKN"
            out += " type_id=\(t.type), linkage=\(l)"
        case .dataSection:
            out += " size=\(t.size) vlen=\(t.vlen)"
            for v in t.sectionVariables {
                out += "\n\ttype_id=\(v.type) offset=\(v.offset) size=\(v.size) (\(kind(of: v.type).name) '\(name(of: v.type))')"
            }
        case .float:
            out += " size=\(t.size)"
        case .declTag:
            out += " type_id=\(t.type) component_idx=\(t.componentIndex ?? -1)"
        case .unknown:
            break
        }
        out += "\n"
    }
}
