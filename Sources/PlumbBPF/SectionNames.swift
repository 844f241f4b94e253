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
            return
        }
        return nil
    }
}
