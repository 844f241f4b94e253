// Big temporaries in a per-CPU scratch map. The BPF stack holds 512 bytes; scripts with long
// strings (BPFTRACE_STRLEN=200), several strings in one map key or printf, or big tuples need
// more. A probe whose frame does not fit is compiled again with every slot of more than 8
// bytes (strings, tuples, keys, records) placed in the one value of a PERCPU_ARRAY map of its
// own, looked up once at the program's start into r9 (taken out of the register pool), as
// bpftrace moves big values to per-CPU maps. 8-byte slots (spilled registers, pointers the
// verifier must keep tracking, such as ring buffer records) stay on the stack.
//
// Code generation itself does not change: scratch slots get r10 offsets below
// `ScratchFrame.base`, and one pass after the program is built moves every r10 access and
// address (`mov rX, r10; add rX, off`) at such an offset onto r9: r9 points `size` bytes into
// the value, so offset `-(base + d)` becomes `r9 - d`, inside [0, size).
import PlumbAsm
import PlumbBPF

struct ScratchFrame {
    /// r10 offsets at or below `-base` are scratch slots.
    static let base = 1024
    /// Largest scratch frame: per-CPU values are capped near 32 KiB and offsets are 16-bit.
    static let maxSize = 30 * 1024
    var enabled = false
    /// Set when the stack overflowed and the program is to be compiled again with a scratch frame.
    var retry = false
    /// Index of the `add r9, SIZE` instruction, patched once the frame's size is known.
    var prologueAt: Int?
}

extension Compiler {
    /// Compiles one probe's program, again with a scratch frame when its stack overflows.
    func compileProgram(probe: Probe, attachPoint: AttachPoint, target: ProbeTarget, name: String, kind: ProgramKind,
                        context ctx: ProbeContext) {
        let marks = (diagnostics: diagnostics.count, actions: actions.count, program: programIndex)
        scratchFrame = ScratchFrame()
        compileProgramBody(probe: probe, attachPoint: attachPoint, target: target, name: name, kind: kind, context: ctx)
        guard scratchFrame.retry else { return }
        // The first attempt left nothing behind but its diagnostics and actions.
        diagnostics.removeSubrange(marks.diagnostics...)
        actions.removeSubrange(marks.actions...)
        programIndex = marks.program
        scratchFrame = ScratchFrame()
        scratchFrame.enabled = true
        compileProgramBody(probe: probe, attachPoint: attachPoint, target: target, name: name, kind: kind, context: ctx)
        scratchFrame = ScratchFrame()
    }

    /// Whether the program just generated overflowed the stack and will be compiled again.
    func needsScratchFrame() -> Bool {
        guard frame.maxDepth > 512 || frame.scratchMaxDepth > 0 else { return false }
        if scratchFrame.enabled {
            if frame.scratchMaxDepth > ScratchFrame.maxSize {
                error("the probe needs \(frame.scratchMaxDepth) bytes for its strings and other big values, more than the \(ScratchFrame.maxSize) a per-CPU scratch map holds; use fewer or shorter strings (BPFTRACE_STRLEN) at once", currentStatement)
            }
            return false
        }
        scratchFrame.retry = true
        return true
    }

    static func scratchMapName(_ program: Int) -> String { "plumb_scr\(program)" }

    /// The prologue of a program with a scratch frame: r9 = the map's value + the frame size.
    func emitScratchPrologue() {
        guard scratchFrame.enabled, let exit = exitLabel else { return }
        _ = pool.take(preferring: .r9)
        // The key on the stack below every slot's first use (slots are written before they are read).
        b.emit(.store(.r10, offset: -4, imm: 0, size: .word))
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -4))
        references[b.pending.count] = .map(Compiler.scratchMapName(programIndex - 1))
        b.emit(.loadImm64(.r1, 0))
        b.emit(.call(helper: H.mapLookup))
        b.jump(.jeq, .r0, imm: 0, to: exit)
        b.emit(.mov64(.r9, .r0))
        scratchFrame.prologueAt = b.pending.count
        b.emit(.add64(.r9, 0))
    }

    /// Moves scratch slots from r10 to r9 and records the scratch map of `program`.
    func relocateScratchSlots(_ insns: inout [Instruction], program: Int) {
        guard scratchFrame.enabled, let at = scratchFrame.prologueAt, at < insns.count else { return }
        let size = max(8, (frame.scratchMaxDepth + 7) / 8 * 8)
        insns[at] = .add64(.r9, Int32(clamping: size))
        let base = ScratchFrame.base
        for k in insns.indices {
            let i = insns[k]
            switch i.instructionClass {
            case .ldx where i.src == .r10 && Int(i.offset) <= -base:
                insns[k].src = .r9
                insns[k].offset = Int16(clamping: Int(i.offset) + base)
            case .st where i.dst == .r10 && Int(i.offset) <= -base, .stx where i.dst == .r10 && Int(i.offset) <= -base:
                insns[k].dst = .r9
                insns[k].offset = Int16(clamping: Int(i.offset) + base)
            case .alu64 where i.aluOp == .mov && i.operandSource == .x && i.src == .r10 && k + 1 < insns.count:
                let next = insns[k + 1]
                if next.instructionClass == .alu64, next.aluOp == .add, next.operandSource == .k, next.dst == i.dst, Int(next.imm) <= -base {
                    insns[k].src = .r9
                    insns[k + 1].imm = next.imm + Int32(base)
                }
            default:
                break
            }
        }
        scratchMaps.append((Compiler.scratchMapName(program), size))
    }

    /// The scratch maps of the programs that have one: a per-CPU array of one value each.
    func scratchMapSpecs() -> [MapSpec] {
        scratchMaps.map { MapSpec(name: $0.name, type: .percpuArray, keySize: 4, valueSize: UInt32(clamping: $0.size), maxEntries: 1) }
    }
}
