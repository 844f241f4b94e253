// `plumb -d`: every program's instructions, each group under the script line it comes from
// (the programs' line_info), in the form bpftool and the verifier log annotate code with:
// `; @[comm] = count(); @ script.bt:2`.
import PlumbAsm
import PlumbBPF

extension TracePlan {
    /// The programs of the plan, in probe order, with their source lines.
    public func listing() -> String {
        var out = ""
        let d = Disassembler()
        var shown: Set<String> = []
        for probe in probes where shown.insert(probe.program).inserted {
            guard let program = object.programs.first(where: { $0.name == probe.program }) else { continue }
            out += "\(probe.name) (\(program.name)):\n"
            // line_info by instruction index (ProgramSpec's line_info counts instructions, not
            // slots); subprograms (map loop bodies, the error counter) are named where they start.
            var lines: [Int: LineInfo] = [:]
            for l in program.lineInfo { lines[l.slot] = l }
            let starts = Dictionary(program.functions.map { ($0.1, $0.0) }, uniquingKeysWith: { a, _ in a })
            var slot = 0
            var last: (line: UInt32, file: UInt32)?
            for (index, insn) in program.instructions.enumerated() {
                if let name = starts[index], index > 0 { out += "\(name):\n"; last = nil }
                if let l = lines[index], last.map({ $0.line != l.line || $0.file != l.fileNameOffset }) ?? true {
                    let text = btf?.string(at: l.lineOffset) ?? ""
                    let file = btf?.string(at: l.fileNameOffset) ?? "?"
                    out += "; \(text.drop { $0 == " " || $0 == "\t" }) @ \(file):\(l.line)\n"
                    last = (l.line, l.fileNameOffset)
                }
                var note = ""
                switch program.references[index] {
                case .map(let name)?: note = "  # map \(name)"
                case .mapValue(let name, let offset)?: note = "  # map \(name) value + \(offset)"
                default: break
                }
                out += String(repeating: " ", count: max(0, 5 - String(slot).count)) + "\(slot): " + d.text(insn, slot: slot) + note + "\n"
                slot += insn.slotCount
            }
            out += "\n"
        }
        return out
    }
}
