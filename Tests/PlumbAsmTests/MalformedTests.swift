import Testing
import TestSupport
@testable import PlumbAsm

@Suite("Malformed input")
struct MalformedTests {
    @Test("trailing bytes name the truncated slot")
    func truncated() {
        #expect(throws: BPFAsmError.truncated(slot: 1, trailing: 3)) {
            try Instruction.decode([0x95, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3])
        }
        #expect(throws: BPFAsmError.truncated(slot: 0, trailing: 5)) {
            try Instruction.decode([1, 2, 3, 4, 5])
        }
    }

    @Test("ld_imm64 without its second half")
    func missingHalf() {
        let first = Array(Instruction.loadImm64(.r1, 1).encoded().prefix(8))
        let exit = Instruction.exit().encoded()
        #expect(throws: BPFAsmError.missingSecondHalf(slot: 1)) {
            try Instruction.decode(exit + first)
        }
        // A fragment of the second half is reported as truncation.
        #expect(throws: BPFAsmError.truncated(slot: 2, trailing: 4)) {
            try Instruction.decode(exit + first + [0, 0, 0, 0], byteOrder: .big)
        }
    }

    @Test("ld_imm64 whose second half is another instruction")
    func malformedHalf() {
        let bytes = Array(Instruction.loadImm64(.r1, 1).encoded().prefix(8)) + Instruction.exit().encoded()
        #expect(throws: BPFAsmError.malformedSecondHalf(slot: 0)) {
            try Instruction.decode(bytes)
        }
        let err = BPFAsmError.malformedSecondHalf(slot: 0)
        #expect(err.description.contains("instruction 0"))
    }

    @Test("empty input is an empty program")
    func empty() throws {
        #expect(try Instruction.decode([]).isEmpty)
    }

    @Test("random bytes never trap", arguments: [ByteOrder.little, .big])
    func fuzz(order: ByteOrder) {
        var rng = SplitMix(seed: 42)
        let dis = Disassembler(symbols: [.init(name: "f", address: 0)])
        for length in 0..<300 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if let program = try? Instruction.decode(bytes, byteOrder: order) {
                #expect(Instruction.encode(program, byteOrder: order) == bytes)
                _ = dis.lines(program, byteOrder: order)
            }
        }
        // Every single-slot opcode with extreme fields disassembles to something.
        for opcode in 0...255 where opcode != 0x18 {
            for word in [UInt64.max, 0, 0x8000_0000_8000_ffff] {
                var bytes = withUnsafeBytes(of: word.littleEndian) { Array($0) }
                bytes[0] = UInt8(opcode)
                if let program = try? Instruction.decode(bytes, byteOrder: order) {
                    #expect(!dis.text(program[0], slot: 0).isEmpty)
                }
            }
        }
    }

    @Test("disassembling invalid encodings prints <unknown>")
    func unknown() {
        let cases: [Instruction] = [
            Instruction(opcode: 0xff),
            Instruction(opcode: 0x8f, dst: .r1, src: .r2),          // neg with X
            Instruction(opcode: 0xd4, dst: .r1, imm: 8),            // le8
            Instruction(opcode: 0xdf, dst: .r1),                    // bswap with X
            Instruction(opcode: 0xbc, dst: .r1, src: .r2, offset: 32), // 32-bit movsx from s32
            Instruction(opcode: 0x99, dst: .r1, src: .r2),          // ldx memsx dw
            Instruction(opcode: 0x38),                              // ld abs dw
            Instruction(opcode: 0xf5),                              // jmp op 0xf0
            Instruction(opcode: 0xdb, dst: .r1, src: .r2, imm: 2),  // unassigned atomic op
            Instruction(opcode: 0xd3, dst: .r1, src: .r2, imm: 0),  // atomic add on a byte
            Instruction(opcode: 0x8d, dst: Register(rawValue: 13) ?? .r0), // callx r13
        ]
        for insn in cases {
            #expect(Disassembler().text(insn) == "<unknown>", "\(insn.encoded())")
        }
    }
}

