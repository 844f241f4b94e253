import PlumbELF

/// Builds BTF in memory and writes it out: program BTF for the kernel, and the round trip
/// parse(encode(x)) == x.
public struct BTFBuilder: Sendable {
    public private(set) var types: [BTFType] = []
    private var strings: [UInt8] = [0]
    private var stringOffsets: [String: UInt32] = ["": 0]
    /// For split BTF: the base the new types continue from.
    public let base: BTF?

    public init(base: BTF? = nil) { self.base = base }

    /// The id the next added type gets.
    public var nextID: TypeID { (base.map { TypeID($0.count) } ?? 1) + TypeID(types.count) }

    /// Adds a type and returns its id.
    @discardableResult
    public mutating func add(_ t: BTFType) -> TypeID {
        types.append(t)
        return nextID - 1
    }

    /// Replaces a type already added (to close cycles such as a struct pointing to itself).
    public mutating func replace(_ id: TypeID, with t: BTFType) {
        types[Int(id - (nextID - TypeID(types.count)))] = t
    }

    /// Writes one type record word by word. `name(s, i)` gives the string offset of the
    /// record's i-th name (0: the type's own, 1...: its members', enumerators' or params').
    static func encodeRecord(_ t: BTFType, put: (UInt32) -> Void, name: (String, Int) -> UInt32) {
        put(name(t.name, 0))
        put((t.kindFlag ? 1 << 31 : 0) | UInt32(t.kind.rawValue) << 24 | UInt32(t.vlen & 0xffff))
        put(t.sizeOrType)
        switch t.payload {
        case .none, .functionLinkage: break
        case .int(let i):
            put(UInt32(i.encoding.rawValue) << 24 | UInt32(i.offset) << 16 | UInt32(i.bits))
        case .array(let a):
            put(a.elementType); put(a.indexType); put(a.count)
        case .members(let ms):
            for (n, m) in ms.enumerated() {
                put(name(m.name, n + 1)); put(m.type)
                put(t.kindFlag ? UInt32(m.bitfieldSize) << 24 | (m.bitOffset & 0xffffff) : m.bitOffset)
            }
        case .enumerators(let es):
            for (n, e) in es.enumerated() {
                put(name(e.name, n + 1))
                put(UInt32(truncatingIfNeeded: e.value))
                if t.kind == .enum64 { put(UInt32(truncatingIfNeeded: e.value >> 32)) }
            }
        case .params(let ps):
            for (n, p) in ps.enumerated() { put(name(p.name, n + 1)); put(p.type) }
        case .variableLinkage(let l):
            put(l)
        case .sectionVariables(let vs):
            for v in vs { put(v.type); put(v.offset); put(v.size) }
        case .componentIndex(let c):
            put(UInt32(bitPattern: c))
        }
    }

    /// Adds a string that no type names (line_info source lines, file names) and returns its offset.
    public mutating func addString(_ s: String) -> UInt32 { stringOffset(s) }

    private mutating func stringOffset(_ s: String) -> UInt32 {
        if let o = stringOffsets[s] { return o }
        let o = UInt32(strings.count) + (base?.stringsEnd ?? 0)
        strings.append(contentsOf: s.utf8)
        strings.append(0)
        stringOffsets[s] = o
        return o
    }

    /// The encoded blob: a 24-byte header, the types, the strings.
    public mutating func encode(order: ByteOrder = .host) -> [UInt8] {
        var typeBytes: [UInt8] = []
        typeBytes.reserveCapacity(types.count * 24)
        func put(_ v: UInt32) {
            let x = order == .little ? v.littleEndian : v.bigEndian
            withUnsafeBytes(of: x) { typeBytes.append(contentsOf: $0) }
        }
        for t in types {
            BTFBuilder.encodeRecord(t, put: put) { name, _ in stringOffset(name) }
        }
        var out: [UInt8] = []
        out.reserveCapacity(24 + typeBytes.count + strings.count)
        func put16(_ v: UInt16) { withUnsafeBytes(of: order == .little ? v.littleEndian : v.bigEndian) { out.append(contentsOf: $0) } }
        func put32(_ v: UInt32) { withUnsafeBytes(of: order == .little ? v.littleEndian : v.bigEndian) { out.append(contentsOf: $0) } }
        put16(BTF.magic)
        out.append(1) // version
        out.append(0) // flags
        put32(24)
        put32(0)
        put32(UInt32(typeBytes.count))
        put32(UInt32(typeBytes.count))
        put32(UInt32(strings.count))
        out.append(contentsOf: typeBytes)
        out.append(contentsOf: strings)
        return out
    }
}

extension BTF {
    /// A copy of this blob with some types rewritten in place and others appended, keeping
    /// the string section byte for byte (new names are appended), so string offsets held
    /// elsewhere (.BTF.ext line info, CO-RE access strings) stay valid. A replacement must
    /// keep its kind and its number of members/enumerators/params.
    public func replacing(_ replacements: [TypeID: BTFType], appending: [BTFType] = []) throws(BTFError) -> BTF {
        guard base == nil else { throw .invalid(id: firstID, reason: "rewriting split BTF is not supported") }
        var typeBytes = types.toArray()
        var extraStrings: [UInt8] = []
        var extraOffsets: [String: UInt32] = [:]
        let swap = order != .host
        for (id, t) in replacements {
            guard owner(of: id) === self else { throw .noSuchType(id) }
            let old = try type(id)
            func entries(_ t: BTFType) -> Int {
                switch t.payload {
                case .members(let m): return m.count
                case .enumerators(let e): return e.count
                case .params(let p): return p.count
                case .sectionVariables(let v): return v.count
                default: return 0
                }
            }
            guard old.kind == t.kind, entries(old) == entries(t) else {
                throw .invalid(id: id, reason: "a replacement must keep the kind and the number of entries")
            }
            var o = Int(offsets[Int(id - firstID)])
            let recordStart = o
            // Names keep their original offsets: read them back from the old record.
            let namePositions: (Int) -> Int = { i in
                if i == 0 { return recordStart }
                let body = recordStart + 12
                switch t.kind {
                case .struct, .union: return body + (i - 1) * 12
                case .enum64: return body + (i - 1) * 12
                default: return body + (i - 1) * 8
                }
            }
            let words = types
            BTFBuilder.encodeRecord(t, put: { v in
                let w = swap ? v.byteSwapped : v
                withUnsafeBytes(of: w) { for k in 0..<4 { typeBytes[o + k] = $0[k] } }
                o += 4
            }, name: { name, i in
                // An unchanged name keeps its offset; a new one is appended.
                let offset = words.u32(namePositions(i)) ?? 0
                return string(at: offset) == name ? offset : newString(name)
            })
        }
        func newString(_ name: String) -> UInt32 {
            if name.isEmpty { return 0 }
            if let o = extraOffsets[name] { return o }
            let o = UInt32(strings.count + extraStrings.count)
            extraStrings += Array(name.utf8) + [0]
            extraOffsets[name] = o
            return o
        }
        for t in appending {
            BTFBuilder.encodeRecord(t, put: { v in
                withUnsafeBytes(of: order == .little ? v.littleEndian : v.bigEndian) { typeBytes.append(contentsOf: $0) }
            }, name: { name, _ in newString(name) })
        }
        var out: [UInt8] = []
        func put32(_ v: UInt32) { withUnsafeBytes(of: order == .little ? v.littleEndian : v.bigEndian) { out.append(contentsOf: $0) } }
        withUnsafeBytes(of: order == .little ? BTF.magic.littleEndian : BTF.magic.bigEndian) { out.append(contentsOf: $0) }
        out += [1, 0]
        put32(24); put32(0); put32(UInt32(typeBytes.count)); put32(UInt32(typeBytes.count))
        put32(UInt32(strings.count + extraStrings.count))
        out += typeBytes
        out += strings.toArray()
        out += extraStrings
        return try BTF(bytes: Bytes(out))
    }

    /// Decodes every type this blob defines.
    public func allTypes() throws(BTFError) -> [BTFType] {
        var out: [BTFType] = []
        out.reserveCapacity(ownCount)
        for id in ownIDs { out.append(try type(id)) }
        return out
    }

    /// Re-encodes this blob's own types (split BTF stays split on the same base).
    public func encode(order: ByteOrder? = nil) throws(BTFError) -> [UInt8] {
        var b = BTFBuilder(base: base)
        for t in try allTypes() { b.add(t) }
        return b.encode(order: order ?? self.order)
    }
}
