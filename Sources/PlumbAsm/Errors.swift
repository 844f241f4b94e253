/// Everything that can go wrong in BPFAsm. Indices are instruction slots (8-byte units).
public enum BPFAsmError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The byte count is not a multiple of 8: `trailing` bytes follow the last whole slot.
    case truncated(slot: Int, trailing: Int)
    /// An ld_imm64 in the last slot has no second half.
    case missingSecondHalf(slot: Int)
    /// The second slot of an ld_imm64 has a non-zero opcode, register or offset.
    case malformedSecondHalf(slot: Int)
    /// A jump or call refers to a label that was never bound.
    case unboundLabel(label: String, slot: Int)
    /// A label was bound more than once.
    case labelBoundTwice(label: String, slot: Int)
    /// A label from another builder (or a made-up one) was used.
    case unknownLabel(label: String, slot: Int)
    /// A jump's distance does not fit its offset field.
    case jumpOutOfRange(label: String, slot: Int, distance: Int)

    public var description: String {
        switch self {
        case let .truncated(slot, trailing):
            "instruction \(slot) is truncated: \(trailing) trailing byte(s) after the last whole 8-byte slot; BPF code must be a multiple of 8 bytes"
        case let .missingSecondHalf(slot):
            "instruction \(slot) is a 16-byte ld_imm64 but the code ends after its first half"
        case let .malformedSecondHalf(slot):
            "instruction \(slot) is an ld_imm64 whose second half (slot \(slot + 1)) has a non-zero opcode, register or offset; the kernel rejects it"
        case let .unboundLabel(label, slot):
            "instruction \(slot) refers to label '\(label)', which was never bound; call bind(_:) where it should point"
        case let .labelBoundTwice(label, slot):
            "label '\(label)' bound a second time at instruction \(slot); create a new label instead"
        case let .unknownLabel(label, slot):
            "instruction \(slot) refers to label '\(label)', which this builder did not create"
        case let .jumpOutOfRange(label, slot, distance):
            "instruction \(slot) jumps \(distance) slots to '\(label)', beyond the 16-bit offset range (-32768...32767); restructure the code or use an unconditional jump (emitted as gotol)"
        }
    }
}
