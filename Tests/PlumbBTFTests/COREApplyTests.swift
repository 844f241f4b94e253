// CO-RE applied through the object model: ObjectSpec.applyCORE patches [Instruction] in place
// (no bytes in between) and gives the bytes the libbpf-checked harness gives; a poisoned
// ld_imm64 (one instruction, two slots) becomes two calls and the metadata after it moves.
import PlumbAsm
@testable import PlumbBPF  // LineInfo has no public initializer
import PlumbBTF
import PlumbELF
import Testing

@Suite("CO-RE applied to programs")
struct COREApplyTests {
    @Test("ObjectSpec.applyCORE gives the harness's (libbpf's) bytes", arguments: [
        ("core_fields", "core_target_a"), ("core_fields", "core_target_b"),
        ("core_bits", "core_target_a"), ("core_bits", "core_target_b"),
    ])
    func objectPathMatchesHarness(object: String, target: String) throws {
        let path = try COREHarness.fixture(object)
        let targetBTF = try BTF(path: try COREHarness.fixture(target))
        let expected = COREHarness.engine(try COREObject(path), targets: [targetBTF])
        #expect(!expected.failed)
        var spec = try ObjectSpec(path: path)
        let applied = try spec.applyCORE(targets: [targetBTF])
        #expect(!applied.isEmpty)
        var compared = 0
        for p in spec.programs {
            guard let hex = expected.insns[p.name] else { continue }
            compared += 1
            let bytes = Instruction.encode(p.instructions, byteOrder: .little)
            let mine = bytes.prefix(hex.count / 2).map { String(format: "%02x", $0) }.joined()
            #expect(mine == hex, "program \(p.name)")
        }
        #expect(compared > 0)
    }

    @Test("a poisoned ld_imm64 becomes two calls and the references, infos and relocations after it move")
    func poisonedWideInstructionShiftsMetadata() throws {
        let int = BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32)))
        var lb = BTFBuilder()
        lb.add(int)
        let e = lb.add(BTFType(kind: .enum, name: "colour", sizeOrType: 4, payload: .enumerators([BTFEnumerator(name: "RED", value: 5)])))
        let local = try BTF(bytes: Bytes(lb.encode()))
        var tb = BTFBuilder()
        tb.add(int)
        tb.add(BTFType(kind: .enum, name: "colour", sizeOrType: 4, payload: .enumerators([BTFEnumerator(name: "BLUE", value: 9)])))
        let target = try BTF(bytes: Bytes(tb.encode()))

        let wide = Instruction.loadImm64Opcode
        let instructions: [Instruction] = [
            Instruction(opcode: wide, dst: .r1, imm: 5),  // RED: not in the target, poisoned
            Instruction(opcode: wide, dst: .r2, src: Register(rawValue: 1)!, imm: 0),  // a map
            Instruction(opcode: wide, dst: .r3, imm: 1),  // RED exists: 1 -> 0
            .mov64(.r0, 0),
            .exit(),
        ]
        var program = ProgramSpec(name: "p", kind: try #require(ProgramKind(section: "raw_tp/sys_enter")),
                                  instructions: instructions, references: [1: .map("m")])
        program.functionInfo = [FunctionInfo(slot: 0, type: 1), FunctionInfo(slot: 3, type: 1)]
        program.lineInfo = [LineInfo(slot: 4, fileNameOffset: 0, lineOffset: 0, line: 1, column: 0)]
        program.coreRelocations = [
            (0, CORERelocation(insnOffset: 0, typeID: e, accessString: "0", kind: .enumValue)),
            (2, CORERelocation(insnOffset: 0, typeID: e, accessString: "0", kind: .enumValueExists)),
        ]
        program.functions = [("p", 0), ("sub", 3)]
        var spec = ObjectSpec(name: "mem", maps: [], programs: [program], btf: local)
        let applied = try #require(try spec.applyCORE(targets: [target])["p"])
        let p = spec.programs[0]
        let poison = Instruction.call(helper: 0xbad2310)
        #expect(Array(p.instructions.prefix(2)) == [poison, poison])
        // The same slots (jumps stay right), one more instruction.
        #expect(p.instructions.count == 6 && p.instructions.slotCount == instructions.slotCount)
        #expect(p.instructions[3].imm64 == 0 && p.instructions[3].dst == .r3)
        #expect(p.references == [2: .map("m")])
        #expect(p.functionInfo.map(\.slot) == [0, 4])
        #expect(p.lineInfo.map(\.slot) == [5])
        #expect(p.functions.map(\.index) == [0, 4])
        #expect(p.coreRelocations.map(\.index) == [0, 3])
        #expect(applied.map(\.patch) == [.poisoned(slots: [1, 0]), .immediate64(old: 1, new: 0)])
        #expect(applied.map(\.index) == [0, 3])
    }
}
