import PlumbSys
import PlumbBTF
import PlumbAsm
import PlumbELF

// `plumb prog dump` and `plumb map dump`: what a loaded program runs and what a map holds,
// typed by the BTF the kernel keeps for them.

extension KernelObjects {
    /// Kernel symbol addresses (from /proc/kallsyms), for naming helper calls in translated code.
    public struct KernelSymbols: Sendable {
        var byAddress: [UInt64: String] = [:]
        var callBase: UInt64?

        /// Reads /proc/kallsyms (addresses read as 0 without CAP_SYSLOG; then calls stay unnamed).
        public static func load() -> KernelSymbols {
            var s = KernelSymbols()
            guard let text = KernelObjects.readText("/proc/kallsyms") else { return s }
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ", maxSplits: 3)
                guard f.count >= 3, let a = UInt64(f[0], radix: 16), a != 0 else { continue }
                // Text symbols only: helpers are functions.
                guard f[1] == "T" || f[1] == "t" else { continue }
                let name = String(f[2].split(separator: "\t").first ?? f[2])
                if name == "__bpf_call_base" { s.callBase = a }
                if s.byAddress[a] == nil { s.byAddress[a] = name }
            }
            return s
        }

        /// The function a translated helper call's `imm` (an offset from __bpf_call_base) reaches.
        public func helper(imm: Int32) -> String? {
            guard let base = callBase else { return nil }
            return byAddress[UInt64(bitPattern: Int64(bitPattern: base) &+ Int64(imm))]
        }
    }

    /// The translated instructions of program `id` in our disassembler's syntax: function
    /// names from func_info, source lines from line_info, helper calls by name, map references by id.
    public static func dumpTranslated(programID id: UInt32, symbols: KernelSymbols = .load()) throws(BPFError) -> String {
        let fd = try open(id, .program)
        let info = try sys { () throws(SysError) in try Sys.programInfo(fd) }
        let details = try sys { () throws(SysError) in try Sys.programDetails(fd) }
        guard !details.xlated.isEmpty else {
            throw .unsupported(feature: "translated instruction dumps", reason: "the kernel returned none for program \(id)",
                               suggestion: "run as root (CAP_SYS_ADMIN) and check kernel.kptr_restrict")
        }
        let insns: [Instruction]
        do { insns = try Instruction.decode(details.xlated) } catch { throw .instructions(section: "program \(id)", error) }
        let btf: BTF? = info.btfID != 0 ? try? btf(id: info.btfID) : nil

        var functionAt: [Int: String] = [:]   // slot -> name
        for f in details.funcInfo {
            if let btf { functionAt[Int(f.instructionOffset)] = btf.name(of: f.typeID) }
        }
        if functionAt[0] == nil { functionAt[0] = info.name }
        var lineAt: [Int: String] = [:]
        if let btf {
            for l in details.lineInfo {
                if let text = btf.string(at: l.lineOffset), !text.isEmpty { lineAt[Int(l.instructionOffset)] = text }
            }
        }
        let dis = Disassembler(symbols: functionAt.map { Disassembler.Symbol(name: $0.value, address: UInt64($0.key) * 8) })
        var out = ""
        var slot = 0
        var lastLine: String?
        for insn in insns {
            if let f = functionAt[slot] {
                if slot != 0 { out += "\n" }
                out += "<\(f)>:\n"
            }
            if let line = lineAt[slot], line != lastLine {
                out += "; \(line.drop { $0 == " " || $0 == "\t" })\n"
                lastLine = line
            }
            var text = dis.text(insn, slot: slot)
            if insn.callKind == .helper || insn.callKind == .kfunc {
                // Helpers and kfuncs: imm is the target's offset from __bpf_call_base.
                text = "call " + (symbols.helper(imm: insn.imm) ?? "\(insn.callKind == .kfunc ? "kfunc" : "helper")#\(insn.imm)")
            } else if insn.callKind == .pseudo {
                // After JIT the kernel keeps the relative target in `off` (imm is the subprogram index).
                let target = slot + 1 + Int(insn.offset)
                text = "call " + (functionAt[target].map { "<\($0)>" } ?? "pc\(insn.offset >= 0 ? "+" : "")\(insn.offset)")
            } else if insn.isWide && insn.src.rawValue == 4 {
                // BPF_PSEUDO_FUNC: the address of a callback, imm relative to the next slot.
                let target = slot + 1 + Int(insn.imm)
                text = "\(insn.dst) = " + (functionAt[target].map { "<\($0)>" } ?? "pc+\(insn.imm)")
            } else if let p = insn.pseudoSource, p == .mapFD || p == .mapValue {
                // The kernel rewrites map pointers to map ids (and value offsets) in the dump.
                text = "\(insn.dst) = map[id:\(insn.imm)]" + (p == .mapValue ? "[+\(insn.imm2)]" : "")
            }
            let number = String(slot)
            out += String(repeating: " ", count: max(0, 6 - number.count)) + number + ": " + text + "\n"
            slot += insn.slotCount
        }
        return out
    }

    // MARK: map contents

    /// The map's BTF (if it has any), for typed keys and values.
    public static func mapBTF(_ map: Map) -> BTF? {
        guard let info = try? Sys.mapInfo(map.fd), info.btfID != 0 else { return nil }
        return try? btf(id: info.btfID)
    }

    /// Whether `plumb map dump` can read the map's entries with lookups.
    static func isDumpable(_ type: MapType) -> Bool {
        switch type {
        case .ringbuf, .userRingbuf, .perfEventArray, .queue, .stack, .bloomFilter, .structOps, .arena,
             .skStorage, .inodeStorage, .taskStorage, .cgrpStorage: false
        default: true
        }
    }

    /// Every entry as `bpftool map dump -j` prints it: hex bytes, and `formatted` when BTF types them.
    public static func dumpJSON(_ map: Map, btf: BTF?) throws(BPFError) -> JSONValue {
        guard isDumpable(map.type) else { return .array([]) }
        let info = try sys { () throws(SysError) in try Sys.mapInfo(map.fd) }
        let keyType = info.btfKeyTypeID, valueType = info.btfValueTypeID
        func hex(_ b: [UInt8]) -> JSONValue { .array(b.map { .string("0x" + ($0 < 16 ? "0" : "") + String($0, radix: 16)) }) }
        var out: [JSONValue] = []
        if map.type.isPerCPU {
            for e in try map.entriesPerCPU() {
                var m: [(String, JSONValue)] = [("key", hex(e.key))]
                m.append(("values", .array(e.values.enumerated().map { .object([("cpu", .uint(UInt64($0.offset))), ("value", hex($0.element))]) })))
                if let btf, valueType != 0 {
                    var f: [(String, JSONValue)] = []
                    if keyType != 0 { f.append(("key", BTFJSON(btf: btf).value(e.key, type: keyType))) }
                    f.append(("values", .array(e.values.enumerated().map {
                        .object([("cpu", .uint(UInt64($0.offset))), ("value", BTFJSON(btf: btf).value($0.element, type: valueType))])
                    })))
                    m.append(("formatted", .object(f)))
                }
                out.append(.object(m))
            }
            return .array(out)
        }
        for e in try map.entries() {
            var m: [(String, JSONValue)] = [("key", hex(e.key)), ("value", hex(e.value))]
            if let btf, valueType != 0 {
                var f: [(String, JSONValue)] = []
                if keyType != 0 { f.append(("key", BTFJSON(btf: btf).value(e.key, type: keyType))) }
                f.append(("value", BTFJSON(btf: btf).value(e.value, type: valueType)))
                m.append(("formatted", .object(f)))
            }
            out.append(.object(m))
        }
        return .array(out)
    }

    /// Every entry as one `key: value` line, typed by BTF when the map has it (hex bytes otherwise).
    public static func dumpText(_ map: Map, btf: BTF?) throws(BPFError) -> String {
        guard isDumpable(map.type) else {
            return "map \(map.id) is a \(map.type): its entries cannot be listed by key\n"
        }
        let info = try sys { () throws(SysError) in try Sys.mapInfo(map.fd) }
        let f = btf.map { ValueFormatter(btf: $0) }
        func text(_ b: [UInt8], _ type: UInt32) -> String {
            // A global-data section prints as its variables.
            if let f, type != 0, let t = try? f.btf.type(type), t.kind == .dataSection {
                let vars = t.sectionVariables.compactMap { v -> String? in
                    let s = Int(v.offset), e = s + Int(v.size)
                    guard e <= b.count, let vt = try? f.btf.type(v.type) else { return nil }
                    return "\(vt.name) = \(f.format(Array(b[s..<e]), as: vt.type))"
                }
                return "\(t.name) { " + vars.joined(separator: ", ") + " }"
            }
            if let f, type != 0 { return f.format(b, as: type) }
            return b.withUnsafeBytes { ValueFormatter.hex($0) }
        }
        var out = ""
        var n = 0
        if map.type.isPerCPU {
            for e in try map.entriesPerCPU() {
                out += "\(text(e.key, info.btfKeyTypeID)):\n"
                for (cpu, v) in e.values.enumerated() { out += "  cpu\(cpu): \(text(v, info.btfValueTypeID))\n" }
                n += 1
            }
        } else {
            for e in try map.entries() {
                out += "\(text(e.key, info.btfKeyTypeID)): \(text(e.value, info.btfValueTypeID))\n"
                n += 1
            }
        }
        return out + "Found \(n) element\(n == 1 ? "" : "s")\n"
    }
}

/// Values typed by BTF as JSON, the way bpftool's BTF dumper writes them: integers as numbers,
/// enums by name, printable char arrays as strings, structs as objects, sections as lists of variables.
public struct BTFJSON: Sendable {
    public let btf: BTF
    public init(btf: BTF) { self.btf = btf }

    public func value(_ bytes: [UInt8], type: TypeID) -> JSONValue {
        bytes.withUnsafeBytes { value($0, type: type, depth: 0) }
    }

    func hexArray(_ b: UnsafeRawBufferPointer) -> JSONValue {
        .array(b.map { .string("0x" + ($0 < 16 ? "0" : "") + String($0, radix: 16)) })
    }

    func integer(_ b: UnsafeRawBufferPointer, size: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<min(size, 8, b.count) { v |= UInt64(b[i]) << (8 * UInt64(i)) }
        return v
    }

    func value(_ b: UnsafeRawBufferPointer, type id: TypeID, depth: Int) -> JSONValue {
        guard depth < 32, let rid = try? btf.resolve(id), let t = try? btf.type(rid) else { return hexArray(b) }
        switch t.kind {
        case .int:
            guard let info = t.intInfo else { return hexArray(b) }
            let size = Int(t.size)
            if info.encoding.contains(.bool) { return .bool(integer(b, size: size) != 0) }
            if size > 8 {
                // bpftool prints 128-bit integers as a hex string.
                var s = ""
                var leading = true
                for i in stride(from: min(size, b.count) - 1, through: 0, by: -1) {
                    if leading && b[i] == 0 && i > 0 { continue }
                    s += (leading ? String(b[i], radix: 16) : (b[i] < 16 ? "0" : "") + String(b[i], radix: 16))
                    leading = false
                }
                return .string("0x" + s)
            }
            let v = integer(b, size: size)
            if info.encoding.contains(.signed), size > 0 {
                let shift = UInt64(64 - 8 * size)
                return .int(Int64(bitPattern: v << shift) >> Int64(shift))
            }
            return .uint(v)
        case .enum, .enum64:
            let size = Int(t.size)
            let raw = integer(b, size: size)
            let mask: UInt64 = size >= 8 ? ~0 : (1 << UInt64(8 * size)) - 1
            for e in t.enumerators where e.value & mask == raw { return .string(e.name) }
            return .uint(raw)
        case .pointer:
            return .uint(integer(b, size: 8))
        case .float:
            if t.size == 8, b.count >= 8 { return .double(b.loadUnaligned(as: Double.self)) }
            if t.size == 4, b.count >= 4 { return .double(Double(b.loadUnaligned(as: Float.self))) }
            return hexArray(b)
        case .array:
            guard let a = t.arrayInfo, let es = try? btf.size(of: a.elementType), es > 0 else { return hexArray(b) }
            let count = Int(a.count)
            if es == 1, isChar(a.elementType) {
                // A string when it is printable up to a NUL inside the array (bpftool's is_str_array).
                let n = min(count, b.count)
                if let end = b.prefix(n).firstIndex(of: 0), b.prefix(end).allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
                    return .string(String(decoding: b.prefix(end), as: UTF8.self))
                }
            }
            var items: [JSONValue] = []
            for i in 0..<count {
                let s = i * es
                guard s + es <= b.count else { break }
                items.append(value(UnsafeRawBufferPointer(rebasing: b[s..<s + es]), type: a.elementType, depth: depth + 1))
            }
            return .array(items)
        case .struct, .union:
            var members: [(String, JSONValue)] = []
            for m in t.members {
                let v: JSONValue
                if m.bitfieldSize > 0 {
                    var x: UInt64 = 0
                    for i in 0..<Int(m.bitfieldSize) {
                        let bit = Int(m.bitOffset) + i
                        guard bit / 8 < b.count else { break }
                        if b[bit / 8] & (1 << UInt8(bit % 8)) != 0 { x |= 1 << UInt64(i) }
                    }
                    v = .uint(x)
                } else {
                    let s = Int(m.bitOffset / 8)
                    let size = (try? btf.size(of: m.type)) ?? 0
                    guard s + size <= b.count else { continue }
                    v = value(UnsafeRawBufferPointer(rebasing: b[s..<s + size]), type: m.type, depth: depth + 1)
                }
                members.append((m.name, v))
            }
            return .object(members)
        case .dataSection:
            var vars: [JSONValue] = []
            for v in t.sectionVariables {
                let s = Int(v.offset), e = s + Int(v.size)
                guard e <= b.count, let vt = try? btf.type(v.type) else { continue }
                vars.append(.object([(vt.name, value(UnsafeRawBufferPointer(rebasing: b[s..<e]), type: vt.type, depth: depth + 1))]))
            }
            return .object([(t.name, .array(vars))])
        case .variable:
            return value(b, type: t.type, depth: depth + 1)
        default:
            return hexArray(b)
        }
    }

    func isChar(_ id: TypeID) -> Bool {
        guard let r = try? btf.resolve(id), let t = try? btf.type(r), t.kind == .int, t.size == 1 else { return false }
        return t.intInfo?.encoding.contains(.char) == true || t.name == "char" || t.name == "unsigned char" || t.name == "signed char"
    }
}

extension KernelObjects {
    /// A map key or value from command-line words, as bpftool takes them and more: several words
    /// are bytes (`0x01 0x00 0x00 0x00`, each 0x-hex, 0-octal or decimal, or all hex after `hex`);
    /// one word for a wider field is a typed value (an integer, negative too, an enumerator, a string
    /// for a char array) read with the map's BTF type when it has one.
    public static func encodeWords(_ words: [String], size: Int, btf: BTF?, type: TypeID, what: String) throws(BPFError) -> [UInt8] {
        var words = words
        var allHex = false
        if words.first == "hex" { allHex = true; words.removeFirst() }
        guard !words.isEmpty else { throw .invalidArgument("no \(what) given; write `\(what) 0x01 0x00 ...` (bytes) or `\(what) 42` (a typed value)") }
        if words.count == 1 && size != 1 && !allHex {
            // An integer for a struct (a `struct key4 { __u32 a; }` key) fills it as one number.
            if let btf, type != 0, let t = try? btf.type(btf.resolve(type)), !t.kind.isComposite {
                return try GlobalEncoding(btf: btf).encode(words[0], as: type, size: size, variable: what)
            }
            return try GlobalEncoding.integer(words[0], IntegerShape(size: size, signed: nil), what: what)
        }
        guard words.count == size else {
            throw .invalidArgument("\(what) has \(words.count) bytes but the map's \(what)s are \(size) bytes")
        }
        var out: [UInt8] = []
        for w in words {
            let v: UInt64?
            if allHex { v = UInt64(w.hasPrefix("0x") ? String(w.dropFirst(2)) : w, radix: 16) }
            else if w.hasPrefix("0x") || w.hasPrefix("0X") { v = UInt64(w.dropFirst(2), radix: 16) }
            else if w.count > 1 && w.hasPrefix("0") { v = UInt64(w.dropFirst(), radix: 8) }
            else { v = UInt64(w) }
            guard let b = v, b <= 0xff else { throw .invalidArgument("\(what) byte '\(w)' is not a byte (0x00 to 0xff)") }
            out.append(UInt8(b))
        }
        return out
    }
}
