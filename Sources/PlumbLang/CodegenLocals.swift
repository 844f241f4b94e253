// Code for a statement probe's `$local` (SemaLocals.swift): a `DWARFPlace` compiled to BPF.
// Registers are read from pt_regs (r6), memory with bpf_probe_read_user, computed values
// (DW_OP_stack_value) evaluated in registers with stack slots for intermediates, link-time
// addresses relocated by pt_regs->ip minus the site's address (PIE and libraries). A variable
// in memory stays addressable (`$req->id`, `$pt.x`, `str($name)`); one assembled from pieces
// is built in a stack buffer first and read from there.
import PlumbAsm
import PlumbDWARF

extension Compiler {
    /// DWARF register numbers 0-15, and 16 (the return address column, the pc), as pt_regs offsets.
    static func ptRegsOffset(dwarfRegister r: Int) -> Int16? {
        if r >= 0, r < dwarfRegisterOffsets.count { return dwarfRegisterOffsets[r] }
        return r == 16 ? PtRegs.ip : nil
    }

    static func registerName(_ r: Int) -> String {
        let names = ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp"]
        if r >= 0, r < names.count { return names[r] }
        if r >= 8, r <= 15 { return "r\(r)" }
        if r >= 17, r <= 32 { return "xmm\(r - 17)" }
        return "DWARF register \(r)"
    }

    func loadLocal(_ place: DWARFPlace, type: SType, name: String, site: StatementProbes.Site, _ e: Expr) -> Val {
        let what = "'$\(name)' at \(site.position)"
        let readable = type.isScalar || { if case .record = type { return true }; if case .array = type { return true }; return false }()
        guard readable, type.size > 0 else {
            error("\(what) has type '\(type)', which a probe cannot read (only integers, pointers, structs and arrays)", e.range)
            return .poison
        }
        var budget = 256
        switch place {
        case .memory(let address):
            guard emitDWARFValue(address, site: site, budget: &budget, what: what, e) else { return .poison }
            let base = result(.u64, from: .r0)
            return access(type, base: base.loc, offset: 0, space: .user, e)
        case .register(let r) where type.isScalar:
            guard let off = registerOffset(r, what: what, e) else { return .poison }
            b.emit(.load(.r0, .r6, offset: off, size: .doubleWord))
            convert(.r0, to: type)
            return result(type, from: .r0)
        case .value(let v) where type.isScalar:
            guard emitDWARFValue(v, site: site, budget: &budget, what: what, e) else { return .poison }
            convert(.r0, to: type)
            return result(type, from: .r0)
        case .implicit(let bytes) where type.isScalar:
            var v: UInt64 = 0
            for (i, byte) in bytes.prefix(8).enumerated() { v |= UInt64(byte) << (8 * UInt64(i)) }
            b.emit(.loadImm64(.r0, Int64(bitPattern: v)))
            convert(.r0, to: type)
            return result(type, from: .r0)
        default:
            // Pieces, or a small struct in a register or computed: assemble its bytes on the BPF stack.
            let parts: [(size: Int, place: DWARFPlace?)]
            if case .pieces(let p) = place { parts = p } else { parts = [(min(8, type.size), place)] }
            let size = type.size
            guard size <= 256 else {
                error("\(what) is a \(size)-byte value assembled from parts; only up to 256 bytes are supported", e.range)
                return .poison
            }
            let slot = frame.allocate((size + 7) / 8 * 8)
            zero(slot: slot, size: (size + 7) / 8 * 8)
            var offset = 0
            var missing = false
            for part in parts {
                defer { offset += part.size }
                guard offset < size else { break }
                let n = min(part.size, size - offset)
                guard let p = part.place else { missing = true; continue }
                guard storePiece(p, size: n, slot: slot + offset, site: site, budget: &budget, what: what, e) else { return .poison }
            }
            if missing {
                warning("part of \(what) is optimized out there; those bytes read as 0", e.range)
            }
            if type.isScalar {
                let sz = Size(bytes: max(1, min(8, size))) ?? .doubleWord
                b.emit(.load(.r0, .r10, offset: Int16(clamping: slot), size: sz))
                convert(.r0, to: type)
                return result(type, from: .r0)
            }
            // A struct on the BPF stack: read as kernel memory (its pointer members still point into the process).
            address(ofSlot: slot, into: .r0)
            let base = result(.u64, from: .r0)
            return Val(type: type, loc: .memory(base.loc, offset: 0, space: .kernel))
        }
    }

    private func registerOffset(_ r: Int, what: String, _ e: Expr) -> Int16? {
        guard let off = Compiler.ptRegsOffset(dwarfRegister: r) else {
            error("\(what) is in \(Compiler.registerName(r)), which a uprobe cannot read (pt_regs holds only the general-purpose registers)", e.range)
            return nil
        }
        return off
    }

    /// Writes `size` bytes of one piece at the stack slot offset `slot`.
    private func storePiece(_ p: DWARFPlace, size: Int, slot: Int, site: StatementProbes.Site, budget: inout Int, what: String, _ e: Expr) -> Bool {
        switch p {
        case .memory(let address):
            guard emitDWARFValue(address, site: site, budget: &budget, what: what, e) else { return false }
            read(into: slot, size: size, base: .reg(.r0), offset: 0, space: .user)
            return true
        case .register(let r):
            guard let off = registerOffset(r, what: what, e) else { return false }
            b.emit(.load(.r0, .r6, offset: off, size: .doubleWord))
        case .value(let v):
            guard emitDWARFValue(v, site: site, budget: &budget, what: what, e) else { return false }
        case .implicit(let bytes):
            for (i, byte) in bytes.prefix(size).enumerated() {
                b.emit(.store(.r10, offset: Int16(clamping: slot + i), imm: Int32(byte), size: .byte))
            }
            return true
        case .pieces:
            error("\(what) has nested pieces, which are not supported", e.range)
            return false
        }
        // A register or value: its low `size` bytes, little-endian, a byte at a time (sizes need not be 1, 2, 4 or 8).
        for i in 0..<min(size, 8) {
            b.emit(.store(.r10, offset: Int16(clamping: slot + i), .r0, size: .byte))
            if i + 1 < min(size, 8) { b.emit(.rsh64(.r0, 8)) }
        }
        return true
    }

    /// Emits code leaving the value of `v` in r0 (clobbers r0-r5; intermediates in stack slots).
    func emitDWARFValue(_ v: DWARFValue, site: StatementProbes.Site, budget: inout Int, what: String, _ e: Expr) -> Bool {
        budget -= 1
        guard budget >= 0 else {
            error("\(what) is described by a location expression too large to compile", e.range)
            return false
        }
        switch v {
        case .constant(let c):
            if let i = Int32(exactly: c) { b.emit(.mov64(.r0, i)) } else { b.emit(.loadImm64(.r0, c)) }
        case .register(let r):
            guard let off = registerOffset(r, what: what, e) else { return false }
            b.emit(.load(.r0, .r6, offset: off, size: .doubleWord))
        case .linkAddress(let a):
            if site.isExecutable {
                b.emit(.loadImm64(.r0, Int64(bitPattern: a)))
            } else {
                // The load bias is pt_regs->ip minus the probed address: right in any process mapping the binary.
                b.emit(.load(.r0, .r6, offset: PtRegs.ip, size: .doubleWord))
                b.emit(.loadImm64(.r1, Int64(bitPattern: a &- site.address)))
                b.emit(.add64(.r0, .r1))
            }
        case .load(let address, let size):
            guard emitDWARFValue(address, site: site, budget: &budget, what: what, e) else { return false }
            let s = frame.allocate(8)
            b.emit(.store(.r10, offset: Int16(clamping: s), imm: 0, size: .doubleWord))
            read(into: s, size: size, base: .reg(.r0), offset: 0, space: .user)
            // 3, 5, 6 or 7 bytes: the slot was zeroed, so its doubleword holds just the bytes copied.
            b.emit(.load(.r0, .r10, offset: Int16(clamping: s), size: Size(bytes: size) ?? .doubleWord))
        case .convert(let x, let size, let signed):
            guard emitDWARFValue(x, site: site, budget: &budget, what: what, e) else { return false }
            convert(.r0, to: .int(size: size, signed: signed))
        case .unary(let op, let x):
            guard emitDWARFValue(x, site: site, budget: &budget, what: what, e) else { return false }
            switch op {
            case .neg: b.emit(.neg64(.r0))
            case .not: b.emit(.alu64(.xor, .r0, -1))
            case .abs:
                let done = b.newLabel()
                b.jump(.jsge, .r0, imm: 0, to: done)
                b.emit(.neg64(.r0))
                b.bind(done)
            }
        case .binary(let op, let x, let y):
            if case .constant(let c) = y, let imm = Int32(exactly: c), op != .div, op != .mod, let alu = Compiler.aluOperator(op) {
                guard emitDWARFValue(x, site: site, budget: &budget, what: what, e) else { return false }
                b.emit(.alu64(alu, .r0, imm))
                return true
            }
            guard emitDWARFValue(x, site: site, budget: &budget, what: what, e) else { return false }
            let s = frame.allocate(8)
            b.emit(.store(.r10, offset: Int16(clamping: s), .r0, size: .doubleWord))
            guard emitDWARFValue(y, site: site, budget: &budget, what: what, e) else { return false }
            b.emit(.load(.r1, .r10, offset: Int16(clamping: s), size: .doubleWord))
            if let alu = Compiler.aluOperator(op) {
                switch op {
                case .div: b.emit(.sdiv64(.r1, .r0))   // DWARF's division is signed
                case .mod: b.emit(.smod64(.r1, .r0))
                default: b.emit(.alu64(alu, .r1, .r0))
                }
                b.emit(.mov64(.r0, .r1))
            } else {
                // Comparisons (signed, as DWARF's are) yield 1 or 0.
                let jump: JumpOp = switch op {
                case .eq: .jeq
                case .ne: .jne
                case .lt: .jslt
                case .le: .jsle
                case .gt: .jsgt
                default: .jsge
                }
                let yes = b.newLabel(), done = b.newLabel()
                b.jump(jump, .r1, .r0, to: yes)
                b.emit(.mov64(.r0, 0))
                b.goto(done)
                b.bind(yes)
                b.emit(.mov64(.r0, 1))
                b.bind(done)
            }
        }
        return true
    }

    static func aluOperator(_ op: DWARFBinaryOperator) -> ALUOp? {
        switch op {
        case .plus: return .add
        case .minus: return .sub
        case .mul: return .mul
        case .div: return .div
        case .mod: return .mod
        case .and: return .and
        case .or: return .or
        case .xor: return .xor
        case .shl: return .lsh
        case .shr: return .rsh
        case .shra: return .arsh
        default: return nil
        }
    }
}
