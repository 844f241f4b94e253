import PlumbBTF
import PlumbSys

/// `plumb gen swift`: a typed Swift face of an object, as `bpftool gen skeleton`, bpf2go and
/// aya-tool give C, Go and Rust. For every struct reachable from map keys/values and globals
/// (pointers in globals included: `struct event *unused` is how objects name record types) it
/// writes a Swift struct laid out like the C one — explicit padding, fixed-size arrays as
/// InlineArray, `char[N]` as CString<N> — whose size and member offsets are checked against
/// the object's BTF when it is opened. Then typed maps, programs, globals (set before load) and attach.
public struct SwiftGenerator {
    public let spec: ObjectSpec
    public let typeName: String
    let btf: BTF?

    public init(spec: ObjectSpec, typeName: String? = nil) {
        self.spec = spec
        self.btf = spec.btf
        self.typeName = typeName ?? SwiftGenerator.pascal(String(spec.name.split(separator: ".").first ?? "object")) + "Probe"
    }

    // MARK: names

    static let keywords: Set<String> = ["as", "break", "case", "catch", "class", "continue", "default", "defer", "do", "else",
        "enum", "extension", "fallthrough", "false", "for", "func", "guard", "if", "import", "in", "init", "inout", "internal",
        "is", "let", "nil", "operator", "private", "protocol", "public", "repeat", "rethrows", "return", "self", "Self",
        "static", "struct", "subscript", "super", "switch", "throw", "throws", "true", "try", "typealias", "var", "where",
        "while", "Type", "Protocol", "any", "some", "await", "async"]

    static func pascal(_ s: String) -> String {
        let parts = s.split { !$0.isLetter && !$0.isNumber }
        var out = parts.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        if out.first?.isNumber ?? true { out = "T" + out }
        return out
    }

    static func camel(_ s: String) -> String {
        let parts = s.split { !$0.isLetter && !$0.isNumber }
        guard let first = parts.first else { return "_" }
        var out = first.prefix(1).lowercased() + first.dropFirst() + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        if out.first?.isNumber ?? true { out = "_" + out }
        return keywords.contains(out) ? "`\(out)`" : out
    }

    static func bare(_ name: String) -> String { name.hasPrefix("`") ? String(name.dropFirst().dropLast()) : name }

    // MARK: types

    /// A Swift spelling of a BTF type with its C size and alignment, or nil when none fits.
    struct Spelled { var swift: String; var size: Int; var align: Int }

    /// Structs to generate, in dependency order (members before their users).
    var structOrder: [TypeID] = []
    var structNames: [TypeID: String] = [:]
    /// Named C enums reached from those structs, maps and globals, in the order found.
    var enumOrder: [TypeID] = []
    var enumNames: [TypeID: String] = [:]

    func nameTaken(_ name: String) -> Bool {
        name == typeName || name == "Globals" || name == "Loaded" || structNames.values.contains(name) || enumNames.values.contains(name)
    }

    func resolve(_ id: TypeID) -> (TypeID, BTFType)? {
        guard let btf, let r = try? btf.resolve(id), let t = try? btf.type(r) else { return nil }
        return (r, t)
    }

    mutating func collect(_ id: TypeID, depth: Int = 0, throughPointer: Bool = false) {
        guard depth < 16, let (r, t) = resolve(id) else { return }
        switch t.kind {
        case .struct, .union:
            guard structNames[r] == nil, !t.name.isEmpty || depth > 0 else { return }
            // Reserve the name first so recursive structs terminate.
            var name = SwiftGenerator.pascal(t.name.isEmpty ? "anon\(r)" : t.name)
            while nameTaken(name) { name += "_" }
            structNames[r] = name
            for m in t.members { collect(m.type, depth: depth + 1) }
            structOrder.append(r)
        case .array:
            if let a = t.arrayInfo { collect(a.elementType, depth: depth + 1) }
        case .pointer where throughPointer:
            collect(t.type, depth: depth + 1)
        case .enum, .enum64:
            // Anonymous enums have no name to give a type: their members stay integers.
            guard enumNames[r] == nil, !t.name.isEmpty, [1, 2, 4, 8].contains(t.size) else { return }
            var name = SwiftGenerator.pascal(t.name)
            while nameTaken(name) { name += "_" }
            enumNames[r] = name
            enumOrder.append(r)
        default:
            break
        }
    }

    func spell(_ id: TypeID) -> Spelled? {
        guard let btf, let (r, t) = resolve(id) else { return nil }
        switch t.kind {
        case .int:
            guard let info = t.intInfo else { return nil }
            let signed = info.encoding.contains(.signed)
            switch t.size {
            case 1: return Spelled(swift: signed ? "Int8" : "UInt8", size: 1, align: 1)
            case 2: return Spelled(swift: signed ? "Int16" : "UInt16", size: 2, align: 2)
            case 4: return Spelled(swift: signed ? "Int32" : "UInt32", size: 4, align: 4)
            case 8: return Spelled(swift: signed ? "Int64" : "UInt64", size: 8, align: 8)
            case 16: return Spelled(swift: "InlineArray<2, UInt64>", size: 16, align: 8)
            default: return nil
            }
        case .enum, .enum64:
            let signed = t.isSignedEnum
            if let name = enumNames[r], [1, 2, 4, 8].contains(t.size) {
                return Spelled(swift: name, size: Int(t.size), align: Int(t.size))
            }
            switch t.size {
            case 1: return Spelled(swift: signed ? "Int8" : "UInt8", size: 1, align: 1)
            case 2: return Spelled(swift: signed ? "Int16" : "UInt16", size: 2, align: 2)
            case 4: return Spelled(swift: signed ? "Int32" : "UInt32", size: 4, align: 4)
            case 8: return Spelled(swift: signed ? "Int64" : "UInt64", size: 8, align: 8)
            default: return nil
            }
        case .pointer:
            return Spelled(swift: "UInt64", size: 8, align: 8)
        case .float:
            return t.size == 8 ? Spelled(swift: "Double", size: 8, align: 8) : t.size == 4 ? Spelled(swift: "Float", size: 4, align: 4) : nil
        case .array:
            guard let a = t.arrayInfo else { return nil }
            // `char name[N]` is text; `__u8 addr[4]` (unsigned char) stays bytes.
            if let (_, e) = resolve(a.elementType), e.kind == .int, e.size == 1, e.name == "char" {
                return Spelled(swift: "CString<\(a.count)>", size: Int(a.count), align: 1)
            }
            guard let element = spell(a.elementType), element.size > 0, element.size % element.align == 0 else { return nil }
            return Spelled(swift: "InlineArray<\(a.count), \(element.swift)>", size: element.size * Int(a.count), align: element.align)
        case .struct, .union:
            guard let name = structNames[r] else { return nil }
            let align = (try? btf.alignment(of: r)) ?? 1
            // Generated structs carry their own tail padding, so Swift's size is C's.
            return Spelled(swift: name, size: Int(t.size), align: Swift.max(1, generatedAlignment(r, fallback: align)))
        default:
            return nil
        }
    }

    /// Swift's alignment of a generated struct: the largest of its members' (padding is bytes).
    func generatedAlignment(_ id: TypeID, fallback: Int) -> Int {
        guard let (_, t) = resolve(id) else { return fallback }
        if t.kind == .union { return 1 }
        var a = 1
        for m in t.members where m.bitfieldSize == 0 {
            if let s = spell(m.type) { a = Swift.max(a, s.align) }
        }
        return a
    }

    // MARK: output

    public func generate(command: String) -> String {
        var g = self
        // Roots: map keys and values, and globals (pointers in globals name record types).
        for m in spec.maps {
            if m.keyType != 0 { g.collect(m.keyType) }
            if m.valueType != 0 && m.dataSection == nil { g.collect(m.valueType) }
            for v in m.variables where v.type != 0 { g.collect(v.type, throughPointer: true) }
        }
        return g.emit(command: command)
    }

    func emit(command: String) -> String {
        var out = """
        // Generated by `\(command)`; do not edit. Regenerate when the object changes:
        // opening the object checks every struct below against its BTF (size and member offsets).
        import Plumb

        """
        out += "\n/// The typed face of \(spec.name): its structs, maps, programs and globals.\n"
        out += "public final class \(typeName): @unchecked Sendable {\n"
        for id in enumOrder { out += emitEnum(id) }
        for id in structOrder { out += emitStruct(id) }
        out += emitGlobals()
        out += emitProbe()
        out += "}\n"
        return out
    }

    func emitStruct(_ id: TypeID) -> String {
        guard let (_, t) = resolve(id), let name = structNames[id] else { return "" }
        let isUnion = t.kind == .union
        var s = "\n    /// \(isUnion ? "union" : "struct") \(t.name.isEmpty ? "(anonymous)" : t.name), \(t.size) bytes.\n"
        s += "    public struct \(name): Sendable, BitwiseCopyable {\n"
        var fields: [(name: String, swift: String, checked: Bool, c: String)] = []
        var accessors = ""
        var offset = 0
        var pad = 0
        var used = Set<String>()
        func padTo(_ target: Int) {
            guard target > offset else { return }
            fields.append(("_pad\(pad)", "InlineArray<\(target - offset), UInt8>", false, ""))
            pad += 1
            offset = target
        }
        if isUnion {
            // Swift has no unions: the bytes, with a typed reader per member.
            if t.size > 0 { fields.append(("bytes", "InlineArray<\(t.size), UInt8>", false, "")) }
            offset = Int(t.size)
            for m in t.members where m.bitfieldSize == 0 && !m.name.isEmpty {
                guard let sp = spell(m.type) else { continue }
                accessors += "        public var \(SwiftGenerator.camel(m.name)): \(sp.swift) { withUnsafeBytes(of: bytes) { $0.loadUnaligned(as: \(sp.swift).self) } }\n"
            }
        } else {
            for m in t.members {
                let start = Int(m.bitOffset / 8)
                if m.bitfieldSize > 0 || m.name.isEmpty || m.bitOffset % 8 != 0 {
                    // Bitfields and anonymous members stay bytes (covered by padding); bitfields get a reader.
                    if m.bitfieldSize > 0, !m.name.isEmpty {
                        accessors += "        /// Bitfield \(m.name): \(m.bitfieldSize) bits at bit \(m.bitOffset).\n"
                        accessors += "        public var \(SwiftGenerator.camel(m.name)): UInt64 { withUnsafeBytes(of: self) { b in var v: UInt64 = 0; for i in 0..<\(m.bitfieldSize) { let bit = \(m.bitOffset) + UInt32(i); if b[Int(bit / 8)] & (1 << UInt8(bit % 8)) != 0 { v |= 1 << UInt64(i) } }; return v } }\n"
                    }
                    continue
                }
                // Zero-sized members (empty structs, flexible arrays) have no Swift offset to check.
                guard start >= offset, let sp = spell(m.type), sp.size > 0 else { continue }
                // Swift places a member at its alignment; a packed C member that is not aligned
                // stays bytes, read through an accessor.
                let natural = (offset + sp.align - 1) / sp.align * sp.align
                if start < natural || start % sp.align != 0 {
                    accessors += "        /// \(m.name) at byte \(start) (unaligned in the packed C struct).\n"
                    accessors += "        public var \(SwiftGenerator.camel(m.name)): \(sp.swift) { withUnsafeBytes(of: self) { $0.loadUnaligned(fromByteOffset: \(start), as: \(sp.swift).self) } }\n"
                    continue
                }
                if start > natural || start > offset { padTo(start) }
                var fname = SwiftGenerator.camel(m.name)
                while used.contains(fname) { fname += "_" }
                used.insert(fname)
                fields.append((fname, sp.swift, true, m.name))
                offset = start + sp.size
            }
            padTo(Int(t.size))
        }
        for f in fields { s += "        public var \(f.name): \(f.swift)\n" }
        s += accessors
        // A zeroed value, as C's `= {}`.
        if t.size == 0 {
            s += "\n        public init() {}\n"
        } else {
            s += "\n        public init() { self = unsafeBitCast(InlineArray<\(t.size), UInt8>(repeating: 0), to: \(name).self) }\n"
        }
        s += "\n        static func checkLayout(_ btf: BTF?) throws(BPFError) {\n"
        let members = fields.filter(\.checked).map { "(\"\($0.c)\", MemoryLayout<\(name)>.offset(of: \\.\($0.name)))" }
        let cname = t.name.isEmpty ? "" : t.name
        if cname.isEmpty {
            s += "            _ = btf  // anonymous: checked through its parent's size\n"
        } else {
            s += "            try LayoutCheck.verify(btf, kind: .\(isUnion ? "union" : "struct"), name: \"\(cname)\", swiftType: \"\(name)\", size: MemoryLayout<\(name)>.size,\n"
            s += "                                   members: [\(members.joined(separator: ", "))])\n"
        }
        s += "        }\n    }\n"
        return s
    }

    /// The raw integer type of an enum of `size` bytes.
    static func rawType(size: UInt32, signed: Bool) -> String {
        switch size {
        case 1: signed ? "Int8" : "UInt8"
        case 2: signed ? "Int16" : "UInt16"
        case 8: signed ? "Int64" : "UInt64"
        default: signed ? "Int32" : "UInt32"
        }
    }

    /// Swift names for C enumerators: the prefix all of them share (`HIT_`) dropped, as Swift's
    /// importer does, then camel case (`HIT_ENTRY` -> `entry`).
    static func enumeratorNames(_ names: [String]) -> [String] {
        var prefix = names.count >= 2 ? names[0] : ""
        for n in names.dropFirst() { while !n.hasPrefix(prefix) { prefix.removeLast() } }
        // Only whole words: cut after the last '_' of the shared prefix.
        if let underscore = prefix.lastIndex(of: "_") { prefix = String(prefix[...underscore]) } else { prefix = "" }
        if names.contains(where: { $0.count <= prefix.count }) { prefix = "" }
        var used = Set<String>()
        return names.map { n in
            let word = String(n.dropFirst(prefix.count))
            // ALL_CAPS reads as words; mixedCase keeps its humps.
            var swift = bare(camel(word.contains(where: \.isLowercase) ? word : word.lowercased()))
            while used.contains(swift) { swift += "_" }
            used.insert(swift)
            return keywords.contains(swift) ? "`\(swift)`" : swift
        }
    }

    /// A C enum as a struct over its raw value, not a Swift enum: C enums may hold values they
    /// do not list (flags or'ed together, newer kernels' additions), and loading such a value
    /// into a Swift enum would be undefined behaviour.
    func emitEnum(_ id: TypeID) -> String {
        guard let (_, t) = resolve(id), let name = enumNames[id] else { return "" }
        let raw = SwiftGenerator.rawType(size: t.size, signed: t.isSignedEnum)
        let bits = t.size * 8
        func literal(_ v: UInt64) -> String {
            let masked = bits >= 64 ? v : v & ((1 << UInt64(bits)) - 1)
            guard t.isSignedEnum else { return String(masked) }
            // Sign-extend from the enum's width.
            let shift = UInt64(64 - bits)
            return String((Int64(bitPattern: masked << shift)) >> Int64(shift))
        }
        var s = "\n    /// enum \(t.name), \(t.size == 1 ? "1 byte" : "\(t.size) bytes"). A struct over the raw value, since C enums may hold values they do not list.\n"
        s += "    public struct \(name): RawRepresentable, Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {\n"
        s += "        public var rawValue: \(raw)\n"
        s += "        public init(rawValue: \(raw)) { self.rawValue = rawValue }\n\n"
        let enumerators = t.enumerators
        let names = SwiftGenerator.enumeratorNames(enumerators.map(\.name))
        for (e, n) in zip(enumerators, names) {
            s += "        /// \(e.name)\n        public static let \(n) = \(name)(rawValue: \(literal(e.value)))\n"
        }
        // The first C name for each value; others with that value are aliases.
        var seen = Set<String>()
        var cases = ""
        for e in enumerators where seen.insert(literal(e.value)).inserted {
            cases += "            case \(literal(e.value)): \"\(e.name)\"\n"
        }
        s += "\n        /// The C name, or `\(t.name)(N)` for a value the enum does not list.\n"
        s += "        public var description: String {\n"
        if cases.isEmpty {
            s += "            \"\(t.name)(\\(rawValue))\"\n"
        } else {
            s += "            switch rawValue {\n" + cases + "            default: \"\(t.name)(\\(rawValue))\"\n            }\n"
        }
        s += "        }\n\n"
        s += "        static func checkLayout(_ btf: BTF?) throws(BPFError) {\n"
        let values = enumerators.map { "(\"\($0.name)\", \(literal($0.value).hasPrefix("-") ? "UInt64(bitPattern: \(literal($0.value)))" : literal($0.value)))" }
        s += "            try LayoutCheck.verifyEnum(btf, name: \"\(t.name)\", swiftType: \"\(name)\", size: MemoryLayout<\(name)>.size,\n"
        s += "                                       values: [\(values.joined(separator: ", "))])\n"
        s += "        }\n    }\n"
        return s
    }

    /// Globals that have a Swift spelling, with their C names.
    var globals: [(c: String, swift: String, type: Spelled)] {
        var out: [(String, String, Spelled)] = []
        var used = Set<String>()
        for m in spec.maps where m.dataSection != nil && m.dataSection != ".kconfig" {
            for v in m.variables where !v.isStatic && !v.name.contains(".") {
                guard let sp = spell(v.type), sp.size == Int(v.size) else { continue }
                var n = SwiftGenerator.camel(v.name)
                while used.contains(n) { n += "_" }
                used.insert(n)
                out.append((v.name, n, sp))
            }
        }
        return out
    }

    func emitGlobals() -> String {
        var s = "\n    /// The object's globals (const volatile ones too): set them before `load()`.\n"
        s += "    public struct Globals: Sendable {\n"
        for g in globals { s += "        public var \(g.swift): \(g.type.swift)\n" }
        s += "\n        init(_ spec: ObjectSpec) throws(BPFError) {\n"
        for g in globals {
            s += "            try LayoutCheck.verifyGlobal(spec, name: \"\(g.c)\", size: MemoryLayout<\(g.type.swift)>.size)\n"
            s += "            \(g.swift) = LayoutCheck.initialValue(spec, name: \"\(g.c)\", as: \(g.type.swift).self) ?? unsafeBitCast(InlineArray<\(g.type.size), UInt8>(repeating: 0), to: \(g.type.swift).self)\n"
        }
        s += "        }\n\n        var bytes: [String: [UInt8]] {\n"
        if globals.isEmpty {
            s += "            [:]\n        }\n    }\n"
            return s
        }
        s += "            var out: [String: [UInt8]] = [:]\n"
        for g in globals { s += "            out[\"\(g.c)\"] = LayoutCheck.bytes(\(g.swift))\n" }
        s += "            return out\n        }\n    }\n"
        return s
    }

    func emitProbe() -> String {
        let maps = spec.maps.filter { $0.dataSection == nil }
        var s = "\n    public let spec: ObjectSpec\n    public var globals: Globals\n\n"
        s += "    /// Reads the object and checks every generated struct and global against its BTF.\n"
        s += "    public init(path: String) throws(BPFError) {\n        spec = try ObjectSpec(path: path)\n"
        for id in enumOrder { if let n = enumNames[id] { s += "        try \(n).checkLayout(spec.btf)\n" } }
        for id in structOrder { if let n = structNames[id] { s += "        try \(n).checkLayout(spec.btf)\n" } }
        s += "        globals = try Globals(spec)\n    }\n\n"
        s += "    /// Loads with the globals as set now.\n"
        s += "    public func load(_ options: LoadOptions = LoadOptions()) throws(BPFError) -> Loaded {\n"
        s += "        var options = options\n        options.globals.merge(globals.bytes) { given, _ in given }\n"
        s += "        return try Loaded(try spec.load(options))\n    }\n\n"
        s += "    /// The loaded object: typed maps and programs.\n"
        s += "    public final class Loaded: @unchecked Sendable {\n        public let object: Object\n"
        var inits = ""
        var usedNames = Set<String>()
        func unique(_ n: String) -> String { var n = n; while usedNames.contains(n) || n == "object" { n += "_" }; usedNames.insert(n); return n }
        for m in maps {
            let n = unique(SwiftGenerator.camel(m.name))
            if let k = m.keyType != 0 ? spell(m.keyType) : nil, let v = m.valueType != 0 ? spell(m.valueType) : nil,
               !m.type.isPerCPU, k.size == Int(m.keySize), v.size == Int(m.valueSize) {
                s += "        /// \(m.type) map \(m.name)\n        public let \(n): TypedMap<\(k.swift), \(v.swift)>\n"
                inits += "            \(n) = try TypedMap(try object.map(\"\(m.name)\"))\n"
            } else {
                s += "        /// \(m.type) map \(m.name)\n        public let \(n): Map\n"
                inits += "            \(n) = try object.map(\"\(m.name)\")\n"
            }
        }
        for p in spec.programs {
            let n = unique(SwiftGenerator.camel(p.name))
            s += "        /// \(p.type) program \(p.name), section \(p.section)\n        public let \(n): Program\n"
            inits += "            \(n) = try object.program(\"\(p.name)\")\n"
        }
        s += "\n        init(_ object: Object) throws(BPFError) {\n            self.object = object\n" + inits + "        }\n\n"
        s += "        /// The globals' values in the kernel now (what the programs have written).\n"
        s += "        public func readGlobals() throws(BPFError) -> Globals {\n"
        if globals.isEmpty {
            s += "            try Globals(object.spec)\n        }\n\n"
        } else {
            s += "            var g = try Globals(object.spec)\n"
            for g in globals {
                s += "            if let v = try LayoutCheck.currentValue(object, name: \"\(g.c)\", as: \(g.type.swift).self) { g.\(g.swift) = v }\n"
            }
            s += "            return g\n        }\n\n"
            s += "        /// Sets one writable global of the loaded object (const ones are frozen: set those before load).\n"
            s += "        public func setGlobal<T: BitwiseCopyable>(_ path: WritableKeyPath<Globals, T>, _ value: T) throws(BPFError) {\n"
            s += "            var g = try Globals(object.spec)\n            g[keyPath: path] = value\n            let key: AnyKeyPath = path\n"
            for g in globals {
                s += "            if key == \\Globals.\(g.swift) { return try LayoutCheck.setValue(object, name: \"\(g.c)\", g.\(g.swift)) }\n"
            }
            s += "            throw .invalidArgument(\"not a global of \\(object.spec.name)\")\n        }\n\n"
        }
        s += "        /// Attaches every program whose section names its target; the links detach when released.\n"
        s += "        public func attach(_ options: AttachOptions = AttachOptions()) throws(BPFError) -> [Link] {\n"
        s += "            var links: [Link] = []\n"
        s += "            for name in object.programs.keys.sorted() { if let l = try object.attach(name, options: options) { links.append(l) } }\n"
        s += "            return links\n        }\n    }\n"
        return s
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        guard !a.isEmpty, a != b else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
