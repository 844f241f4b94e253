// Values as bpftrace 0.17 prints them: map keys and values, print(), printf's %s, JSON.
// Pure: symbols, stacks, user names and BTF records come through `Symbolizer`, which the
// runtime fills from the kernel and tests fill with fixed answers.
import PlumbLang
import PlumbBTF
import PlumbBPF
import Glibc

/// Little-endian reads that never trap: bytes past the end read as zero.
enum Raw {
    static func uint(_ b: UnsafeRawBufferPointer, _ offset: Int, _ size: Int) -> UInt64 {
        var v: UInt64 = 0
        var i = min(size, 8) - 1
        while i >= 0 {
            let p = offset + i
            v = (v << 8) | (p >= 0 && p < b.count ? UInt64(b[p]) : 0)
            i -= 1
        }
        return v
    }

    static func int(_ b: UnsafeRawBufferPointer, _ offset: Int, _ size: Int) -> Int64 {
        let v = uint(b, offset, size)
        switch size {
        case 1: return Int64(Int8(truncatingIfNeeded: v))
        case 2: return Int64(Int16(truncatingIfNeeded: v))
        case 4: return Int64(Int32(truncatingIfNeeded: v))
        default: return Int64(bitPattern: v)
        }
    }

    /// A NUL-terminated string in at most `size` bytes at `offset`.
    static func string(_ b: UnsafeRawBufferPointer, _ offset: Int, _ size: Int) -> String {
        guard offset >= 0, offset < b.count else { return "" }
        let end = min(b.count, offset + max(0, size))
        var stop = offset
        while stop < end && b[stop] != 0 { stop += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: b[offset..<stop]), as: UTF8.self)
    }

    static func bytes(_ b: UnsafeRawBufferPointer, _ offset: Int, _ size: Int) -> [UInt8] {
        guard offset >= 0, offset < b.count, size > 0 else { return [] }
        return Array(b[offset..<min(b.count, offset + size)])
    }
}

/// Answers the questions values ask of the running system. Defaults print raw numbers.
public struct Symbolizer: Sendable {
    /// `function+offset` (withOffset) or `function` for a kernel address; nil when unknown.
    public var kernelSymbol: @Sendable (_ address: UInt64, _ withOffset: Bool) -> String?
    public var userSymbol: @Sendable (_ address: UInt64, _ pid: Int32, _ withOffset: Bool) -> String?
    /// A user stack frame with the frames DWARF says were inlined at it, innermost first
    /// (`isReturnAddress`: every frame but the first, looked up one byte back); nil when unknown.
    public var userFrames: @Sendable (_ address: UInt64, _ pid: Int32, _ isReturnAddress: Bool) -> [String]?
    /// Frames of a stack id in the kernel / user stack map.
    public var kernelStack: @Sendable (_ id: UInt64) -> [UInt64]
    public var userStack: @Sendable (_ id: UInt64) -> [UInt64]
    public var username: @Sendable (_ uid: UInt64) -> String?
    /// A BTF record or enum (the plan's BTF or the kernel's) as text.
    public var record: @Sendable (_ bytes: [UInt8], _ type: TypeID, _ inPlanBTF: Bool) -> String?
    /// The file a user address is mapped from (perf-mode stacks name it).
    public var userModule: @Sendable (_ address: UInt64, _ pid: Int32) -> String? = { _, _ in nil }

    public init(kernelSymbol: @escaping @Sendable (UInt64, Bool) -> String? = { _, _ in nil },
                userSymbol: @escaping @Sendable (UInt64, Int32, Bool) -> String? = { _, _, _ in nil },
                userFrames: @escaping @Sendable (UInt64, Int32, Bool) -> [String]? = { _, _, _ in nil },
                kernelStack: @escaping @Sendable (UInt64) -> [UInt64] = { _ in [] },
                userStack: @escaping @Sendable (UInt64) -> [UInt64] = { _ in [] },
                username: @escaping @Sendable (UInt64) -> String? = { _ in nil },
                record: @escaping @Sendable ([UInt8], TypeID, Bool) -> String? = { _, _, _ in nil }) {
        self.kernelSymbol = kernelSymbol; self.userSymbol = userSymbol; self.userFrames = userFrames; self.kernelStack = kernelStack
        self.userStack = userStack; self.username = username; self.record = record
    }
}

/// Where a value is printed; stacks and tuples differ between them.
public enum ValueContext: Sendable { case mapKey, value, printf }

public struct ValuePrinter: Sendable {
    public var symbols: Symbolizer
    public init(symbols: Symbolizer = Symbolizer()) { self.symbols = symbols }

    /// C++'s `std::hex << std::showbase`: "0" for zero, "0x1f" otherwise.
    static func showbaseHex(_ v: UInt64) -> String { v == 0 ? "0" : "0x" + String(v, radix: 16) }

    /// `%r` and buf(): printable ASCII as is, everything else `\xNN`.
    static func escapedBuffer(_ bytes: [UInt8]) -> String {
        var s = ""
        for b in bytes {
            if b >= 0x20 && b < 0x7f { s.unicodeScalars.append(Unicode.Scalar(b)) }
            else { s += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16) }
        }
        return s
    }

    /// Two upper-case hex digits, as bpftrace's macaddr() prints each byte.
    static func hexByte(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    static func ntop(_ family: UInt64, _ addr: [UInt8]) -> String {
        if family == 2 /* AF_INET */ {
            return addr.prefix(4).map { String($0) }.joined(separator: ".")
        }
        // AF_INET6: RFC 5952 form (longest run of zero groups as ::), as inet_ntop writes it.
        var groups: [UInt16] = []
        for i in 0..<8 {
            let hi = i * 2 < addr.count ? UInt16(addr[i * 2]) : 0
            let lo = i * 2 + 1 < addr.count ? UInt16(addr[i * 2 + 1]) : 0
            groups.append(hi << 8 | lo)
        }
        if groups[0...4].allSatisfy({ $0 == 0 }) && groups[5] == 0xffff {
            return "::ffff:" + addr[12..<16].map { String($0) }.joined(separator: ".")
        }
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ r: ArraySlice<UInt16>) -> String { r.map { String($0, radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(groups[...]) }
        return hex(groups[0..<bestStart]) + "::" + hex(groups[(bestStart + bestLen)...])
    }

    func stack(_ frames: [UInt64], user: Bool, pid: Int32, mode: StackMode, limit: Int, context: ValueContext) -> String {
        let frames = frames.prefix(limit > 0 ? limit : frames.count)
        var s = "\n"
        for (k, f) in frames.enumerated() {
            // User frames in bpftrace's layout also show what was inlined there (from DWARF).
            if user, mode == .bpftrace, let lines = symbols.userFrames(f, pid, k > 0), !lines.isEmpty {
                for line in lines { s += String(repeating: " ", count: context == .printf ? 8 : 4) + line + "\n" }
                continue
            }
            let name = user ? symbols.userSymbol(f, pid, true) : symbols.kernelSymbol(f, true)
            switch mode {
            case .perf:
                // bpftrace: kernel frames as 16 hex digits; user frames unpadded, with their file.
                let hex = String(f, radix: 16)
                if user {
                    s += "\t" + hex + " " + (name ?? "[unknown]") + " (" + (symbols.userModule(f, pid) ?? "[unknown]") + ")\n"
                } else {
                    s += "\t" + String(repeating: "0", count: max(0, 16 - hex.count)) + hex + " " + (name ?? "[unknown]") + "\n"
                }
            case .raw:
                s += String(f, radix: 16) + "\n"
            case .bpftrace:
                s += String(repeating: " ", count: context == .printf ? 8 : 4) + (name ?? ("0x" + String(f, radix: 16))) + "\n"
            }
        }
        return s
    }

    /// CLOCK_MONOTONIC nanoseconds as local time, formatted by strftime (the offset between
    /// the two clocks taken now, as bpftrace takes it at start).
    static func wallClock(monotonicNanoseconds ns: UInt64, format: String) -> String {
        var mono = timespec(), real = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        clock_gettime(CLOCK_REALTIME, &real)
        let monoNow = Int64(mono.tv_sec) &* 1_000_000_000 &+ Int64(mono.tv_nsec)
        let realNow = Int64(real.tv_sec) &* 1_000_000_000 &+ Int64(real.tv_nsec)
        let wall = realNow &- monoNow &+ Int64(bitPattern: ns)
        var seconds = time_t(wall / 1_000_000_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buf = [CChar](repeating: 0, count: 512)
        let n = strftime(&buf, buf.count, format, &parts)
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The value at `offset` of `bytes` as text.
    public func text(_ type: ValueType, _ b: UnsafeRawBufferPointer, at offset: Int, context: ValueContext = .value) -> String {
        switch type {
        case .none: return ""
        case .integer(let size, let signed):
            return signed ? String(Raw.int(b, offset, size)) : String(Raw.uint(b, offset, size))
        case .boolean:
            // bpftrace 0.17 stores booleans as integers and prints them as such.
            return Raw.uint(b, offset, 1) != 0 ? "1" : "0"
        case .string(let size):
            return Raw.string(b, offset, size)
        case .buffer(let capacity):
            let length = min(Int(Raw.uint(b, offset, 4)), capacity)
            return ValuePrinter.escapedBuffer(Raw.bytes(b, offset + 4, length))
        case .pointer:
            return ValuePrinter.showbaseHex(Raw.uint(b, offset, 8))
        case .kernelSymbol:
            let a = Raw.uint(b, offset, 8)
            return symbols.kernelSymbol(a, false) ?? ValuePrinter.showbaseHex(a)
        case .userSymbol:
            let a = Raw.uint(b, offset, 8)
            return symbols.userSymbol(a, Int32(truncatingIfNeeded: Raw.uint(b, offset + 8, 8)), false) ?? ValuePrinter.showbaseHex(a)
        case .kernelStack(let limit, let mode):
            return stack(symbols.kernelStack(Raw.uint(b, offset, 8)), user: false, pid: 0, mode: mode, limit: limit, context: context)
        case .userStack(let limit, let mode):
            let pid = Int32(truncatingIfNeeded: Raw.uint(b, offset + 8, 8))
            return stack(symbols.userStack(Raw.uint(b, offset, 8)), user: true, pid: pid, mode: mode, limit: limit, context: context)
        case .username:
            let uid = Raw.uint(b, offset, 8)
            return symbols.username(uid) ?? String(uid)
        case .inet:
            return ValuePrinter.ntop(Raw.uint(b, offset, 8), Raw.bytes(b, offset + 8, 16))
        case .errorNumber:
            return String(cString: strerror(Int32(truncatingIfNeeded: Raw.uint(b, offset, 8))))
        case .macAddress:
            return Raw.bytes(b, offset, 6).map { ValuePrinter.hexByte($0) }.joined(separator: ":")
        case .tuple(let fields, _):
            return "(" + fields.map { text($0.type, b, at: offset + $0.offset, context: context) }.joined(separator: ", ") + ")"
        case .timestamp(let format):
            return ValuePrinter.wallClock(monotonicNanoseconds: Raw.uint(b, offset, 8), format: format)
        case .record(let id, let size, let inPlan), .enumeration(let id, let size, let inPlan):
            let bytes = Raw.bytes(b, offset, size)
            return symbols.record(bytes, id, inPlan) ?? bytes.withUnsafeBytes { ValueFormatter.hex($0) }
        }
    }

    /// The value as JSON (numbers bare, text quoted, tuples as arrays).
    public func json(_ type: ValueType, _ b: UnsafeRawBufferPointer, at offset: Int) -> String {
        switch type {
        case .integer(let size, let signed):
            return signed ? String(Raw.int(b, offset, size)) : String(Raw.uint(b, offset, size))
        case .boolean:
            return Raw.uint(b, offset, 1) != 0 ? "1" : "0"
        case .tuple(let fields, _):
            return "[" + fields.map { json($0.type, b, at: offset + $0.offset) }.joined(separator: ",") + "]"
        default:
            return JSON.quote(text(type, b, at: offset))
        }
    }
}

/// JSON text as bpftrace 0.17 writes it (including its escape of bytes >= 0x80 as a
/// sign-extended `\uffffffXX`, kept so output matches byte for byte).
public enum JSON {
    public static func quote(_ s: String) -> String {
        var out = "\""
        for byte in s.utf8 {
            switch byte {
            case 0x22: out += "\\\""
            case 0x5c: out += "\\\\"
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0c: out += "\\f"
            case 0..<0x20:
                let h = String(byte, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            case 0x80...:
                out += "\\uffffff" + String(byte, radix: 16)
            default:
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out + "\""
    }
}
