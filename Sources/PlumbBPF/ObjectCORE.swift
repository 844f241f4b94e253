import PlumbAsm
import PlumbBTF

// CO-RE is split in two. PlumbBTF decides (COREResolver.solve: which target type, what
// value, poison or not) and knows nothing of instructions; applying a decision is an
// instruction-level step over [Instruction], here, beside the loader that owns programs.
// So PlumbBTF stays a pure type library (no PlumbAsm), there is one instruction coder
// (PlumbAsm's), and a program stays [Instruction] from reader to the one encode at load.

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

    /// libbpf's poison: a call to helper 0xbad2310 ("bad relo"), rejected by the verifier if reachable.
    public static let poisonHelper: Int32 = 0xbad2310
}

extension Array where Element == Instruction {
    /// Applies one CO-RE decision to the instruction at `index`, as libbpf's
    /// bpf_core_patch_insn does: poison, or check the instruction holds the local value and
    /// write the target value (ALU/ALU64 immediate, LDX/ST/STX offset and load size,
    /// ld_imm64 immediate).
    ///
    /// Poisoning an ld_imm64 replaces both of its slots by `call 0xbad2310`, so the array
    /// grows by one instruction after `index` (slots, hence jumps, are unchanged); callers
    /// with index-based metadata shift it (`ProgramSpec.applyCORE` does).
    /// `slot`, `relocation` and `context` only label the patch and errors.
    public mutating func applyCORE(_ s: CORESolution, at index: Int, slot: Int, relocation: Int = 0,
                                   context: String? = nil) throws(BTFError) -> COREPatch {
        func fail(_ r: COREReason) -> BTFError {
            .relocation(index: relocation, instruction: slot, kind: s.kind, spec: s.localSpec, context: context, reason: r)
        }
        guard index >= 0, index < count else {
            throw fail(.instructionOutOfRange(offset: UInt32(clamping: Swift.max(0, slot).multipliedReportingOverflow(by: 8).partialValue),
                                              count: slotCount))
        }
        var insn = self[index]
        let poison = Instruction.call(helper: COREPatch.poisonHelper)
        func poisoned() -> COREPatch {
            if insn.isWide {
                replaceSubrange(index...index, with: [poison, poison])
                return .poisoned(slots: [slot + 1, slot])
            }
            self[index] = poison
            return .poisoned(slots: [slot])
        }
        if s.poison { return poisoned() }
        let orig = s.localValue, new = s.targetValue
        switch insn.instructionClass {
        case .alu, .alu64:
            guard insn.operandSource == .k else { throw fail(.unsupportedInstruction(code: insn.opcode)) }
            // The 32-bit immediate holds the value sign- or zero-extended (an unsigned 32-bit
            // enumerator 0x80000000 is fine either way).
            let signExtended = UInt64(bitPattern: Int64(insn.imm))
            let zeroExtended = UInt64(UInt32(bitPattern: insn.imm))
            if s.validate && signExtended != orig && zeroExtended != orig {
                throw fail(.unexpectedValue(instructionClass: "ALU/ALU64", got: Int64(insn.imm), expected: orig, new: new))
            }
            insn.imm = Int32(truncatingIfNeeded: new)
            self[index] = insn
            return .immediate(old: signExtended, new: new)
        case .ldx, .st, .stx:
            if s.validate && UInt64(bitPattern: Int64(insn.offset)) != orig {
                throw fail(.unexpectedValue(instructionClass: "LDX/ST/STX", got: Int64(insn.offset), expected: orig, new: new))
            }
            guard new <= UInt64(Int16.max) else { throw fail(.offsetTooBig(new)) }
            if s.failMemorySizeAdjust { return poisoned() }
            let old = Int64(insn.offset)
            insn.offset = Int16(new)
            var memorySize: (old: UInt32, new: UInt32)? = nil
            if s.targetSize != s.localSize {
                // Every 2-bit size field is a size, so `size` is never nil for these classes.
                let have = insn.size?.bytes ?? 0
                guard have == Int(s.localSize) else { throw fail(.unexpectedMemorySize(got: have, expected: s.localSize)) }
                guard let field = Size.allCases.first(where: { UInt32($0.bytes) == s.targetSize }) else {
                    throw fail(.invalidMemorySize(s.targetSize))
                }
                insn.opcode = (insn.opcode & ~Size.mask) | field.rawValue
                memorySize = (s.localSize, s.targetSize)
            }
            self[index] = insn
            return .offset(old: old, new: new, memorySize: memorySize)
        case .ld:
            // The decoder already refused an ld_imm64 whose second half is malformed.
            guard insn.isWide, insn.src.rawValue == 0, insn.offset == 0 else { throw fail(.malformedLDImm64) }
            let imm = UInt64(bitPattern: insn.imm64)
            if s.validate && imm != orig {
                throw fail(.unexpectedValue(instructionClass: "LDIMM64", got: Int64(bitPattern: imm), expected: orig, new: new))
            }
            insn.imm64 = Int64(bitPattern: new)
            self[index] = insn
            return .immediate64(old: imm, new: new)
        default:
            throw fail(.unsupportedInstruction(code: insn.opcode))
        }
    }
}

/// One CO-RE relocation applied to a linked program.
public struct AppliedRelocation: Sendable {
    /// Instruction index in the linked program.
    public var index: Int
    /// Its position in the program's CO-RE records.
    public var number: Int
    public var relocation: CORERelocation
    public var solution: CORESolution
    public var patch: COREPatch
    /// A line for `plumb object dump`: `CO-RE byte_off struct task_struct.pid: 1234 -> 2456`.
    public var summary: String { COREResolver.describe(relocation, solution) }
}

extension ProgramSpec {
    /// Makes room after instruction `index` when one instruction became two (a poisoned
    /// ld_imm64): index-based metadata past it moves by one.
    mutating func shiftIndices(after index: Int) {
        func shift(_ i: Int) -> Int { i > index ? i + 1 : i }
        references = Dictionary(uniqueKeysWithValues: references.map { (shift($0.key), $0.value) })
        for i in functionInfo.indices { functionInfo[i].slot = shift(functionInfo[i].slot) }
        for i in lineInfo.indices { lineInfo[i].slot = shift(lineInfo[i].slot) }
        for i in coreRelocations.indices { coreRelocations[i].index = shift(coreRelocations[i].index) }
        for i in functions.indices { functions[i].index = shift(functions[i].index) }
    }
}

extension ObjectSpec {
    /// Relocates every program's CO-RE records against `targets` (the running kernel's BTF
    /// plus module BTFs, or a custom target BTF), patching instructions in place as libbpf
    /// does. Returns what was done, per program, for dumps and logs.
    @discardableResult
    public mutating func applyCORE(targets: [BTF]) throws(BPFError) -> [String: [AppliedRelocation]] {
        var result: [String: [AppliedRelocation]] = [:]
        guard programs.contains(where: { !$0.coreRelocations.isEmpty }) else { return result }
        guard let local = btf else {
            throw .badSection(".BTF", "\(path): programs carry CO-RE relocations but the object has no .BTF section")
        }
        // One resolver for the whole object: its candidate cache spans programs.
        var resolver = COREResolver(local: local, targets: targets, order: .little)
        for p in programs.indices {
            let name = programs[p].name
            guard !programs[p].coreRelocations.isEmpty else { continue }
            var slots = programs[p].instructions.slotIndices
            var applied: [AppliedRelocation] = []
            for n in programs[p].coreRelocations.indices {
                // Read afresh: a poisoned ld_imm64 earlier may have moved this one.
                let index = programs[p].coreRelocations[n].index
                var r = programs[p].coreRelocations[n].relocation
                guard index >= 0, index < slots.count else {
                    throw .badRelocation(program: name, slot: 0, "CO-RE relocation #\(n) names instruction \(index), past the program's end")
                }
                r.insnOffset = UInt32(slots[index] * 8)
                let context = "program '\(name)'"
                let patch: COREPatch
                let s: CORESolution
                do {
                    s = try resolver.solve(r, index: n, context: context)
                    patch = try programs[p].instructions.applyCORE(s, at: index, slot: slots[index], relocation: n, context: context)
                } catch {
                    throw .badRelocation(program: name, slot: error.coreInstruction ?? 0, error.description)
                }
                if programs[p].instructions.count != slots.count {
                    programs[p].shiftIndices(after: index)
                    for a in applied.indices where applied[a].index > index { applied[a].index += 1 }
                    slots = programs[p].instructions.slotIndices
                }
                applied.append(AppliedRelocation(index: index, number: n, relocation: r, solution: s, patch: patch))
            }
            result[name] = applied
        }
        return result
    }
}
