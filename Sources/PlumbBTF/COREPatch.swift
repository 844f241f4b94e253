import PlumbELF

/// What patching one instruction did; mirrors libbpf's debug log lines
/// (`patched insn #M (LDX/ST/STX) off 8 -> 16`, `substituting insn #M w/ invalid insn`).
public enum COREPatch: Sendable, Equatable, CustomStringConvertible {
    /// ALU/ALU64 with an immediate operand: imm old -> new.
    case immediate(old: UInt64, new: UInt64)
    /// LDX/ST/STX: offset old -> new, and the memory size when it changed.
    case offset(old: Int64, new: UInt64, memorySize: (old: UInt32, new: UInt32)?)
    /// ld_imm64: the 64-bit immediate old -> new.
    case immediate64(old: UInt64, new: UInt64)
    /// Replaced by `call 0xbad2310` (both halves of an ld_imm64): the slots poisoned.
    case poisoned(slots: [Int])

    public static func == (a: COREPatch, b: COREPatch) -> Bool {
        switch (a, b) {
        case let (.immediate(o1, n1), .immediate(o2, n2)): return o1 == o2 && n1 == n2
        case let (.immediate64(o1, n1), .immediate64(o2, n2)): return o1 == o2 && n1 == n2
        case let (.offset(o1, n1, m1), .offset(o2, n2, m2)):
            return o1 == o2 && n1 == n2 && m1?.old == m2?.old && m1?.new == m2?.new
        case let (.poisoned(s1), .poisoned(s2)): return s1 == s2
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .immediate(let o, let n): return "(ALU/ALU64) imm \(o) -> \(n)"
        case .offset(let o, let n, let m):
            return "(LDX/ST/STX) off \(o) -> \(n)" + (m.map { ", mem_sz \($0.old) -> \($0.new)" } ?? "")
        case .immediate64(let o, let n): return "(LDIMM64) imm64 \(o) -> \(n)"
        case .poisoned(let s): return "poisoned insn " + s.map { "#\($0)" }.joined(separator: ", ")
        }
    }
}

/// Minimal raw access to 8-byte BPF instructions in either byte order.
struct RawInstruction {
    var code: UInt8
    var dst: UInt8
    var src: UInt8
    var off: Int16
    var imm: Int32

    static let size = 8
    // Instruction classes and fields (include/uapi/linux/bpf_common.h).
    static let LD: UInt8 = 0x00, LDX: UInt8 = 0x01, ST: UInt8 = 0x02, STX: UInt8 = 0x03
    static let ALU: UInt8 = 0x04, JMP: UInt8 = 0x05, ALU64: UInt8 = 0x07
    static let K: UInt8 = 0x00, CALL: UInt8 = 0x80
    static let W: UInt8 = 0x00, H: UInt8 = 0x08, B: UInt8 = 0x10, DW: UInt8 = 0x18
    static let IMM: UInt8 = 0x00
    static let ldImm64: UInt8 = LD | IMM | DW
    /// libbpf's poison: a call to helper 0xbad2310 ("bad relo"), rejected by the verifier if reachable.
    static let poisonHelper: Int32 = 0xbad2310

    var cls: UInt8 { code & 0x07 }
    var sizeField: UInt8 { code & 0x18 }

    static func read(_ bytes: [UInt8], slot: Int, order: ByteOrder) -> RawInstruction? {
        let o = slot * size
        guard slot >= 0, o + size <= bytes.count else { return nil }
        let regs = bytes[o + 1]
        let dst = order == .little ? regs & 0x0f : regs >> 4
        let src = order == .little ? regs >> 4 : regs & 0x0f
        let off16 = order == .little ? UInt16(bytes[o + 2]) | UInt16(bytes[o + 3]) << 8 : UInt16(bytes[o + 2]) << 8 | UInt16(bytes[o + 3])
        var imm32: UInt32 = 0
        for i in 0..<4 {
            let b = UInt32(bytes[o + 4 + i])
            imm32 |= order == .little ? b << (8 * UInt32(i)) : b << (8 * UInt32(3 - i))
        }
        return RawInstruction(code: bytes[o], dst: dst, src: src, off: Int16(bitPattern: off16), imm: Int32(bitPattern: imm32))
    }

    func write(_ bytes: inout [UInt8], slot: Int, order: ByteOrder) {
        let o = slot * RawInstruction.size
        bytes[o] = code
        bytes[o + 1] = order == .little ? (dst & 0x0f) | (src << 4) : (dst << 4) | (src & 0x0f)
        let off16 = UInt16(bitPattern: off)
        let imm32 = UInt32(bitPattern: imm)
        if order == .little {
            bytes[o + 2] = UInt8(off16 & 0xff); bytes[o + 3] = UInt8(off16 >> 8)
            for i in 0..<4 { bytes[o + 4 + i] = UInt8((imm32 >> (8 * UInt32(i))) & 0xff) }
        } else {
            bytes[o + 2] = UInt8(off16 >> 8); bytes[o + 3] = UInt8(off16 & 0xff)
            for i in 0..<4 { bytes[o + 4 + i] = UInt8((imm32 >> (8 * UInt32(3 - i))) & 0xff) }
        }
    }

    static let poison = RawInstruction(code: JMP | CALL, dst: 0, src: 0, off: 0, imm: poisonHelper)

    static func bytes(forSizeField s: UInt8) -> Int {
        switch s { case DW: return 8; case W: return 4; case H: return 2; default: return 1 }
    }
    static func sizeField(forBytes n: UInt32) -> UInt8? {
        switch n { case 8: return DW; case 4: return W; case 2: return H; case 1: return B; default: return nil }
    }
}

extension COREResolver {
    /// Patches the instruction at `slot` (an index into `instructions`, 8 bytes each) with a
    /// solution, as libbpf's bpf_core_patch_insn does: poison, or check the instruction holds
    /// the local value and write the target value (ALU/ALU64 immediate, LDX/ST/STX offset and
    /// load size, ld_imm64 immediate).
    ///
    /// `index` and `context` only label errors.
    @discardableResult
    public static func patch(_ instructions: inout [UInt8], at slot: Int, with s: CORESolution, order: ByteOrder,
                             index: Int = 0, context: String? = nil) throws(COREError) -> COREPatch {
        func fail(_ r: COREReason) -> COREError {
            COREError(relocationIndex: index, instruction: slot, kind: s.kind, spec: s.localSpec, reason: r, context: context)
        }
        guard var insn = RawInstruction.read(instructions, slot: slot, order: order) else {
            throw fail(.instructionOutOfRange(offset: UInt32(clamping: max(0, slot).multipliedReportingOverflow(by: 8).partialValue), count: instructions.count / 8))
        }
        func poison() throws(COREError) -> COREPatch {
            var slots = [slot]
            if insn.code == RawInstruction.ldImm64 {
                guard RawInstruction.read(instructions, slot: slot + 1, order: order) != nil else { throw fail(.malformedLDImm64) }
                RawInstruction.poison.write(&instructions, slot: slot + 1, order: order)
                slots = [slot + 1, slot]
            }
            RawInstruction.poison.write(&instructions, slot: slot, order: order)
            return .poisoned(slots: slots)
        }
        if s.poison { return try poison() }
        let orig = s.localValue, new = s.targetValue
        switch insn.cls {
        case RawInstruction.ALU, RawInstruction.ALU64:
            guard insn.code & 0x08 == RawInstruction.K else { throw fail(.unsupportedInstruction(code: insn.code)) }
            // The 32-bit immediate holds the value sign- or zero-extended (an unsigned 32-bit
            // enumerator 0x80000000 is fine either way).
            let signExtended = UInt64(bitPattern: Int64(insn.imm))
            let zeroExtended = UInt64(UInt32(bitPattern: insn.imm))
            if s.validate && signExtended != orig && zeroExtended != orig {
                throw fail(.unexpectedValue(instructionClass: "ALU/ALU64", got: Int64(insn.imm), expected: orig, new: new))
            }
            let old = UInt64(bitPattern: Int64(insn.imm))
            insn.imm = Int32(truncatingIfNeeded: new)
            insn.write(&instructions, slot: slot, order: order)
            return .immediate(old: old, new: new)
        case RawInstruction.LDX, RawInstruction.ST, RawInstruction.STX:
            if s.validate && UInt64(bitPattern: Int64(insn.off)) != orig {
                throw fail(.unexpectedValue(instructionClass: "LDX/ST/STX", got: Int64(insn.off), expected: orig, new: new))
            }
            guard new <= UInt64(Int16.max) else { throw fail(.offsetTooBig(new)) }
            if s.failMemorySizeAdjust { return try poison() }
            let old = Int64(insn.off)
            insn.off = Int16(new)
            var memorySize: (old: UInt32, new: UInt32)? = nil
            if s.targetSize != s.localSize {
                let have = RawInstruction.bytes(forSizeField: insn.sizeField)
                guard have == Int(s.localSize) else { throw fail(.unexpectedMemorySize(got: have, expected: s.localSize)) }
                guard let field = RawInstruction.sizeField(forBytes: s.targetSize) else { throw fail(.invalidMemorySize(s.targetSize)) }
                insn.code = (insn.code & 0xe0) | field | insn.cls
                memorySize = (s.localSize, s.targetSize)
            }
            insn.write(&instructions, slot: slot, order: order)
            return .offset(old: old, new: new, memorySize: memorySize)
        case RawInstruction.LD:
            guard insn.code == RawInstruction.ldImm64, insn.src == 0, insn.off == 0,
                  var hi = RawInstruction.read(instructions, slot: slot + 1, order: order),
                  hi.code == 0, hi.dst == 0, hi.src == 0, hi.off == 0 else { throw fail(.malformedLDImm64) }
            let imm = UInt64(UInt32(bitPattern: insn.imm)) | UInt64(UInt32(bitPattern: hi.imm)) << 32
            if s.validate && imm != orig {
                throw fail(.unexpectedValue(instructionClass: "LDIMM64", got: Int64(bitPattern: imm), expected: orig, new: new))
            }
            insn.imm = Int32(truncatingIfNeeded: new)
            hi.imm = Int32(truncatingIfNeeded: new >> 32)
            insn.write(&instructions, slot: slot, order: order)
            hi.write(&instructions, slot: slot + 1, order: order)
            return .immediate64(old: imm, new: new)
        default:
            throw fail(.unsupportedInstruction(code: insn.code))
        }
    }

    /// One relocation applied to a section's instructions.
    public struct Applied: Sendable {
        public var index: Int
        public var relocation: CORERelocation
        public var solution: CORESolution
        public var patch: COREPatch
        /// A line for `plumb object dump`: `CO-RE byte_off struct task_struct.pid: 1234 -> 2456`.
        public var summary: String { COREResolver.describe(relocation, solution) }
    }

    /// Resolves and applies every relocation of one section, in order (the order matters: the
    /// candidate cache is pruned as relocations match, as in libbpf). Stops at the first error.
    public mutating func relocate(_ instructions: inout [UInt8], relocations: [CORERelocation], context: String? = nil) throws(COREError) -> [Applied] {
        var out: [Applied] = []
        for (i, r) in relocations.enumerated() {
            guard r.insnOffset % 8 == 0, Int(r.insnOffset / 8) < instructions.count / 8 else {
                throw COREError(relocationIndex: i, instruction: nil, kind: r.kind, spec: "[\(r.typeID)] + \(r.accessString)",
                                reason: .instructionOutOfRange(offset: r.insnOffset, count: instructions.count / 8), context: context)
            }
            let s = try solve(r, index: i, context: context)
            let p = try COREResolver.patch(&instructions, at: r.instructionIndex, with: s, order: order, index: i, context: context)
            out.append(Applied(index: i, relocation: r, solution: s, patch: p))
        }
        return out
    }

    /// A human-readable account of one relocation's outcome, for object dumps:
    /// `CO-RE byte_off struct task_struct.pid: 1234 -> 2456` or
    /// `CO-RE byte_off struct task_struct.nope: poisoned: field task_struct.nope not found in target`.
    public static func describe(_ r: CORERelocation, _ s: CORESolution) -> String {
        // The spec minus its "[id] " prefix and " (0:1 @ offset n)" suffix.
        var what = s.localSpec
        if let close = what.firstIndex(of: "]") { what = String(what[what.index(after: close)...]).trimmingCharacters(inSpaceSet: true) }
        if r.kind.isFieldBased, let paren = what.range(of: " (", options: .backwards) { what = String(what[..<paren.lowerBound]) }
        let head = "CO-RE \(r.kind.name) \(what)"
        if s.poison {
            let bare = what.split(separator: " ", maxSplits: 1).last.map(String.init) ?? what
            let noun = r.kind.isEnumValueBased ? "enumerator" : r.kind.isFieldBased ? "field" : "type"
            return "\(head): poisoned: \(noun) \(bare) not found in target"
        }
        if s.failMemorySizeAdjust {
            return "\(head): poisoned: the field's size changed from \(s.localSize) to \(s.targetSize) bytes and it is not an unsigned integer or a pointer, so a resized load would misread it"
        }
        if r.kind == .fieldExists || r.kind == .typeExists || r.kind == .enumValueExists || r.kind == .typeMatches {
            return "\(head): \(s.targetValue == 1 ? "yes" : "no") in target"
        }
        return "\(head): \(s.localValue) -> \(s.targetValue)"
    }
}

extension String {
    fileprivate func trimmingCharacters(inSpaceSet: Bool) -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
    fileprivate func range(of needle: String, options: BackwardsOption) -> Range<String.Index>? {
        var i = endIndex
        while i > startIndex {
            i = index(before: i)
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
        }
        return nil
    }
    fileprivate enum BackwardsOption { case backwards }
}
