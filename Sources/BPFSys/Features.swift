#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
    public static func programType(_ type: ProgramType) -> FeatureSupport {
        var a = ProgramAttributes(type: type, instructions: returnZero)
        switch type {
        case .unspec:
            return .unsupported("not a program type")
        case .tracing:
            return fentry()
        case .lsm:
            guard let id = try? KernelBTFIndex.shared().typeID(named: "bpf_lsm_file_open", kind: 12) else {
                return .unknown("no vmlinux BTF or no bpf_lsm_file_open to probe with")
            }
            a.expectedAttachType = .lsmMac
            a.attachBTFID = id
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

    /// fentry: load a tracing program against a real kernel function and report what the kernel says.
    public static func fentry() -> FeatureSupport {
        let id: UInt32
        do {
            guard let found = try KernelBTFIndex.shared().typeID(named: "bpf_fentry_test1", kind: 12)
                    ?? KernelBTFIndex.shared().typeID(named: "do_nanosleep", kind: 12) else {
                return .unknown("no probe target function in vmlinux BTF")
            }
            id = found
        } catch {
            return .unknown("vmlinux BTF unreadable: \(error)")
        }
        let a = ProgramAttributes(type: .tracing, instructions: returnZero, expectedAttachType: .traceFentry, attachBTFID: id)
        do {
            _ = try Sys.progLoad(a)
            return .supported
        } catch {
            switch error.errno {
            case EPERM?: return .unsupported("loading fentry programs fails with EPERM (BPF trampolines unavailable, or lockdown)")
            case ENOTSUPP_KERNEL?, EOPNOTSUPP?: return .unsupported("kernel has no BPF trampoline for this architecture (ENOTSUPP)")
            default: return classify(error, what: "fentry load")
            }
        }
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

/// Just enough of vmlinux BTF to find a type id by name and kind, for feature probes and
/// tp_btf/fentry attach ids. The full model lives in the BTF module; BPFSys cannot depend on it.
public struct KernelBTFIndex: Sendable {
    private let names: [String: [(kind: UInt8, id: UInt32)]]

    nonisolated(unsafe) private static var cached: KernelBTFIndex?
    private static let lock = LockBox()

    /// Parses /sys/kernel/btf/vmlinux once per process.
    public static func shared() throws(BPFSysError) -> KernelBTFIndex {
        lock.lock(); defer { lock.unlock() }
        if let c = cached { return c }
        let idx = try KernelBTFIndex(bytes: readFile("/sys/kernel/btf/vmlinux"))
        cached = idx
        return idx
    }

    /// The id of the type `name` of BTF kind `kind` (12 FUNC, 8 TYPEDEF, 4 STRUCT, …).
    public func typeID(named name: String, kind: UInt8) -> UInt32? {
        names[name]?.first(where: { $0.kind == kind })?.id
    }

    public init(bytes: [UInt8]) throws(BPFSysError) {
        func u32(_ o: Int) -> UInt32? {
            guard o >= 0, o + 4 <= bytes.count else { return nil }
            return UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
        }
        guard bytes.count >= 24, bytes[0] == 0x9f, bytes[1] == 0xeb, let hdr = u32(4), let toff = u32(8), let tlen = u32(12),
              let soff = u32(16), let slen = u32(20) else {
            throw .malformedKernelOutput("vmlinux BTF: bad header (only little-endian BTF is read here)")
        }
        let typeStart = Int(hdr) + Int(toff), typeEnd = typeStart + Int(tlen)
        let strStart = Int(hdr) + Int(soff), strEnd = strStart + Int(slen)
        guard typeEnd <= bytes.count, strEnd <= bytes.count else { throw .malformedKernelOutput("vmlinux BTF: sections out of bounds") }
        var names: [String: [(kind: UInt8, id: UInt32)]] = [:]
        var off = typeStart
        var id: UInt32 = 1
        while off + 12 <= typeEnd {
            guard let nameOff = u32(off), let info = u32(off + 4) else { break }
            let kind = UInt8((info >> 24) & 0x1f), vlen = Int(info & 0xffff)
            let extra: Int
            switch kind {
            case 1, 14, 17: extra = 4                  // INT, VAR, DECL_TAG
            case 3: extra = 12                         // ARRAY
            case 4, 5, 15, 19: extra = vlen * 12       // STRUCT, UNION, DATASEC, ENUM64
            case 6, 13: extra = vlen * 8               // ENUM, FUNC_PROTO
            case 2, 7, 8, 9, 10, 11, 12, 16, 18: extra = 0
            default: throw .malformedKernelOutput("vmlinux BTF: unknown kind \(kind) at type \(id)")
            }
            if nameOff != 0, kind == 12 || kind == 8 || kind == 4 || kind == 5 {
                let s = strStart + Int(nameOff)
                if s < strEnd, let end = bytes[s..<strEnd].firstIndex(of: 0) {
                    names[String(decoding: bytes[s..<end], as: UTF8.self), default: []].append((kind, id))
                }
            }
            off += 12 + extra
            id += 1
        }
        self.names = names
    }
}

/// A pthread mutex in a class, for the one cache above (Synchronization's Mutex would do too).
final class LockBox: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func lock() { pthread_mutex_lock(&m) }
    func unlock() { pthread_mutex_unlock(&m) }
}
