import Testing
@testable import PlumbAsm

@Suite("ProgramBuilder")
struct BuilderTests {
    @Test("forward and backward labels resolve to slot offsets")
    func labels() throws {
        var b = ProgramBuilder()
        let done = b.newLabel("done")
        let loop = b.newLabel("loop")
        b.emit(.mov64(.r0, 0))
        b.bind(loop)
        b.jump(.jeq, .r1, imm: 0, to: done)     // slot 1 -> 4: +2
        b.emit(.sub64(.r1, 1))
        b.goto(loop)                             // slot 3 -> 1: -3
        b.bind(done)
        b.emit(.exit())
        let insns = try b.finish()
        #expect(insns == [.mov64(.r0, 0), .jump(.jeq, .r1, imm: 0, offset: 2), .sub64(.r1, 1), .ja(-3), .exit()])
        #expect(Disassembler().text(insns[3], slot: 3) == "goto -0x3")
    }

    @Test("ld_imm64 counts two slots")
    func wideSlots() throws {
        var b = ProgramBuilder()
        let end = b.newLabel()
        b.jump(.jne, .r1, .r2, to: end)
        b.emit(.loadImm64(.r1, 1 << 40))
        b.emit(.loadMapFD(.r2, fd: 3))
        b.jump32(.jslt, .r1, imm: 5, to: end)
        b.bind(end)
        b.emit(.exit())
        #expect(b.slotCount == 7)
        let insns = try b.finish()
        #expect(insns[0].offset == 5)   // slot 0 -> 6
        #expect(insns[3].offset == 0)   // slot 5 -> 6
        #expect(insns.slotIndices == [0, 1, 3, 5, 6])
    }

    @Test("calls, function addresses, gotol and may_goto")
    func calls() throws {
        var b = ProgramBuilder()
        let sub = b.newLabel("sub")
        b.call(sub)                   // slot 0
        b.loadFunction(.r2, sub)      // slots 1-2
        b.mayGoto(sub)                // slot 3
        b.gotol(sub)                  // slot 4
        b.emit(.exit())               // slot 5
        b.bind(sub)                   // slot 6
        b.emit(.mov64(.r0, 1))
        b.emit(.exit())
        let insns = try b.finish()
        #expect(insns[0] == .callPseudo(5))
        #expect(insns[1] == .loadFunction(.r2, offset: 4))
        #expect(insns[2] == .mayGoto(2))
        #expect(insns[3] == .gotol(1))
    }

    @Test("unconditional jumps beyond 16 bits become gotol")
    func longGoto() throws {
        var b = ProgramBuilder()
        let far = b.newLabel()
        b.goto(far)
        b.emit(Array(repeating: Instruction.mov64(.r0, 0), count: 40_000))
        b.bind(far)
        b.emit(.exit())
        let insns = try b.finish()
        #expect(insns[0] == .gotol(40_000))
    }

    @Test("conditional jumps beyond 16 bits are an error")
    func outOfRange() {
        var b = ProgramBuilder()
        let far = b.newLabel("far")
        b.jump(.jeq, .r1, imm: 0, to: far)
        b.emit(Array(repeating: Instruction.loadImm64(.r0, 0), count: 20_000))
        b.bind(far)
        b.emit(.exit())
        #expect(throws: BPFAsmError.jumpOutOfRange(label: "far", slot: 0, distance: 40_000)) { try b.finish() }
    }

    @Test("unbound, twice-bound and foreign labels")
    func labelErrors() {
        var b = ProgramBuilder()
        let l = b.newLabel("nowhere")
        b.emit(.mov64(.r0, 0))
        b.jump(.jgt, .r1, .r2, to: l)
        #expect(throws: BPFAsmError.unboundLabel(label: "nowhere", slot: 1)) { try b.finish() }

        var twice = ProgramBuilder()
        let t = twice.here("t")
        twice.emit(.exit())
        twice.bind(t)
        #expect(throws: BPFAsmError.labelBoundTwice(label: "t", slot: 1)) { try twice.finish() }

        var other = ProgramBuilder()
        _ = other.newLabel()
        let foreign = other.newLabel()
        var mine = ProgramBuilder()
        mine.goto(foreign)
        #expect(throws: BPFAsmError.unknownLabel(label: "L1", slot: 0)) { try mine.finish() }
    }

    @Test("the issue's example builds")
    func example() throws {
        var b = ProgramBuilder()
        let l = b.newLabel()
        b.emit(.mov64(.r0, 0))
        b.jump(.jeq, .r1, imm: 0, to: l)
        b.bind(l)
        b.emit(.exit())
        let insns = try b.finish()
        #expect(Disassembler().lines(insns) == [
            "       0:\tb7 00 00 00 00 00 00 00\tr0 = 0x0",
            "       1:\t15 01 00 00 00 00 00 00\tif r1 == 0x0 goto +0x0",
            "       2:\t95 00 00 00 00 00 00 00\texit",
        ])
    }
}
