// Code generation: append instructions, refer to positions by label, and let
// finish() turn labels into slot offsets (counting two slots per ld_imm64).

/// A position in a program under construction. Create with `ProgramBuilder.newLabel`.
public struct Label: Hashable, Sendable {
    let id: Int
}

public struct ProgramBuilder: Sendable {
    private enum FixupKind: Sendable {
        /// 16-bit offset field of a conditional jump or may_goto.
        case offset
        /// Unconditional `goto`: 16-bit offset, or `gotol` when out of range.
        case ja
        /// 32-bit imm (gotol, pseudo call, ld_imm64 of a function address).
        case imm
    }

    private struct Fixup: Sendable {
        var index: Int  // into `instructions`
        var slot: Int
        var label: Label
        var kind: FixupKind
    }

    private var instructions: [Instruction] = []
    private var labelNames: [String] = []
    private var labelSlots: [Int?] = []
    private var fixups: [Fixup] = []
    private var errors: [BPFAsmError] = []
    /// The slot the next emitted instruction will occupy.
    public private(set) var slotCount = 0

    public init() {}

    /// The instructions emitted so far (labels not yet resolved).
    public var pending: [Instruction] { instructions }

    /// A new, unbound label. The name appears in error messages.
    public mutating func newLabel(_ name: String? = nil) -> Label {
        let label = Label(id: labelNames.count)
        labelNames.append(name ?? "L\(label.id)")
        labelSlots.append(nil)
        return label
    }

    /// Makes `label` point at the next instruction emitted.
    public mutating func bind(_ label: Label) {
        guard labelSlots.indices.contains(label.id) else {
            errors.append(.unknownLabel(label: "L\(label.id)", slot: slotCount))
            return
        }
        if labelSlots[label.id] != nil {
            errors.append(.labelBoundTwice(label: labelNames[label.id], slot: slotCount))
            return
        }
        labelSlots[label.id] = slotCount
    }

    /// Creates a label bound at the current position.
    public mutating func here(_ name: String? = nil) -> Label {
        let label = newLabel(name)
        bind(label)
        return label
    }

    public mutating func emit(_ instruction: Instruction) {
        instructions.append(instruction)
        slotCount += instruction.slotCount
    }

    public mutating func emit(_ list: some Sequence<Instruction>) {
        for instruction in list { emit(instruction) }
    }

    private mutating func emit(_ instruction: Instruction, to label: Label, _ kind: FixupKind) {
        fixups.append(Fixup(index: instructions.count, slot: slotCount, label: label, kind: kind))
        emit(instruction)
    }

    /// if dst op imm goto label (64-bit compare).
    public mutating func jump(_ op: JumpOp, _ dst: Register, imm: Int32, to label: Label) {
        emit(.jump(op, dst, imm: imm, offset: 0), to: label, .offset)
    }
    /// if dst op src goto label (64-bit compare).
    public mutating func jump(_ op: JumpOp, _ dst: Register, _ src: Register, to label: Label) {
        emit(.jump(op, dst, src, offset: 0), to: label, .offset)
    }
    /// if wdst op imm goto label (32-bit compare).
    public mutating func jump32(_ op: JumpOp, _ dst: Register, imm: Int32, to label: Label) {
        emit(.jump32(op, dst, imm: imm, offset: 0), to: label, .offset)
    }
    /// if wdst op wsrc goto label (32-bit compare).
    public mutating func jump32(_ op: JumpOp, _ dst: Register, _ src: Register, to label: Label) {
        emit(.jump32(op, dst, src, offset: 0), to: label, .offset)
    }
    /// goto label; emitted as `gotol` if the distance does not fit 16 bits.
    public mutating func goto(_ label: Label) {
        emit(.ja(0), to: label, .ja)
    }
    /// gotol label (32-bit distance; needs a v4-capable kernel).
    public mutating func gotol(_ label: Label) {
        emit(.gotol(0), to: label, .imm)
    }
    /// may_goto label.
    public mutating func mayGoto(_ label: Label) {
        emit(.mayGoto(0), to: label, .offset)
    }
    /// bpf-to-bpf call of the subprogram starting at label.
    public mutating func call(_ label: Label) {
        emit(.callPseudo(0), to: label, .imm)
    }
    /// dst = address of the subprogram at label (ld_imm64, BPF_PSEUDO_FUNC).
    public mutating func loadFunction(_ dst: Register, _ label: Label) {
        emit(.loadFunction(dst, offset: 0), to: label, .imm)
    }

    /// The program with every label resolved. Throws for unbound labels, labels bound
    /// twice or unknown, and conditional jumps farther than a 16-bit offset reaches.
    public func finish() throws(BPFAsmError) -> [Instruction] {
        if let first = errors.first { throw first }
        var out = instructions
        for fixup in fixups {
            guard labelSlots.indices.contains(fixup.label.id) else {
                throw .unknownLabel(label: "L\(fixup.label.id)", slot: fixup.slot)
            }
            let name = labelNames[fixup.label.id]
            guard let target = labelSlots[fixup.label.id] else {
                throw .unboundLabel(label: name, slot: fixup.slot)
            }
            // Offsets count from the slot after the instruction's first slot.
            let distance = target - (fixup.slot + 1)
            switch fixup.kind {
            case .offset:
                guard let off = Int16(exactly: distance) else {
                    throw .jumpOutOfRange(label: name, slot: fixup.slot, distance: distance)
                }
                out[fixup.index].offset = off
            case .ja:
                if let off = Int16(exactly: distance) {
                    out[fixup.index].offset = off
                } else if let imm = Int32(exactly: distance) {
                    out[fixup.index] = .gotol(imm)
                } else {
                    throw .jumpOutOfRange(label: name, slot: fixup.slot, distance: distance)
                }
            case .imm:
                guard let imm = Int32(exactly: distance) else {
                    throw .jumpOutOfRange(label: name, slot: fixup.slot, distance: distance)
                }
                out[fixup.index].imm = imm
            }
        }
        return out
    }
}
