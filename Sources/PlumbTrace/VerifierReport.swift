// A program the kernel's verifier rejects, told as a diagnostic of the script: the probe's
// source line with a caret at the column the failing instruction's line_info names, then the
// verifier's reason in one line. The full log is for -v.
import PlumbLang
import PlumbBPF
import PlumbBTF
import PlumbSys

/// Where and why the verifier stopped, found from its log and the program's line_info.
public struct VerifierRejection: Sendable, Equatable {
    public var probe: String
    public var file: String
    public var line: Int
    public var column: Int
    public var sourceLine: String
    /// The verifier's last word: "infinite loop detected at insn 1".
    public var reason: String
    public var log: String

    /// `file:line:col: error: ...`, the line, a caret, the reason; the full log when `verbose`.
    public func rendered(verbose: Bool) -> String {
        var out = "\(file):\(line):\(column): error: the kernel's BPF verifier rejected the program of \(probe)\n"
        out += sourceLine + "\n"
        // Tabs stay tabs so the caret lines up under them.
        let lead = sourceLine.utf8.prefix(max(0, column - 1)).map { $0 == 0x09 ? "\t" : " " }.joined()
        out += lead + "^\n"
        out += "verifier: \(reason)\n"
        if reason.contains("cannot use helper bpf_override_return") {
            out += "note: override() needs a kernel built with CONFIG_BPF_KPROBE_OVERRIDE (and kprobes); this one has no bpf_override_return\n"
        }
        if verbose {
            // The kernel's buffer may end in NULs after the text.
            var text = Substring(log)
            while text.last == "\0" { text = text.dropLast() }
            out += "verifier log:\n" + text + (text.hasSuffix("\n") ? "" : "\n")
        } else {
            out += "note: run with -v for the verifier's full log\n"
        }
        return out
    }

    /// The reason in a verifier log: its last line that is neither an instruction, a source
    /// annotation, a register state nor the closing statistics.
    public static func reason(in log: String) -> String {
        let skipped = ["processed ", "verification time", "stack depth", "cur state:", "old state:", "from ", "mark_precise",
                       "last_idx", "regs=", "parent ", "Func#", "func#", "validating ", "arg#"]
        for raw in log.split(separator: "\n").reversed() {
            let line = raw.trimmingCharacters(in: " \t")
            if line.isEmpty || line.hasPrefix(";") || skipped.contains(where: { line.hasPrefix($0) }) { continue }
            let digits = line.prefix { $0.isNumber }
            if !digits.isEmpty, line.dropFirst(digits.count).hasPrefix(":") { continue }
            if line.hasPrefix("R"), line.dropFirst().first?.isNumber == true, line.contains("=") && !line.contains(" ") { continue }
            return String(line)
        }
        return "the verifier gave no reason"
    }

    /// The instruction the log stopped at: the last `N: (op)` line.
    public static func failingInstruction(in log: String) -> Int? {
        for line in log.split(separator: "\n").reversed() {
            let digits = line.prefix { $0.isNumber }
            if !digits.isEmpty, line.dropFirst(digits.count).hasPrefix(": ("), let n = Int(digits) { return n }
        }
        return nil
    }

    /// The script line of the log's last source annotation (`; text @ file.bt:3`).
    public static func annotatedLine(in log: String) -> Int? {
        for line in log.split(separator: "\n").reversed() where line.hasPrefix("; ") {
            // No Foundation here: the text after the last ':' of a line holding " @ ".
            guard line.contains(" @ "), let colon = line.lastIndex(of: ":") else { continue }
            if let n = Int(line[line.index(after: colon)...]) { return n }
        }
        return nil
    }

    /// The rejection of `program` in `plan` as the script's location, or nil when the log or
    /// the line_info does not say where.
    public static func locate(program: String, log: String, plan: TracePlan) -> VerifierRejection? {
        guard let spec = plan.object.programs.first(where: { $0.name == program }), let btf = plan.btf else { return nil }
        let probe = plan.probes.first(where: { $0.program == program })?.name ?? program
        // Instruction slots (ld_imm64 takes two) of each instruction index.
        var slotOf: [Int] = []
        var slot = 0
        for i in spec.instructions { slotOf.append(slot); slot += i.slotCount }
        var best: LineInfo?
        if let failing = failingInstruction(in: log) {
            for l in spec.lineInfo where l.slot < slotOf.count && slotOf[l.slot] <= failing {
                if let b = best, slotOf[b.slot] > slotOf[l.slot] { continue }
                best = l
            }
        } else if let line = annotatedLine(in: log) {
            // A statistics-only log (-v) names no instruction, only the source line it was at.
            best = spec.lineInfo.first { Int($0.line) == line }
        }
        best = best ?? spec.lineInfo.first
        guard let best, let text = btf.string(at: best.lineOffset) else { return nil }
        return VerifierRejection(probe: probe, file: btf.string(at: best.fileNameOffset) ?? "?", line: Int(best.line),
                                 column: Int(max(1, best.column)), sourceLine: text, reason: reason(in: log), log: log)
    }
}

extension TraceRuntime {
    /// A load failure as TraceError: a verifier rejection at its place in the script, else as it is.
    static func loadFailure(_ error: any Error, plan: TracePlan, verbose: Bool) -> TraceError {
        if case .programLoad(let program, let sys, _)? = error as? BPFError, case .verifierRejected(_, _, let log, _) = sys,
           let rejection = VerifierRejection.locate(program: program, log: log, plan: plan) {
            return .rejected(rejection.rendered(verbose: verbose))
        }
        return .load("\(error)")
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return s
    }
}
