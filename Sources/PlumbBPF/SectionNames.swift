import PlumbSys

/// What a program's ELF section name says about it, with libbpf's conventions
/// (tools/lib/bpf/libbpf.c, section_defs): the program type, the expected attach type,
/// and the attach target written after the prefix.
public struct ProgramKind: Sendable, Equatable {
    public var type: ProgramType
    public var expectedAttachType: AttachType?
    /// How the program attaches automatically.
    public var attach: AutoAttach
    /// The text after the prefix: `syscalls/sys_enter_openat`, `libc.so.6:malloc`, ...
    public var target: String
    public var sleepable: Bool
    /// The whole section name, e.g. `tracepoint/syscalls/sys_enter_openat`.
    public var section: String
    /// Where the program attaches, parsed from `target` once, here.
    public var attachPoint: AttachPoint

    public enum AutoAttach: Sendable, Hashable {
        case none, tracepoint, rawTracepoint, tracing, kprobe, kretprobe, uprobe, uretprobe, usdt, perfEvent, lsm
        case kprobeMulti, kretprobeMulti, uprobeMulti, uretprobeMulti, iterator
    }

    /// Section name prefixes; `/` after a prefix separates the target. Order matters: longer
    /// prefixes that share a start with shorter ones come first.
    private static let table: [(prefix: String, type: ProgramType, attachType: AttachType?, attach: AutoAttach, sleepable: Bool)] = [
        ("kprobe.multi", .kprobe, .traceKprobeMulti, .kprobeMulti, false),
        ("kretprobe.multi", .kprobe, .traceKprobeMulti, .kretprobeMulti, false),
        ("uprobe.multi.s", .kprobe, .traceUprobeMulti, .uprobeMulti, true),
        ("uretprobe.multi.s", .kprobe, .traceUprobeMulti, .uretprobeMulti, true),
        ("uprobe.multi", .kprobe, .traceUprobeMulti, .uprobeMulti, false),
        ("uretprobe.multi", .kprobe, .traceUprobeMulti, .uretprobeMulti, false),
        ("kprobe", .kprobe, nil, .kprobe, false),
        ("kretprobe", .kprobe, nil, .kretprobe, false),
        ("uprobe.s", .kprobe, nil, .uprobe, true),
        ("uretprobe.s", .kprobe, nil, .uretprobe, true),
        ("uprobe", .kprobe, nil, .uprobe, false),
        ("uretprobe", .kprobe, nil, .uretprobe, false),
        ("usdt", .kprobe, nil, .usdt, false),
        ("tracepoint", .tracepoint, nil, .tracepoint, false),
        ("tp", .tracepoint, nil, .tracepoint, false),
        ("raw_tracepoint.w", .rawTracepointWritable, nil, .rawTracepoint, false),
        ("raw_tp.w", .rawTracepointWritable, nil, .rawTracepoint, false),
        ("raw_tracepoint", .rawTracepoint, nil, .rawTracepoint, false),
        ("raw_tp", .rawTracepoint, nil, .rawTracepoint, false),
        ("tp_btf", .tracing, .traceRawTP, .tracing, false),
        ("fentry.s", .tracing, .traceFentry, .tracing, true),
        ("fmod_ret.s", .tracing, .modifyReturn, .tracing, true),
        ("fexit.s", .tracing, .traceFexit, .tracing, true),
        ("fentry", .tracing, .traceFentry, .tracing, false),
        ("fmod_ret", .tracing, .modifyReturn, .tracing, false),
        ("fexit", .tracing, .traceFexit, .tracing, false),
        ("freplace", .ext, nil, .none, false),
        ("lsm.s", .lsm, .lsmMac, .lsm, true),
        ("lsm", .lsm, .lsmMac, .lsm, false),
        ("iter.s", .tracing, .traceIter, .iterator, true),
        ("iter", .tracing, .traceIter, .iterator, false),
        ("perf_event", .perfEvent, nil, .perfEvent, false),
        ("syscall", .syscall, nil, .none, true),
        ("socket", .socketFilter, nil, .none, false),
        ("xdp", .xdp, AttachType(rawValue: 37), .none, false),
        ("tc", .schedCls, nil, .none, false),
        ("classifier", .schedCls, nil, .none, false),
        ("action", .schedAct, nil, .none, false),
        ("cgroup_skb/ingress", .cgroupSkb, AttachType(rawValue: 0), .none, false),
        ("cgroup_skb/egress", .cgroupSkb, AttachType(rawValue: 1), .none, false),
        ("cgroup/skb", .cgroupSkb, nil, .none, false),
        ("cgroup/sock_create", .cgroupSock, AttachType(rawValue: 2), .none, false),
        ("cgroup/sock", .cgroupSock, AttachType(rawValue: 2), .none, false),
        ("cgroup/dev", .cgroupDevice, AttachType(rawValue: 6), .none, false),
        ("cgroup/connect4", .cgroupSockAddr, .cgroupInet4Connect, .none, false),
        ("cgroup/sysctl", .cgroupSysctl, AttachType(rawValue: 18), .none, false),
        ("cgroup/getsockopt", .cgroupSockopt, .cgroupGetsockopt, .none, false),
        ("cgroup/setsockopt", .cgroupSockopt, .cgroupSetsockopt, .none, false),
        ("sockops", .sockOps, AttachType(rawValue: 3), .none, false),
        ("sk_skb/stream_parser", .skSkb, AttachType(rawValue: 4), .none, false),
        ("sk_skb/stream_verdict", .skSkb, AttachType(rawValue: 5), .none, false),
        ("sk_skb", .skSkb, nil, .none, false),
        ("sk_msg", .skMsg, AttachType(rawValue: 7), .none, false),
        ("sk_lookup", .skLookup, .skLookup, .none, false),
        ("flow_dissector", .flowDissector, AttachType(rawValue: 17), .none, false),
        ("netfilter", .netfilter, .netfilter, .none, false),
        ("struct_ops", .structOps, nil, .none, false),
    ]

    /// Classifies a section name; nil when the name is not a known program section.
    public init?(section: String) {
        for row in ProgramKind.table {
            guard section.hasPrefix(row.prefix) else { continue }
            let rest = section.dropFirst(row.prefix.count)
            // A prefix matches the whole name, or is followed by '/' (or '+', libbpf's
            // alternative separator for some kinds).
            guard rest.isEmpty || rest.first == "/" || rest.first == "+" else { continue }
            type = row.type
            expectedAttachType = row.attachType
            attach = row.attach
            sleepable = row.sleepable
            target = rest.isEmpty ? "" : String(rest.dropFirst())
            self.section = section
            attachPoint = AttachPoint(row.attach, target: target)
            return
        }
        return nil
    }
}

/// Where a program attaches, as its section name says (libbpf's auto-attach rules).
public enum AttachPoint: Sendable, Equatable {
    /// The kind does not attach by itself (socket filters, XDP, iterators, multi-probes, ...).
    case none
    /// The kind attaches, but the section names no target (`SEC("uprobe")`, as in libbpf):
    /// the caller attaches it with `attachUprobe`, `attachTracepoint`, ...
    case unspecified
    /// The section's target does not parse; `expected` is the form it should take.
    case malformed(expected: String)
    case tracepoint(category: String, name: String)
    case rawTracepoint(String)
    /// tp_btf, fentry/fexit/fmod_ret and LSM: the target is the program's BTF attach id.
    case btf
    case uprobe(UprobeSectionTarget, retprobe: Bool)
    case kprobe(function: String, offset: UInt64, retprobe: Bool)
    /// A software perf event on every CPU; which one and how often come with the attach options.
    case perfEvent
    /// Kinds that would attach but that this library cannot attach yet.
    case unsupported(ProgramKind.AutoAttach)

    /// Whether `Object.attach` attaches it (or reports why it cannot), rather than skipping it.
    public var isAutomatic: Bool {
        switch self {
        case .none, .unspecified: false
        default: true
        }
    }

    init(_ attach: ProgramKind.AutoAttach, target: String) {
        let needsTarget: Set<ProgramKind.AutoAttach> = [.tracepoint, .rawTracepoint, .uprobe, .uretprobe, .kprobe, .kretprobe, .usdt]
        if target.isEmpty && needsTarget.contains(attach) {
            self = .unspecified
            return
        }
        switch attach {
        case .tracepoint:
            let parts = target.split(separator: "/", maxSplits: 1).map(String.init)
            self = parts.count == 2 ? .tracepoint(category: parts[0], name: parts[1]) : .malformed(expected: "tracepoint/<category>/<name>")
        case .rawTracepoint:
            self = .rawTracepoint(target)
        case .tracing, .lsm:
            self = .btf
        case .uprobe, .uretprobe:
            if let t = UprobeSectionTarget(target) {
                self = .uprobe(t, retprobe: attach == .uretprobe)
            } else {
                self = .malformed(expected: "uprobe/<binary>:<function>[+offset]")
            }
        case .kprobe, .kretprobe:
            var function = target, offset: UInt64 = 0
            if let plus = target.lastIndex(of: "+") {
                function = String(target[..<plus])
                let n = target[target.index(after: plus)...]
                offset = (n.hasPrefix("0x") ? UInt64(n.dropFirst(2), radix: 16) : UInt64(n)) ?? 0
            }
            self = .kprobe(function: function, offset: offset, retprobe: attach == .kretprobe)
        case .perfEvent:
            self = .perfEvent
        case .usdt, .kprobeMulti, .kretprobeMulti:
            self = .unsupported(attach)
        case .uprobeMulti, .uretprobeMulti, .iterator, .none:
            self = .none
        }
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
