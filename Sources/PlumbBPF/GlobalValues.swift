import PlumbBTF

/// Initial values for global variables given as text (`plumb object run --set VAR=VALUE`),
/// checked against each variable's BTF type: integers in decimal or 0x hex within the type's
/// range (negative ones only for signed types), true/false for bools, enumerator names (or
/// numbers) for enums, strings for char arrays. The bytes go to `LoadOptions.globals`.
extension ObjectSpec {
    /// `VAR=VALUE` assignments as `LoadOptions.globals`; the first bad one throws.
    public func globalValues(_ assignments: [String]) throws(BPFError) -> [String: [UInt8]] {
        var values: [String: [UInt8]] = [:]
        for a in assignments {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex else {
                throw .invalidArgument("'\(a)' is not VAR=VALUE")
            }
            let name = String(a[..<eq])
            values[name] = try globalValue(name, String(a[a.index(after: eq)...]))
        }
        return values
    }

    /// The bytes of `text` as a value of global variable `name`.
    public func globalValue(_ name: String, _ text: String) throws(BPFError) -> [UInt8] {
        guard let v = maps.lazy.compactMap({ $0.dataSection != nil ? $0.variable(name) : nil }).first else {
            // Section symbols (".rodata" and friends) are not variables one can set.
            let known: [String] = maps.filter { $0.dataSection != nil }.flatMap { $0.variables.map(\.name) }.filter { !$0.contains(".") }
            var message = "no global variable '\(name)' in \(path)."
            if let guess = Suggestion.closest(to: name, in: known) { message += " Did you mean '\(guess)'?" }
            message += known.isEmpty ? " It has none." : " It has: \(known.joined(separator: ", "))"
            throw .invalidArgument(message)
        }
        let size = Int(v.size)
        guard let btf, v.type != 0 else {
            // No type to check against: an integer of the variable's size, either sign.
            return try GlobalEncoding.integer(text, IntegerShape(size: size, signed: nil), what: name)
        }
        return try GlobalEncoding(btf: btf).encode(text, as: v.type, size: size, variable: name)
    }
}

/// An integer's size and signedness (nil: unknown, both accepted), named as bpftrace names them.
struct IntegerShape {
    var size: Int
    var signed: Bool?

    var name: String {
        if let signed, size >= 1, size <= 16 { return (signed ? "s" : "u") + "\(size * 8)" }
        return "\(size)-byte integer"
    }

    /// Bits checked (wider integers take 64-bit values).
    var bits: Int { min(size, 8) * 8 }
    /// All ones in `bits`: the largest unsigned value, or any bit pattern.
    var allOnes: UInt64 { bits >= 64 ? .max : UInt64(1) << UInt64(bits) - 1 }
    /// The largest magnitude of a negative value (0: none).
    var negativeLimit: UInt64 { signed == false ? 0 : UInt64(1) << UInt64(bits - 1) }
    /// The largest positive value written in decimal.
    var maximum: UInt64 { signed == true ? negativeLimit - 1 : allOnes }

    var range: String { signed == false ? "0 to \(maximum)" : "-\(negativeLimit) to \(maximum)" }
}

struct GlobalEncoding {
    let btf: BTF

    func encode(_ text: String, as type: TypeID, size: Int, variable: String) throws(BPFError) -> [UInt8] {
        guard let resolved = try? btf.resolve(type), let t = try? btf.type(resolved) else {
            return try Self.integer(text, IntegerShape(size: size, signed: nil), what: variable)
        }
        switch t.kind {
        case .int:
            let encoding = t.intInfo?.encoding ?? []
            if encoding.contains(.bool) {
                switch text {
                case "true", "1": return [1] + [UInt8](repeating: 0, count: max(0, size - 1))
                case "false", "0": return [UInt8](repeating: 0, count: size)
                default: throw .invalidArgument("'\(text)' is not a bool; \(variable) takes true or false")
                }
            }
            return try Self.integer(text, IntegerShape(size: size, signed: encoding.contains(.signed)), what: variable)
        case .enum, .enum64:
            if let e = t.enumerators.first(where: { $0.name == text }) {
                return Self.littleEndian(e.value, size: size)
            }
            let shape = IntegerShape(size: size, signed: t.isSignedEnum)
            if Self.parse(text) == nil {
                let names = t.enumerators.map(\.name)
                var message = "'\(text)' is not a value of \(btf.cTypeName(resolved))"
                if let guess = Suggestion.closest(to: text, in: names) { message += "; did you mean '\(guess)'?" }
                throw .invalidArgument(message + "; use one of: \(names.joined(separator: ", ")) (or a number)")
            }
            return try Self.integer(text, shape, what: variable)
        case .array:
            guard let a = t.arrayInfo, let e = try? btf.type(btf.resolve(a.elementType)), e.kind == .int, e.size == 1 else {
                throw .invalidArgument("\(variable) is \(btf.cTypeName(type)); arrays other than char arrays cannot be set from the command line")
            }
            let bytes = Array(text.utf8)
            guard bytes.count < size else {
                let chars = text.count
                let counted = chars == bytes.count ? "\(bytes.count) bytes" : "\(bytes.count) bytes (\(chars) characters in UTF-8)"
                throw .invalidArgument("'\(text)' is \(counted); \(variable) (\(btf.cTypeName(type))) holds at most \(size - 1) bytes and the terminating NUL")
            }
            return bytes + [UInt8](repeating: 0, count: size - bytes.count)
        case .pointer:
            return try Self.integer(text, IntegerShape(size: size, signed: false), what: variable)
        default:
            throw .invalidArgument("\(variable) is \(btf.cTypeName(type)), which cannot be set from the command line (integers, bools, enums and char arrays can)")
        }
    }

    /// A literal's sign, magnitude and radix: decimal, 0x hex or 0b binary, with an optional
    /// sign and _ separators. `.overflow` when it is a number too large for 64 bits.
    enum Parsed { case value(negative: Bool, magnitude: UInt64, radix: Int), overflow }

    static func parse(_ text: String) -> Parsed? {
        var s = Substring(text)
        let negative = s.hasPrefix("-")
        if negative || s.hasPrefix("+") { s = s.dropFirst() }
        var radix = 10
        if s.hasPrefix("0x") || s.hasPrefix("0X") {
            radix = 16; s = s.dropFirst(2)
        } else if s.hasPrefix("0b") || s.hasPrefix("0B") {
            radix = 2; s = s.dropFirst(2)
        }
        let digits = s.filter { $0 != "_" }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.hexDigitValue ?? radix) < radix }) else { return nil }
        guard let m = UInt64(digits, radix: radix) else { return .overflow }
        return .value(negative: negative, magnitude: m, radix: radix)
    }

    /// `text` as `shape.size` little-endian bytes, refused when out of the type's range.
    static func integer(_ text: String, _ shape: IntegerShape, what variable: String) throws(BPFError) -> [UInt8] {
        let size = shape.size
        guard size >= 1 else { throw .invalidArgument("\(variable) has no bytes to set") }
        let outOfRange = "out of range for \(shape.name) \(variable) (\(shape.range))"
        switch parse(text) {
        case nil:
            throw .invalidArgument("'\(text)' is not an integer; \(variable) is \(shape.name) (decimal, 0x hex or 0b binary)")
        case .overflow?:
            throw .invalidArgument("\(text) is \(outOfRange)")
        case .value(let negative, let m, let radix)?:
            if negative && m != 0 {
                guard shape.signed != false else {
                    throw .invalidArgument("\(text) does not fit \(shape.name) \(variable): it is unsigned (\(shape.range))")
                }
                guard m <= shape.negativeLimit else { throw .invalidArgument("\(text) does not fit in \(size) bytes: \(outOfRange)") }
                return littleEndian(0 &- m, size: size, fill: 0xff)
            }
            // A hex or binary literal may give a signed variable's bit pattern (0xffffffff
            // for an s32 is -1); a decimal one must be in range.
            let limit = radix == 10 ? shape.maximum : shape.allOnes
            guard m <= limit else { throw .invalidArgument("\(text) does not fit in \(size) bytes: \(outOfRange)") }
            return littleEndian(m, size: size, fill: 0)
        }
    }

    /// `v` in `size` bytes; bytes past the eighth are `fill` (0xff extends a negative value).
    static func littleEndian(_ v: UInt64, size: Int, fill: UInt8 = 0) -> [UInt8] {
        (0 ..< size).map { i in i < 8 ? UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) : fill }
    }
}
