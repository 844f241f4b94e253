import PlumbSys
import PlumbBTF
import Glibc

/// How a software perf event samples.
public enum SampleRate: Sendable, Equatable, CustomStringConvertible {
    /// Samples per second (the kernel adjusts the period to match).
    case frequency(UInt64)
    /// One sample every `n` events (nanoseconds for cpu-clock and task-clock).
    case period(UInt64)

    public var description: String {
        switch self {
        case .frequency(let f): "\(f) Hz"
        case .period(let p): "every \(p)"
        }
    }
}

extension Program {
    func require(_ types: [ProgramType], for what: String) throws(BPFError) {
        guard types.contains(type) else {
            throw .programMismatch(program: label, reason: "a \(type) program cannot be attached as \(what); load it as \(types.map { "\($0)" }.joined(separator: " or "))")
        }
    }

    /// Attaches a perf event through a bpf link (5.15+), or PERF_EVENT_IOC_SET_BPF where
    /// LINK_CREATE does not know perf events (or `forcePerfEventIOCTL`). Either way `link`
    /// owns the event afterwards.
    func attachPerf(_ event: consuming OwnedFD, to link: Link, cookie: UInt64) throws(BPFError) {
        if forcePerfEventIOCTL && cookie != 0 {
            throw .invalidArgument("bpf cookies need a bpf link; forcePerfEventIOCTL is set on '\(label)'")
        }
        if !forcePerfEventIOCTL {
            do {
                let l = try Sys.linkCreatePerfEvent(fd, perfEvent: event, cookie: cookie)
                link.add(link: l, perfEvent: event)
                return
            } catch {
                // EINVAL/EOPNOTSUPP: this kernel's LINK_CREATE has no BPF_PERF_EVENT. Anything else is real.
                guard let e = error.errno, e == .invalidArgument || e.isNotSupported else {
                    throw failure(error)
                }
                if cookie != 0 {
                    throw .unsupported(feature: "bpf cookies on perf events", reason: "BPF_LINK_CREATE for perf events failed with \(e.name)",
                                       suggestion: "attach without a cookie, or use a 5.15+ kernel")
                }
            }
        }
        do {
            try Perf.setBPF(event, program: fd)
            try Perf.enable(event)
        } catch {
            throw failure(error)
        }
        link.add(perfEvent: event)
    }

    // MARK: tracepoints

    /// Attaches a tracepoint program to `category:name` (e.g. "syscalls", "sys_enter_openat").
    /// `cookie` is what bpf_get_attach_cookie() returns inside the program.
    public func attachTracepoint(category: String, name: String, cookie: UInt64 = 0) throws(BPFError) -> Link {
        try require([.tracepoint], for: "a tracepoint")
        let what = "tracepoint \(category)/\(name)"
        let event: OwnedFD
        do { event = try Perf.openTracepoint(id: try Tracefs.tracepointID(category: category, name: name)) } catch { throw failure(error) }
        let link = Link(kind: .tracepoint, program: self, description: what)
        try attachPerf(event, to: link, cookie: cookie)
        return link
    }

    /// Attaches a raw_tracepoint program to a raw tracepoint ("sys_enter", "sched_switch": no category).
    public func attachRawTracepoint(name: String, cookie: UInt64 = 0) throws(BPFError) -> Link {
        try require([.rawTracepoint, .rawTracepointWritable], for: "a raw tracepoint")
        let what = "raw_tracepoint \(name)"
        let fd: OwnedFD
        do { fd = try Sys.rawTracepointOpen(self.fd, name: name, cookie: cookie) } catch { throw failure(error) }
        let link = Link(kind: .rawTracepoint, program: self, description: what)
        link.add(link: fd)
        return link
    }

    // MARK: BTF tracing (tp_btf, fentry, fexit, fmod_ret, lsm)

    /// A kernel BTF id as the name users wrote: `btf_trace_sched_switch` -> `sched_switch`,
    /// `bpf_lsm_file_open` -> `file_open`; the id itself when the kernel's BTF is unreadable.
    static func targetName(btfID: UInt32) -> String {
        guard let kernel = try? BTF.kernel() else { return "btf id \(btfID)" }
        let name = kernel.name(of: btfID)
        for prefix in ["btf_trace_", "bpf_lsm_"] where name.hasPrefix(prefix) { return String(name.dropFirst(prefix.count)) }
        return name.isEmpty ? "btf id \(btfID)" : name
    }

    /// Attaches a BTF-typed tracing program to the target it was loaded for (its attach_btf_id):
    /// tp_btf (expected attach type BPF_TRACE_RAW_TP), fentry/fexit/fmod_ret, or an LSM hook.
    public func attachTracing(cookie: UInt64 = 0) throws(BPFError) -> Link {
        try require([.tracing, .lsm], for: "a BTF tracing target")
        let target = attachBTFID == 0 ? "<no attach_btf_id>" : Program.targetName(btfID: attachBTFID)
        let kindName: String
        switch expectedAttachType.map(AttachKind.init) {
        case .rawTP?: kindName = "tp_btf"
        case .trampoline?: kindName = expectedAttachType == .traceFexit ? "fexit" : (expectedAttachType == .modifyReturn ? "fmod_ret" : "fentry")
        default: kindName = type == .lsm ? "lsm" : "tracing"
        }
        let what = "\(kindName) \(target)"
        let link = Link(kind: .tracing, program: self, description: what)
        var firstError: SysError?
        if let attach = expectedAttachType ?? (type == .lsm ? .lsmMac : nil) {
            do {
                link.add(link: try Sys.linkCreateTracing(fd, attachType: attach, cookie: cookie))
                return link
            } catch {
                firstError = error
            }
        }
        // Older kernels (and unknown expected attach types): RAW_TRACEPOINT_OPEN with no name
        // attaches any tracing program to its own target.
        do {
            link.add(link: try Sys.rawTracepointOpen(fd, name: nil, cookie: cookie))
            return link
        } catch {
            let e = firstError ?? error
            if AttachKind(expectedAttachType ?? .traceRawTP) == .trampoline,
               let errno = e.errno, errno.isNotSupported || errno == .notPermitted {
                throw .unsupported(feature: "fentry/fexit attachments", reason: "attaching failed with \(errno == .notPermitted ? "EPERM" : "ENOTSUPP"): no BPF trampoline here; probe says \(Features.fentry())",
                                   suggestion: "use a tracepoint, raw tracepoint or kprobe instead")
            }
            throw .system(e)
        }
    }

    // MARK: uprobes

    /// Attaches a kprobe-type program to `symbol` (+ `offset`) in `binary` — a path, a library
    /// short name ("libc.so.6") or a program in PATH. `pid` -1 probes every process.
    public func attachUprobe(binary: String, symbol: String, offset: UInt64 = 0, retprobe: Bool = false,
                             pid: Int32 = -1, cookie: UInt64 = 0) throws(BPFError) -> Link {
        let target = try UprobeResolver.resolve(binary: binary, symbol: symbol, offset: offset)
        return try attachUprobe(target, retprobe: retprobe, pid: pid, cookie: cookie)
    }

    /// Attaches at a raw file offset of `binary`.
    public func attachUprobe(binary: String, fileOffset: UInt64, retprobe: Bool = false,
                             pid: Int32 = -1, cookie: UInt64 = 0) throws(BPFError) -> Link {
        let path = try UprobeResolver.resolveBinary(binary)
        return try attachUprobe(UprobeTarget(path: path, symbol: nil, address: 0, extraOffset: 0, fileOffset: fileOffset, isIFunc: false),
                                retprobe: retprobe, pid: pid, cookie: cookie)
    }

    public func attachUprobe(_ target: UprobeTarget, retprobe: Bool = false, pid: Int32 = -1, cookie: UInt64 = 0) throws(BPFError) -> Link {
        try require([.kprobe], for: "a uprobe")
        let probe = retprobe ? "uretprobe" : "uprobe"
        let support = Features.uprobes()
        guard support.isSupported else {
            throw .unsupported(feature: "uprobes", reason: "\(support)", suggestion: "enable CONFIG_UPROBE_EVENTS")
        }
        let what = "\(probe) \(target)\(pid >= 0 ? " pid \(pid)" : "")"
        // A task-bound event takes cpu -1; an all-process one must name a CPU (the probe fires on all anyway).
        let event: OwnedFD
        do {
            event = try Perf.openUprobe(path: target.path, offset: target.fileOffset, retprobe: retprobe, pid: pid < 0 ? -1 : pid, cpu: pid < 0 ? 0 : -1)
        } catch { throw failure(error) }
        let link = Link(kind: retprobe ? .uretprobe : .uprobe, program: self, description: what)
        try attachPerf(event, to: link, cookie: cookie)
        return link
    }

    // MARK: kprobes

    /// Attaches a kprobe-type program to kernel function `function` (+ `offset`) via the kprobe PMU.
    public func attachKprobe(function: String, offset: UInt64 = 0, retprobe: Bool = false, cookie: UInt64 = 0) throws(BPFError) -> Link {
        try require([.kprobe], for: "a kprobe")
        let probe = retprobe ? "kretprobe" : "kprobe"
        let support = Features.kprobes()
        guard support.isSupported else {
            throw .unsupported(feature: "kprobes", reason: "CONFIG_KPROBES is off: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events in tracefs",
                               suggestion: "use a tracepoint or fentry instead")
        }
        let what = "\(probe) \(function)\(offset == 0 ? "" : "+0x\(String(offset, radix: 16))")"
        let event: OwnedFD
        do { event = try Perf.openKprobe(symbol: function, offset: offset, retprobe: retprobe, pid: -1, cpu: 0) } catch { throw failure(error) }
        let link = Link(kind: retprobe ? .kretprobe : .kprobe, program: self, description: what)
        try attachPerf(event, to: link, cookie: cookie)
        return link
    }

    // MARK: perf events

    /// Attaches a perf_event program to a software event on every online CPU (or `cpus`):
    /// one event and one link per CPU, all owned by the returned Link.
    public func attachPerfEvent(_ event: Perf.SoftwareEvent, rate: SampleRate, cpus: [Int]? = nil, cookie: UInt64 = 0) throws(BPFError) -> Link {
        try require([.perfEvent], for: "a perf event")
        let list: [Int]
        if let cpus { list = cpus } else {
            do { list = try CPUs.online() } catch { throw failure(error) }
        }
        guard !list.isEmpty else { throw .invalidArgument("no CPUs to attach to") }
        let link = Link(kind: .perfEvent, program: self, description: "perf_event software \(event) \(rate) on \(list.count) CPU\(list.count == 1 ? "" : "s")")
        for cpu in list {
            guard let c = Int32(exactly: cpu) else { throw .invalidArgument("cpu \(cpu)") }
            let ev: OwnedFD
            do {
                switch rate {
                case .frequency(let f): ev = try Perf.openSoftware(event, frequency: f, cpu: c)
                case .period(let p): ev = try Perf.openSoftware(event, period: p, cpu: c)
                }
            } catch { throw failure(error) }
            // A failure part-way leaves `link` to close what was attached so far.
            try attachPerf(ev, to: link, cookie: cookie)
        }
        return link
    }
}
