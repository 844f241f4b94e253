import Testing
@testable import PlumbAsm

@Suite("Disassembler")
struct DisassemblerTests {
    // Expected texts are what llvm-objdump (LLVM 21) prints for these encodings.
    @Test("instruction text")
    func texts() {
        let cases: [(Instruction, String)] = [
            (.loadImm64(.r1, 0), "r1 = 0x0 ll"),
            (.loadImm64(.r3, -1), "r3 = -0x1 ll"),
            (.loadMapValue(.r2, fd: 5, offset: 16), "ld_pseudo\tr2, 0x2, 0x5"),
            (.mov32(.r0, .r1), "w0 = w1"),
            (.mov64(.r1, Int32.min), "r1 = -0x80000000"),
            (.load(.r2, .r10, offset: -8, size: .doubleWord), "r2 = *(u64 *)(r10 - 0x8)"),
            (.load(.r2, .r1, offset: 4, size: .word), "w2 = *(u32 *)(r1 + 0x4)"),
            (.loadSX(.r2, .r1, offset: 0, size: .byte), "r2 = *(s8 *)(r1 + 0x0)"),
            (.store(.r1, offset: 0, imm: -2, size: .half), "*(u16 *)(r1 + 0x0) = -0x2"),
            (.store(.r1, offset: 0, .r2, size: .byte), "*(u8 *)(r1 + 0x0) = w2"),
            (.jump(.jeq, .r1, imm: 0, offset: 3), "if r1 == 0x0 goto +0x3"),
            (.jump32(.jsle, .r1, .r2, offset: -1), "if w1 s<= w2 goto -0x1"),
            (.call(helper: 6), "call 0x6"),
            (.callPseudo(-1), "call -0x1"),
            (.callx(.r3), "callx r3"),
            (.exit(), "exit"),
            (.atomic(.add, .r1, offset: 0, .r2, size: .doubleWord), "lock *(u64 *)(r1 + 0x0) += r2"),
            (.atomic(.fetchAdd, .r1, offset: 0, .r0, size: .doubleWord), "r0 = atomic_fetch_add((u64 *)(r1 + 0x0), r0)"),
            (.atomic(.xchg, .r1, offset: 0, .r2, size: .word), "w2 = xchg32_32(r1 + 0x0, w2)"),
            (.atomic(.cmpxchg, .r1, offset: -8, .r2, size: .doubleWord), "r0 = cmpxchg_64(r1 - 0x8, r0, r2)"),
            (.loadAcquire(.r0, .r1, offset: 8, size: .word), "w0 = load_acquire((u32 *)(r1 + 0x8))"),
            (.storeRelease(.r1, offset: 0, .r2, size: .doubleWord), "store_release((u64 *)(r1 + 0x0), r2)"),
            (.toBigEndian(.r1, bits: 16), "r1 = be16 r1"),
            (.toLittleEndian(.r1, bits: 64), "r1 = le64 r1"),
            (.bswap(.r1, bits: 16), "r1 = bswap16 r1"),
            (.movsx64(.r1, .r2, bits: 8), "r1 = (s8)r2"),
            (.movsx32(.r1, .r2, bits: 16), "w1 = (s16)w2"),
            (.sdiv64(.r1, .r2), "r1 s/= r2"),
            (.smod32(.r1, 3), "w1 s%= 0x3"),
            (.neg64(.r1), "r1 = -r1"),
            (.addrSpaceCast(.r1, .r2, dstAddressSpace: 0, srcAddressSpace: 1), "r1 = addr_space_cast(r2, 0x0, 0x1)"),
            (.mayGoto(-0x13), "may_goto -0x13"),
            (.gotol(-0x12), "gotol -0x12"),
            (.ja(0), "goto +0x0"),
            (.loadAbsolute(imm: 1, size: .byte), "r0 = *(u8 *)skb[0x1]"),
            (.loadIndirect(.r1, size: .half), "r0 = *(u16 *)skb[r1]"),
        ]
        for (insn, text) in cases {
            #expect(insn.description == text)
        }
    }

    @Test("alu32 off mimics --mcpu=v1")
    func noALU32() {
        let d = Disassembler(alu32: false)
        #expect(d.text(.load(.r2, .r1, offset: 4, size: .word)) == "r2 = *(u32 *)(r1 + 0x4)")
        #expect(d.text(.store(.r1, offset: 0, .r2, size: .half)) == "*(u16 *)(r1 + 0x0) = r2")
        #expect(d.text(.atomic(.add, .r1, offset: 0, .r2, size: .word)) == "lock *(u32 *)(r1 + 0x0) += r2")
        #expect(d.text(.atomic(.xchg, .r1, offset: 0, .r2, size: .word)) == "<unknown>")
    }

    @Test("branch annotations use the nearest preceding symbol, wrapping like objdump")
    func annotations() {
        let d = Disassembler(symbols: [.init(name: "f", address: 0), .init(name: "LBB0_2", address: 0x20)])
        #expect(d.text(.jump(.jeq, .r1, imm: 0, offset: 2), slot: 1) == "if r1 == 0x0 goto +0x2 <LBB0_2>")
        #expect(d.text(.ja(0), slot: 0) == "goto +0x0 <f+0x8>")
        #expect(d.text(.ja(3), slot: 4) == "goto +0x3 <LBB0_2+0x20>")
        #expect(d.text(.jump(.jeq, .r1, imm: 0, offset: .min), slot: 17) == "if r1 == 0x0 goto -0x8000 <LBB0_2+0xfffffffffffc0070>")
        // Calls are not annotated.
        #expect(d.text(.callPseudo(1), slot: 0) == "call 0x1")
    }
}
