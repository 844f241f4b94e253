import ELF

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
            put(stringOffset(t.name))
            put((t.kindFlag ? 1 << 31 : 0) | UInt32(t.kind.rawValue) << 24 | UInt32(t.vlen & 0xffff))
            put(t.sizeOrType)
            switch t.payload {
            case .none, .functionLinkage: break
            case .int(let i):
                put(UInt32(i.encoding.rawValue) << 24 | UInt32(i.offset) << 16 | UInt32(i.bits))
            case .array(let a):
                put(a.elementType); put(a.indexType); put(a.count)
            case .members(let ms):
                for m in ms {
                    put(stringOffset(m.name)); put(m.type)
                    put(t.kindFlag ? UInt32(m.bitfieldSize) << 24 | (m.bitOffset & 0xffffff) : m.bitOffset)
                }
            case .enumerators(let es):
                for e in es {
                    put(stringOffset(e.name))
                    put(UInt32(truncatingIfNeeded: e.value))
                    if t.kind == .enum64 { put(UInt32(truncatingIfNeeded: e.value >> 32)) }
                }
            case .params(let ps):
                for p in ps { put(stringOffset(p.name)); put(p.type) }
            case .variableLinkage(let l):
                put(l)
            case .sectionVariables(let vs):
                for v in vs { put(v.type); put(v.offset); put(v.size) }
            case .componentIndex(let c):
                put(UInt32(bitPattern: c))
            }
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
