// Reading one DWARF-typed parameter at a uprobe's entry, from where SysVParameters.swift says
// the ABI put it: integer registers (pt_regs), the stack above the return address (user
// memory at rsp + 8 + offset), or an xmm register (not in pt_regs: a type error, not garbage).
// A struct passed in registers is copied from pt_regs to the program's stack so its members
// read like any other record's (`args.pair.a`).
import PlumbAsm
import PlumbDWARF

extension Compiler {
    func userParameter(_ name: String, of function: String, type t: SType, place: SysVPlace,
                       location: [DWARFOp]?, _ e: Expr) -> Val {
        if case .sse(let partly) = place {
            error(partly ? "'\(name)' is a struct passed partly in an SSE register, which uprobes cannot read (pt_regs holds no xmm registers)"
                         : "'\(name)' is passed in an SSE register, which uprobes cannot read (pt_regs holds no xmm registers)", e.range)
            return .poison
        }
        switch t {
        case .int, .bool, .pointer, .record:
            break
        default:
            error("parameter '\(name)' of '\(function)' has type '\(t)', which cannot be read at a uprobe", e.range)
            return .poison
        }
        switch place {
        case .registers(let regs):
            if t.isScalar {
                // The DWARF location at entry names the register when it is one (it agrees
                // with the ABI for ordinary functions); else the ABI's register.
                var offset: Int16?
                if let ops = location, ops.count == 1, case .reg(let r) = ops[0], r < dwarfRegisterOffsets.count {
                    offset = dwarfRegisterOffsets[r]
                } else if let first = regs.first, first < PtRegs.args.count {
                    offset = PtRegs.args[first]
                }
                guard let offset else { return .poison }
                b.emit(.load(.r0, .r6, offset: offset, size: .doubleWord))
                convert(.r0, to: t)
                return result(t, from: .r0)
            }
            // A struct of INTEGER eightbytes: its registers, in order, copied to the stack.
            let slot = frame.allocate(regs.count * 8)
            for (j, reg) in regs.enumerated() where reg < PtRegs.args.count {
                b.emit(.load(.r0, .r6, offset: PtRegs.args[reg], size: .doubleWord))
                b.emit(.store(.r10, offset: Int16(clamping: slot + j * 8), .r0, size: .doubleWord))
            }
            address(ofSlot: slot, into: .r0)
            let base = result(.u64, from: .r0)
            return Val(type: t, loc: .memory(base.loc, offset: 0, space: .kernel))
        case .stack(let offset):
            // At entry rsp points at the return address; stack arguments start above it.
            b.emit(.load(.r0, .r6, offset: PtRegs.sp, size: .doubleWord))
            b.emit(.add64(.r0, Int32(clamping: 8 + offset)))
            let base = result(.u64, from: .r0)
            if t.isScalar { return access(t, base: base.loc, offset: 0, space: .user, e) }
            return Val(type: t, loc: .memory(base.loc, offset: 0, space: .user))
        case .sse:
            return .poison
        }
    }
}
