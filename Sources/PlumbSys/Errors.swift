import Glibc

/// An errno value with the names swift-system gives them (`Errno.permissionDenied` is EPERM).
/// Named constants instead of bare Int32s, so a switch over kernel answers reads as English.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let notPermitted = Errno(rawValue: EPERM)
    /// swift-system's name for EPERM is `notPermitted`; `permissionDenied` is EACCES there.
    public static let permissionDenied = Errno(rawValue: EACCES)
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
    public static let noSuchProcess = Errno(rawValue: ESRCH)
    public static let interrupted = Errno(rawValue: EINTR)
    public static let badFileDescriptor = Errno(rawValue: EBADF)
    public static let resourceTemporarilyUnavailable = Errno(rawValue: EAGAIN)
    public static let noMemory = Errno(rawValue: ENOMEM)
    public static let badAddress = Errno(rawValue: EFAULT)
    public static let resourceBusy = Errno(rawValue: EBUSY)
    public static let fileExists = Errno(rawValue: EEXIST)
    public static let noSuchDevice = Errno(rawValue: ENODEV)
    public static let invalidArgument = Errno(rawValue: EINVAL)
    public static let tooManyOpenFiles = Errno(rawValue: EMFILE)
    public static let noSpace = Errno(rawValue: ENOSPC)
    public static let argListTooLong = Errno(rawValue: E2BIG)
    public static let outOfRange = Errno(rawValue: ERANGE)
    public static let noFunction = Errno(rawValue: ENOSYS)
    /// EOPNOTSUPP (the same number as ENOTSUP on Linux), as swift-system names it.
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)
    public static let tooManySymbolicLinkLevels = Errno(rawValue: ELOOP)
    /// The kernel-internal ENOTSUPP (524): not in libc headers, but bpf(2) returns it to user space.
    public static let kernelNotSupported = Errno(rawValue: 524)

    /// The calling thread's errno now.
    public static var current: Errno { Errno(rawValue: Glibc.errno) }

    /// Either way a kernel says "this object cannot do that": ENOTSUPP or EOPNOTSUPP.
    public var isNotSupported: Bool { self == .notSupported || self == .kernelNotSupported }

    /// "EPERM", or "errno 123" for values without a symbolic name here.
    public var name: String {
        switch rawValue {
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case ESRCH: "ESRCH"
        case EINTR: "EINTR"
        case EBADF: "EBADF"
        case EAGAIN: "EAGAIN"
        case ENOMEM: "ENOMEM"
        case EACCES: "EACCES"
        case EFAULT: "EFAULT"
        case EBUSY: "EBUSY"
        case EEXIST: "EEXIST"
        case ENODEV: "ENODEV"
        case EINVAL: "EINVAL"
        case EMFILE: "EMFILE"
        case ENOSPC: "ENOSPC"
        case E2BIG: "E2BIG"
        case ERANGE: "ERANGE"
        case ENOSYS: "ENOSYS"
        case EOPNOTSUPP: "EOPNOTSUPP"
        case ELOOP: "ELOOP"
        case 524: "ENOTSUPP"
        default: "errno \(rawValue)"
        }
    }

    /// "EPERM (Operation not permitted)".
    public var description: String {
        let text = self == .kernelNotSupported ? "Operation not supported" : String(cString: strerror(rawValue))
        return "\(name) (\(text))"
    }
}

/// Everything that can go wrong talking to the kernel. Each case carries what a caller needs
/// to decide (the command, the errno, what was being done, the verifier's log), so the layers
/// above pass it on rather than wrap it. Messages say what to try next.
public enum SysError: Error, CustomStringConvertible, Sendable {
    /// A bpf(2) command failed.
    case syscall(command: BPFCommand, errno: Errno, context: String)
    /// The running kernel does not implement this command for this object (ENOTSUPP/EOPNOTSUPP).
    case unsupported(command: BPFCommand, errno: Errno, context: String)
    /// BPF_PROG_LOAD rejected the program; `log` is the verifier's output.
    case verifierRejected(errno: Errno, program: String, log: String, truncated: Bool)
    /// BPF_BTF_LOAD rejected the BTF blob; `log` is the kernel's BTF checker output.
    case btfRejected(errno: Errno, log: String)
    /// perf_event_open(2) failed.
    case perfEventOpen(errno: Errno, context: String)
    /// An ioctl on a perf event fd failed.
    case ioctl(request: String, errno: Errno)
    /// mmap(2) of a perf ring or map failed.
    case mmap(errno: Errno, length: Int)
    /// tracefs has no such tracepoint.
    case tracepointNotFound(category: String, name: String, path: String)
    /// tracefs / bpffs could not be found or mounted.
    case filesystemUnavailable(kind: String, path: String, errno: Errno)
    /// Reading, writing or unlinking a kernel-provided file (or an fd operation) failed.
    case file(path: String, errno: Errno)
    /// The caller passed something the kernel would reject anyway.
    case invalidArgument(String)
    /// The kernel (or a /sys file) said something we could not parse.
    case malformedKernelOutput(String)

    /// The errno behind this error, when there is one.
    public var errno: Errno? {
        switch self {
        case .syscall(_, let e, _), .unsupported(_, let e, _), .verifierRejected(let e, _, _, _),
             .btfRejected(let e, _), .perfEventOpen(let e, _), .ioctl(_, let e), .mmap(let e, _),
             .filesystemUnavailable(_, _, let e), .file(_, let e):
            return e
        case .tracepointNotFound, .invalidArgument, .malformedKernelOutput:
            return nil
        }
    }

    /// The verifier's (or BTF checker's) log of a rejected load; nil for other errors.
    public var verifierLog: String? {
        switch self {
        case .verifierRejected(_, _, let log, _), .btfRejected(_, let log): log
        default: nil
        }
    }

    /// The same error with `what` — a name only the caller knows, such as "map 'counts'" — put
    /// in front of its context, so messages name the object rather than its fd.
    package func naming(_ what: String) -> SysError {
        func join(_ ctx: String) -> String { ctx.isEmpty ? what : "\(what), \(ctx)" }
        switch self {
        case .syscall(let c, let e, let ctx): return .syscall(command: c, errno: e, context: join(ctx))
        case .unsupported(let c, let e, let ctx): return .unsupported(command: c, errno: e, context: join(ctx))
        case .perfEventOpen(let e, let ctx): return .perfEventOpen(errno: e, context: join(ctx))
        default: return self
        }
    }

    public var description: String {
        switch self {
        case .syscall(let cmd, let e, let ctx):
            return "\(cmd) failed: \(e)\(ctx.isEmpty ? "" : " (\(ctx))")\(advice(e, command: cmd))"
        case .unsupported(let cmd, let e, let ctx):
            return "\(cmd) is not supported by this kernel for this object: \(e)\(ctx.isEmpty ? "" : " (\(ctx))"); fall back to the element-at-a-time path"
        case .verifierRejected(let e, let prog, let log, let truncated):
            var s = "BPF_PROG_LOAD of '\(prog)' rejected: \(e)"
            s += advice(e, command: .progLoad)
            if log.isEmpty {
                s += "\n(the verifier produced no log)"
            } else {
                s += "\nverifier log\(truncated ? " (truncated)" : ""):\n" + log
            }
            return s
        case .btfRejected(let e, let log):
            return "BPF_BTF_LOAD rejected the BTF: \(e)\(advice(e, command: .btfLoad))" + (log.isEmpty ? "" : "\nBTF log:\n" + log)
        case .perfEventOpen(let e, let ctx):
            var s = "perf_event_open failed for \(ctx): \(e)"
            switch e {
            case .permissionDenied, .notPermitted: s += " — needs CAP_PERFMON (or CAP_SYS_ADMIN/root), or lower /proc/sys/kernel/perf_event_paranoid"
            case .noSuchFileOrDirectory: s += " — the event does not exist on this kernel (wrong tracepoint id, PMU or symbol offset?)"
            case .noSuchDevice: s += " — this PMU is not available on this machine"
            case .invalidArgument: s += " — the kernel rejected an attribute (pid/cpu combination, config bits, or sample settings)"
            case .tooManyOpenFiles: s += " — too many open files; raise RLIMIT_NOFILE"
            case .noSuchProcess: s += " — no such process"
            default: break
            }
            return s
        case .ioctl(let req, let e):
            var s = "ioctl \(req) failed: \(e)"
            if e == .fileExists { s += " — a program is already attached to this perf event" }
            if e == .invalidArgument { s += " — the program type does not match the perf event (tracepoint needs a tracepoint program, kprobe/uprobe a kprobe program, software events a perf_event program)" }
            if e == .permissionDenied || e == .notPermitted { s += " — needs CAP_PERFMON and CAP_BPF, or root" }
            return s
        case .mmap(let e, let len):
            return "mmap of \(len) bytes failed: \(e) — perf rings need 1 + 2^n pages; ring buffer maps need page-multiple sizes"
        case .tracepointNotFound(let cat, let name, let path):
            let events = path.split(separator: "/").dropLast(2).joined(separator: "/")
            return "tracepoint \(cat):\(name) does not exist (\(path) is missing); list \(events.isEmpty ? "events" : "/" + events) to see the available ones"
        case .filesystemUnavailable(let kind, let path, let e):
            return "\(kind) is not available at \(path): \(e) — mount it (mount -t \(kind == "bpffs" ? "bpf bpf" : "tracefs tracefs") \(path)) or run as root"
        case .file(let path, let e):
            return "cannot access \(path): \(e)"
        case .invalidArgument(let s):
            return "invalid argument: \(s)"
        case .malformedKernelOutput(let s):
            return "unexpected data from the kernel: \(s)"
        }
    }
}

private let permissionAdvice = " — needs CAP_BPF (plus CAP_PERFMON for tracing programs, CAP_NET_ADMIN for networking ones) or root; also check kernel.unprivileged_bpf_disabled and lockdown"

private func advice(_ e: Errno, command: BPFCommand) -> String {
    switch e {
    case .notPermitted:
        return permissionAdvice
    case .permissionDenied where command != .progLoad:
        return permissionAdvice
    case .permissionDenied:
        return " — the verifier refused the program (read the log below)"
    case .argListTooLong:
        return " — too big for this kernel: a size/max_entries/instruction count over its limit, or attribute bytes this (older) kernel does not know are non-zero"
    case .invalidArgument:
        return " — the kernel rejected an argument; check type, sizes, flags and attach type for this command"
    case .noSuchFileOrDirectory:
        return " — no such object, key or id"
    case .badFileDescriptor:
        return " — a file descriptor argument is closed or of the wrong kind"
    case .noMemory:
        return " — the kernel could not allocate (memory cgroup limit, or map too large)"
    case .noSpace:
        return " — no space: the map is full or the log buffer was too small"
    case .fileExists:
        return " — already exists (BPF_NOEXIST update, or a path already pinned)"
    case .resourceBusy:
        return " — object busy (e.g. the map is frozen or being modified)"
    case .notSupported, .kernelNotSupported:
        return " — not supported by this kernel for this object"
    case .noFunction:
        return " — the kernel was built without BPF syscall support"
    default:
        return ""
    }
}
