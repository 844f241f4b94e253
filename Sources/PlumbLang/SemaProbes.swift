// Attach points resolved against the system: tracepoints (wildcards expanded, args typed
// from the format file), raw tracepoints (tp_btf when BTF knows them), timers, perf
// events, uprobes by symbol or address; kprobes/kfuncs/iters typed from BTF (the runtime
// reports what the kernel cannot attach).
import PlumbBPF
import PlumbBTF

extension Compiler {
    typealias Expansion = (target: ProbeTarget, name: String, kind: ProgramKind, context: ProbeContext)

    func kind(_ section: String) -> ProgramKind {
        // Every section used here is in the table; perf_event is the fallback that cannot fail.
        ProgramKind(section: section) ?? ProgramKind(section: "perf_event")!
    }

    func expand(_ ap: AttachPoint) -> [Expansion] {
        let f = ap.fields
        switch ap.provider {
        case "BEGIN", "END":
            return [(ap.provider == "BEGIN" ? .begin : .end, ap.provider, kind("raw_tp/plumb_" + ap.provider.lowercased()), .none)]
        case "tracepoint":
            guard f.count == 2 else {
                error("tracepoint probes are written tracepoint:CATEGORY:NAME", ap.range)
                return []
            }
            return tracepoints(ap, category: f[0], name: f[1])
        case "rawtracepoint":
            guard let name = f.last, !name.isEmpty, f.count <= 2 else {
                error("raw tracepoint probes are written rawtracepoint:NAME", ap.range)
                return []
            }
            if let btf, let proto = try? btf.rawTracepointProto(name) {
                // The typedef's prototype has no parameter names; the tracepoint's __bpf_trace_<name>
                // function has the same parameters, named.
                var named = proto.params
                if let f = try? btf.functionProto(named: "__bpf_trace_" + name), f.params.count == proto.params.count + 1 {
                    named = Array(f.params.dropFirst())
                }
                let params = named.enumerated().map { (i, p) in
                    (name: p.name.isEmpty ? "arg\(i)" : p.name, type: stype(fromBTF: p.type, btf: btf, space: .btf))
                }
                return [(.btfTracepoint(name: name), "rawtracepoint:" + name, kind("tp_btf/" + name), .btf(params: params, returnType: nil))]
            }
            if env.tracepoints().contains(where: { $0.name == name }) {
                return [(.rawTracepoint(name: name), "rawtracepoint:" + name, kind("raw_tp/" + name), .rawTracepoint)]
            }
            let names = env.tracepoints().map(\.name)
            error("raw tracepoint '\(name)' not found", ap.range,
                  notes: nearest(name, in: names).map { [.init("did you mean '\($0)'?")] } ?? [])
            return []
        case "interval", "profile":
            guard f.count == 2, let n = UInt64(f[1]), n > 0 else {
                error("\(ap.provider) probes are written \(ap.provider):UNIT:N with UNIT one of s, ms, us, hz and N a positive integer", ap.range)
                return []
            }
            var period: UInt64?, hz: UInt64?
            switch f[0] {
            case "s": period = n.multipliedReportingOverflow(by: 1_000_000_000).partialValue
            case "ms": period = n.multipliedReportingOverflow(by: 1_000_000).partialValue
            case "us": period = n.multipliedReportingOverflow(by: 1_000).partialValue
            case "hz": hz = n
            default:
                error("invalid unit '\(f[0])' for \(ap.provider); use s, ms, us or hz", ap.range)
                return []
            }
            let target: ProbeTarget = ap.provider == "interval"
                ? .interval(periodNanoseconds: period ?? (1_000_000_000 / max(1, hz ?? 1)))
                : .profile(frequency: hz, periodNanoseconds: period)
            return [(target, ap.canonical, kind("perf_event"), .perf)]
        case "software", "hardware":
            guard f.count >= 1, !f[0].isEmpty else {
                error("\(ap.provider) probes are written \(ap.provider):EVENT[:COUNT]", ap.range)
                return []
            }
            let known = ap.provider == "software"
                ? ["cpu-clock", "cpu", "task-clock", "page-faults", "faults", "context-switches", "cs", "cpu-migrations", "migrations",
                   "minor-faults", "major-faults", "alignment-faults", "emulation-faults", "dummy", "bpf-output"]
                : ["cpu-cycles", "cycles", "instructions", "cache-references", "cache-misses", "branch-instructions", "branches",
                   "branch-misses", "bus-cycles", "frontend-stalls", "backend-stalls", "ref-cycles"]
            guard known.contains(f[0]) else {
                error("\(f[0]) is not a \(ap.provider) probe", ap.range,   // bpftrace's words
                      notes: nearest(f[0], in: known).map { [.init("did you mean '\($0)'?")] } ?? [])
                return []
            }
            var count: UInt64 = ap.provider == "software" ? 1000 : 1_000_000
            if f.count >= 2 {
                guard let c = UInt64(f[1]), c > 0 else { error("invalid count '\(f[1])'", ap.range); return [] }
                count = c
            }
            let t: ProbeTarget = ap.provider == "software" ? .software(event: f[0], count: count) : .hardware(event: f[0], count: count)
            return [(t, ap.canonical, kind("perf_event"), .perf)]
        case "uprobe", "uretprobe":
            return uprobe(ap)
        case "process":
            return processProbe(ap)
        case "usdt":
            return usdt(ap)
        case "kprobe", "kretprobe":
            guard let fn = f.last, !fn.isEmpty else { error("kprobe probes are written kprobe:FUNCTION[+OFFSET]", ap.range); return [] }
            let isReturn = ap.provider == "kretprobe"
            var name = fn, offset: UInt64 = 0
            if let plus = fn.firstIndex(of: "+") {
                name = String(fn[..<plus])
                guard let o = parseInteger(String(fn[fn.index(after: plus)...])) else { error("invalid offset in '\(fn)'", ap.range); return [] }
                offset = o
            }
            if let btf, btf.firstID(named: name, kind: .function) == nil, !name.contains("*") {
                warning("kernel function '\(name)' is not in the kernel's BTF; attaching may fail", ap.range)
            }
            return [(.kprobe(function: name, offset: offset, isReturn: isReturn), ap.canonical,
                     kind((isReturn ? "kretprobe/" : "kprobe/") + name), .registers(isReturn: isReturn, user: false))]
        case "kfunc", "kretfunc":
            guard let fn = f.last, !fn.isEmpty else { error("kfunc probes are written kfunc:FUNCTION", ap.range); return [] }
            let isReturn = ap.provider == "kretfunc"
            guard let btf else { error("kfunc probes need the kernel's BTF", ap.range); return [] }
            guard let proto = try? btf.functionProto(named: fn) else {
                // Only names of similar length can be near: a cheap filter before the distance.
                let names = btf.ids.lazy.filter { btf.kind(of: $0) == .function }.map { btf.name(of: $0) }
                    .filter { abs($0.count - fn.count) <= 2 }
                error("kernel function '\(fn)' not found in BTF", ap.range,
                      notes: nearest(fn, in: Array(names)).map { [.init("did you mean '\($0)'?")] } ?? [])
                return []
            }
            let params = proto.params.map { (name: $0.name, type: stype(fromBTF: $0.type, btf: btf, space: .btf)) }
            let ret = isReturn ? stype(fromBTF: proto.returnType, btf: btf, space: .btf) : nil
            return [(.fentry(function: fn, isReturn: isReturn), ap.canonical,
                     kind((isReturn ? "fexit/" : "fentry/") + fn), .btf(params: params, returnType: ret))]
        case "iter":
            return iterProbe(ap)   // SemaIterators.swift
        case "watchpoint", "asyncwatchpoint":
            // watchpoint:ADDRESS:LENGTH:MODE (mode a combination of r, w, x).
            guard f.count == 3, let address = parseInteger(f[0]), let length = Int(f[1]), [1, 2, 4, 8].contains(length),
                  !f[2].isEmpty, f[2].allSatisfy({ "rwx".contains($0) }) else {
                error("\(ap.provider) probes are written \(ap.provider):ADDRESS:LENGTH:MODE with LENGTH 1, 2, 4 or 8 and MODE of r, w, x", ap.range)
                return []
            }
            guard address != 0 else { error("watchpoint must be attached to a non-zero address", ap.range); return [] }
            return [(.watchpoint(address: address, length: length, mode: f[2], isAsync: ap.provider == "asyncwatchpoint"),
                     ap.canonical, kind("perf_event"), .perf)]
        default:
            error("probe type '\(ap.provider)' is not supported", ap.range)
            return []
        }
    }

    func tracepoints(_ ap: AttachPoint, category: String, name: String) -> [Expansion] {
        if let source = env.tracepointBTF() { return tracepointsFromBTF(ap, category: category, name: name, source: source) }
        var matches: [(String, String)] = []
        if category.contains("*") || name.contains("*") || category.contains("?") || name.contains("?") {
            matches = env.tracepoints().filter { glob(category, $0.category) && glob(name, $0.name) }
                .map { ($0.category, $0.name) }
            if matches.isEmpty {
                error("no tracepoint matches '\(ap.canonical)'", ap.range)
                return []
            }
        } else {
            matches = [(category, name)]
        }
        var out: [Expansion] = []
        for (c, n) in matches {
            guard let text = env.tracepointFormat(c, n) else {
                let all = env.tracepoints()
                let names = all.filter { $0.category == c }.map(\.name)
                var notes: [Diagnostic.Note] = []
                if let near = nearest(n, in: names) { notes.append(.init("did you mean 'tracepoint:\(c):\(near)'?")) }
                else if !all.contains(where: { $0.category == c }), let near = nearest(c, in: Array(Set(all.map(\.category)))) {
                    notes.append(.init("did you mean category '\(near)'?"))
                }
                error("tracepoint not found: \(c):\(n)", ap.range, notes: notes)   // bpftrace's words
                continue
            }
            let fields = TracefsFormat.parse(text)
            out.append((.tracepoint(category: c, name: n), "tracepoint:\(c):\(n)", kind("tracepoint/\(c)/\(n)"),
                        .tracepoint(category: c, name: n, fields: fields)))
        }
        return out
    }

    /// A uprobe's path as `probe` prints it, as bpftrace does: as written when the script gives
    /// a path, resolved when it names a library or a program on PATH (`libc`, `bash`).
    static func shownPath(_ written: String, _ resolved: String) -> String {
        written.contains("/") ? written : resolved
    }

    func uprobe(_ ap: AttachPoint) -> [Expansion] {
        let isReturn = ap.provider == "uretprobe"
        let f = ap.fields
        guard f.count >= 2, !f[0].isEmpty, !f[f.count - 1].isEmpty else {
            error("\(ap.provider) probes are written \(ap.provider):PATH:FUNCTION[+OFFSET] or \(ap.provider):PATH:ADDRESS", ap.range)
            return []
        }
        if let statements = statementProbe(ap) { return statements }
        // `uprobe:PATH:cpp:"ns::Class::method[(params)]"`: every overload, clone and template
        // instance whose demangled name matches (bpftrace's C++ form). A quoted demangled name
        // without `cpp:` (`uprobe:PATH:"ns::C::m"`) is one too: no mangled symbol has `::` or `(`.
        let last = f[f.count - 1]
        let cppPrefix = f.count >= 3 && f[f.count - 2] == "cpp"
        if cppPrefix || last.contains("::") || last.contains("(") {
            let binary = f[0...f.count - (cppPrefix ? 3 : 2)].joined(separator: ":")
            let name = last
            do {
                return try UprobeResolver.resolveCpp(binary: binary, name: name).map { t in
                    (.uprobe(path: t.path, symbol: t.symbol, address: t.address, isReturn: isReturn, pid: nil),
                     "\(ap.provider):\(Compiler.shownPath(binary, t.path)):cpp:\(name)", kind(ap.provider), ProbeContext.registers(isReturn: isReturn, user: true))
                }
            } catch {
                self.error("cannot attach \(ap.provider) '\(ap.text)': \(error)", ap.range)
                return []
            }
        }
        let binary = f[0...f.count - 2].joined(separator: ":")
        var fn = f[f.count - 1]
        var extra: UInt64 = 0
        if let plus = fn.firstIndex(of: "+") {
            guard let o = parseInteger(String(fn[fn.index(after: plus)...])) else { error("invalid offset in '\(fn)'", ap.range); return [] }
            extra = o
            fn = String(fn[..<plus])
        }
        let ctx = ProbeContext.registers(isReturn: isReturn, user: true)
        if let address = parseInteger(fn), fn.first?.isNumber == true {
            guard let path = env.resolveBinary(binary) else { error("binary '\(binary)' not found", ap.range); return [] }
            return [(.uprobe(path: path, symbol: nil, address: address &+ extra, isReturn: isReturn, pid: nil),
                     "\(ap.provider):\(Compiler.shownPath(binary, path)):\(fn)", kind(ap.provider), ctx)]
        }
        // `uprobe:PATH:wor*`: one probe per function symbol of the binary the pattern matches.
        if fn.contains("*") || fn.contains("?") {
            let matches = env.functionNames(binary).filter { glob(fn, $0) }.sorted()
            var out: [Expansion] = []
            for name in matches {
                guard let r = try? env.resolveUprobe(binary, name) else { continue }
                out.append((.uprobe(path: r.path, symbol: name, address: r.address &+ extra, isReturn: isReturn, pid: nil),
                            "\(ap.provider):\(Compiler.shownPath(binary, r.path)):\(name)", kind(ap.provider), ctx))
            }
            if out.isEmpty { error("no function of '\(binary)' matches '\(fn)'", ap.range) }
            return out
        }
        do {
            let r = try env.resolveUprobe(binary, fn)
            let name = "\(ap.provider):\(Compiler.shownPath(binary, r.path)):\(f[f.count - 1])"
            userTypes.probeSites[name] = (r.path, r.address &+ extra)
            if extra == 0 { userTypes.functions[name] = (r.path, fn) }
            return [(.uprobe(path: r.path, symbol: fn, address: r.address &+ extra, isReturn: isReturn, pid: nil),
                     name, kind(ap.provider), ctx)]
        } catch {
            // A path that is not there, in bpftrace's words (a bare name keeps the folders searched).
            if binary.contains("/"), env.resolveBinary(binary) == nil {
                self.error("\(ap.provider) target file '\(binary)' does not exist or is not executable", ap.range)
                return []
            }
            let near = nearest(fn, in: env.functionNames(binary)).map { [Diagnostic.Note("did you mean '\($0)'?")] } ?? []
            self.error("cannot attach \(ap.provider) '\(ap.text)': \(error)", ap.range, notes: near)
            return []
        }
    }
}

/// Shell-style `*`/`?` matching for wildcard attach points.
func glob(_ pattern: String, _ s: String) -> Bool {
    let p = Array(pattern.utf8), t = Array(s.utf8)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) { pi += 1; ti += 1 }
        else if pi < p.count && p[pi] == UInt8(ascii: "*") { star = pi; mark = ti; pi += 1 }
        else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
        else { return false }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
}

/// Decimal or 0x hex.
func parseInteger(_ s: String) -> UInt64? {
    if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt64(s.dropFirst(2), radix: 16) }
    return UInt64(s)
}
