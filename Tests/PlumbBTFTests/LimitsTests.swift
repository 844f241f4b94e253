// Layout queries stay linear, chains are bounded by real cycles (not a fixed depth), lookups
// refuse the empty name, and only regular files are read.
import Foundation
import PlumbBTF
import PlumbELF
import Testing

@Suite("BTF limits")
struct LimitsTests {
    static let int = BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32)))

    @Test("40 nested levels, each using the last twice: size and alignment are memoized, not exponential")
    func nestedLayoutIsLinear() throws {
        var b = BTFBuilder()
        var last = b.add(Self.int)
        // Unions keep the size at 4 however deep; each level names the previous one twice,
        // which a walk without memo follows 2^40 times.
        for i in 0..<40 {
            last = b.add(BTFType(kind: .union, name: "u\(i)", sizeOrType: 4,
                                 payload: .members([BTFMember(name: "a", type: last, bitOffset: 0),
                                                    BTFMember(name: "b", type: last, bitOffset: 0)])))
        }
        let top = b.add(BTFType(kind: .struct, name: "top", sizeOrType: 8,
                                payload: .members([BTFMember(name: "x", type: last, bitOffset: 0),
                                                   BTFMember(name: "y", type: last, bitOffset: 32)])))
        let btf = try BTF(bytes: Bytes(b.encode()))
        let start = ContinuousClock.now
        #expect(try btf.alignment(of: top) == 4)
        #expect(try btf.size(of: top) == 8)
        #expect(try btf.alignment(of: last) == 4)
        #expect(try btf.cShow(top).contains("struct top {"))
        #expect(try btf.cDump().contains("union u39 {"))
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(1), "took \(elapsed)")
    }

    @Test("a 300-deep pointer chain resolves, sizes and dumps; real cycles are still cycles")
    func deepPointerChain() throws {
        var b = BTFBuilder()
        var last = b.add(Self.int)
        for _ in 0..<300 { last = b.add(BTFType(kind: .pointer, sizeOrType: last)) }
        let deep = b.add(BTFType(kind: .typedef, name: "deep_t", sizeOrType: last))
        var td = deep
        // 40 typedefs in a row: more than the old fixed bound of 32.
        for i in 0..<40 { td = b.add(BTFType(kind: .typedef, name: "t\(i)", sizeOrType: td)) }
        let holder = b.add(BTFType(kind: .struct, name: "holder", sizeOrType: 8,
                                   payload: .members([BTFMember(name: "p", type: td, bitOffset: 0)])))
        let btf = try BTF(bytes: Bytes(b.encode()))
        #expect(try btf.resolve(td) == last)
        #expect(try btf.size(of: holder) == 8)
        #expect(try btf.alignment(of: td) == 8)
        let stars = String(repeating: "*", count: 300)
        #expect(try btf.cDump().contains("typedef int \(stars)deep_t;"))
        #expect(try btf.cShow(holder).contains("t39 p;"))
        #expect(btf.cTypeName(last) == "int" + String(repeating: " *", count: 300))

        // A pointer loop and a typedef loop: still reported as cycles.
        var loop = BTFBuilder()
        loop.add(BTFType(kind: .pointer, sizeOrType: 2))
        loop.add(BTFType(kind: .pointer, sizeOrType: 1))
        loop.add(BTFType(kind: .typedef, name: "a_t", sizeOrType: 4))
        loop.add(BTFType(kind: .typedef, name: "b_t", sizeOrType: 3))
        let cyclic = try BTF(bytes: Bytes(loop.encode()))
        #expect(throws: BTFError.cycle(1)) { try cyclic.cDump() }
        #expect { try cyclic.resolve(3) } throws: { if case .cycle = $0 as? BTFError { true } else { false } }
        #expect { try cyclic.size(of: 3) } throws: { if case .cycle = $0 as? BTFError { true } else { false } }
    }

    @Test("an empty type name is an error, not the first anonymous type")
    func emptyNameIsRefused() throws {
        var b = BTFBuilder()
        let int = b.add(Self.int)
        b.add(BTFType(kind: .struct, name: "", sizeOrType: 4, payload: .members([BTFMember(name: "x", type: int, bitOffset: 0)])))
        let btf = try BTF(bytes: Bytes(b.encode()))
        #expect(throws: BTFError.emptyName) { try btf.lookup(cName: "") }
        #expect(throws: BTFError.emptyName) { try btf.lookup(cName: "  ") }
        #expect(throws: BTFError.emptyName) { try btf.lookup("", kind: .struct) }
        #expect(BTFError.emptyName.description.contains("give a type name"))
    }

    @Test("devices are refused with a typed error; sysfs BTF is read")
    func onlyRegularFiles() throws {
        #expect(throws: BTFError.file(path: "/dev/zero", .notRegularFile(path: "/dev/zero"))) { try BTF(path: "/dev/zero") }
        do { _ = try BTF(path: "/dev/zero") } catch {
            #expect(error.description == "/dev/zero is not a regular file: give a BTF or ELF file")
        }
        #expect(throws: BTFError.file(path: "/tmp", .notRegularFile(path: "/tmp"))) { try BTF(path: "/tmp") }
        guard FileManager.default.isReadableFile(atPath: "/sys/kernel/btf/vmlinux") else { return }
        let k = try BTF(path: "/sys/kernel/btf/vmlinux")
        #expect(k.count > 1000)
        #expect(try k.lookup(cName: "task_struct") > 0)
    }
}
