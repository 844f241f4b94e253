import PlumbAsm
import PlumbELF
import PlumbSys

/// Where generated code finds the load bias of a USDT site's binary (what `USDTResolver.loadBias`
/// returns: run-time address minus file virtual address), needed by symbol operands only.
public enum USDTLoadBias: Sendable, Equatable {
    /// Known when the program is built (a non-PIE executable: 0; or one process's mapping).
    case constant(UInt64)
    /// Computed by the program itself (e.g. looked up per process), held in a callee-saved register (r6–r9).
    case register(PlumbAsm.Register)
    /// Computed from the instruction pointer: a uprobe handler sees pt_regs->ip at the site's
    /// run-time address, so the bias is ip - `siteAddress` (the probe's `address`) in whichever
    /// process hit the probe — no per-process lookup needed.
    case instructionPointer(siteAddress: UInt64)
}

extension USDTArgument {
    /// Emits code for a kprobe-type program that leaves this argument's value in `destination`,
    /// sign- or zero-extended to 64 bits as the spec's size says. `context` holds the pt_regs
    /// pointer (r6–r9: it must survive helper calls). Memory operands call
    /// bpf_probe_read_user into 8 bytes of stack at `stackOffset` (clobbering r0–r5); a failed
    /// read yields 0.
    public func emitLoad(into b: inout ProgramBuilder, context: PlumbAsm.Register, destination: PlumbAsm.Register,
                         loadBias: USDTLoadBias = .constant(0), stackOffset: Int16 = -8) throws(BPFError) {
        guard [.r6, .r7, .r8, .r9].contains(context) else {
            throw .invalidArgument("the pt_regs pointer must be in r6-r9 to survive helper calls, not \(context)")
        }
        if case .register(let r) = loadBias, ![.r6, .r7, .r8, .r9].contains(r) {
            throw .invalidArgument("the load bias must be in r6-r9 to survive helper calls, not \(r)")
        }
        guard destination != .r10, stackOffset <= -8, stackOffset % 8 == 0 else {
            throw .invalidArgument("destination \(destination) / stack offset \(stackOffset): need a writable register and an 8-byte aligned stack slot below r10")
        }

        /// symbol address + offset (+ constant bias) as one immediate.
        func symbolImmediate(_ s: USDTSymbol, _ offset: Int64) throws(BPFError) -> Int64 {
            guard let a = s.address else {
                throw .invalidArgument("USDT argument '\(text)' refers to \(s.name), which is in neither .symtab nor .dynsym of the binary (stripped?)")
            }
            var v = a &+ UInt64(bitPattern: offset)
            switch loadBias {
            case .constant(let bias): v = v &+ bias
            case .instructionPointer(let site): v = v &- site   // + ip, added by addBias
            case .register: break
            }
            return Int64(bitPattern: v)
        }
        func addBias(_ r: PlumbAsm.Register) {
            switch loadBias {
            case .register(let bias): b.emit(.add64(r, bias))
            case .instructionPointer:
                let scratch: PlumbAsm.Register = r == .r5 ? .r4 : .r5
                b.emit(.load(scratch, context, offset: Int16(X86Register.rip.ptRegsOffset), size: .doubleWord))
                b.emit(.add64(r, scratch))
            case .constant: break
            }
        }
        /// r3 += the 64-bit (or zero-extended 32-bit) address register, times `scale`.
        func addAddressRegister(_ reg: USDTRegister, scale: UInt8 = 1) {
            b.emit(.load(.r4, context, offset: Int16(reg.register.ptRegsOffset), size: .doubleWord))
            if reg.width == 4 { b.emit(.lsh64(.r4, 32)); b.emit(.rsh64(.r4, 32)) }
            if scale > 1 { b.emit(.mul64(.r4, Int32(scale))) }
            b.emit(.add64(.r3, .r4))
        }

        var bytes = size
        switch location {
        case .constant(let v):
            b.emit(.loadImm64(destination, v))
        case .symbolAddress(let s, let offset):
            b.emit(.loadImm64(destination, try symbolImmediate(s, offset)))
            addBias(destination)
        case .register(let r):
            b.emit(.load(destination, context, offset: Int16(r.register.ptRegsOffset), size: .doubleWord))
            if r.byteShift > 0 { b.emit(.rsh64(destination, Int32(8 * r.byteShift))) }
            bytes = min(size, r.width)
        case .memory(let base, let offset):
            b.emit(.loadImm64(.r3, offset))
            addAddressRegister(base)
            emitRead(&b, destination: destination, stackOffset: stackOffset)
        case .global(let s, let offset):
            b.emit(.loadImm64(.r3, try symbolImmediate(s, offset)))
            addBias(.r3)
            emitRead(&b, destination: destination, stackOffset: stackOffset)
        case .effectiveAddress(let base, let index, let scale, let offset, let s):
            if let s {
                b.emit(.loadImm64(.r3, try symbolImmediate(s, offset)))
                addBias(.r3)
            } else {
                b.emit(.loadImm64(.r3, offset))
            }
            if let base { addAddressRegister(base) }
            if let index { addAddressRegister(index, scale: scale) }
            emitRead(&b, destination: destination, stackOffset: stackOffset)
        }
        if bytes < 8 {
            let shift = Int32(64 - 8 * bytes)
            b.emit(.lsh64(destination, shift))
            b.emit(isSigned ? .alu64(.arsh, destination, shift) : .rsh64(destination, shift))
        }
    }

    /// destination = `size` bytes of user memory at r3 (0 when unreadable).
    private func emitRead(_ b: inout ProgramBuilder, destination: PlumbAsm.Register, stackOffset: Int16) {
        b.emit(.store(.r10, offset: stackOffset, imm: 0, size: .doubleWord))
        b.emit(.mov64(.r1, .r10))
        b.emit(.add64(.r1, Int32(stackOffset)))
        b.emit(.mov64(.r2, Int32(size)))
        b.emit(.call(.probeReadUser))
        // x86-64 is little-endian: the value's bytes sit at the start of the zeroed slot.
        b.emit(.load(destination, .r10, offset: stackOffset, size: .doubleWord))
    }
}
