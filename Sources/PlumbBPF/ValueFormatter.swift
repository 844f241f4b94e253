import PlumbBTF

/// Renders bytes as the BTF type says they are: integers signed or not, enums by name, char
/// arrays as strings, structs as `{ .a = 1, .b = "x" }` (bpftrace's style), arrays as `[1, 2]`.
public struct ValueFormatter: Sendable {
    public let btf: BTF
    /// How deep nested aggregates are expanded before `{...}`.
    public var maxDepth = 8

    public init(btf: BTF) { self.btf = btf }

    public func format(_ bytes: [UInt8], as type: TypeID) -> String {
        bytes.withUnsafeBytes { format($0, type: type, depth: 0) }
    }

    public func format(_ bytes: UnsafeRawBufferPointer, as type: TypeID) -> String {
        format(bytes, type: type, depth: 0)
    }

    /// Hex bytes, for values without a type.
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: " ")
    }

    func format(_ bytes: UnsafeRawBufferPointer, type id: TypeID, depth: Int) -> String {
        guard depth <= maxDepth, let resolved = try? btf.resolve(id), let t = try? btf.type(resolved) else {
            return ValueFormatter.hex(bytes)
        }
        switch t.kind {
        case .int:
            guard let info = t.intInfo else { return ValueFormatter.hex(bytes) }
            if info.encoding.contains(.bool) { return integer(bytes, size: Int(t.size), signed: false) == 0 ? "false" : "true" }
            return formatInt(bytes, size: Int(t.size), signed: info.encoding.contains(.signed))
        case .enum, .enum64:
            let raw = integer(bytes, size: Int(t.size), signed: t.isSignedEnum)
            for e in t.enumerators {
                let v = t.kind == .enum ? (t.isSignedEnum ? UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: e.value))) : e.value & 0xffff_ffff) : e.value
                if v == raw { return e.name }
            }
            return t.isSignedEnum ? "\(Int64(bitPattern: raw))" : "\(raw)"
        case .pointer:
            return "0x" + String(integer(bytes, size: min(bytes.count, 8), signed: false), radix: 16)
        case .float:
            if t.size == 8, bytes.count >= 8 { return "\(bytes.loadUnaligned(as: Double.self))" }
            if t.size == 4, bytes.count >= 4 { return "\(bytes.loadUnaligned(as: Float.self))" }
            return ValueFormatter.hex(bytes)
        case .array:
            guard let a = t.arrayInfo, let elementSize = try? btf.size(of: a.elementType), elementSize > 0 else {
                return ValueFormatter.hex(bytes)
            }
            if isChar(a.elementType) && elementSize == 1 {
                let chars = bytes.prefix(Int(a.count)).prefix { $0 != 0 }
                if chars.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
                    return "\"" + String(decoding: chars, as: UTF8.self) + "\""
                }
            }
            var parts: [String] = []
            for i in 0..<Int(a.count) {
                let start = i * elementSize
                guard start + elementSize <= bytes.count else { break }
                parts.append(format(UnsafeRawBufferPointer(rebasing: bytes[start..<start + elementSize]), type: a.elementType, depth: depth + 1))
            }
            return "[" + parts.joined(separator: ", ") + "]"
        case .struct, .union:
            if depth == maxDepth { return "{...}" }
            var parts: [String] = []
            for m in t.members {
                let value: String
                if m.bitfieldSize > 0 {
                    value = bitfield(bytes, bitOffset: Int(m.bitOffset), bits: Int(m.bitfieldSize), type: m.type)
                } else {
                    let start = Int(m.bitOffset / 8)
                    let size = (try? btf.size(of: m.type)) ?? 0
                    guard start + size <= bytes.count else { continue }
                    value = format(UnsafeRawBufferPointer(rebasing: bytes[start..<start + size]), type: m.type, depth: depth + 1)
                }
                parts.append(m.name.isEmpty ? value : ".\(m.name) = \(value)")
            }
            return "{ " + parts.joined(separator: ", ") + " }"
        default:
            return ValueFormatter.hex(bytes)
        }
    }

    func isChar(_ id: TypeID) -> Bool {
        guard let r = try? btf.resolve(id), let t = try? btf.type(r), t.kind == .int, t.size == 1 else { return false }
        return t.intInfo?.encoding.contains(.char) == true || t.name == "char" || t.name == "unsigned char" || t.name == "signed char"
    }

    func integer(_ bytes: UnsafeRawBufferPointer, size: Int, signed: Bool) -> UInt64 {
        var v: UInt64 = 0
        let n = min(size, 8, bytes.count)
        for i in 0..<n { v |= UInt64(bytes[i]) << (8 * UInt64(i)) } // little-endian host
        if signed && n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }
        return v
    }

    func formatInt(_ bytes: UnsafeRawBufferPointer, size: Int, signed: Bool) -> String {
        if size == 16 && bytes.count >= 16 {
            let lo = bytes.loadUnaligned(as: UInt64.self), hi = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            return hi == 0 ? "\(lo)" : "0x" + String(hi, radix: 16) + String(repeating: "0", count: 16 - String(lo, radix: 16).count) + String(lo, radix: 16)
        }
        let v = integer(bytes, size: size, signed: signed)
        return signed ? "\(Int64(bitPattern: v))" : "\(v)"
    }

    func bitfield(_ bytes: UnsafeRawBufferPointer, bitOffset: Int, bits: Int, type: TypeID) -> String {
        var v: UInt64 = 0
        for i in 0..<bits {
            let bit = bitOffset + i
            guard bit / 8 < bytes.count else { break }
            if bytes[bit / 8] & (1 << (bit % 8)) != 0 { v |= 1 << UInt64(i) }
        }
        let info = (try? btf.type(btf.resolve(type)))?.intInfo
        let signed = info?.encoding.contains(.signed) ?? false
        if signed, bits < 64, v & (1 << UInt64(bits - 1)) != 0 { return "\(Int64(bitPattern: v | (~0 << UInt64(bits))))" }
        return "\(v)"
    }
}

extension ValueFormatter {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The bytes of `text` as a value of `type` (for `--set VAR=VALUE`): integers in decimal
    /// or 0x hex (negative ones too), true/false, enumerator names, strings for char arrays.
    public func encode(_ text: String, as type: TypeID, size: Int) throws(ParseError) -> [UInt8] {
        guard let resolved = try? btf.resolve(type), let t = try? btf.type(resolved) else {
            return try ValueFormatter.encodeInteger(text, size: size)
        }
        switch t.kind {
        case .int:
            if t.intInfo?.encoding.contains(.bool) == true {
                switch text {
                case "true", "1": return [1] + [UInt8](repeating: 0, count: max(0, size - 1))
                case "false", "0": return [UInt8](repeating: 0, count: size)
                default: throw ParseError(description: "'\(text)' is not a bool (true or false)")
                }
            }
            return try ValueFormatter.encodeInteger(text, size: size)
        case .enum, .enum64:
            if let e = t.enumerators.first(where: { $0.name == text }) {
                return ValueFormatter.littleEndian(e.value, size: size)
            }
            do { return try ValueFormatter.encodeInteger(text, size: size) } catch {
                throw ParseError(description: "'\(text)' is not a value of \(btf.cTypeName(resolved)); use one of: \(t.enumerators.map(\.name).joined(separator: ", "))")
            }
        case .array:
            if let a = t.arrayInfo, isChar(a.elementType) {
                let bytes = Array(text.utf8)
                guard bytes.count < size else { throw ParseError(description: "'\(text)' is too long for \(btf.cTypeName(resolved)) (at most \(size - 1) characters)") }
                return bytes + [UInt8](repeating: 0, count: size - bytes.count)
            }
            throw ParseError(description: "arrays other than char arrays cannot be set from the command line")
        case .pointer:
            return try ValueFormatter.encodeInteger(text, size: size)
        default:
            throw ParseError(description: "\(btf.cTypeName(resolved)) cannot be set from the command line (integers, bools, enums and char arrays can)")
        }
    }

    static func littleEndian(_ v: UInt64, size: Int) -> [UInt8] {
        (0..<size).map { i in i < 8 ? UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) : 0 }
    }

    /// An integer (decimal, 0x hex, negative) as `size` little-endian bytes, range-checked.
    public static func encodeInteger(_ text: String, size: Int) throws(ParseError) -> [UInt8] {
        var s = Substring(text)
        let negative = s.hasPrefix("-")
        if negative { s = s.dropFirst() }
        let magnitude: UInt64?
        if s.hasPrefix("0x") || s.hasPrefix("0X") { magnitude = UInt64(s.dropFirst(2), radix: 16) } else { magnitude = UInt64(s) }
        guard let m = magnitude else { throw ParseError(description: "'\(text)' is not an integer") }
        let bits = size * 8
        if negative {
            guard m <= (bits >= 64 ? UInt64(Int64.max) + 1 : UInt64(1) << UInt64(bits - 1)) else {
                throw ParseError(description: "\(text) does not fit in \(size) bytes")
            }
            return littleEndian(0 &- m, size: size)
        }
        guard bits >= 64 || m < UInt64(1) << UInt64(bits) else { throw ParseError(description: "\(text) does not fit in \(size) bytes") }
        return littleEndian(m, size: size)
    }
}
