// `tracepoint:` probes resolved from the kernel's BTF when tracefs cannot be read (see
// TracepointBTF.swift for what BTF can and cannot tell). What cannot be checked is said
// where it matters: an unknown category is a warning, unknown args an error where used.
import PlumbBPF

extension Compiler {
    static let tracefsFix = Diagnostic.Note("run as root or make tracefs readable (e.g. mount it with gid=GROUP,mode=0750) to check it exactly")

    func tracepointsFromBTF(_ ap: AttachPoint, category: String, name: String, source: TracepointBTF) -> [Expansion] {
        func isPattern(_ s: String) -> Bool { s.contains("*") || s.contains("?") }
        let syscallEvents = { source.syscallNames.flatMap { ["sys_enter_" + $0, "sys_exit_" + $0] } }
        var matches: [(category: String, name: String)]
        if isPattern(category) || isPattern(name) {
            // Only the syscalls category can be listed from BTF: its events are named for it.
            guard category == "syscalls" else {
                error("cannot expand '\(ap.canonical)' without tracefs: the kernel's BTF does not record which category a tracepoint is in",
                      ap.range, notes: [Self.tracefsFix])
                return []
            }
            matches = syscallEvents().filter { glob(name, $0) }.map { ("syscalls", $0) }
            if matches.isEmpty {
                error("no tracepoint matches '\(ap.canonical)'", ap.range)
                return []
            }
        } else {
            matches = [(category, name)]
        }
        if category != "syscalls" {
            warning("the category '\(category)' of tracepoint '\(name)' is not checked: tracefs is not readable and the kernel's BTF does not record categories",
                    ap.range, notes: [Self.tracefsFix])
        }
        var out: [Expansion] = []
        for (c, n) in matches {
            guard let args = c == "syscalls" ? source.syscallEvent(n) : source.event(n) else {
                let near = nearest(n, in: c == "syscalls" ? syscallEvents() : source.eventNames)
                error("tracepoint not found: \(c):\(n)", ap.range,
                      notes: (near.map { [Diagnostic.Note("did you mean 'tracepoint:\(c):\($0)'?")] } ?? [])
                        + [.init("tracefs is not readable, so the kernel's BTF was searched")])
                continue
            }
            var fields: [TracefsField] = []
            switch args {
            case .fields(let f): fields = f
            case .partial(let known, let why):
                fields = known
                tracepointArgsUnknown["\(c):\(n)"] = why
            }
            out.append((.tracepoint(category: c, name: n), "tracepoint:\(c):\(n)", kind("tracepoint/\(c)/\(n)"),
                        .tracepoint(category: c, name: n, fields: fields)))
        }
        return out
    }

    /// An error for `args` (or `args.FIELD`) in a tracepoint whose record BTF could not tell;
    /// false when the record is known.
    func reportUnknownTracepointArgs(category: String, name: String, field: String? = nil, _ range: SourceRange) -> Bool {
        guard let why = tracepointArgsUnknown["\(category):\(name)"] else { return false }
        let what = field.map { "'args.\($0)'" } ?? "the args"
        error("\(what) of tracepoint '\(category):\(name)' cannot be typed without tracefs: \(why)", range, notes: [Self.tracefsFix])
        return true
    }
}
