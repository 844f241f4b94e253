// One BPF instruction as it appears in the byte code.

/// A register field (4 bits). r0–r10 are the architectural registers; other values
/// can appear in malformed input and are kept so decoding round-trips.
public struct Register: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8

    /// Fails for values that do not fit the 4-bit field.
    public init?(rawValue: UInt8) {
        guard rawValue < 16 else { return nil }
        self.rawValue = rawValue
    }

    // Internal: callers guarantee 0...15.
    init(nibble: UInt8) { rawValue = nibble & 0x0f }

    public static let r0 = Register(nibble: 0)
    public static let r1 = Register(nibble: 1)
    public static let r2 = Register(nibble: 2)
    public static let r3 = Register(nibble: 3)
    public static let r4 = Register(nibble: 4)
    public static let r5 = Register(nibble: 5)
    public static let r6 = Register(nibble: 6)
    public static let r7 = Register(nibble: 7)
    public static let r8 = Register(nibble: 8)
    public static let r9 = Register(nibble: 9)
    public static let r10 = Register(nibble: 10)
    /// The read-only frame pointer.
    public static let fp = r10

    /// Whether this names one of r0–r10.
    public var isValid: Bool { rawValue <= 10 }

    public var description: String { "r\(rawValue)" }
}

/// A BPF instruction: one 8-byte slot, or two for `ld_imm64` (opcode 0x18), whose
/// second slot carries only the upper 32 bits of the constant (`imm2`).
public struct Instruction: Hashable, Sendable {
    public var opcode: UInt8
    public var dst: Register
    public var src: Register
    public var offset: Int16
    public var imm: Int32
    /// The second slot's imm of a 16-byte ld_imm64; ignored (and not encoded) otherwise.
    public var imm2: Int32

    public init(opcode: UInt8, dst: Register = .r0, src: Register = .r0, offset: Int16 = 0, imm: Int32 = 0, imm2: Int32 = 0) {
        self.opcode = opcode
        self.dst = dst
        self.src = src
        self.offset = offset
        self.imm = imm
        self.imm2 = imm2
    }

    /// The opcode of the 16-byte load of a 64-bit immediate (LD | IMM | DW).
    public static let loadImm64Opcode: UInt8 = InstructionClass.ld.rawValue | Mode.imm.rawValue | Size.doubleWord.rawValue

    /// Whether this is the 16-byte ld_imm64.
    public var isWide: Bool { opcode == Instruction.loadImm64Opcode }
    /// How many 8-byte slots the instruction occupies.
    public var slotCount: Int { isWide ? 2 : 1 }

    // MARK: Opcode fields

    public var instructionClass: InstructionClass {
        // Every 3-bit value is a class, so this cannot fail.
        InstructionClass(rawValue: opcode & InstructionClass.mask) ?? .ld
    }
    public var isALU: Bool { instructionClass == .alu || instructionClass == .alu64 }
    public var isJump: Bool { instructionClass == .jmp || instructionClass == .jmp32 }
    public var isMemory: Bool { !isALU && !isJump }
    /// ALU operation (ALU/ALU64 only; nil for the unassigned values 0xe0, 0xf0).
    public var aluOp: ALUOp? { isALU ? ALUOp(rawValue: opcode & ALUOp.mask) : nil }
    /// Jump operation (JMP/JMP32 only; nil for the unassigned 0xf0).
    public var jumpOp: JumpOp? { isJump ? JumpOp(rawValue: opcode & JumpOp.mask) : nil }
    /// K or X (ALU and jumps only).
    public var operandSource: OperandSource? { isMemory ? nil : (opcode & OperandSource.mask == 0 ? .k : .x) }
    /// Access width (LD/LDX/ST/STX only).
    public var size: Size? { isMemory ? Size(rawValue: opcode & Size.mask) : nil }
    /// Addressing mode (LD/LDX/ST/STX only; nil for unassigned modes).
    public var mode: Mode? { isMemory ? Mode(rawValue: opcode & Mode.mask) : nil }

    // MARK: ld_imm64 views

    /// The 64-bit constant of an ld_imm64: imm is the low half, imm2 the high half.
    public var imm64: Int64 {
        get { Int64(imm2) << 32 | Int64(UInt32(bitPattern: imm)) }
        set {
            imm = Int32(truncatingIfNeeded: newValue)
            imm2 = Int32(truncatingIfNeeded: newValue >> 32)
        }
    }

    /// The pseudo source of an ld_imm64 (nil when not an ld_imm64 or src is unassigned).
    public var pseudoSource: PseudoSource? { isWide ? PseudoSource(rawValue: src.rawValue) : nil }

    /// What a JMP|CALL|K calls (nil for anything else or an unassigned src).
    public var callKind: CallKind? {
        opcode == InstructionClass.jmp.rawValue | JumpOp.call.rawValue ? CallKind(rawValue: src.rawValue) : nil
    }

    /// The slot offset a jump, `gotol`, `may_goto` or pseudo call goes to, relative to the next slot.
    /// Nil for instructions that do not branch (exit, helper calls, callx).
    public var branchOffset: Int? {
        switch instructionClass {
        case .jmp:
            switch jumpOp {
            case .call: return callKind == .pseudo ? Int(imm) : nil
            case .exit, .none: return nil
            default: return Int(offset)
            }
        case .jmp32:
            switch jumpOp {
            case .ja: return Int(imm)
            case .call, .exit, .jcond, .none: return nil
            default: return Int(offset)
            }
        default:
            return nil
        }
    }
}

// MARK: - Constructors for every instruction form

extension Instruction {
    // ALU

    static func aluOpcode(_ op: ALUOp, _ source: OperandSource, wide: Bool) -> UInt8 {
        (wide ? InstructionClass.alu64 : InstructionClass.alu).rawValue | source.rawValue | op.rawValue
    }

    /// dst op= src, 64-bit (ALU64 | X).
    public static func alu64(_ op: ALUOp, _ dst: Register, _ src: Register) -> Instruction {
        Instruction(opcode: aluOpcode(op, .x, wide: true), dst: dst, src: src)
    }
    /// dst op= imm, 64-bit (ALU64 | K).
    public static func alu64(_ op: ALUOp, _ dst: Register, _ imm: Int32) -> Instruction {
        Instruction(opcode: aluOpcode(op, .k, wide: true), dst: dst, imm: imm)
    }
    /// wdst op= wsrc, 32-bit (ALU | X); the result is zero-extended.
    public static func alu32(_ op: ALUOp, _ dst: Register, _ src: Register) -> Instruction {
        Instruction(opcode: aluOpcode(op, .x, wide: false), dst: dst, src: src)
    }
    /// wdst op= imm, 32-bit (ALU | K).
    public static func alu32(_ op: ALUOp, _ dst: Register, _ imm: Int32) -> Instruction {
        Instruction(opcode: aluOpcode(op, .k, wide: false), dst: dst, imm: imm)
    }

    public static func mov64(_ dst: Register, _ src: Register) -> Instruction { alu64(.mov, dst, src) }
    public static func mov64(_ dst: Register, _ imm: Int32) -> Instruction { alu64(.mov, dst, imm) }
    public static func mov32(_ dst: Register, _ src: Register) -> Instruction { alu32(.mov, dst, src) }
    public static func mov32(_ dst: Register, _ imm: Int32) -> Instruction { alu32(.mov, dst, imm) }
    public static func add64(_ dst: Register, _ src: Register) -> Instruction { alu64(.add, dst, src) }
    public static func add64(_ dst: Register, _ imm: Int32) -> Instruction { alu64(.add, dst, imm) }
    public static func add32(_ dst: Register, _ src: Register) -> Instruction { alu32(.add, dst, src) }
    public static func add32(_ dst: Register, _ imm: Int32) -> Instruction { alu32(.add, dst, imm) }
    public static func sub64(_ dst: Register, _ src: Register) -> Instruction { alu64(.sub, dst, src) }
    public static func sub64(_ dst: Register, _ imm: Int32) -> Instruction { alu64(.sub, dst, imm) }
    public static func mul64(_ dst: Register, _ src: Register) -> Instruction { alu64(.mul, dst, src) }
    public static func mul64(_ dst: Register, _ imm: Int32) -> Instruction { alu64(.mul, dst, imm) }
    public static func and64(_ dst: Register, _ imm: Int32) -> Instruction { alu64(.and, dst, imm) }
    public static func lsh64(_ dst: Register, _ imm: Int32) -> Instruction { alu64(.lsh, dst, imm) }
    public static func rsh64(_ dst: Register, _ imm: Int32) -> Instruction { alu64(.rsh, dst, imm) }

    /// dst = -dst.
    public static func neg64(_ dst: Register) -> Instruction { alu64(.neg, dst, 0) }
    public static func neg32(_ dst: Register) -> Instruction { alu32(.neg, dst, 0) }

    /// Signed division/modulo: the unsigned opcode with off = 1.
    public static func sdiv64(_ dst: Register, _ src: Register) -> Instruction { signed(alu64(.div, dst, src)) }
    public static func sdiv64(_ dst: Register, _ imm: Int32) -> Instruction { signed(alu64(.div, dst, imm)) }
    public static func sdiv32(_ dst: Register, _ src: Register) -> Instruction { signed(alu32(.div, dst, src)) }
    public static func sdiv32(_ dst: Register, _ imm: Int32) -> Instruction { signed(alu32(.div, dst, imm)) }
    public static func smod64(_ dst: Register, _ src: Register) -> Instruction { signed(alu64(.mod, dst, src)) }
    public static func smod64(_ dst: Register, _ imm: Int32) -> Instruction { signed(alu64(.mod, dst, imm)) }
    public static func smod32(_ dst: Register, _ src: Register) -> Instruction { signed(alu32(.mod, dst, src)) }
    public static func smod32(_ dst: Register, _ imm: Int32) -> Instruction { signed(alu32(.mod, dst, imm)) }

    private static func signed(_ i: Instruction) -> Instruction {
        var i = i
        i.offset = 1
        return i
    }

    /// dst = (sN)src, sign-extending the low `bits` (8, 16 or 32) of src into 64 bits.
    public static func movsx64(_ dst: Register, _ src: Register, bits: Int16) -> Instruction {
        Instruction(opcode: aluOpcode(.mov, .x, wide: true), dst: dst, src: src, offset: bits)
    }
    /// wdst = (sN)wsrc for bits 8 or 16.
    public static func movsx32(_ dst: Register, _ src: Register, bits: Int16) -> Instruction {
        Instruction(opcode: aluOpcode(.mov, .x, wide: false), dst: dst, src: src, offset: bits)
    }

    /// dst = bswapN dst (unconditional byte swap, ALU64 | END).
    public static func bswap(_ dst: Register, bits: Int32) -> Instruction {
        Instruction(opcode: aluOpcode(.end, .k, wide: true), dst: dst, imm: bits)
    }
    /// dst = beN dst (convert host to big endian, ALU | END | X).
    public static func toBigEndian(_ dst: Register, bits: Int32) -> Instruction {
        Instruction(opcode: aluOpcode(.end, .x, wide: false), dst: dst, imm: bits)
    }
    /// dst = leN dst (convert host to little endian, ALU | END | K).
    public static func toLittleEndian(_ dst: Register, bits: Int32) -> Instruction {
        Instruction(opcode: aluOpcode(.end, .k, wide: false), dst: dst, imm: bits)
    }

    /// dst = addr_space_cast(src, dstAS, srcAS): arena pointer conversion (ALU64 | MOV | X, off 1).
    public static func addrSpaceCast(_ dst: Register, _ src: Register, dstAddressSpace: UInt16, srcAddressSpace: UInt16) -> Instruction {
        Instruction(opcode: aluOpcode(.mov, .x, wide: true), dst: dst, src: src, offset: 1,
                    imm: Int32(bitPattern: UInt32(dstAddressSpace) << 16 | UInt32(srcAddressSpace)))
    }

    // Jumps

    static func jumpOpcode(_ op: JumpOp, _ source: OperandSource, wide: Bool) -> UInt8 {
        (wide ? InstructionClass.jmp : InstructionClass.jmp32).rawValue | source.rawValue | op.rawValue
    }

    /// if dst op imm goto +offset (64-bit compare).
    public static func jump(_ op: JumpOp, _ dst: Register, imm: Int32, offset: Int16) -> Instruction {
        Instruction(opcode: jumpOpcode(op, .k, wide: true), dst: dst, offset: offset, imm: imm)
    }
    /// if dst op src goto +offset (64-bit compare).
    public static func jump(_ op: JumpOp, _ dst: Register, _ src: Register, offset: Int16) -> Instruction {
        Instruction(opcode: jumpOpcode(op, .x, wide: true), dst: dst, src: src, offset: offset)
    }
    /// if wdst op imm goto +offset (32-bit compare).
    public static func jump32(_ op: JumpOp, _ dst: Register, imm: Int32, offset: Int16) -> Instruction {
        Instruction(opcode: jumpOpcode(op, .k, wide: false), dst: dst, offset: offset, imm: imm)
    }
    /// if wdst op wsrc goto +offset (32-bit compare).
    public static func jump32(_ op: JumpOp, _ dst: Register, _ src: Register, offset: Int16) -> Instruction {
        Instruction(opcode: jumpOpcode(op, .x, wide: false), dst: dst, src: src, offset: offset)
    }
    /// goto +offset (JMP | JA).
    public static func ja(_ offset: Int16) -> Instruction {
        Instruction(opcode: jumpOpcode(.ja, .k, wide: true), offset: offset)
    }
    /// gotol +offset: the long unconditional jump (JMP32 | JA, offset in imm).
    public static func gotol(_ offset: Int32) -> Instruction {
        Instruction(opcode: jumpOpcode(.ja, .k, wide: false), imm: offset)
    }
    /// may_goto +offset: bounded-loop escape the verifier can take (JMP | JCOND).
    public static func mayGoto(_ offset: Int16) -> Instruction {
        Instruction(opcode: jumpOpcode(.jcond, .k, wide: true), offset: offset)
    }
    /// call helper #id.
    public static func call(helper id: Int32) -> Instruction {
        Instruction(opcode: jumpOpcode(.call, .k, wide: true), src: Register(nibble: CallKind.helper.rawValue), imm: id)
    }
    /// bpf-to-bpf call: imm is the target's slot offset relative to the next slot.
    public static func callPseudo(_ offset: Int32) -> Instruction {
        Instruction(opcode: jumpOpcode(.call, .k, wide: true), src: Register(nibble: CallKind.pseudo.rawValue), imm: offset)
    }
    /// kfunc call by BTF id; `moduleIndex` (off) picks a module BTF from the fd array, 0 for vmlinux.
    public static func callKfunc(btfID: Int32, moduleIndex: Int16 = 0) -> Instruction {
        Instruction(opcode: jumpOpcode(.call, .k, wide: true), src: Register(nibble: CallKind.kfunc.rawValue), offset: moduleIndex, imm: btfID)
    }
    /// callx reg: indirect call through a register (LLVM encodes the register in dst).
    public static func callx(_ reg: Register) -> Instruction {
        Instruction(opcode: jumpOpcode(.call, .x, wide: true), dst: reg)
    }
    public static func exit() -> Instruction {
        Instruction(opcode: jumpOpcode(.exit, .k, wide: true))
    }

    // Memory

    /// dst = *(size *)(src + offset).
    public static func load(_ dst: Register, _ src: Register, offset: Int16, size: Size) -> Instruction {
        Instruction(opcode: InstructionClass.ldx.rawValue | Mode.mem.rawValue | size.rawValue, dst: dst, src: src, offset: offset)
    }
    /// dst = *(sN *)(src + offset), sign-extended (byte, half, word).
    public static func loadSX(_ dst: Register, _ src: Register, offset: Int16, size: Size) -> Instruction {
        Instruction(opcode: InstructionClass.ldx.rawValue | Mode.memsx.rawValue | size.rawValue, dst: dst, src: src, offset: offset)
    }
    /// *(size *)(dst + offset) = src.
    public static func store(_ dst: Register, offset: Int16, _ src: Register, size: Size) -> Instruction {
        Instruction(opcode: InstructionClass.stx.rawValue | Mode.mem.rawValue | size.rawValue, dst: dst, src: src, offset: offset)
    }
    /// *(size *)(dst + offset) = imm.
    public static func store(_ dst: Register, offset: Int16, imm: Int32, size: Size) -> Instruction {
        Instruction(opcode: InstructionClass.st.rawValue | Mode.mem.rawValue | size.rawValue, dst: dst, offset: offset, imm: imm)
    }
    /// Atomic read-modify-write on *(size *)(dst + offset) with src (word or double word;
    /// load-acquire/store-release also take byte and half).
    public static func atomic(_ op: AtomicOp, _ dst: Register, offset: Int16, _ src: Register, size: Size) -> Instruction {
        Instruction(opcode: InstructionClass.stx.rawValue | Mode.atomic.rawValue | size.rawValue, dst: dst, src: src, offset: offset, imm: op.rawValue)
    }
    /// dst = load_acquire((size *)(src + offset)).
    public static func loadAcquire(_ dst: Register, _ src: Register, offset: Int16, size: Size) -> Instruction {
        atomic(.loadAcquire, dst, offset: offset, src, size: size)
    }
    /// store_release((size *)(dst + offset), src).
    public static func storeRelease(_ dst: Register, offset: Int16, _ src: Register, size: Size) -> Instruction {
        atomic(.storeRelease, dst, offset: offset, src, size: size)
    }

    /// r0 = *(size *)skb[imm] (legacy packet access, byte/half/word).
    public static func loadAbsolute(imm: Int32, size: Size) -> Instruction {
        Instruction(opcode: InstructionClass.ld.rawValue | Mode.abs.rawValue | size.rawValue, imm: imm)
    }
    /// r0 = *(size *)skb[src + imm] (legacy packet access).
    public static func loadIndirect(_ src: Register, imm: Int32 = 0, size: Size) -> Instruction {
        Instruction(opcode: InstructionClass.ld.rawValue | Mode.ind.rawValue | size.rawValue, src: src, imm: imm)
    }

    // ld_imm64

    /// dst = imm64 (16 bytes).
    public static func loadImm64(_ dst: Register, _ value: Int64) -> Instruction {
        var i = Instruction(opcode: loadImm64Opcode, dst: dst)
        i.imm64 = value
        return i
    }
    /// dst = imm64 with a pseudo source: `imm` and `imm2` as the source defines them.
    public static func loadPseudo(_ dst: Register, _ source: PseudoSource, imm: Int32, imm2: Int32 = 0) -> Instruction {
        Instruction(opcode: loadImm64Opcode, dst: dst, src: Register(nibble: source.rawValue), imm: imm, imm2: imm2)
    }
    /// dst = pointer to the map with this fd.
    public static func loadMapFD(_ dst: Register, fd: Int32) -> Instruction { loadPseudo(dst, .mapFD, imm: fd) }
    /// dst = address of byte `offset` in the value of the (array) map with this fd.
    public static func loadMapValue(_ dst: Register, fd: Int32, offset: UInt32) -> Instruction {
        loadPseudo(dst, .mapValue, imm: fd, imm2: Int32(bitPattern: offset))
    }
    /// dst = pointer to the map at `index` of the fd array.
    public static func loadMapIndex(_ dst: Register, index: Int32) -> Instruction { loadPseudo(dst, .mapIndex, imm: index) }
    /// dst = address in the value of the map at `index` of the fd array.
    public static func loadMapIndexValue(_ dst: Register, index: Int32, offset: UInt32) -> Instruction {
        loadPseudo(dst, .mapIndexValue, imm: index, imm2: Int32(bitPattern: offset))
    }
    /// dst = address of the kernel variable with this BTF id.
    public static func loadBTFID(_ dst: Register, id: Int32) -> Instruction { loadPseudo(dst, .btfID, imm: id) }
    /// dst = address of the subprogram `offset` slots after the next slot.
    public static func loadFunction(_ dst: Register, offset: Int32) -> Instruction { loadPseudo(dst, .function, imm: offset) }
}
