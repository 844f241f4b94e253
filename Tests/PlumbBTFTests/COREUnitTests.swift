// Unit tests of the CO-RE engine on synthesized BTF (BTFBuilder) and raw instructions:
// names, candidate search over vmlinux + module BTF, errors and their messages, patching
// (PlumbBPF's apply step over [Instruction]) of code read in both byte orders, the summaries.
import PlumbAsm
import PlumbBPF
import PlumbBTF
import PlumbELF
import Foundation
import TestSupport
import Testing

/// Small BTF worlds for the tests.
struct World {
    var b = BTFBuilder()
    var int: TypeID = 0, uint: TypeID = 0, long: TypeID = 0

    init(base: BTF? = nil) {
        b = BTFBuilder(base: base)
        if base == nil {
            int = b.add(BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32))))
            uint = b.add(BTFType(kind: .int, name: "unsigned int", sizeOrType: 4, payload: .int(BTFInt(encoding: [], offset: 0, bits: 32))))
            long = b.add(BTFType(kind: .int, name: "long", sizeOrType: 8, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 64))))
        } else {
            int = 1; uint = 2; long = 3
        }
    }

    mutating func strukt(_ name: String, _ members: [(String, TypeID, UInt32)], size: UInt32) -> TypeID {
        b.add(BTFType(kind: .struct, name: name, sizeOrType: size,
                      payload: .members(members.map { BTFMember(name: $0.0, type: $0.1, bitOffset: $0.2 * 8) })))
    }

    mutating func btf(order: ByteOrder = .little, base: BTF? = nil) throws -> BTF {
        try BTF(bytes: Bytes(b.encode(order: order)), base: base)
    }
}

/// Encodes one instruction.
func insn(_ code: UInt8, dst: UInt8 = 0, src: UInt8 = 0, off: Int16 = 0, imm: Int32 = 0, order: ByteOrder = .little) -> [UInt8] {
    let regs = order == .little ? dst | src << 4 : dst << 4 | src
    let o = UInt16(bitPattern: off), i = UInt32(bitPattern: imm)
    if order == .little {
        return [code, regs, UInt8(o & 0xff), UInt8(o >> 8)] + (0..<4).map { UInt8((i >> (8 * UInt32($0))) & 0xff) }
    }
    return [code, regs, UInt8(o >> 8), UInt8(o & 0xff)] + (0..<4).map { UInt8((i >> (8 * UInt32(3 - $0))) & 0xff) }
}

/// The loader's path for one decision: code decoded once, the decision applied to the
/// instruction at `slot`, the one encode.
func patch(_ code: inout [UInt8], at slot: Int, with s: CORESolution, order: ByteOrder) throws(BTFError) -> COREPatch {
    var insns = (try? Instruction.decode(code, byteOrder: order)) ?? []
    let index = insns.slotIndices.firstIndex(of: slot) ?? insns.count
    let p = try insns.applyCORE(s, at: index, slot: slot)
    code = Instruction.encode(insns, byteOrder: order)
    return p
}

@Suite("CO-RE engine")
struct COREUnitTests {
    @Test("flavor suffixes are stripped like libbpf")
    func essentialNames() {
        #expect(BTF.coreEssentialName("task_struct___old") == "task_struct")
        #expect(BTF.coreEssentialName("a___b___c") == "a___b")
        #expect(BTF.coreEssentialName("foo___") == "foo___")
        #expect(BTF.coreEssentialName("foo____x") == "foo____x")
        #expect(BTF.coreEssentialName("___x") == "___x")
        #expect(BTF.coreEssentialName("x___y") == "x")
        #expect(BTF.coreEssentialName("plain") == "plain")
    }

    @Test("kind names are libbpf's")
    func kindNames() {
        #expect(CORERelocationKind.allCases.map(\.name) == [
            "byte_off", "byte_sz", "field_exists", "signed", "lshift_u64", "rshift_u64", "local_type_id",
            "target_type_id", "type_exists", "type_size", "enumval_exists", "enumval_value", "type_matches"])
    }

    /// local: struct foo { int a; long b; }   target vmlinux: (no foo)   module: struct foo { long b; int a; }
    @Test("module BTF is searched only when vmlinux has no candidate")
    func moduleFallback() throws {
        var l = World()
        let foo = l.strukt("foo", [("a", l.int, 0), ("b", l.long, 8)], size: 16)
        let local = try l.btf()

        var v = World()
        _ = v.strukt("bar", [("a", v.int, 0)], size: 4)
        let vmlinux = try v.btf()
        var m = World(base: vmlinux)
        _ = m.strukt("foo___mod", [("b", m.long, 0), ("a", m.int, 8)], size: 16)
        let module = try m.btf(base: vmlinux)

        var r = COREResolver(local: local, targets: [vmlinux, module])
        let s = try r.solve(CORERelocation(insnOffset: 0, typeID: foo, accessString: "0:0", kind: .fieldByteOffset))
        #expect(s.localValue == 0 && s.targetValue == 8 && !s.poison)
        #expect(s.targetBTF == 1)
        #expect(s.localSpec == "[\(foo)] struct foo.a (0:0 @ offset 0)")
        #expect(s.targetSpec == "[\(module.ownIDs.lowerBound)] struct foo___mod.a (0:1 @ offset 8)")

        // With a foo in vmlinux too, the module is not consulted (vmlinux's offset wins).
        var v2 = World()
        _ = v2.strukt("foo", [("a", v2.int, 4)], size: 8)
        let vmlinux2 = try v2.btf()
        var m2 = World(base: vmlinux2)
        _ = m2.strukt("foo", [("a", m2.int, 12)], size: 16)
        var r2 = COREResolver(local: local, targets: [vmlinux2, try m2.btf(base: vmlinux2)])
        let s2 = try r2.solve(CORERelocation(insnOffset: 0, typeID: foo, accessString: "0:0", kind: .fieldByteOffset))
        #expect(s2.targetValue == 4 && s2.targetBTF == 0)
        // b is missing in vmlinux's foo: poisoned, not found in the module.
        let s3 = try r2.solve(CORERelocation(insnOffset: 8, typeID: foo, accessString: "0:1", kind: .fieldByteOffset))
        #expect(s3.poison)
        #expect(COREResolver.describe(CORERelocation(insnOffset: 8, typeID: foo, accessString: "0:1", kind: .fieldByteOffset), s3)
                == "CO-RE byte_off struct foo.b: poisoned: field foo.b not found in target")
        #expect(COREResolver.describe(CORERelocation(insnOffset: 0, typeID: foo, accessString: "0:0", kind: .fieldByteOffset), s2)
                == "CO-RE byte_off struct foo.a: 0 -> 4")
    }

    @Test("malformed relocations give typed errors naming relocation, instruction, kind and spec")
    func errors() throws {
        var l = World()
        let anon = l.b.add(BTFType(kind: .struct, name: "", sizeOrType: 4, payload: .members([BTFMember(name: "x", type: 1, bitOffset: 0)])))
        let foo = l.strukt("foo", [("a", l.int, 0), ("b", l.long, 8)], size: 16)
        let local = try l.btf()
        var t = World()
        _ = t.strukt("foo", [("a", t.int, 0)], size: 4)
        var r = COREResolver(local: local, targets: [try t.btf()])

        func fails(_ rel: CORERelocation, index: Int = 7, _ check: (COREReason) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                let s = try r.solve(rel, index: index, context: "prog 'x'")
                Issue.record("solved: \(s)", sourceLocation: sourceLocation)
            } catch {
                #expect(error.coreReason.map(check) ?? false, "\(error)", sourceLocation: sourceLocation)
                guard case .relocation(let i, _, let kind, _, _, _) = error else { Issue.record("\(error)"); return }
                #expect(i == index && kind == rel.kind, sourceLocation: sourceLocation)
                #expect(error.description.contains("CO-RE relocation #\(index) in prog 'x' at insn #\(rel.instructionIndex) (\(rel.kind.name) "),
                        "\(error)", sourceLocation: sourceLocation)
            }
        }
        func bad(_ r: COREReason) -> Bool { if case .badAccessString = r { true } else { false } }
        fails(CORERelocation(insnOffset: 16, typeID: foo, accessString: "", kind: .fieldByteOffset), bad)
        fails(CORERelocation(insnOffset: 16, typeID: foo, accessString: ":0", kind: .fieldByteOffset), bad)
        fails(CORERelocation(insnOffset: 16, typeID: foo, accessString: "0:x", kind: .fieldByteOffset), bad)
        fails(CORERelocation(insnOffset: 16, typeID: foo, accessString: "0:-1", kind: .fieldByteOffset), bad)
        fails(CORERelocation(insnOffset: 16, typeID: foo, accessString: "0:2", kind: .fieldByteOffset), bad)
        fails(CORERelocation(insnOffset: 16, typeID: foo, accessString: "0:0:1", kind: .fieldByteOffset), bad)
        fails(CORERelocation(insnOffset: 16, typeID: foo, accessString: "1", kind: .typeSize), bad)
        fails(CORERelocation(insnOffset: 16, typeID: foo, accessString: "0", kind: .enumValue), bad)
        fails(CORERelocation(insnOffset: 16, typeID: 999, accessString: "0", kind: .typeSize)) { $0 == .noSuchType(999) }
        fails(CORERelocation(insnOffset: 16, typeID: anon, accessString: "0:0", kind: .fieldByteOffset)) { $0 == .anonymousType }
        // A spelled-out message, as the user sees it.
        do {
            _ = try r.solve(CORERelocation(insnOffset: 24, typeID: foo, accessString: "0:5", kind: .fieldByteOffset), index: 3)
        } catch {
            #expect(error.description == "CO-RE relocation #3 at insn #3 (byte_off [\(foo)] + 0:5): bad access string: '0:5': member 5 of struct [\(foo)] does not exist (2 members)")
        }
    }

    @Test("instruction validation and patching, both byte orders")
    func patching() throws {
        for order in [ByteOrder.little, .big] {
            let ldx = UInt8(0x61)  // LDX | MEM | W
            func solution(_ kind: CORERelocationKind, _ l: UInt64, _ t: UInt64, poison: Bool = false, validate: Bool = true,
                          sizes: (UInt32, UInt32) = (0, 0), failMem: Bool = false) -> CORESolution {
                CORESolution(kind: kind, localValue: l, targetValue: t, poison: poison, validate: validate, failMemorySizeAdjust: failMem,
                             localSize: sizes.0, targetSize: sizes.1, localSpec: "[2] struct foo.a (0:1 @ offset 8)", targetSpec: nil,
                             targetBTF: nil, targetTypeID: nil, candidates: 1)
            }
            // LDX offset 8 -> 16, size 4 -> 2.
            var code = insn(ldx, dst: 3, src: 2, off: 8, order: order)
            var p = try patch(&code, at: 0, with: solution(.fieldByteOffset, 8, 16, sizes: (4, 2)), order: order)
            #expect(p == .offset(old: 8, new: 16, memorySize: (4, 2)))
            #expect(code == insn(0x69, dst: 3, src: 2, off: 16, order: order))
            // Mismatched original value names the instruction.
            code = insn(ldx, dst: 3, src: 2, off: 12, order: order)
            #expect(throws: BTFError.self) { try patch(&code, at: 0, with: solution(.fieldByteOffset, 8, 16), order: order) }
            // Offsets must fit 16 bits.
            code = insn(ldx, dst: 3, src: 2, off: 8, order: order)
            do { _ = try patch(&code, at: 0, with: solution(.fieldByteOffset, 8, 40000), order: order); Issue.record("patched") }
            catch { #expect(error.coreReason == .offsetTooBig(40000)) }
            // A signed field that changed size poisons the load.
            p = try patch(&code, at: 0, with: solution(.fieldByteOffset, 8, 16, sizes: (4, 8), failMem: true), order: order)
            #expect(p == .poisoned(slots: [0]))
            #expect(code == insn(0x85, imm: 0xbad2310, order: order))
            // ALU immediate, sign-extended comparison like libbpf's.
            code = insn(0xb7, dst: 1, imm: 4, order: order)
            p = try patch(&code, at: 0, with: solution(.fieldByteSize, 4, 8), order: order)
            #expect(p == .immediate(old: 4, new: 8))
            #expect(code == insn(0xb7, dst: 1, imm: 8, order: order))
            code = insn(0x0f, dst: 1, src: 2, order: order)  // ALU64 ADD X: not relocatable
            #expect(throws: BTFError.self) { try patch(&code, at: 0, with: solution(.fieldByteSize, 0, 8), order: order) }
            // ld_imm64: both halves, and both halves poisoned.
            code = insn(0x18, dst: 1, imm: 5, order: order) + insn(0, imm: 0, order: order)
            p = try patch(&code, at: 0, with: solution(.enumValue, 5, 0x1_0000_0007), order: order)
            #expect(p == .immediate64(old: 5, new: 0x1_0000_0007))
            #expect(code == insn(0x18, dst: 1, imm: 7, order: order) + insn(0, imm: 1, order: order))
            p = try patch(&code, at: 0, with: solution(.enumValue, 0, 0, poison: true), order: order)
            #expect(p == .poisoned(slots: [1, 0]))
            #expect(code == insn(0x85, imm: 0xbad2310, order: order) + insn(0x85, imm: 0xbad2310, order: order))
            // A truncated ld_imm64 is refused when the code is read; past the end is an error, not a crash.
            code = insn(0x18, dst: 1, imm: 5, order: order)
            #expect(throws: BPFAsmError.self) { try Instruction.decode(code, byteOrder: order) }
            code = insn(0x18, dst: 1, imm: 5, order: order) + insn(0, imm: 0, order: order)
            #expect(throws: BTFError.self) { try patch(&code, at: 3, with: solution(.enumValue, 5, 6), order: order) }
            // Poisoning an ld_imm64 in the middle of a program: the same slots, one more instruction.
            var program: [Instruction] = [.mov64(.r0, 0), Instruction(opcode: 0x18, dst: .r1, imm: 5), .exit()]
            p = try program.applyCORE(solution(.enumValue, 5, 0, poison: true), at: 1, slot: 1)
            #expect(p == .poisoned(slots: [2, 1]))
            #expect(program.count == 4 && program.slotCount == 4)
            #expect(program[1] == .call(helper: 0xbad2310) && program[2] == .call(helper: 0xbad2310) && program[3] == .exit())
            // Unsigned 32-bit enum value in a 32-bit immediate validates either way.
            code = insn(0xb4, dst: 1, imm: Int32(bitPattern: 0x8000_0000), order: order)
            p = try patch(&code, at: 0, with: solution(.enumValue, 0x8000_0000, 0x9000_0000), order: order)
            #expect(code == insn(0xb4, dst: 1, imm: Int32(bitPattern: 0x9000_0000), order: order))
        }
    }

    @Test("a section's relocations apply in order and are described")
    func relocateSection() throws {
        let obj = try COREObject(try COREHarness.fixture("core_fields"))
        let target = try BTF(path: try COREHarness.fixture("core_target_a"))
        let run = COREHarness.engine(obj, targets: [target])
        #expect(!run.failed)
        let applied = run.records.filter { r in obj.programs.first { $0.name == r.program }?.section == "raw_tp/core_fields" }
        #expect(applied.count == 33)
        func summary(_ k: Int) -> String { COREResolver.describe(applied[k].relocation, applied[k].solution!) }
        #expect(summary(0) == "CO-RE byte_off struct core_sample.a: 0 -> 72")
        // Poisoned: a signed field whose size changed (int -> long).
        #expect(summary(12) == "CO-RE byte_off struct core_sample.s32f: poisoned: the field's size changed from 4 to 8 bytes and it is not an unsigned integer or a pointer, so a resized load would misread it")
        #expect(applied[12].patch == .poisoned(slots: [45]))
        #expect(summary(17) == "CO-RE field_exists struct core_sample.gone: yes in target")
        #expect(applied[0].solution!.localSpec == "[7] struct core_sample.a (0:0 @ offset 0)")
        #expect(applied[0].solution!.targetSpec == "[\(applied[0].solution!.targetTypeID!)] struct core_sample.a (0:2 @ offset 72)")
        // A relocation outside the program is an error.
        var r = COREResolver(local: obj.btf, targets: [target])
        let rel = obj.ext.coreRelocations(forSection: "raw_tp/core_fields")[0]
        let s = try r.solve(rel)
        var short = Array(obj.sections["raw_tp/core_fields"]!.prefix(2))
        #expect(throws: BTFError.self) { _ = try short.applyCORE(s, at: 5, slot: 5) }
    }

    @Test("random relocations and hostile BTF give errors, never crashes")
    func fuzz() throws {
        let fields = try COREObject(try COREHarness.fixture("core_fields"))
        var pairs: [(COREObject, BTF)] = [
            (fields, try BTF(path: try COREHarness.fixture("core_target_a"))),
            (fields, try BTF(path: try COREHarness.fixture("core_target_b"))),
        ]
        if let k = try? BTF.kernel() { pairs.append((try COREObject(try COREHarness.fixture("core_kernel")), k)) }
        var rng = SplitMix(seed: 42)
        var solved = 0, failed = 0
        for (obj, t) in pairs {
            var r = COREResolver(local: obj.btf, targets: [t])
            for i in 0..<4000 {
                let kind = CORERelocationKind(rawValue: UInt32(rng.next() % 13))!
                let n = Int(rng.next() % 5)
                let access = kind.isTypeBased && rng.next() % 4 != 0 ? "0"
                    : (0...n).map { _ in String(rng.next() % 20 == 0 ? rng.next() % 0x7fff_ffff : rng.next() % 6) }.joined(separator: ":")
                let rel = CORERelocation(insnOffset: UInt32(i * 8), typeID: TypeID(rng.next() % UInt64(obj.btf.count + 2)),
                                         accessString: access, kind: kind)
                do { _ = try r.solve(rel, index: i); solved += 1 } catch { failed += 1; #expect(!error.description.isEmpty) }
            }
        }
        #expect(solved > 100 && failed > 100)

        // A struct whose anonymous member is itself, and a typedef cycle: bounded, typed errors.
        var l = World()
        let loop = l.strukt("loop", [("x", l.int, 0)], size: 8)
        let td = l.b.add(BTFType(kind: .typedef, name: "td", sizeOrType: 0))
        l.b.replace(td, with: BTFType(kind: .typedef, name: "td", sizeOrType: td))
        let local = try l.btf()
        var t = World()
        let tl = t.strukt("loop", [("", 0, 0)], size: 8)
        t.b.replace(tl, with: BTFType(kind: .struct, name: "loop", sizeOrType: 8, payload: .members([BTFMember(name: "", type: tl, bitOffset: 0)])))
        let td2 = t.b.add(BTFType(kind: .typedef, name: "td", sizeOrType: 0))
        t.b.replace(td2, with: BTFType(kind: .typedef, name: "td", sizeOrType: td2))
        var r = COREResolver(local: local, targets: [try t.btf()])
        #expect(throws: BTFError.self) { try r.solve(CORERelocation(insnOffset: 0, typeID: loop, accessString: "0:0", kind: .fieldByteOffset)) }
        #expect(throws: BTFError.self) { try r.solve(CORERelocation(insnOffset: 0, typeID: td, accessString: "0", kind: .typeSize)) }
        #expect(throws: BTFError.self) { try r.solve(CORERelocation(insnOffset: 0, typeID: loop, accessString: "2147483647:0", kind: .fieldByteOffset)) }
    }
}
