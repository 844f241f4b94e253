import PlumbSys

/// How `attach()` attaches what the section name leaves open.
public struct AttachOptions: Sendable {
    /// uprobes: only this process (-1: every process running the binary).
    public var pid: Int32 = -1
    /// perf_event programs: the software event and its rate on every online CPU.
    public var perfEvent: Perf.SoftwareEvent = .cpuClock
    public var perfRate: SampleRate = .frequency(99)
    /// What bpf_get_attach_cookie() returns inside the program.
    public var cookie: UInt64 = 0

    public init(pid: Int32 = -1, perfEvent: Perf.SoftwareEvent = .cpuClock, perfRate: SampleRate = .frequency(99), cookie: UInt64 = 0) {
        self.pid = pid
        self.perfEvent = perfEvent
        self.perfRate = perfRate
        self.cookie = cookie
    }
}

extension Program {
    /// Attaches the program where its section name says (libbpf's auto-attach), e.g.
    /// `try object.program("on_exec").attach()`. Throws `.programMismatch` when the section
    /// names no target or the program was not loaded from a section (opened by fd, id or pin).
    public func attach(_ options: AttachOptions = AttachOptions()) throws(BPFError) -> Link {
        guard let kind else {
            throw .programMismatch(program: label, reason: "it was not loaded from an object section, so where it attaches is unknown; use attachTracepoint, attachUprobe, ...")
        }
        switch kind.attachPoint {
        case .none:
            throw .programMismatch(program: label, reason: "section '\(kind.section)' does not attach automatically")
        case .unspecified:
            throw .programMismatch(program: label, reason: "section '\(kind.section)' names no attach target; attach it with attachTracepoint, attachUprobe, ... or name the target in the section")
        case .malformed(let form):
            throw .programMismatch(program: label, reason: "section '\(kind.section)' names no attach target; write it as \(form)")
        case .tracepoint(let category, let name):
            return try attachTracepoint(category: category, name: name, cookie: options.cookie)
        case .rawTracepoint(let name):
            return try attachRawTracepoint(name: name, cookie: options.cookie)
        case .btf:
            return try attachTracing(cookie: options.cookie)
        case .uprobe(let t, let retprobe):
            if let f = t.function {
                return try attachUprobe(binary: t.binary, symbol: f, offset: t.offset, retprobe: retprobe, pid: options.pid, cookie: options.cookie)
            }
            return try attachUprobe(binary: t.binary, fileOffset: t.offset, retprobe: retprobe, pid: options.pid, cookie: options.cookie)
        case .kprobe(let function, let offset, let retprobe):
            return try attachKprobe(function: function, offset: offset, retprobe: retprobe, cookie: options.cookie)
        case .perfEvent:
            return try attachPerfEvent(options.perfEvent, rate: options.perfRate, cookie: options.cookie)
        case .unsupported(.usdt):
            throw .unsupported(feature: "USDT auto-attach", reason: "not implemented yet", suggestion: "attach the program as a uprobe on the probe's address")
        case .unsupported:
            throw .unsupported(feature: "multi-kprobes", reason: Features.kprobes().description, suggestion: "use a tracepoint or raw tracepoint")
        }
    }
}
