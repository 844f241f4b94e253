// printf as bpftrace 0.17 runs it: the format goes to C's printf with each argument passed as
// a 64-bit integer or a string, so the length modifier decides how many bits an integer
// conversion sees (`%d` of 2^32+1 prints 1, `%hhd` of 300 prints 44).
import PlumbLang

public struct PrintfFormat: Sendable, Equatable {
    public struct Spec: Sendable, Equatable {
        public var leftAlign = false, zeroPad = false, plus = false, space = false, alternate = false
        public var width: Int?
        public var precision: Int?
        /// Bits the integer conversions see: 8 (hh), 16 (h), 32 (none), 64 (l, ll, j, z, t).
        public var bits = 32
        public var conversion: Character = "d"
    }

    public enum Piece: Sendable, Equatable {
        case text(String)
        case spec(Spec)
    }

    public var pieces: [Piece]

    /// Parses once per action; unknown conversions stay literal text.
    public init(_ format: String) {
        var pieces: [Piece] = []
        var text = ""
        let chars = Array(format)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            guard c == "%" else { text.append(c); i += 1; continue }
            if i + 1 < chars.count && chars[i + 1] == "%" { text.append("%"); i += 2; continue }
            var spec = Spec()
            var j = i + 1
            flags: while j < chars.count {
                switch chars[j] {
                case "-": spec.leftAlign = true
                case "0": spec.zeroPad = true
                case "+": spec.plus = true
                case " ": spec.space = true
                case "#": spec.alternate = true
                default: break flags
                }
                j += 1
            }
            func number() -> Int? {
                var n: Int?
                while j < chars.count, let d = chars[j].wholeNumberValue, chars[j].isASCII {
                    n = min((n ?? 0) * 10 + d, 1 << 20)
                    j += 1
                }
                return n
            }
            spec.width = number()
            if j < chars.count && chars[j] == "." { j += 1; spec.precision = number() ?? 0 }
            var lengthChars = ""
            while j < chars.count, "hlqjzt".contains(chars[j]) { lengthChars.append(chars[j]); j += 1 }
            switch lengthChars {
            case "": spec.bits = 32
            case "h": spec.bits = 16
            case "hh": spec.bits = 8
            default: spec.bits = 64
            }
            guard j < chars.count, "diuxXocspr".contains(chars[j]) else {
                text += String(chars[i..<min(j, chars.count)])
                i = j
                continue
            }
            spec.conversion = chars[j]
            if !text.isEmpty { pieces.append(.text(text)); text = "" }
            pieces.append(.spec(spec))
            i = j + 1
        }
        if !text.isEmpty { pieces.append(.text(text)) }
        self.pieces = pieces
    }

    /// Formats a record's arguments (`args` in format order, offsets into `record`).
    public func format(_ record: UnsafeRawBufferPointer, args: [Field], printer: ValuePrinter) -> String {
        var out = ""
        var next = 0
        for piece in pieces {
            switch piece {
            case .text(let t): out += t
            case .spec(let spec):
                guard next < args.count else { continue }
                let arg = args[next]
                next += 1
                out += PrintfFormat.apply(spec, arg.type, record, at: arg.offset, printer: printer)
            }
        }
        return out
    }

    static func integerBits(_ type: ValueType, _ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        switch type {
        case .integer(let size, let signed):
            return signed ? UInt64(bitPattern: Raw.int(b, offset, size)) : Raw.uint(b, offset, size)
        case .boolean: return Raw.uint(b, offset, 1)
        default: return Raw.uint(b, offset, min(8, max(1, type.size)))
        }
    }

    static func pad(_ body: String, _ spec: Spec, zeroable: Bool) -> String {
        guard let width = spec.width, body.count < width else { return body }
        let fill = width - body.count
        if spec.leftAlign { return body + String(repeating: " ", count: fill) }
        if spec.zeroPad && zeroable {
            // Zeros go after a sign or 0x prefix.
            var prefixLength = 0
            if body.hasPrefix("-") || body.hasPrefix("+") || body.hasPrefix(" ") { prefixLength = 1 }
            if body.dropFirst(prefixLength).hasPrefix("0x") || body.dropFirst(prefixLength).hasPrefix("0X") { prefixLength += 2 }
            return String(body.prefix(prefixLength)) + String(repeating: "0", count: fill) + String(body.dropFirst(prefixLength))
        }
        return String(repeating: " ", count: fill) + body
    }

    static func apply(_ spec: Spec, _ type: ValueType, _ b: UnsafeRawBufferPointer, at offset: Int, printer: ValuePrinter) -> String {
        let mask: UInt64 = spec.bits >= 64 ? ~0 : (1 << UInt64(spec.bits)) - 1
        switch spec.conversion {
        case "d", "i":
            let raw = integerBits(type, b, offset) & mask
            let shift = UInt64(64 - spec.bits)
            let v = Int64(bitPattern: raw << shift) >> Int64(shift)
            var digits = String(v.magnitude)
            if let p = spec.precision { digits = String(repeating: "0", count: max(0, p - digits.count)) + (p == 0 && v == 0 ? "" : digits) }
            let sign = v < 0 ? "-" : (spec.plus ? "+" : (spec.space ? " " : ""))
            return pad(sign + digits, spec, zeroable: spec.precision == nil)
        case "u", "x", "X", "o":
            let v = integerBits(type, b, offset) & mask
            let radix = spec.conversion == "u" ? 10 : (spec.conversion == "o" ? 8 : 16)
            var digits = String(v, radix: radix, uppercase: spec.conversion == "X")
            if let p = spec.precision { digits = String(repeating: "0", count: max(0, p - digits.count)) + (p == 0 && v == 0 ? "" : digits) }
            if spec.alternate && v != 0 {
                if spec.conversion == "x" { digits = "0x" + digits } else if spec.conversion == "X" { digits = "0X" + digits }
                else if spec.conversion == "o" && !digits.hasPrefix("0") { digits = "0" + digits }
            }
            return pad(digits, spec, zeroable: spec.precision == nil)
        case "c":
            let v = UInt8(truncatingIfNeeded: integerBits(type, b, offset))
            return pad(String(decoding: [v], as: UTF8.self), spec, zeroable: false)
        case "p":
            // glibc's %p, which bpftrace 0.17 formats with: NULL is "(nil)".
            let v = integerBits(type, b, offset)
            return v == 0 ? pad("(nil)", spec, zeroable: false) : pad("0x" + String(v, radix: 16), spec, zeroable: true)
        case "r":
            let body: String
            if case .buffer(let capacity) = type {
                let length = min(Int(Raw.uint(b, offset, 4)), capacity)
                body = ValuePrinter.escapedBuffer(Raw.bytes(b, offset + 4, length))
            } else {
                body = ValuePrinter.escapedBuffer(Array(printer.text(type, b, at: offset, context: .printf).utf8))
            }
            return pad(body, spec, zeroable: false)
        default: // "s"
            var body = printer.text(type, b, at: offset, context: .printf)
            if let p = spec.precision, body.count > p { body = String(body.prefix(p)) }
            return pad(body, spec, zeroable: false)
        }
    }
}
