import PlumbAsm
import PlumbBTF

/// One CO-RE relocation applied to a linked program.
public struct AppliedRelocation: Sendable {
    /// Instruction index in the linked program.
    public var index: Int
    public var applied: COREResolver.Applied
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
            let program = programs[p]
            guard !program.coreRelocations.isEmpty else { continue }
            var slots: [Int] = []
            var slot = 0
            for insn in program.instructions { slots.append(slot); slot += insn.slotCount }
            var bytes = Instruction.encode(program.instructions, byteOrder: .little)
            let relocations = program.coreRelocations.map { entry -> CORERelocation in
                var r = entry.relocation
                r.insnOffset = UInt32(slots[entry.index] * 8)
                return r
            }
            let done: [COREResolver.Applied]
            do {
                done = try resolver.relocate(&bytes, relocations: relocations, context: "program '\(program.name)'")
            } catch {
                throw .badRelocation(program: program.name, slot: error.instruction ?? 0, error.description)
            }
            let applied = done.map { AppliedRelocation(index: program.coreRelocations[$0.index].index, applied: $0) }
            do {
                programs[p].instructions = try Instruction.decode(bytes, byteOrder: .little)
            } catch {
                throw .badProgram(program.name, "instructions after CO-RE patching do not decode: \(error)")
            }
            result[program.name] = applied
        }
        return result
    }
}
