// The x86-64 SysV parameter classification (SysVParameters.swift) on synthesized BTF: which
// integer registers, stack offsets or SSE registers C parameters take at a function's entry.
import PlumbBTF
import PlumbELF
import PlumbLang
import Testing

@Suite struct SysVParametersTests {
    struct Types {
        var b = BTFBuilder()
        let int: TypeID, long: TypeID, char: TypeID, double: TypeID, float: TypeID, longDouble: TypeID, ptr: TypeID
        init() {
            int = b.add(BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32))))
            long = b.add(BTFType(kind: .int, name: "long", sizeOrType: 8, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 64))))
            char = b.add(BTFType(kind: .int, name: "char", sizeOrType: 1, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 8))))
            double = b.add(BTFType(kind: .float, name: "double", sizeOrType: 8))
            float = b.add(BTFType(kind: .float, name: "float", sizeOrType: 4))
            longDouble = b.add(BTFType(kind: .float, name: "long double", sizeOrType: 16))
            ptr = b.add(BTFType(kind: .pointer, sizeOrType: char))
        }
        mutating func strukt(_ name: String, _ members: [(TypeID, UInt32)], size: UInt32, union: Bool = false) -> TypeID {
            b.add(BTFType(kind: union ? .union : .struct, name: name, sizeOrType: size,
                          payload: .members(members.enumerated().map { BTFMember(name: "m\($0.offset)", type: $0.element.0, bitOffset: $0.element.1 * 8) })))
        }
        mutating func classifier() throws -> SysVClassifier { SysVClassifier(btf: try BTF(bytes: Bytes(b.encode(order: .little)))) }
    }

    @Test func eightbyteClasses() throws {
        var t = Types()
        let ints = t.strukt("ints", [(t.int, 0), (t.int, 4)], size: 8)
        let two = t.strukt("two", [(t.long, 0), (t.ptr, 8)], size: 16)
        let fp = t.strukt("fp", [(t.double, 0), (t.long, 8)], size: 16)
        let floats = t.strukt("floats", [(t.float, 0), (t.float, 4)], size: 8)
        let mixed = t.strukt("mixed", [(t.float, 0), (t.int, 4)], size: 8)        // int wins the eightbyte
        let big = t.strukt("big", [(t.long, 0), (t.long, 8), (t.long, 16)], size: 24)
        let packed = t.strukt("packed", [(t.char, 0), (t.long, 1)], size: 9)       // unaligned: memory
        let ld = t.strukt("ld", [(t.longDouble, 0)], size: 16)                     // X87: memory
        let u = t.strukt("u", [(t.double, 0), (t.long, 0)], size: 8, union: true)
        let c = try t.classifier()
        #expect(c.classify(ints) == [.integer])
        #expect(c.classify(two) == [.integer, .integer])
        #expect(c.classify(fp) == [.sse, .integer])
        #expect(c.classify(floats) == [.sse])
        #expect(c.classify(mixed) == [.integer])
        #expect(c.classify(big) == nil)
        #expect(c.classify(packed) == nil)
        #expect(c.classify(ld) == nil)
        #expect(c.classify(u) == [.integer])
        #expect(c.classify(t.double) == [.sse])
    }

    @Test func places() throws {
        var t = Types()
        let two = t.strukt("two", [(t.long, 0), (t.long, 8)], size: 16)
        let big = t.strukt("big", [(t.long, 0), (t.long, 8), (t.long, 16)], size: 24)
        let c = try t.classifier()
        // int, two (rsi rdx), double (xmm0), long (rcx), ptr (r8), long (r9), long (stack 0),
        // big (stack 8..32), two (stack 32: no registers left), float (xmm1), int (stack 48).
        let p = c.places(parameters: [t.int, two, t.double, t.long, t.ptr, t.long, t.long, big, two, t.float, t.int], returnType: 0)
        #expect(p == [.registers([0]), .registers([1, 2]), .sse(partly: false), .registers([3]), .registers([4]), .registers([5]),
                      .stack(offset: 0), .stack(offset: 8), .stack(offset: 32), .sse(partly: false), .stack(offset: 48)])
        // A two-register struct with one register left goes to the stack; the next long takes r9.
        let q = c.places(parameters: [t.long, t.long, t.long, t.long, t.long, two, t.long], returnType: 0)
        #expect(q[5] == .stack(offset: 0) && q[6] == .registers([5]))
        // A memory-class return value: its buffer's address takes rdi.
        let r = c.places(parameters: [t.long, t.long], returnType: big)
        #expect(r == [.registers([1]), .registers([2])])
    }
}
