import Foundation
import Testing
@testable import PlumbBTF
import PlumbELF
import TestSupport

/// BTF with the types these tests format, built in memory.
struct FormatterTypes {
    let btf: BTF
    let char: TypeID, uchar: TypeID, u32: TypeID, s64: TypeID, bool: TypeID
    let comm: TypeID       // char[8]
    let bytes: TypeID      // unsigned char[4]
    let event: TypeID      // struct event { u32 pid; s64 delta; bool ok; char comm[8]; unsigned char addr[4]; }

    init() throws {
        var b = BTFBuilder()
        char = b.add(BTFType(kind: .int, name: "char", sizeOrType: 1, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 8))))
        uchar = b.add(BTFType(kind: .int, name: "unsigned char", sizeOrType: 1, payload: .int(BTFInt(encoding: [], offset: 0, bits: 8))))
        u32 = b.add(BTFType(kind: .int, name: "unsigned int", sizeOrType: 4, payload: .int(BTFInt(encoding: [], offset: 0, bits: 32))))
        s64 = b.add(BTFType(kind: .int, name: "long", sizeOrType: 8, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 64))))
        bool = b.add(BTFType(kind: .int, name: "_Bool", sizeOrType: 1, payload: .int(BTFInt(encoding: .bool, offset: 0, bits: 8))))
        comm = b.add(BTFType(kind: .array, payload: .array(BTFArray(elementType: char, indexType: u32, count: 8))))
        bytes = b.add(BTFType(kind: .array, payload: .array(BTFArray(elementType: uchar, indexType: u32, count: 4))))
        event = b.add(BTFType(kind: .struct, name: "event", sizeOrType: 32, payload: .members([
            BTFMember(name: "pid", type: u32, bitOffset: 0),
            BTFMember(name: "delta", type: s64, bitOffset: 64),
            BTFMember(name: "ok", type: bool, bitOffset: 128),
            BTFMember(name: "comm", type: comm, bitOffset: 136),
            BTFMember(name: "addr", type: bytes, bitOffset: 200),
        ])))
        btf = try BTF(bytes: Bytes(b.encode()))
    }
}

@Suite struct ValueFormatterTests {
    func text(_ bytes: [UInt8]) throws -> String {
        let t = try FormatterTypes()
        return ValueFormatter(btf: t.btf).format(bytes + [UInt8](repeating: 0, count: max(0, 8 - bytes.count)), as: t.comm)
    }

    @Test func charArraysAreStringsWhateverTheirBytes() throws {
        #expect(try text(Array("bash".utf8)) == "\"bash\"")
        // UTF-8 kept as it is (a signed char's bytes >= 0x80 used to print as negative numbers).
        #expect(try text(Array("héllo".utf8)) == "\"héllo\"")
        #expect(try text(Array("日本".utf8)) == "\"日本\"")
        // What is not printable is escaped as C writes it.
        #expect(try text([0x61, 0x0a, 0x09, 0x22, 0x5c, 0x01, 0x7f]) == "\"a\\n\\t\\\"\\\\\\x01\\x7f\"")
        // A byte that does not start or continue valid UTF-8 is escaped, the rest kept.
        #expect(try text([0x61, 0xff, 0xc3, 0xa9, 0xc3]) == "\"a\\xffé\\xc3\"")
        // Up to the first NUL; all 8 bytes when there is none.
        #expect(try text([0x61, 0, 0x62]) == "\"a\"")
        #expect(try text(Array("12345678".utf8)) == "\"12345678\"")
        // Every byte escaped is the longest a char array prints: within the plan's bound.
        let t = try FormatterTypes()
        let worst = ValueFormatter(btf: t.btf).format([UInt8](repeating: 1, count: 8), as: t.comm)
        #expect(worst.utf8.count == 2 + 8 * 4)
        #expect(worst.utf8.count <= ValueFormatter(btf: t.btf).plan(for: t.comm).maxLength(forBytes: 8))
    }

    @Test func byteArraysAreStringsOnlyWhenPrintable() throws {
        let t = try FormatterTypes()
        let f = ValueFormatter(btf: t.btf)
        #expect(f.format(Array("abc".utf8) + [0], as: t.bytes) == "\"abc\"")
        #expect(f.format([127, 0, 0, 1], as: t.bytes) == "[127, 0, 0, 1]")
    }

    @Test func structsPrintLikeBpftrace() throws {
        let t = try FormatterTypes()
        var bytes = [UInt8](repeating: 0, count: 32)
        bytes[0] = 0x39; bytes[1] = 0x30                      // pid 12345
        for i in 8 ..< 16 { bytes[i] = 0xff }                 // delta -1
        bytes[16] = 1                                          // ok
        bytes.replaceSubrange(17 ..< 22, with: Array("héé".utf8))
        bytes.replaceSubrange(25 ..< 29, with: [10, 0, 0, 1])
        let expected = "{ .pid = 12345, .delta = -1, .ok = true, .comm = \"héé\", .addr = [10, 0, 0, 1] }"
        #expect(ValueFormatter(btf: t.btf).format(bytes, as: t.event) == expected)
        // The same through a kept plan, appended to what is there.
        let plan = ValueFormatter(btf: t.btf).plan(for: t.event)
        var out = Array("x: ".utf8)
        bytes.withUnsafeBytes { plan.append($0, to: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "x: " + expected)
        // A short record prints the members that fit.
        #expect(ValueFormatter(btf: t.btf).format(Array(bytes[0 ..< 20]), as: t.event) == "{ .pid = 12345, .delta = -1, .ok = true }")
    }

    @Test func numbersAndHex() throws {
        let t = try FormatterTypes()
        let f = ValueFormatter(btf: t.btf)
        for v: UInt32 in [0, 9, 10, 99, 100, 4_294_967_295] {
            #expect(f.format(withUnsafeBytes(of: v.littleEndian) { Array($0) }, as: t.u32) == "\(v)")
        }
        for v: Int64 in [0, -1, 1_000_000_007, .min, .max] {
            #expect(f.format(withUnsafeBytes(of: v.littleEndian) { Array($0) }, as: t.s64) == "\(v)")
        }
        #expect([UInt8]([0x00, 0x0f, 0xab, 0xff]).withUnsafeBytes { ValueFormatter.hex($0) } == "00 0f ab ff")
        #expect([UInt8]().withUnsafeBytes { ValueFormatter.hex($0) } == "")
    }

    /// The plan against the formatter it replaced (a recursive walk building strings, kept
    /// below with the new char array rule): every type of the layout fixtures and a sample
    /// of the kernel's, random bytes, values of the type's size and shorter and longer.
    @Test func planMatchesTheRecursiveFormatter() throws {
        var sources: [BTF] = []
        for name in ["btf_layout.bpfel.o", "btf_decls.bpfel.o", "core_bits.bpfel.o", "btf_edge.bpfel.o", "basic.bpfel.o"] {
            sources.append(try BTF(path: try TestEnv.fixtures().appendingPathComponent(name).path))
        }
        var rng = SplitMix(seed: 42)
        var compared = 0
        func check(_ btf: BTF, _ ids: [TypeID], maxSize: Int = 4096) {
            let plan = ValueFormatter(btf: btf)
            let reference = ReferenceFormatter(btf: btf)
            for id in ids {
                guard let size = reference.size(of: id), size > 0, size <= maxSize else { continue }
                for length in [size, max(0, size - 3), size + 5] {
                    // Printable bytes half the time, so char arrays take both paths.
                    let printable = rng.next() & 1 == 0
                    let bytes = (0 ..< length).map { _ in printable ? UInt8(0x20 + rng.next() % 95) : UInt8(truncatingIfNeeded: rng.next()) }
                    let ours = plan.format(bytes, as: id), theirs = reference.format(bytes, as: id)
                    #expect(ours == theirs, "type [\(id)] \(btf.cTypeName(id)), \(length) bytes")
                    // The bound callers reserve holds what was written.
                    #expect(ours.utf8.count <= plan.plan(for: id).maxLength(forBytes: length), "type [\(id)] over its bound")
                    compared += 1
                }
            }
        }
        for btf in sources { check(btf, Array(btf.ownIDs)) }
        if let kernel = try? BTF.kernel() {
            // Kernel types expand to megabytes at depth 8; small ones keep the test quick.
            let ids = (0 ..< 300).map { _ in TypeID(1 + rng.next() % UInt64(kernel.count - 1)) }
            let named = ["sk_buff", "file", "inode", "mm_struct"].compactMap { kernel.firstID(named: $0, kind: .struct) }
            check(kernel, ids + named, maxSize: 1024)
        }
        #expect(compared > 500)
    }
}

/// The formatter before plans: one String per value, recursing through the type. Kept as
/// the oracle for FormatPlan; char arrays follow the current rule (`char`: always text).
struct ReferenceFormatter {
    let btf: BTF
    var maxDepth = 8
    let pointerSize: Int

    init(btf: BTF) {
        self.btf = btf
        pointerSize = btf.pointerSize
    }

    /// `btf.size(of:)` with the pointer size looked up once (it is a scan by name).
    func size(of id: TypeID) -> Int? {
        guard let r = try? btf.resolve(id), let t = try? btf.type(r) else { return nil }
        if t.kind == .pointer { return pointerSize }
        if t.kind == .array, let a = t.arrayInfo, let e = size(of: a.elementType) { return e * Int(a.count) }
        return try? btf.size(of: id)
    }

    func format(_ bytes: [UInt8], as type: TypeID) -> String {
        bytes.withUnsafeBytes { format($0, type: type, depth: 0) }
    }

    static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: " ")
    }

    func quoted(_ chars: UnsafeRawBufferPointer.SubSequence) -> String {
        let chars = UnsafeRawBufferPointer(rebasing: chars)
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 + 4 * chars.count) { scratch in
            var cursor = Cursor(scratch.baseAddress!)
            cursor.quoted(chars)
            return String(decoding: UnsafeBufferPointer(start: scratch.baseAddress, count: cursor.p - scratch.baseAddress!), as: UTF8.self)
        }
    }

    func format(_ bytes: UnsafeRawBufferPointer, type id: TypeID, depth: Int) -> String {
        guard depth <= maxDepth, let resolved = try? btf.resolve(id), let t = try? btf.type(resolved) else {
            return Self.hex(bytes)
        }
        switch t.kind {
        case .int:
            guard let info = t.intInfo else { return Self.hex(bytes) }
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
            return Self.hex(bytes)
        case .array:
            guard let a = t.arrayInfo, let elementSize = size(of: a.elementType), elementSize > 0 else {
                return Self.hex(bytes)
            }
            if elementSize == 1, let r = try? btf.resolve(a.elementType), let e = try? btf.type(r), e.kind == .int {
                let chars = bytes.prefix(Int(a.count)).prefix { $0 != 0 }
                if e.name == "char" { return quoted(chars) }
                if e.name == "unsigned char" || e.name == "signed char", chars.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
                    return quoted(chars)
                }
            }
            var parts: [String] = []
            for i in 0 ..< Int(a.count) {
                let start = i * elementSize
                guard start + elementSize <= bytes.count else { break }
                parts.append(format(UnsafeRawBufferPointer(rebasing: bytes[start ..< start + elementSize]), type: a.elementType, depth: depth + 1))
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
                    let size = self.size(of: m.type) ?? 0
                    guard start + size <= bytes.count else { continue }
                    value = format(UnsafeRawBufferPointer(rebasing: bytes[start ..< start + size]), type: m.type, depth: depth + 1)
                }
                parts.append(m.name.isEmpty ? value : ".\(m.name) = \(value)")
            }
            return "{ " + parts.joined(separator: ", ") + " }"
        default:
            return Self.hex(bytes)
        }
    }

    func integer(_ bytes: UnsafeRawBufferPointer, size: Int, signed: Bool) -> UInt64 {
        var v: UInt64 = 0
        let n = min(size, 8, bytes.count)
        for i in 0 ..< n { v |= UInt64(bytes[i]) << (8 * UInt64(i)) }
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
        for i in 0 ..< bits {
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
