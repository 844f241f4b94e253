@_exported import enum PlumbELF.ByteOrder
// Byte encoding. A slot is: opcode, registers, off (16 bits), imm (32 bits). In
// little-endian code the register byte is src<<4 | dst; big-endian objects swap the
// nibbles (dst in the high nibble) along with off and imm.

extension Instruction {
    /// Size of one slot in bytes.
    public static let slotSize = 8

    /// Decodes a whole program. Throws on a partial trailing slot or a broken ld_imm64;
    /// never traps on bad input.
    public static func decode(_ bytes: [UInt8], byteOrder: ByteOrder = .little) throws(BPFAsmError) -> [Instruction] {
        try decode(bytes.span.bytes, byteOrder: byteOrder)
    }

    /// Decodes a whole program from a span (no copy of the bytes).
    public static func decode(_ bytes: Span<UInt8>, byteOrder: ByteOrder = .little) throws(BPFAsmError) -> [Instruction] {
        try decode(bytes.bytes, byteOrder: byteOrder)
    }

    /// Decodes a whole program from raw bytes in place, e.g. a section of an mmapped file.
    public static func decode(_ bytes: RawSpan, byteOrder: ByteOrder = .little) throws(BPFAsmError) -> [Instruction] {
        let slots = bytes.byteCount / slotSize
        var out: [Instruction] = []
        out.reserveCapacity(slots)
        var slot = 0
        while slot < slots {
            let base = slot * slotSize
            var insn = decodeSlot(bytes, at: base, byteOrder)
            if insn.isWide {
                guard slot + 1 < slots else {
                    // Either the file ends here or only a fragment of the second half exists.
                    if bytes.byteCount % slotSize != 0 { throw .truncated(slot: slot + 1, trailing: bytes.byteCount % slotSize) }
                    throw .missingSecondHalf(slot: slot)
                }
                let second = decodeSlot(bytes, at: base + slotSize, byteOrder)
                guard second.opcode == 0, second.dst.rawValue == 0, second.src.rawValue == 0, second.offset == 0 else {
                    throw .malformedSecondHalf(slot: slot)
                }
                insn.imm2 = second.imm
                slot += 2
            } else {
                slot += 1
            }
            out.append(insn)
        }
        if bytes.byteCount % slotSize != 0 {
            throw .truncated(slot: slots, trailing: bytes.byteCount % slotSize)
        }
        return out
    }

    /// Decodes one slot at `base`; callers ensure 8 bytes are there (RawSpan checks bounds anyway).
    private static func decodeSlot(_ raw: RawSpan, at base: Int, _ order: ByteOrder) -> Instruction {
        // Byte loads need no alignment and every bit pattern is a valid UInt8.
        func b(_ i: Int) -> UInt8 { raw.unsafeLoad(fromByteOffset: i, as: UInt8.self) }
        let regs = b(base + 1)
        let lo = regs & 0x0f, hi = regs >> 4
        let off: UInt16
        let imm: UInt32
        switch order {
        case .little:
            off = UInt16(b(base + 2)) | UInt16(b(base + 3)) << 8
            imm = UInt32(b(base + 4)) | UInt32(b(base + 5)) << 8 | UInt32(b(base + 6)) << 16 | UInt32(b(base + 7)) << 24
        case .big:
            off = UInt16(b(base + 2)) << 8 | UInt16(b(base + 3))
            imm = UInt32(b(base + 4)) << 24 | UInt32(b(base + 5)) << 16 | UInt32(b(base + 6)) << 8 | UInt32(b(base + 7))
        }
        return Instruction(
            opcode: b(base),
            dst: Register(nibble: order == .little ? lo : hi),
            src: Register(nibble: order == .little ? hi : lo),
            offset: Int16(bitPattern: off),
            imm: Int32(bitPattern: imm))
    }

    /// Appends this instruction's 8 or 16 bytes.
    public func encode(into out: inout [UInt8], byteOrder: ByteOrder = .little) {
        Instruction.appendSlot(&out, opcode: opcode, dst: dst.rawValue, src: src.rawValue, offset: offset, imm: imm, byteOrder)
        if isWide {
            Instruction.appendSlot(&out, opcode: 0, dst: 0, src: 0, offset: 0, imm: imm2, byteOrder)
        }
    }

    /// This instruction's 8 or 16 bytes.
    public func encoded(byteOrder: ByteOrder = .little) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(slotCount * Instruction.slotSize)
        encode(into: &out, byteOrder: byteOrder)
        return out
    }

    /// Encodes a program.
    public static func encode(_ program: [Instruction], byteOrder: ByteOrder = .little) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(program.count * 2 * slotSize)
        for insn in program { insn.encode(into: &out, byteOrder: byteOrder) }
        return out
    }

    private static func appendSlot(_ out: inout [UInt8], opcode: UInt8, dst: UInt8, src: UInt8, offset: Int16, imm: Int32, _ order: ByteOrder) {
        let off = UInt16(bitPattern: offset), k = UInt32(bitPattern: imm)
        out.append(opcode)
        switch order {
        case .little:
            out.append(src << 4 | dst)
            out.append(UInt8(truncatingIfNeeded: off))
            out.append(UInt8(truncatingIfNeeded: off >> 8))
            out.append(UInt8(truncatingIfNeeded: k))
            out.append(UInt8(truncatingIfNeeded: k >> 8))
            out.append(UInt8(truncatingIfNeeded: k >> 16))
            out.append(UInt8(truncatingIfNeeded: k >> 24))
        case .big:
            out.append(dst << 4 | src)
            out.append(UInt8(truncatingIfNeeded: off >> 8))
            out.append(UInt8(truncatingIfNeeded: off))
            out.append(UInt8(truncatingIfNeeded: k >> 24))
            out.append(UInt8(truncatingIfNeeded: k >> 16))
            out.append(UInt8(truncatingIfNeeded: k >> 8))
            out.append(UInt8(truncatingIfNeeded: k))
        }
    }
}

extension Array where Element == Instruction {
    /// Total size in slots (ld_imm64 counts two).
    public var slotCount: Int { reduce(0) { $0 + $1.slotCount } }

    /// The slot index at which each instruction starts.
    public var slotIndices: [Int] {
        var result: [Int] = []
        result.reserveCapacity(count)
        var slot = 0
        for insn in self {
            result.append(slot)
            slot += insn.slotCount
        }
        return result
    }
}
