import PlumbSys
import Synchronization
import Glibc

/// A BPF program loaded into the kernel, owned through its fd (unloaded when the last
/// reference — this object or a link using it — goes away).
public final class Program: @unchecked Sendable {
    public let fd: OwnedFD
    public let name: String
    public let type: ProgramType
    /// What the program was loaded for (BPF_PROG_LOAD's expected_attach_type); the kernel does not
    /// report it back, so it is known only when this object did the load or the loader said so.
    public let expectedAttachType: AttachType?
    /// The BTF id of the attach target (tp_btf, fentry/fexit, lsm), 0 when none.
    public let attachBTFID: UInt32
    /// What the program's section name said (type, attach point), when it was loaded from one;
    /// `attach()` attaches there. Nil for programs opened by fd, id or pin.
    public let kind: ProgramKind?
    public let id: UInt32
    /// The kernel's 8-byte program tag (hash of the instructions).
    public let tag: [UInt8]
    private let pin = Mutex<String?>(nil)
    private let ioctlOnly = Mutex(false)

    /// Attach perf events (tracepoints, uprobes, kprobes, software events) with
    /// PERF_EVENT_IOC_SET_BPF instead of a bpf link, as kernels before 5.15 must (libbpf's
    /// force_ioctl_attach). Off by default: links are used whenever the kernel has them.
    public var forcePerfEventIOCTL: Bool {
        get { ioctlOnly.withLock { $0 } }
        set { ioctlOnly.withLock { $0 = newValue } }
    }

    /// Takes ownership of a program fd and reads its identity from the kernel.
    public init(fd: consuming OwnedFD, expectedAttachType: AttachType? = nil, kind: ProgramKind? = nil) throws(BPFError) {
        let info: ProgramInfo
        do { info = try Sys.programInfo(fd) } catch { throw .system(error) }
        guard let type = info.type else {
            throw .programMismatch(program: info.name, reason: "unknown program type \(info.rawType) (newer than this library)")
        }
        self.fd = fd
        self.name = info.name
        self.type = type
        self.expectedAttachType = expectedAttachType ?? kind?.expectedAttachType
        self.kind = kind
        self.attachBTFID = info.attachBTFID
        self.id = info.id
        self.tag = info.tag
    }

    /// BPF_PROG_LOAD. A rejected program's error carries the verifier log; programs that need
    /// kernel support this kernel lacks (fentry/fexit trampolines, ...) fail with `.unsupported`.
    /// `kind` is what the program's section said, for `attach()`.
    public static func load(_ attributes: ProgramAttributes, kind: ProgramKind? = nil) throws(BPFError) -> Program {
        var log = ""
        return try load(attributes, log: &log, kind: kind)
    }

    /// Loads and also returns the verifier log (set `logLevel` > 0 to get one on success).
    public static func load(_ attributes: ProgramAttributes, log: inout String, kind: ProgramKind? = nil) throws(BPFError) -> Program {
        let fd: OwnedFD
        do {
            fd = try Sys.progLoad(attributes, log: &log)
        } catch {
            if let unsupported = Self.explainUnsupported(attributes, error) { throw unsupported }
            throw .system(error)
        }
        let program = try Program(fd: fd, expectedAttachType: attributes.expectedAttachType, kind: kind)
        program.verifierLogStore.withLock { [log] in $0 = log }
        return program
    }

    /// What the verifier said when this program loaded (empty unless loaded with a log level).
    public var verifierLog: String { verifierLogStore.withLock { $0 } }
    let verifierLogStore = Mutex<String>("")

    /// Turns "the kernel cannot do this at all" failures into a clear `.unsupported`.
    static func explainUnsupported(_ a: ProgramAttributes, _ error: SysError) -> BPFError? {
        guard a.type == .tracing || a.type == .lsm, let e = error.errno else { return nil }
        let kind = a.expectedAttachType.map(AttachKind.init) ?? .other
        guard kind == .trampoline || a.type == .lsm else { return nil }
        let feature = a.type == .lsm ? "BPF LSM programs" : "fentry/fexit programs"
        switch e {
        case .notPermitted, .kernelNotSupported, .notSupported:
            let probe = Features.fentry()
            if !probe.isSupported || e != .notPermitted {
                return .unsupported(feature: feature,
                                    reason: "loading failed with \(e == .notPermitted ? "EPERM" : "ENOTSUPP"): no BPF trampolines here (they need CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS and the JIT; lockdown blocks them too)",
                                    suggestion: "use a tracepoint, raw tracepoint or kprobe instead")
            }
            return nil
        default:
            return nil
        }
    }

    /// Opens an existing program by kernel id (needs CAP_SYS_ADMIN).
    public convenience init(id: UInt32) throws(BPFError) {
        let found: OwnedFD?
        do { found = try Sys.fd(byID: id, kind: .program) } catch { throw .system(error) }
        guard let fd = found else { throw .system(.syscall(command: .progGetFDByID, errno: .noSuchFileOrDirectory, context: "no program with id \(id)")) }
        try self.init(fd: fd)
    }

    /// Opens a program pinned on bpffs.
    public convenience init(pinned path: String, expectedAttachType: AttachType? = nil) throws(BPFError) {
        let fd: OwnedFD
        do { fd = try Sys.objGet(path: path) } catch { throw .system(error) }
        try self.init(fd: fd, expectedAttachType: expectedAttachType)
    }

    /// Current kernel info (run counts need BPF_ENABLE_STATS or kernel.bpf_stats_enabled).
    public func info() throws(BPFError) -> ProgramInfo {
        do { return try Sys.programInfo(fd) } catch { throw failure(error) }
    }

    /// BPF_PROG_TEST_RUN: runs the program once (or `repeat` times) on `data`/`context`.
    /// Program types that do not support it throw with the kernel's EOPNOTSUPP/ENOTSUPP.
    public func testRun(data: [UInt8] = [], dataOutSize: Int = 0, context: [UInt8] = [], contextOutSize: Int = 0,
                        repeat count: UInt32 = 0, flags: UInt32 = 0, cpu: UInt32 = 0) throws(BPFError) -> TestRunResult {
        do {
            return try Sys.progTestRun(fd, data: data, dataOutSize: dataOutSize, context: context, contextOutSize: contextOutSize,
                                       repeat: count, flags: flags, cpu: cpu)
        } catch { throw failure(error) }
    }

    public var pinnedPath: String? { pin.withLock { $0 } }

    public func pin(_ path: String) throws(BPFError) {
        do { try Sys.objPin(fd, path: path) } catch { throw failure(error) }
        pin.withLock { $0 = path }
    }

    public func unpin(_ path: String? = nil) throws(BPFError) {
        guard let target = path ?? pinnedPath else { throw .invalidArgument("program '\(name)' is not pinned") }
        if unlink(target) != 0 { throw .system(.file(path: target, errno: .current)) }
        pin.withLock { if $0 == target { $0 = nil } }
    }

    var label: String { name.isEmpty ? "\(type) program id \(id)" : name }

    /// A failed syscall on this program, named by the program rather than its fd.
    func failure(_ error: SysError) -> BPFError { .system(error.naming("program '\(label)'")) }
}

/// Groups of expected attach types that attach the same way.
enum AttachKind: Equatable {
    case rawTP, trampoline, other

    init(_ t: AttachType) {
        switch t {
        case .traceRawTP: self = .rawTP
        case .traceFentry, .traceFexit, .modifyReturn: self = .trampoline
        default: self = .other
        }
    }
}
