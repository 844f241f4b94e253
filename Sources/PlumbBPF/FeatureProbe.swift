import PlumbAsm
import PlumbSys
import PlumbBTF
import Glibc

/// The answer of one feature probe.
public enum FeatureSupport: Sendable, Equatable, CustomStringConvertible {
    case supported
    case unsupported(String)
    /// The probe could not decide (e.g. no permission to ask).
    case unknown(String)

    public var isSupported: Bool { self == .supported }

    public var description: String {
        switch self {
        case .supported: "yes"
        case .unsupported(let why): "no (\(why))"
        case .unknown(let why): "unknown (\(why))"
        }
    }
}

/// Probes of what the running kernel supports, done the way bpftool does: try the smallest
/// real thing (load a two-instruction program, create a one-entry map) and read the answer.
/// Every probe lives here; `FeatureReport` runs them all for `plumb features`.
public enum Features {
    /// `r0 = 0; exit`, preceded by a call of `helper` when given: the programs probes load.
    static func probeProgram(calling helper: HelperID? = nil) -> [UInt8] {
        var b = ProgramBuilder()
        if let helper { b.emit(.call(helper)) }
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        // Without labels the builder has nothing to reject; an empty program would make the
        // load fail with EINVAL, which classify() reports rather than hides.
        return Instruction.encode((try? b.finish()) ?? [], byteOrder: .host)
    }

    private static func classify(_ error: SysError, what: String) -> FeatureSupport {
        switch error.errno {
        case .notPermitted?: .unknown("\(what): permission denied (EPERM)")
        case .invalidArgument?, .argListTooLong?, .notSupported?, .kernelNotSupported?:
            .unsupported("\(what) rejected with \(error.errno.map(\.description) ?? "")")
        default: .unknown("\(what): \(error)")
        }
    }

    /// Whether programs of `type` can be loaded. Tracing and LSM programs need a BTF attach
    /// target: `attachBTFID` when given, else one found in the kernel's BTF.
    public static func programType(_ type: ProgramType, attachBTFID: UInt32? = nil) -> FeatureSupport {
        var a = ProgramAttributes(type: type, instructions: probeProgram())
        switch type {
        case .unspec:
            return .unsupported("not a program type")
        case .tracing:
            guard let attachBTFID else { return fentry() }
            return tracingLoad(attachType: .traceFentry, attachBTFID: attachBTFID)
        case .lsm:
            let target = attachBTFID ?? (try? BTF.kernel())?.firstID(named: "bpf_lsm_file_open", kind: .function)
            guard let target else { return .unknown("no bpf_lsm_file_open in the kernel's BTF to probe with") }
            a.expectedAttachType = .lsmMac
            a.attachBTFID = target
        case .ext, .structOps:
            // Need a target program / struct_ops type; the verifier answering at all proves the type exists.
            a.logLevel = 1
            do { _ = try Sys.progLoad(a); return .supported } catch {
                if let log = error.verifierLog, !log.isEmpty { return .supported }
                return classify(error, what: "\(type) load")
            }
        case .cgroupSockAddr: a.expectedAttachType = .cgroupInet4Connect
        case .cgroupSockopt: a.expectedAttachType = .cgroupGetsockopt
        case .skLookup: a.expectedAttachType = .skLookup
        case .netfilter: a.expectedAttachType = .netfilter
        case .syscall: a.flags = .sleepable
        default: break
        }
        do {
            _ = try Sys.progLoad(a)
            return .supported
        } catch {
            return classify(error, what: "\(type) program load")
        }
    }

    /// Whether maps of `type` can be created (types that need BTF or special objects answer `.unknown`).
    public static func mapType(_ type: MapType) -> FeatureSupport {
        var a = MapAttributes(type: type, keySize: 4, valueSize: 4, maxEntries: 1)
        switch type {
        case .unspec: return .unsupported("not a map type")
        case .ringbuf, .userRingbuf:
            a.keySize = 0; a.valueSize = 0; a.maxEntries = UInt32(Perf.pageSize)
        case .queue, .stack, .bloomFilter:
            a.keySize = 0
        case .stackTrace:
            a.valueSize = 8
        case .lpmTrie:
            a.keySize = 8; a.flags = .noPrealloc
        case .arrayOfMaps, .hashOfMaps:
            // The inner template must stay open across the create call, so probe right here.
            do {
                let inner = try Sys.mapCreate(MapAttributes(type: .array, keySize: 4, valueSize: 4, maxEntries: 1))
                a.innerMapFD = inner.rawValue
                _ = try Sys.mapCreate(a)
                return .supported
            } catch {
                return classify(error, what: "\(type) map create")
            }
        case .cgroupStorage, .percpuCgroupStorage:
            a.keySize = 16; a.maxEntries = 0
        case .skStorage, .inodeStorage, .taskStorage, .cgrpStorage, .structOps, .arena:
            return .unknown("probing \(type) needs BTF-described values")
        default:
            break
        }
        do {
            _ = try Sys.mapCreate(a)
            return .supported
        } catch {
            return classify(error, what: "\(type) map create")
        }
    }

    /// Whether `programType` programs may call `helper`: a call-only program is loaded and the
    /// verifier log checked for "invalid func"/"unknown func", as bpftool does.
    public static func helper(_ helper: HelperID, programType: ProgramType) -> FeatureSupport {
        var a = ProgramAttributes(type: programType, instructions: probeProgram(calling: helper), logLevel: 1)
        if programType == .cgroupSockAddr { a.expectedAttachType = .cgroupInet4Connect }
        do {
            _ = try Sys.progLoad(a)
            return .supported
        } catch {
            if case .verifierRejected(_, _, let log, _) = error {
                if log.contains("invalid func ") || log.contains("unknown func ") || log.contains("program of this type cannot use helper") {
                    return .unsupported("helper \(helper.rawValue) not available to \(programType) programs")
                }
                // Rejected for another reason (argument checks): the helper itself exists.
                if !log.isEmpty { return .supported }
            }
            return classify(error, what: "helper \(helper.rawValue) probe")
        }
    }

    /// kprobes: the kprobe PMU or tracefs kprobe_events must exist (CONFIG_KPROBES).
    public static func kprobes() -> FeatureSupport {
        if access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0 { return .supported }
        if let t = try? Tracefs.path(mount: false), access(t + "/kprobe_events", F_OK) == 0 { return .supported }
        return .unsupported("no kprobe PMU and no kprobe_events in tracefs (kernel built without CONFIG_KPROBES?)")
    }

    /// uprobes through the uprobe PMU.
    public static func uprobes() -> FeatureSupport {
        access("/sys/bus/event_source/devices/uprobe/type", F_OK) == 0 ? .supported
            : .unsupported("no uprobe PMU (CONFIG_UPROBE_EVENTS off?)")
    }

    /// Tracepoints: tracefs with an events directory.
    public static func tracepoints() -> FeatureSupport {
        do { _ = try Tracefs.path(); return .supported } catch { return .unsupported(error.description) }
    }

    /// fentry: a tracing program attached (by BTF id) to a kernel function.
    public static func fentry() -> FeatureSupport {
        guard let btf = try? BTF.kernel() else { return .unknown("no kernel BTF (/sys/kernel/btf/vmlinux)") }
        guard let id = btf.firstID(named: "bpf_fentry_test1", kind: .function) ?? btf.firstID(named: "do_nanosleep", kind: .function) else {
            return .unknown("no probe target function in the kernel's BTF")
        }
        return tracingLoad(attachType: .traceFentry, attachBTFID: id)
    }

    /// tp_btf: a tracing program attached to `btf_trace_sys_enter`.
    public static func tpBTF() -> FeatureSupport {
        guard let btf = try? BTF.kernel() else { return .unknown("no kernel BTF (/sys/kernel/btf/vmlinux)") }
        guard let id = btf.firstID(named: "btf_trace_sys_enter", kind: .typedef) else {
            return .unknown("no btf_trace_sys_enter in the kernel's BTF")
        }
        return tracingLoad(attachType: .traceRawTP, attachBTFID: id)
    }

    /// Loads a minimal tracing program (fentry, tp_btf, ...) for the given BTF attach target
    /// and reports what the kernel says.
    public static func tracingLoad(attachType: AttachType, attachBTFID: UInt32) -> FeatureSupport {
        let a = ProgramAttributes(type: .tracing, instructions: probeProgram(), expectedAttachType: attachType, attachBTFID: attachBTFID)
        do {
            _ = try Sys.progLoad(a)
            return .supported
        } catch {
            switch error.errno {
            case .notPermitted?: return .unsupported("loading \(attachType == .traceRawTP ? "tp_btf" : "fentry/fexit") programs fails with EPERM (BPF trampolines unavailable, or lockdown)")
            case .kernelNotSupported?, .notSupported?: return .unsupported("kernel has no BPF trampoline for this architecture (ENOTSUPP)")
            default: return classify(error, what: "tracing load")
            }
        }
    }

    /// BPF_LINK_CREATE for perf events (5.15+): probed with a bad fd; EBADF means the command parsed.
    public static func perfEventLinks() -> FeatureSupport {
        do {
            let prog = try Sys.progLoad(ProgramAttributes(type: .tracepoint, instructions: probeProgram()))
            let bogus = OwnedFD(taking: -1)
            _ = try Sys.linkCreatePerfEvent(prog, perfEvent: bogus)
            return .supported
        } catch {
            return error.errno == .badFileDescriptor ? .supported : classify(error, what: "perf event link")
        }
    }

    /// Helper ids and names, from the kernel's own `enum bpf_func_id` (BPF_FUNC_x -> bpf_x).
    public static func helperNames() -> [(HelperID, String)] {
        guard let btf = try? BTF.kernel(), let id = btf.firstID(named: "bpf_func_id", kind: .enum), let t = try? btf.type(id) else {
            return []
        }
        return t.enumerators.compactMap { e in
            guard e.name.hasPrefix("BPF_FUNC_"), e.value > 0, !e.name.hasSuffix("MAX_ID") else { return nil }
            return (HelperID(rawValue: Int32(truncatingIfNeeded: e.value)), "bpf_" + e.name.dropFirst("BPF_FUNC_".count))
        }
    }
}

/// What the running kernel supports, every probe of `Features` run once, for `plumb features`.
public struct FeatureReport: Sendable {
    public var programTypes: [(ProgramType, FeatureSupport)]
    public var mapTypes: [(MapType, FeatureSupport)]
    public var attachKinds: [(String, FeatureSupport)]
    /// Per program type: the helpers it may call (by name), when probed.
    public var helpers: [(ProgramType, [String])]

    /// Probes everything; `helpersFor` names the program types whose helpers are listed
    /// (each helper costs one program load).
    public static func probe(helpersFor: [ProgramType] = [.kprobe, .tracepoint, .rawTracepoint, .perfEvent, .tracing]) -> FeatureReport {
        let programs = ProgramType.allCases.filter { $0 != .unspec }.map { ($0, Features.programType($0)) }
        let maps = MapType.allCases.filter { $0 != .unspec }.map { ($0, Features.mapType($0)) }
        let attach: [(String, FeatureSupport)] = [
            ("tracepoint", Features.tracepoints()),
            ("raw_tracepoint", Features.programType(.rawTracepoint)),
            ("tp_btf", Features.tpBTF()),
            ("uprobe/uretprobe", Features.uprobes()),
            ("perf_event (software)", Features.programType(.perfEvent)),
            ("perf_event links", Features.perfEventLinks()),
            ("kprobe/kretprobe", Features.kprobes()),
            ("fentry/fexit", Features.fentry()),
            ("ring buffer", Features.mapType(.ringbuf)),
        ]
        var helpers: [(ProgramType, [String])] = []
        let names = Features.helperNames()
        for type in helpersFor where programs.contains(where: { $0.0 == type && $0.1.isSupported }) {
            var available: [String] = []
            for (id, name) in names where Features.helper(id, programType: type).isSupported {
                available.append(name)
            }
            helpers.append((type, available))
        }
        return FeatureReport(programTypes: programs, mapTypes: maps, attachKinds: attach, helpers: helpers)
    }

    /// The report as a text table.
    public func table() -> String {
        func rows(_ title: String, _ items: [(String, FeatureSupport)]) -> String {
            let width = max(title.count, items.map(\.0.count).max() ?? 0) + 2
            func pad(_ t: String) -> String { t + String(repeating: " ", count: max(0, width - t.count)) }
            var s = pad(title) + "SUPPORTED\n"
            for (name, support) in items { s += pad(name) + support.description + "\n" }
            return s
        }
        var out = rows("PROGRAM TYPE", programTypes.map { ("\($0.0)", $0.1) }) + "\n"
        out += rows("MAP TYPE", mapTypes.map { ("\($0.0)", $0.1) }) + "\n"
        out += rows("ATTACH KIND", attachKinds)
        for (type, names) in helpers {
            out += "\nHELPERS FOR \(type) PROGRAMS (\(names.count))\n"
            var line = ""
            for n in names {
                if line.count + n.count > 100 { out += line + "\n"; line = "" }
                line += (line.isEmpty ? "  " : " ") + n
            }
            if !line.isEmpty { out += line + "\n" }
        }
        return out
    }
}

extension Features {
    /// uprobe_multi links (6.6+), libbpf's way: a program loaded for BPF_TRACE_UPROBE_MULTI and a
    /// link on "/" (a directory, so the kernel answers EBADF once it parsed the request).
    public static func uprobeMultiLinks() -> FeatureSupport {
        let prog: OwnedFD
        do {
            prog = try Sys.progLoad(ProgramAttributes(type: .kprobe, instructions: probeProgram(), expectedAttachType: .traceUprobeMulti))
        } catch {
            return error.errno == .notPermitted ? .unknown("loading a kprobe program: permission denied (EPERM)")
                : .unsupported("kprobe programs for BPF_TRACE_UPROBE_MULTI do not load (\(error.errno.map(\.description) ?? "no errno")): Linux 6.6+ needed")
        }
        do {
            _ = try Sys.linkCreateUprobeMulti(prog, path: "/", offsets: [0], refCounterOffsets: [0], cookies: [0])
            return .supported
        } catch {
            switch error.errno {
            case .badFileDescriptor?: return .supported
            case .notPermitted?: return .unknown("uprobe_multi link: permission denied (EPERM)")
            default: return .unsupported("uprobe_multi link rejected with \(error.errno.map(\.description) ?? "no errno") (Linux 6.6+ with CONFIG_UPROBES needed)")
            }
        }
    }
}
