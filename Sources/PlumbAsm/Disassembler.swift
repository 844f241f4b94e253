// Prints instructions in the syntax of llvm-objdump (LLVM 21) for BPF: hexadecimal
// immediates and offsets, `w` registers for 32-bit operations, and `<sym+0xN>` branch
// target annotations when symbols are known.
//
// Encodings the kernel's instruction-set spec rejects (non-zero reserved fields, unassigned
// operations, registers above r10) print as `<unknown>`. LLVM ignores a few reserved fields
// (e.g. src of `exit`), so on such invalid input the two may differ.

public struct Disassembler: Sendable {
    /// A symbol of the code section, for branch target annotations.
    public struct Symbol: Sendable, Hashable {
        public var name: String
        /// Byte offset within the section.
        public var address: UInt64
        public init(name: String, address: UInt64) {
            self.name = name
            self.address = address
        }
    }

    /// Print 32-bit loads, stores and atomics with `w` registers, as llvm-objdump does by
    /// default (and for -mcpu=v3/v4). False mimics `--mcpu=v1`/`v2`.
    public var alu32: Bool
    /// Symbols in address order; empty means no `<...>` annotations.
    public private(set) var symbols: [Symbol]

    public init(alu32: Bool = true, symbols: [Symbol] = []) {
        self.alu32 = alu32
        // Stable order so that, among symbols at one address, the last given wins.
        self.symbols = symbols.enumerated().sorted { ($0.element.address, $0.offset) < ($1.element.address, $1.offset) }.map(\.element)
    }

    /// The instruction text llvm-objdump prints, e.g. `if r1 == 0x0 goto +0x3 <f+0x28>`.
    /// `slot` is the instruction's slot index, needed for branch annotations.
    public func text(_ insn: Instruction, slot: Int = 0) -> String {
        guard var s = body(insn) else { return "<unknown>" }
        if let off = insn.branchOffset, insn.callKind == nil, let ann = annotation(slot: slot, offset: off) {
            s += " <\(ann)>"
        }
        return s
    }

    /// One line in llvm-objdump's layout: right-aligned slot number, raw bytes, text.
    public func line(_ insn: Instruction, slot: Int, byteOrder: ByteOrder = .little) -> String {
        let number = String(slot)
        let pad = String(repeating: " ", count: max(0, 8 - number.count))
        let bytes = insn.encoded(byteOrder: byteOrder).map(Disassembler.hexByte).joined(separator: " ")
        return "\(pad)\(number):\t\(bytes)\t\(text(insn, slot: slot))"
    }

    /// Lines for a whole program starting at `firstSlot`.
    public func lines(_ program: [Instruction], byteOrder: ByteOrder = .little, firstSlot: Int = 0) -> [String] {
        var slot = firstSlot
        var out: [String] = []
        out.reserveCapacity(program.count)
        for insn in program {
            out.append(line(insn, slot: slot, byteOrder: byteOrder))
            slot += insn.slotCount
        }
        return out
    }

    /// Decodes and prints raw code bytes, one objdump-style line per instruction.
    public func lines(bytes: [UInt8], byteOrder: ByteOrder = .little) throws(BPFAsmError) -> [String] {
        lines(try Instruction.decode(bytes, byteOrder: byteOrder), byteOrder: byteOrder)
    }

    // MARK: - Annotation

    private func annotation(slot: Int, offset: Int) -> String? {
        guard !symbols.isEmpty else { return nil }
        // objdump computes the target address in 64-bit unsigned arithmetic; backward jumps
        // before the section start wrap around.
        let target = UInt64(bitPattern: (Int64(slot) + 1 + Int64(offset)) &* 8)
        var lo = 0, hi = symbols.count
        while lo < hi {  // first symbol with address > target
            let mid = (lo + hi) / 2
            if symbols[mid].address <= target { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let sym = symbols[lo - 1]
        let delta = target &- sym.address
        return delta == 0 ? sym.name : "\(sym.name)+0x\(String(delta, radix: 16))"
    }

    // MARK: - Text

    static func hexByte(_ b: UInt8) -> String {
        b < 16 ? "0" + String(b, radix: 16) : String(b, radix: 16)
    }

    /// Signed hexadecimal as LLVM prints immediates: `0x10`, `-0x1`.
    static func hex(_ v: Int64) -> String {
        v < 0 ? "-0x" + String(v.magnitude, radix: 16) : "0x" + String(v, radix: 16)
    }

    static func jumpOffset(_ v: Int) -> String {
        v < 0 ? "-0x" + String(v.magnitude, radix: 16) : "+0x" + String(v, radix: 16)
    }

    static func memory(_ base: Register, _ off: Int16) -> String {
        off < 0 ? "\(base) - 0x\(String(off.magnitude, radix: 16))" : "\(base) + 0x\(String(off, radix: 16))"
    }

    static func sizeName(_ size: Size) -> String {
        "u\(size.bytes * 8)"
    }

    private func body(_ i: Instruction) -> String? {
        switch i.instructionClass {
        case .alu, .alu64: alu(i)
        case .jmp, .jmp32: jump(i)
        case .ld: ld(i)
        case .ldx: ldx(i)
        case .st: st(i)
        case .stx: stx(i)
        }
    }

    private func alu(_ i: Instruction) -> String? {
        guard let op = i.aluOp, let source = i.operandSource, i.dst.isValid, i.src.isValid else { return nil }
        let wide = i.instructionClass == .alu64
        let p = wide ? "r" : "w"
        let d = "\(p)\(i.dst.rawValue)", s = "\(p)\(i.src.rawValue)"
        // The second operand; nil when the unused field is not zero.
        let operand: String? = switch source {
        case .x: i.imm == 0 ? s : nil
        case .k: i.src.rawValue == 0 ? Disassembler.hex(Int64(i.imm)) : nil
        }
        switch op {
        case .neg:
            guard source == .k, i.src.rawValue == 0, i.imm == 0, i.offset == 0 else { return nil }
            return "\(d) = -\(d)"
        case .end:
            guard i.src.rawValue == 0, i.offset == 0, [16, 32, 64].contains(i.imm) else { return nil }
            let r = "r\(i.dst.rawValue)"
            if wide {
                return source == .k ? "\(r) = bswap\(i.imm) \(r)" : nil
            }
            return "\(r) = \(source == .x ? "be" : "le")\(i.imm) \(r)"
        case .mov:
            if source == .x, wide, i.offset == 1 {
                let imm = UInt32(bitPattern: i.imm)
                return "\(d) = addr_space_cast(\(s), 0x\(String(imm >> 16, radix: 16)), 0x\(String(imm & 0xffff, radix: 16)))"
            }
            guard let operand else { return nil }
            switch (source, i.offset) {
            case (_, 0): return "\(d) = \(operand)"
            case (.x, 8), (.x, 16): return "\(d) = (s\(i.offset))\(s)"
            case (.x, 32) where wide: return "\(d) = (s32)\(s)"
            default: return nil
            }
        case .div, .mod:
            guard let operand, i.offset == 0 || i.offset == 1 else { return nil }
            let sign = i.offset == 1 ? "s" : ""
            return "\(d) \(sign)\(op == .div ? "/" : "%")= \(operand)"
        default:
            guard let operand, i.offset == 0 else { return nil }
            let sym: String = switch op {
            case .add: "+="
            case .sub: "-="
            case .mul: "*="
            case .or: "|="
            case .and: "&="
            case .lsh: "<<="
            case .rsh: ">>="
            case .xor: "^="
            case .arsh: "s>>="
            default: ""  // handled above
            }
            return "\(d) \(sym) \(operand)"
        }
    }

    private func jump(_ i: Instruction) -> String? {
        guard let op = i.jumpOp, let source = i.operandSource, i.dst.isValid, i.src.isValid else { return nil }
        let wide = i.instructionClass == .jmp
        let zeroRegs = i.dst.rawValue == 0 && i.src.rawValue == 0
        switch op {
        case .ja:
            guard source == .k, zeroRegs else { return nil }
            if wide {
                return i.imm == 0 ? "goto \(Disassembler.jumpOffset(Int(i.offset)))" : nil
            }
            return i.offset == 0 ? "gotol \(Disassembler.jumpOffset(Int(i.imm)))" : nil
        case .call:
            guard wide else { return nil }
            if source == .x {
                guard i.src.rawValue == 0, i.offset == 0, i.imm == 0 else { return nil }
                return "callx \(i.dst)"
            }
            guard i.dst.rawValue == 0, let kind = i.callKind, kind == .kfunc || i.offset == 0 else { return nil }
            return "call \(Disassembler.hex(Int64(i.imm)))"
        case .exit:
            guard wide, source == .k, zeroRegs, i.offset == 0, i.imm == 0 else { return nil }
            return "exit"
        case .jcond:
            guard wide, source == .k, zeroRegs, i.imm == 0 else { return nil }
            return "may_goto \(Disassembler.jumpOffset(Int(i.offset)))"
        default:
            let p = wide ? "r" : "w"
            let rhs: String
            switch source {
            case .x:
                guard i.imm == 0 else { return nil }
                rhs = "\(p)\(i.src.rawValue)"
            case .k:
                guard i.src.rawValue == 0 else { return nil }
                rhs = Disassembler.hex(Int64(i.imm))
            }
            let cmp: String = switch op {
            case .jeq: "=="
            case .jgt: ">"
            case .jge: ">="
            case .jset: "&"
            case .jne: "!="
            case .jsgt: "s>"
            case .jsge: "s>="
            case .jlt: "<"
            case .jle: "<="
            case .jslt: "s<"
            case .jsle: "s<="
            default: "?"  // unreachable: other ops handled above
            }
            return "if \(p)\(i.dst.rawValue) \(cmp) \(rhs) goto \(Disassembler.jumpOffset(Int(i.offset)))"
        }
    }

    private func ld(_ i: Instruction) -> String? {
        guard let size = i.size, let mode = i.mode, i.dst.isValid, i.src.isValid else { return nil }
        switch mode {
        case .imm:
            guard size == .doubleWord, i.offset == 0 else { return nil }
            if i.src.rawValue == 0 {
                return "\(i.dst) = \(Disassembler.hex(i.imm64)) ll"
            }
            return "ld_pseudo\t\(i.dst), 0x\(String(i.src.rawValue, radix: 16)), \(Disassembler.hex(Int64(i.imm)))"
        case .abs:
            guard size != .doubleWord, i.dst.rawValue == 0, i.src.rawValue == 0, i.offset == 0 else { return nil }
            return "r0 = *(\(Disassembler.sizeName(size)) *)skb[\(Disassembler.hex(Int64(i.imm)))]"
        case .ind:
            guard size != .doubleWord, i.dst.rawValue == 0, i.offset == 0, i.imm == 0 else { return nil }
            return "r0 = *(\(Disassembler.sizeName(size)) *)skb[\(i.src)]"
        default:
            return nil
        }
    }

    /// `w` for sub-64-bit register operands of loads, stores and atomics.
    private func valuePrefix(_ size: Size) -> String {
        alu32 && size != .doubleWord ? "w" : "r"
    }

    private func ldx(_ i: Instruction) -> String? {
        guard let size = i.size, let mode = i.mode, i.dst.isValid, i.src.isValid, i.imm == 0 else { return nil }
        let addr = Disassembler.memory(i.src, i.offset)
        switch mode {
        case .mem:
            return "\(valuePrefix(size))\(i.dst.rawValue) = *(\(Disassembler.sizeName(size)) *)(\(addr))"
        case .memsx where size != .doubleWord:
            return "\(i.dst) = *(s\(size.bytes * 8) *)(\(addr))"
        default:
            return nil
        }
    }

    private func st(_ i: Instruction) -> String? {
        guard let size = i.size, i.mode == .mem, i.dst.isValid, i.src.rawValue == 0 else { return nil }
        return "*(\(Disassembler.sizeName(size)) *)(\(Disassembler.memory(i.dst, i.offset))) = \(Disassembler.hex(Int64(i.imm)))"
    }

    private func stx(_ i: Instruction) -> String? {
        guard let size = i.size, let mode = i.mode, i.dst.isValid, i.src.isValid else { return nil }
        let type = Disassembler.sizeName(size)
        let addr = Disassembler.memory(i.dst, i.offset)
        let p = valuePrefix(size)
        let s = "\(p)\(i.src.rawValue)"
        switch mode {
        case .mem:
            guard i.imm == 0 else { return nil }
            return "*(\(type) *)(\(addr)) = \(s)"
        case .atomic:
            let op = AtomicOp(rawValue: i.imm)
            if !alu32 && size != .doubleWord {
                // Without alu32 LLVM decodes only a 32-bit add and reads the add, fetch_add and
                // load_acquire encodings all as that add; everything narrower is unknown.
                let addLike: Set<AtomicOp> = [.add, .fetchAdd, .loadAcquire]
                return size == .word && addLike.contains(op) ? "lock *(\(type) *)(\(addr)) += \(s)" : nil
            }
            switch op {
            case .loadAcquire:
                return "\(p)\(i.dst.rawValue) = load_acquire((\(type) *)(\(Disassembler.memory(i.src, i.offset))))"
            case .storeRelease:
                return "store_release((\(type) *)(\(addr)), \(s))"
            default:
                break
            }
            guard size == .word || size == .doubleWord else { return nil }
            switch op {
            case .add, .or, .and, .xor:
                let sym = op == .add ? "+" : op == .or ? "|" : op == .and ? "&" : "^"
                return "lock *(\(type) *)(\(addr)) \(sym)= \(s)"
            case .fetchAdd, .fetchOr, .fetchAnd, .fetchXor:
                let name = op == .fetchAdd ? "add" : op == .fetchOr ? "or" : op == .fetchAnd ? "and" : "xor"
                return "\(s) = atomic_fetch_\(name)((\(type) *)(\(addr)), \(s))"
            case .xchg:
                return "\(s) = \(size == .word ? "xchg32_32" : "xchg_64")(\(addr), \(s))"
            case .cmpxchg:
                return "\(p)0 = \(size == .word ? "cmpxchg32_32" : "cmpxchg_64")(\(addr), \(p)0, \(s))"
            default:
                return nil
            }
        default:
            return nil
        }
    }
}

extension Instruction: CustomStringConvertible {
    /// llvm-objdump's text for this instruction, without branch annotations.
    public var description: String { Disassembler().text(self) }
}
