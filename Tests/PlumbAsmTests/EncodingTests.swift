import Testing
@testable import PlumbAsm

@Suite("Encoding")
struct EncodingTests {
    /// One instruction per opcode with every field populated, so a swapped or dropped
    /// field shows up.
    static func sample(opcode: UInt8, variant: Int) -> Instruction {
        let regs: [(UInt8, UInt8)] = [(1, 2), (10, 0), (15, 9), (0, 15)]
        let (d, s) = regs[variant % regs.count]
        var insn = Instruction(
            opcode: opcode, dst: Register(rawValue: d) ?? .r0, src: Register(rawValue: s) ?? .r0,
            offset: [Int16(-2), .max, .min, 0x1234][variant % 4],
            imm: [Int32(-1), 0x1234_5678, .min, 7][variant % 4])
        if insn.isWide { insn.imm2 = [Int32(0x0bad_cafe), -1, 0, .max][variant % 4] }
        return insn
    }

    @Test("every opcode round-trips in both byte orders", arguments: [ByteOrder.little, .big])
    func everyOpcode(order: ByteOrder) throws {
        for opcode in 0...255 {
            for variant in 0..<4 {
                let insn = Self.sample(opcode: UInt8(opcode), variant: variant)
                let bytes = insn.encoded(byteOrder: order)
                #expect(bytes.count == insn.slotCount * 8)
                let back = try Instruction.decode(bytes, byteOrder: order)
                #expect(back == [insn], "opcode 0x\(String(opcode, radix: 16)) variant \(variant)")
            }
        }
    }

    @Test("whole program round-trips, including named forms")
    func program() throws {
        let program: [Instruction] = [
            .mov64(.r1, .r2), .mov32(.r1, -1), .sdiv64(.r1, .r2), .smod32(.r3, 7), .movsx64(.r1, .r2, bits: 32),
            .movsx32(.r1, .r2, bits: 8), .bswap(.r1, bits: 64), .toBigEndian(.r2, bits: 16), .toLittleEndian(.r2, bits: 32),
            .addrSpaceCast(.r1, .r2, dstAddressSpace: 1, srcAddressSpace: 0), .neg64(.r4), .neg32(.r4),
            .loadImm64(.r1, 0x1234_5678_9abc_def0), .loadMapFD(.r1, fd: 5), .loadMapValue(.r2, fd: 6, offset: 16),
            .loadBTFID(.r3, id: 77), .loadFunction(.r4, offset: 2), .loadMapIndex(.r5, index: 1), .loadMapIndexValue(.r6, index: 2, offset: 8),
            .load(.r2, .r10, offset: -8, size: .doubleWord), .loadSX(.r2, .r1, offset: 2, size: .half),
            .store(.r10, offset: -4, .r1, size: .word), .store(.r1, offset: 0, imm: -2, size: .half),
            .atomic(.fetchAdd, .r1, offset: 0, .r2, size: .doubleWord), .atomic(.cmpxchg, .r1, offset: 8, .r2, size: .word),
            .loadAcquire(.r0, .r1, offset: 0, size: .byte), .storeRelease(.r1, offset: 0, .r2, size: .half),
            .loadAbsolute(imm: 12, size: .half), .loadIndirect(.r1, size: .word),
            .jump(.jeq, .r1, imm: 0, offset: 3), .jump32(.jsgt, .r1, .r2, offset: -4), .ja(1), .gotol(-70000), .mayGoto(2),
            .call(helper: 6), .callPseudo(-3), .callKfunc(btfID: 1234, moduleIndex: 1), .callx(.r3), .exit(),
        ]
        for order in [ByteOrder.little, .big] {
            let bytes = Instruction.encode(program, byteOrder: order)
            #expect(bytes.count == program.slotCount * 8)
            #expect(try Instruction.decode(bytes, byteOrder: order) == program)
        }
    }

    @Test("byte layout: little endian has dst in the low nibble, big endian in the high")
    func layout() throws {
        let insn = Instruction.jump(.jeq, .r1, .r2, offset: -1)
        #expect(insn.encoded(byteOrder: .little) == [0x1d, 0x21, 0xff, 0xff, 0, 0, 0, 0])
        #expect(insn.encoded(byteOrder: .big) == [0x1d, 0x12, 0xff, 0xff, 0, 0, 0, 0])
        let store = Instruction.store(.r1, offset: 4, imm: 0x0102_0304, size: .word)
        #expect(store.encoded(byteOrder: .little) == [0x62, 0x01, 4, 0, 4, 3, 2, 1])
        #expect(store.encoded(byteOrder: .big) == [0x62, 0x10, 0, 4, 1, 2, 3, 4])
        let wide = Instruction.loadImm64(.r1, 0x1_2345_6789)
        #expect(wide.encoded(byteOrder: .little) == [0x18, 0x01, 0, 0, 0x89, 0x67, 0x45, 0x23, 0, 0, 0, 0, 1, 0, 0, 0])
        #expect(wide.encoded(byteOrder: .big) == [0x18, 0x10, 0, 0, 0x23, 0x45, 0x67, 0x89, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(wide.imm64 == 0x1_2345_6789)
        #expect(Instruction.loadImm64(.r1, -1).imm64 == -1)
    }

    @Test("decoding from Span and RawSpan matches the array form")
    func spans() throws {
        let program: [Instruction] = [.loadImm64(.r1, 42), .mov64(.r0, .r1), .exit()]
        for order in [ByteOrder.little, .big] {
            let bytes = Instruction.encode(program, byteOrder: order)
            #expect(try Instruction.decode(bytes.span, byteOrder: order) == program)
            #expect(try Instruction.decode(bytes.span.bytes, byteOrder: order) == program)
            let lines = try Disassembler().lines(bytes: bytes, byteOrder: order)
            #expect(lines.map { $0.split(separator: "\t").last.map(String.init) } == ["r1 = 0x2a ll", "r0 = r1", "exit"])
        }
    }

    @Test("opcode field accessors")
    func fields() {
        let i = Instruction.atomic(.xchg, .r1, offset: 0, .r2, size: .word)
        #expect(i.instructionClass == .stx)
        #expect(i.mode == .atomic)
        #expect(i.size == .word)
        #expect(AtomicOp(rawValue: i.imm) == .xchg && AtomicOp.xchg.fetches)
        #expect(Instruction.alu64(.arsh, .r1, 3).aluOp == .arsh)
        #expect(Instruction.jump32(.jslt, .r1, imm: 0, offset: 0).jumpOp == .jslt)
        #expect(Instruction.loadMapValue(.r1, fd: 3, offset: 0).pseudoSource == .mapValue)
        #expect(Instruction.callKfunc(btfID: 9).callKind == .kfunc)
        #expect(Instruction.gotol(5).branchOffset == 5)
        #expect(Instruction.call(helper: 5).branchOffset == nil)
        #expect(Register(rawValue: 16) == nil)
        #expect(Register(rawValue: 11)?.isValid == false)
    }
}
