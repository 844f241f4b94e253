import PlumbSys

/// How `attachAll` attaches what the section name leaves open.
public struct AttachOptions: Sendable {
    /// uprobes: only this process (-1: every process running the binary).
    public var pid: Int32 = -1
    /// perf_event programs: the software event and its rate on every online CPU.
    public var perfEvent: Perf.SoftwareEvent = .cpuClock
    public var perfRate: SampleRate = .frequency(99)

    public init(pid: Int32 = -1, perfEvent: Perf.SoftwareEvent = .cpuClock, perfRate: SampleRate = .frequency(99)) {
        self.pid = pid
        self.perfEvent = perfEvent
        self.perfRate = perfRate
    }
}

/// A uprobe section target: `binary:function[+offset]` or `binary:0xoffset` (libbpf's form).
public struct UprobeSectionTarget: Sendable, Equatable {
    public var binary: String
    public var function: String?
    public var offset: UInt64

    public init?(_ target: String) {
        guard let colon = target.firstIndex(of: ":") else { return nil }
        binary = String(target[..<colon])
        var rest = String(target[target.index(after: colon)...])
        guard !binary.isEmpty, !rest.isEmpty else { return nil }
        offset = 0
        if let plus = rest.lastIndex(of: "+") {
            let number = rest[rest.index(after: plus)...]
            guard let n = number.hasPrefix("0x") ? UInt64(number.dropFirst(2), radix: 16) : UInt64(number) else { return nil }
            offset = n
            rest = String(rest[..<plus])
        }
        if rest.hasPrefix("0x"), let n = UInt64(rest.dropFirst(2), radix: 16) {
            function = nil
            offset += n
        } else {
            function = rest
        }
    }
}

extension BPFObject {
    /// Attaches one loaded program as its section name says (libbpf's auto-attach).
    /// Returns nil for programs whose section names no target (`SEC("uprobe")`, as in libbpf:
    /// the caller attaches those) or whose kind does not auto-attach.
    public func attach(_ name: String, options: AttachOptions = AttachOptions()) throws(BPFError) -> Link? {
        guard let spec = spec.program(name) else { throw .invalidArgument("no program '\(name)' in \(self.spec.name)") }
        let program = try self.program(name)
        let kind = spec.kind
        let target = kind.target
        func needTarget(_ form: String) throws(BPFError) -> Never {
            throw .programMismatch(program: name, reason: "section '\(spec.section)' names no attach target; write it as \(form)")
        }
        let needsTarget: Set<ProgramKind.AutoAttach> = [.tracepoint, .rawTracepoint, .uprobe, .uretprobe, .kprobe, .kretprobe, .usdt]
        if target.isEmpty && needsTarget.contains(kind.attach) { return nil }
        switch kind.attach {
        case .tracepoint:
            let parts = target.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { try needTarget("tracepoint/<category>/<name>") }
            return try program.attachTracepoint(category: parts[0], name: parts[1])
        case .rawTracepoint:
            guard !target.isEmpty else { try needTarget("raw_tp/<name>") }
            return try program.attachRawTracepoint(name: target)
        case .tracing, .lsm:
            return try program.attachTracing()
        case .uprobe, .uretprobe:
            guard let t = UprobeSectionTarget(target) else { try needTarget("uprobe/<binary>:<function>[+offset]") }
            if let f = t.function {
                return try program.attachUprobe(binary: t.binary, symbol: f, offset: t.offset, retprobe: kind.attach == .uretprobe, pid: options.pid)
            }
            return try program.attachUprobe(binary: t.binary, fileOffset: t.offset, retprobe: kind.attach == .uretprobe, pid: options.pid)
        case .kprobe, .kretprobe:
            guard !target.isEmpty else { try needTarget("kprobe/<function>[+offset]") }
            var function = target, offset: UInt64 = 0
            if let plus = target.lastIndex(of: "+") {
                function = String(target[..<plus])
                let n = target[target.index(after: plus)...]
                offset = (n.hasPrefix("0x") ? UInt64(n.dropFirst(2), radix: 16) : UInt64(n)) ?? 0
            }
            return try program.attachKprobe(function: function, offset: offset, retprobe: kind.attach == .kretprobe)
        case .perfEvent:
            return try program.attachPerfEvent(options.perfEvent, rate: options.perfRate)
        case .usdt:
            throw .unsupported(feature: "USDT auto-attach", reason: "not implemented in `object run` yet", suggestion: "attach the program as a uprobe on the probe's address")
        case .kprobeMulti, .kretprobeMulti:
            throw .unsupported(feature: "multi-kprobes", reason: Features.kprobes().description, suggestion: "use a tracepoint or raw tracepoint")
        case .uprobeMulti, .uretprobeMulti, .iterator, .none:
            return nil
        }
    }
}
