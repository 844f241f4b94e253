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
public enum Features {
    static let returnZero: [UInt8] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]

    private static func classify(_ error: BPFSysError, what: String) -> FeatureSupport {
        switch error.errno {
        case EPERM?: .unknown("\(what): permission denied (EPERM)")
        case EINVAL?, E2BIG?, EOPNOTSUPP?, ENOTSUPP_KERNEL?: .unsupported("\(what) rejected with \(errnoName(error.errno ?? 0))")
        default: .unknown("\(what): \(error)")
        }
    }

    /// Whether programs of `type` can be loaded.
    /// Tracing and LSM programs need a BTF attach target: pass its id (the BPF module's
    /// FeatureReport finds one in the kernel's BTF).
    public static func programType(_ type: ProgramType, attachBTFID: UInt32? = nil) -> FeatureSupport {
        var a = ProgramAttributes(type: type, instructions: returnZero)
        switch type {
        case .unspec:
            return .unsupported("not a program type")
        case .tracing:
            guard let attachBTFID else { return .unknown("tracing programs need an attach target to probe with") }
            return tracingLoad(attachType: .traceFentry, attachBTFID: attachBTFID)
        case .lsm:
            guard let attachBTFID else { return .unknown("LSM programs need an attach target to probe with") }
            a.expectedAttachType = .lsmMac
            a.attachBTFID = attachBTFID
        case .ext, .structOps:
            // Need a target program / struct_ops type; the verifier answering at all proves the type exists.
            a.logLevel = 1
            do { _ = try Sys.progLoad(a); return .supported } catch {
                if case .verifierRejected(_, _, let log, _) = error, !log.isEmpty { return .supported }
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
        case .devmap, .devmapHash, .cpumap, .xskmap, .sockmap, .sockhash, .reuseportSockarray:
            break
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

    /// Whether `programType` programs may call helper `helperID`: a call-only program is loaded and
    /// the verifier log checked for "invalid func"/"unknown func", as bpftool does.
    public static func helper(_ helperID: UInt32, programType: ProgramType) -> FeatureSupport {
        let call: [UInt8] = [0x85, 0, 0, 0] + withUnsafeBytes(of: helperID.littleEndian) { Array($0) }
        var a = ProgramAttributes(type: programType, instructions: call + returnZero, logLevel: 1)
        if programType == .cgroupSockAddr { a.expectedAttachType = .cgroupInet4Connect }
        do {
            _ = try Sys.progLoad(a)
            return .supported
        } catch {
            if case .verifierRejected(_, _, let log, _) = error {
                if log.contains("invalid func ") || log.contains("unknown func ") || log.contains("program of this type cannot use helper") {
                    return .unsupported("helper \(helperID) not available to \(programType) programs")
                }
                // Rejected for another reason (argument checks): the helper itself exists.
                if !log.isEmpty { return .supported }
            }
            return classify(error, what: "helper \(helperID) probe")
        }
    }

    /// kprobes: the kprobe PMU or tracefs kprobe_events must exist (CONFIG_KPROBES).
    public static func kprobes() -> FeatureSupport {
        if fileExists("/sys/bus/event_source/devices/kprobe/type") { return .supported }
        if let t = try? Tracefs.path(mount: false), fileExists(t + "/kprobe_events") { return .supported }
        return .unsupported("no kprobe PMU and no kprobe_events in tracefs (kernel built without CONFIG_KPROBES?)")
    }

    /// uprobes through the uprobe PMU.
    public static func uprobes() -> FeatureSupport {
        fileExists("/sys/bus/event_source/devices/uprobe/type") ? .supported
            : .unsupported("no uprobe PMU (CONFIG_UPROBE_EVENTS off?)")
    }

    /// Tracepoints: tracefs with an events directory.
    public static func tracepoints() -> FeatureSupport {
        do { _ = try Tracefs.path(); return .supported } catch { return .unsupported("\(error)") }
    }

    /// Loads a minimal tracing program (fentry, tp_btf, ...) for the given BTF attach target
    /// and reports what the kernel says. The caller finds the id in the kernel's BTF.
    public static func tracingLoad(attachType: AttachType, attachBTFID: UInt32) -> FeatureSupport {
        let a = ProgramAttributes(type: .tracing, instructions: returnZero, expectedAttachType: attachType, attachBTFID: attachBTFID)
        do {
            _ = try Sys.progLoad(a)
            return .supported
        } catch {
            switch error.errno {
            case EPERM?: return .unsupported("loading \(attachType == .traceRawTP ? "tp_btf" : "fentry/fexit") programs fails with EPERM (BPF trampolines unavailable, or lockdown)")
            case ENOTSUPP_KERNEL?, EOPNOTSUPP?: return .unsupported("kernel has no BPF trampoline for this architecture (ENOTSUPP)")
            default: return classify(error, what: "tracing load")
            }
        }
    }

    /// BPF_LINK_CREATE for perf events (5.15+): probed with a bad fd; EBADF means the command parsed.
    public static func perfEventLinks() -> FeatureSupport {
        do {
            let prog = try Sys.progLoad(ProgramAttributes(type: .tracepoint, instructions: returnZero))
            let bogus = OwnedFD(taking: -1)
            _ = try Sys.linkCreatePerfEvent(prog, perfEvent: bogus)
            return .supported
        } catch {
            return error.errno == EBADF ? .supported : classify(error, what: "perf event link")
        }
    }
}
