import Testing
import PlumbBPF
import PlumbELF
import PlumbAsm

/// The code `USDTArgument.emitLoad` produces (its values are checked in the kernel tests).
@Suite struct USDTArgumentCodeTests {
    func code(_ spec: String, bias: USDTLoadBias = .constant(0), symbols: [String: UInt64] = [:]) throws -> [Instruction] {
        let arg = try USDT.parseArgument(spec) { symbols[$0] }
        var b = ProgramBuilder()
        try arg.emitLoad(into: &b, context: .r6, destination: .r0, loadBias: bias)
        return try b.finish()
    }

    @Test func registersAreLoadedFromPtRegsAndExtended() throws {
        // %ah: 8 bytes of rax's slot, shifted down one byte, then zero-extended from 1 byte.
        #expect(try code("1@%ah") == [.load(.r0, .r6, offset: 80, size: .doubleWord), .rsh64(.r0, 8), .lsh64(.r0, 56), .rsh64(.r0, 56)])
        #expect(try code("-4@%r14d") == [.load(.r0, .r6, offset: 8, size: .doubleWord), .lsh64(.r0, 32), .alu64(.arsh, .r0, 32)])
        #expect(try code("8@%rdi") == [.load(.r0, .r6, offset: 112, size: .doubleWord)])
        #expect(try code("-8@$-7") == [.loadImm64(.r0, -7)])
    }

    @Test func memoryOperandsReadUserMemory() throws {
        let global = try code("-4@40+CheckpointStats(%rip)", bias: .constant(0x1000), symbols: ["CheckpointStats": 0x9000])
        #expect(global.first == .loadImm64(.r3, 0x1000 + 0x9000 + 40))
        #expect(global.contains(.call(helper: 112)))
        let viaRegister = try code("8@g(%rip)", bias: .register(.r9), symbols: ["g": 0x40])
        #expect(Array(viaRegister.prefix(2)) == [.loadImm64(.r3, 0x40), .add64(.r3, .r9)])
        // Bias from the instruction pointer: symbol + offset - site, plus pt_regs->ip.
        let viaIP = try code("8@g+8(%rip)", bias: .instructionPointer(siteAddress: 0x1100), symbols: ["g": 0x4000])
        #expect(Array(viaIP.prefix(3)) == [.loadImm64(.r3, 0x4000 + 8 - 0x1100), .load(.r5, .r6, offset: 128, size: .doubleWord), .add64(.r3, .r5)])
        let indexed = try code("4@(%rax,%rdx,4)")
        #expect(indexed.contains(.mul64(.r4, 4)))
    }

    @Test func refusesWhatCannotWork() throws {
        #expect(throws: BPFError.self) { try code("8@missing(%rip)") }
        let arg = try USDT.parseArgument("8@%rax")
        var b = ProgramBuilder()
        #expect(throws: BPFError.self) { try arg.emitLoad(into: &b, context: .r1, destination: .r0) }
        #expect(throws: BPFError.self) { try arg.emitLoad(into: &b, context: .r6, destination: .r0, loadBias: .register(.r2)) }
    }
}
