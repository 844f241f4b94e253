// `-l [PATTERN]` / `-lv`: the probes this system offers, as bpftrace lists them
// (`tracepoint:category:name`, `rawtracepoint:name`, `software:event:`, `uprobe:path:symbol`),
// with `-v` adding each tracepoint's fields as its format file declares them.
import PlumbBTF
import PlumbLang
import PlumbBPF
import PlumbELF
import PlumbSys
import Glibc

public enum ProbeListing {
    public static let hardwareEvents = Perf.HardwareEvent.allCases.map(\.name).sorted()
    public static let softwareEvents = ["alignment-faults", "bpf-output", "context-switches", "cpu-clock", "cpu-migrations",
                                        "dummy", "emulation-faults", "major-faults", "minor-faults", "page-faults", "task-clock"]

    static func matches(_ pattern: String?, _ name: String) -> Bool {
        guard let pattern, !pattern.isEmpty else { return true }
        if fnmatch(pattern, name, 0) == 0 { return true }
        // A pattern with no provider matches the probe's last part (`sys_enter_open*`).
        if !pattern.contains(":"), let last = name.split(separator: ":").last, fnmatch(pattern, String(last), 0) == 0 { return true }
        return false
    }

    /// The fields of a tracepoint's format file, as `-lv` prints them (common_ fields left out).
    public static func formatFields(_ format: String) -> [String] {
        var out: [String] = []
        for line in format.split(separator: "\n") {
            let t = line.drop { $0 == " " || $0 == "\t" }
            guard t.hasPrefix("field:") else { continue }
            var decl = t.dropFirst("field:".count)
            if let semi = decl.firstIndex(of: ";") { decl = decl[..<semi] }
            let text = String(decl)
            if text.split(separator: " ").last.map({ $0.hasPrefix("common_") }) == true { continue }
            out.append(text)
        }
        return out
    }

    /// Every probe matching `pattern`, one per line (with `verbose`, fields indented below), and
    /// what could not be listed: `errors` (the pattern's binary does not exist, tracepoints asked
    /// for but unreadable) and `warnings` (tracepoints left out of a listing of everything).
    public static func list(_ pattern: String?, verbose: Bool) -> (text: String, errors: [String], warnings: [String]) {
        var errors: [String] = [], warnings: [String] = []
        let text = list(pattern, verbose: verbose, errors: &errors, warnings: &warnings)
        return (text, errors, warnings)
    }

    static func list(_ pattern: String?, verbose: Bool, errors: inout [String], warnings: inout [String]) -> String {
        var out = ""
        var provider: String? = nil
        var rest = pattern
        if let p = pattern, let colon = p.firstIndex(of: ":") {
            provider = String(p[..<colon])
            rest = String(p[p.index(after: colon)...])
        }
        let aliases = ["t": "tracepoint", "rt": "rawtracepoint", "s": "software", "h": "hardware", "u": "uprobe", "ur": "uretprobe",
                       "U": "usdt", "k": "kprobe", "kr": "kretprobe", "f": "kfunc", "fentry": "kfunc", "fr": "kretfunc",
                       "fexit": "kretfunc", "it": "iter"]
        if let p = provider, let full = aliases[p] { provider = full }
        let full = provider.map { "\($0):\(rest ?? "")" } ?? pattern

        // usdt:PATH[:[PROVIDER:]NAME]: every probe name of the binary (-v: each site and its argument specs).
        if provider == "usdt", let rest, !rest.isEmpty {
            let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            let prov: String? = parts.count >= 3 ? parts[1] : nil
            let name = parts.count >= 2 ? (parts.last ?? "*") : "*"
            guard (try? UprobeResolver.resolveBinary(parts[0])) != nil else {
                errors.append("usdt target file '\(parts[0])' does not exist or is not executable")
                return ""
            }
            guard let listed = try? USDTResolver.list(binary: parts[0], provider: prov, name: name.isEmpty ? "*" : name) else { return "" }
            for l in listed { out += (verbose ? l.verboseDescription : l.description) + "\n" }
            return out
        }
        if provider == "uprobe", let rest, let listed = UserDebugInfo.statementListing(rest, verbose: verbose) { return listed }
        if provider == "uprobe" || provider == "uretprobe", let rest, let colon = rest.lastIndex(of: ":") {
            let binary = String(rest[..<colon])
            guard let path = try? UprobeResolver.resolveBinary(binary) else {
                errors.append("\(provider ?? "uprobe") target file '\(binary)' does not exist or is not executable")
                return ""
            }
            guard let elf = try? ELFFile(path: path) else {
                errors.append("\(path) is not an ELF file whose symbols can be listed")
                return ""
            }
            var names = Set<String>()
            for dynamic in [false, true] {
                for s in (try? elf.symbols(dynamic: dynamic)) ?? [] where s.type == ELFSymbol.STT_FUNC && s.sectionIndex != ELFSymbol.SHN_UNDEF {
                    names.insert(s.name)
                }
            }
            let symbolPattern = String(rest[rest.index(after: colon)...])
            for n in names.sorted() where symbolPattern.isEmpty || fnmatch(symbolPattern, n, 0) == 0 {
                out += "\(provider ?? "uprobe"):\(path):\(n)\n"
                if verbose { for p in UserDebugInfo.parameterLines(binary: path, function: n) { out += "    " + p + "\n" } }
            }
            return out
        }

        if provider == nil || provider == "tracepoint" {
            let root = try? Tracefs.path()
            let events = root.flatMap { readTextFile("\($0)/available_events") }
            if root == nil || events == nil {
                // Without tracefs there is no list of tracepoints (BTF names events, not their categories).
                let why = root == nil ? "tracefs (/sys/kernel/tracing) cannot be read by this user, nor mounted: run as root"
                                      : "\(root!)/available_events is not readable by this user: run as root"
                if provider == "tracepoint" { errors.append("cannot list tracepoints: " + why) }
                else { warnings.append("tracepoints are not listed: " + why) }
            }
            if let root, let events {
                for line in events.split(separator: "\n").sorted() {
                    let name = "tracepoint:" + line
                    guard matches(full, name) else { continue }
                    out += name + "\n"
                    if verbose {
                        let parts = line.split(separator: ":")
                        if parts.count == 2, let format = readTextFile("\(root)/events/\(parts[0])/\(parts[1])/format") {
                            for f in formatFields(format) { out += "    " + f + "\n" }
                        }
                    }
                }
            }
        }
        if provider == nil || provider == "rawtracepoint" {
            if let btf = try? BTF.kernel() {
                var names: [String] = []
                for id in btf.ids where btf.kind(of: id) == .typedef {
                    let n = btf.name(of: id)
                    if n.hasPrefix("btf_trace_") { names.append(String(n.dropFirst("btf_trace_".count))) }
                }
                for n in names.sorted() {
                    let name = "rawtracepoint:" + n
                    guard matches(full, name) else { continue }
                    out += name + "\n"
                    if verbose, let proto = try? btf.rawTracepointProto(n) {
                        for p in proto.params { out += "    " + btf.cTypeName(p.type) + (p.name.isEmpty ? "" : " " + p.name) + "\n" }
                    }
                }
            }
        }
        // Plumb's own (ProcessProbes.swift); listed only when asked for, as bpftrace has none.
        if provider == "process" {
            for e in ["begin", "end"] where matches(full, "process:\(e)") { out += "process:\(e)\n" }
        }
        if provider == nil || provider == "software" {
            for e in softwareEvents where matches(full, "software:\(e):") || matches(full, "software:\(e)") { out += "software:\(e):\n" }
        }
        if provider == nil || provider == "hardware" {
            for e in hardwareEvents where matches(full, "hardware:\(e):") || matches(full, "hardware:\(e)") { out += "hardware:\(e):\n" }
        }
        out += kernelFunctionListing(provider: provider, full: full, verbose: verbose, errors: &errors)
        return out
    }

    /// iter:NAME (iterators in BTF, `-v`: the context's fields), kfunc:NAME/kretfunc:NAME (functions
    /// in BTF, `-v`: their parameters) and kprobe:NAME (tracefs' available_filter_functions). Only
    /// when asked for by provider: there are tens of thousands of kernel functions.
    static func kernelFunctionListing(provider: String?, full: String?, verbose: Bool, errors: inout [String]) -> String {
        var out = ""
        switch provider {
        case "iter":
            guard let btf = try? BTF.kernel() else { errors.append("cannot list iterators: no kernel BTF (/sys/kernel/btf/vmlinux)"); return "" }
            var names: [String] = []
            for id in btf.ids where btf.kind(of: id) == .function {
                let n = btf.name(of: id)
                if n.hasPrefix("bpf_iter_"), btf.firstID(named: "bpf_iter__" + n.dropFirst(9), kind: .struct) != nil { names.append(String(n.dropFirst(9))) }
            }
            for n in Set(names).sorted() where matches(full, "iter:" + n) {
                out += "iter:\(n)\n"
                guard verbose, let ctx = btf.firstID(named: "bpf_iter__" + n, kind: .struct), let t = try? btf.type(ctx) else { continue }
                // Pointers sit in anonymous unions (__bpf_md_ptr): their one member is the field.
                var fields: [BTFMember] = []
                for m in t.members {
                    if m.name.isEmpty, let inner = try? btf.resolve(m.type), btf.kind(of: inner).isComposite, let u = try? btf.type(inner) {
                        fields += u.members
                    } else {
                        fields.append(m)
                    }
                }
                for m in fields where m.name != "meta" {
                    let type = btf.cTypeName(m.type)
                    out += "    " + type + (type.hasSuffix("*") ? "" : " ") + m.name + ";\n"   // bpftrace's `struct task_struct *task;`
                }
            }
        case "kfunc", "kretfunc":
            guard let btf = try? BTF.kernel() else { errors.append("cannot list kernel functions: no kernel BTF (/sys/kernel/btf/vmlinux)"); return "" }
            var names: [String] = []
            for id in btf.ids where btf.kind(of: id) == .function { names.append(btf.name(of: id)) }
            for n in Set(names).sorted() where matches(full, "\(provider!):" + n) {
                out += "\(provider!):\(n)\n"
                if verbose, let proto = try? btf.functionProto(named: n) {
                    for p in proto.params { out += "    " + btf.cTypeName(p.type) + (p.name.isEmpty ? "" : " " + p.name) + "\n" }
                    if provider == "kretfunc" { out += "    " + btf.cTypeName(proto.returnType) + " retval\n" }
                }
            }
        case "kprobe", "kretprobe":
            if case .unsupported(let why) = Features.kprobes() {
                errors.append("cannot list kprobes: kprobes are not supported by this kernel (\(why))")
                return ""
            }
            guard let root = try? Tracefs.path() else {
                errors.append("cannot list kprobes: tracefs cannot be read by this user, nor mounted: run as root")
                return ""
            }
            guard let text = readTextFile("\(root)/available_filter_functions") else {
                errors.append("cannot list kprobes: cannot read \(root)/available_filter_functions: \(String(cString: strerror(errno)))")
                return ""
            }
            var seen = Set<Substring>()
            for line in text.split(separator: "\n") {
                // "name" or "name [module]"
                let name = line.prefix { $0 != " " && $0 != "\t" }
                guard !name.isEmpty, seen.insert(name).inserted else { continue }
                let probe = "\(provider!):\(name)"
                if matches(full, probe) { out += probe + "\n" }
            }
        default:
            break
        }
        return out
    }
}
