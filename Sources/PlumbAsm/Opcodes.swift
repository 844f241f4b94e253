// Opcode field values of the BPF instruction set (kernel
// Documentation/bpf/standardization/instruction-set.rst). The 8-bit opcode is
// class (low 3 bits) | source or size | operation or mode.

/// The instruction class: the opcode's low three bits.
public enum InstructionClass: UInt8, Sendable, CaseIterable {
    case ld = 0x00, ldx = 0x01, st = 0x02, stx = 0x03
    case alu = 0x04, jmp = 0x05, jmp32 = 0x06, alu64 = 0x07

    public static let mask: UInt8 = 0x07
}

/// Operand source bit of ALU and jump opcodes: immediate (K) or register (X).
/// For ALU/END it selects the byte order instead (K = to little, X = to big).
public enum OperandSource: UInt8, Sendable {
    case k = 0x00, x = 0x08
    public static let mask: UInt8 = 0x08
}

/// ALU operation: the opcode's high four bits in ALU/ALU64.
public enum ALUOp: UInt8, Sendable, CaseIterable {
    case add = 0x00, sub = 0x10, mul = 0x20, div = 0x30, or = 0x40, and = 0x50
    case lsh = 0x60, rsh = 0x70, neg = 0x80, mod = 0x90, xor = 0xa0, mov = 0xb0
    case arsh = 0xc0, end = 0xd0

    public static let mask: UInt8 = 0xf0
}

/// Jump operation: the opcode's high four bits in JMP/JMP32.
public enum JumpOp: UInt8, Sendable, CaseIterable {
    case ja = 0x00, jeq = 0x10, jgt = 0x20, jge = 0x30, jset = 0x40, jne = 0x50
    case jsgt = 0x60, jsge = 0x70, call = 0x80, exit = 0x90, jlt = 0xa0, jle = 0xb0
    case jslt = 0xc0, jsle = 0xd0
    /// `may_goto` (JMP only, src 0).
    case jcond = 0xe0

    public static let mask: UInt8 = 0xf0

    /// The conditional jumps that compare dst with src or imm.
    public static let conditional: [JumpOp] = [.jeq, .jgt, .jge, .jset, .jne, .jsgt, .jsge, .jlt, .jle, .jslt, .jsle]
}

/// Memory access width in LD/LDX/ST/STX opcodes.
public enum Size: UInt8, Sendable, CaseIterable {
    case word = 0x00, half = 0x08, byte = 0x10, doubleWord = 0x18

    public static let mask: UInt8 = 0x18

    public var bytes: Int {
        switch self {
        case .byte: 1
        case .half: 2
        case .word: 4
        case .doubleWord: 8
        }
    }

    public init?(bytes: Int) {
        switch bytes {
        case 1: self = .byte
        case 2: self = .half
        case 4: self = .word
        case 8: self = .doubleWord
        default: return nil
        }
    }
}

/// Addressing mode in LD/LDX/ST/STX opcodes.
public enum Mode: UInt8, Sendable, CaseIterable {
    case imm = 0x00
    /// Legacy packet access (LD only).
    case abs = 0x20, ind = 0x40
    case mem = 0x60
    /// Sign-extending load (LDX only).
    case memsx = 0x80
    /// Atomic operations (STX only), the operation is in imm.
    case atomic = 0xc0

    public static let mask: UInt8 = 0xe0
}

/// The operation of a BPF_ATOMIC instruction, carried in its imm field.
public struct AtomicOp: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let add = AtomicOp(rawValue: 0x00)
    public static let or = AtomicOp(rawValue: 0x40)
    public static let and = AtomicOp(rawValue: 0x50)
    public static let xor = AtomicOp(rawValue: 0xa0)
    /// Flag: also return the old value in src.
    public static let fetch = AtomicOp(rawValue: 0x01)
    public static let fetchAdd = AtomicOp(rawValue: 0x01)
    public static let fetchOr = AtomicOp(rawValue: 0x41)
    public static let fetchAnd = AtomicOp(rawValue: 0x51)
    public static let fetchXor = AtomicOp(rawValue: 0xa1)
    /// Exchange (always fetches).
    public static let xchg = AtomicOp(rawValue: 0xe1)
    /// Compare with r0 and exchange; old value lands in r0.
    public static let cmpxchg = AtomicOp(rawValue: 0xf1)
    /// dst = *(src + off) with acquire semantics (all four sizes).
    public static let loadAcquire = AtomicOp(rawValue: 0x100)
    /// *(dst + off) = src with release semantics (all four sizes).
    public static let storeRelease = AtomicOp(rawValue: 0x110)

    /// Whether the old value is written back to a register.
    public var fetches: Bool { rawValue & 0x01 != 0 }
}

/// The src field of a 16-byte ld_imm64: what the loader must resolve imm into.
public enum PseudoSource: UInt8, Sendable, CaseIterable {
    /// imm64 is a plain constant.
    case none = 0
    /// imm is a map fd: dst = map pointer.
    case mapFD = 1
    /// imm is a map fd, next imm an offset into its value: dst = &value[off].
    case mapValue = 2
    /// imm is a kernel BTF id of a variable: dst = its address.
    case btfID = 3
    /// imm is an instruction offset relative to the next slot: dst = &subprog.
    case function = 4
    /// imm is an index into the fd array: dst = map pointer.
    case mapIndex = 5
    /// imm is an fd-array index, next imm a value offset.
    case mapIndexValue = 6
}

/// The src field of a JMP|CALL: what imm means.
public enum CallKind: UInt8, Sendable, CaseIterable {
    /// imm is a helper id.
    case helper = 0
    /// imm is an instruction offset relative to the next slot (bpf-to-bpf call).
    case pseudo = 1
    /// imm is a kernel BTF id of a kfunc (off: module BTF fd index).
    case kfunc = 2
}
