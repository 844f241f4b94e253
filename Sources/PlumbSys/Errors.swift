import Glibc

/// The kernel's ENOTSUPP (524): not in libc headers, but bpf(2) returns it to user space.
public let ENOTSUPP_KERNEL: Int32 = 524

/// Everything that can go wrong talking to the kernel. Messages say what to try next.
public enum BPFSysError: Error, CustomStringConvertible, Sendable {
    /// A bpf(2) command failed.
    case syscall(command: BPFCommand, errno: Int32, context: String)
    /// The running kernel does not implement this command for this object (ENOTSUPP/EOPNOTSUPP).
    case unsupported(command: BPFCommand, errno: Int32, context: String)
    /// BPF_PROG_LOAD rejected the program; `log` is the verifier's output.
    case verifierRejected(errno: Int32, program: String, log: String, truncated: Bool)
    /// BPF_BTF_LOAD rejected the BTF blob; `log` is the kernel's BTF checker output.
    case btfRejected(errno: Int32, log: String)
    /// perf_event_open(2) failed.
    case perfEventOpen(errno: Int32, context: String)
    /// An ioctl on a perf event fd failed.
    case ioctl(request: String, errno: Int32)
    /// mmap(2) of a perf ring or map failed.
    case mmap(errno: Int32, length: Int)
    /// tracefs has no such tracepoint.
    case tracepointNotFound(category: String, name: String, path: String)
    /// tracefs / bpffs could not be found or mounted.
    case filesystemUnavailable(kind: String, path: String, errno: Int32)
    /// Reading or writing a kernel-provided file failed.
    case file(path: String, errno: Int32)
    /// The caller passed something the kernel would reject anyway.
    case invalidArgument(String)
    /// The kernel (or a /sys file) said something we could not parse.
    case malformedKernelOutput(String)

    /// The errno behind this error, when there is one.
    public var errno: Int32? {
        switch self {
        case .syscall(_, let e, _), .unsupported(_, let e, _), .verifierRejected(let e, _, _, _),
             .btfRejected(let e, _), .perfEventOpen(let e, _), .ioctl(_, let e), .mmap(let e, _),
             .filesystemUnavailable(_, _, let e), .file(_, let e):
            return e
        case .tracepointNotFound, .invalidArgument, .malformedKernelOutput:
            return nil
        }
    }

    public var description: String {
        switch self {
        case .syscall(let cmd, let e, let ctx):
            return "\(cmd) failed: \(errnoName(e))\(ctx.isEmpty ? "" : " (\(ctx))")\(advice(e, command: cmd))"
        case .unsupported(let cmd, let e, let ctx):
            return "\(cmd) is not supported by this kernel for this object: \(errnoName(e))\(ctx.isEmpty ? "" : " (\(ctx))"); fall back to the element-at-a-time path"
        case .verifierRejected(let e, let prog, let log, let truncated):
            var s = "BPF_PROG_LOAD of '\(prog)' rejected: \(errnoName(e))"
            s += advice(e, command: .progLoad)
            if log.isEmpty {
                s += "\n(the verifier produced no log)"
            } else {
                s += "\nverifier log\(truncated ? " (truncated)" : ""):\n" + log
            }
            return s
        case .btfRejected(let e, let log):
            return "BPF_BTF_LOAD rejected the BTF: \(errnoName(e))\(advice(e, command: .btfLoad))" + (log.isEmpty ? "" : "\nBTF log:\n" + log)
        case .perfEventOpen(let e, let ctx):
            var s = "perf_event_open failed for \(ctx): \(errnoName(e))"
            switch e {
            case EACCES, EPERM: s += " — needs CAP_PERFMON (or CAP_SYS_ADMIN/root), or lower /proc/sys/kernel/perf_event_paranoid"
            case ENOENT: s += " — the event does not exist on this kernel (wrong tracepoint id, PMU or symbol offset?)"
            case ENODEV: s += " — this PMU is not available on this machine"
            case EINVAL: s += " — the kernel rejected an attribute (pid/cpu combination, config bits, or sample settings)"
            case EMFILE: s += " — too many open files; raise RLIMIT_NOFILE"
            case ESRCH: s += " — no such process"
            default: break
            }
            return s
        case .ioctl(let req, let e):
            var s = "ioctl \(req) failed: \(errnoName(e))"
            if e == EEXIST { s += " — a program is already attached to this perf event" }
            if e == EINVAL { s += " — the program type does not match the perf event (tracepoint needs a tracepoint program, kprobe/uprobe a kprobe program, software events a perf_event program)" }
            if e == EACCES || e == EPERM { s += " — needs CAP_PERFMON and CAP_BPF, or root" }
            return s
        case .mmap(let e, let len):
            return "mmap of \(len) bytes failed: \(errnoName(e)) — perf rings need 1 + 2^n pages; ring buffer maps need page-multiple sizes"
        case .tracepointNotFound(let cat, let name, let path):
            return "tracepoint \(cat):\(name) does not exist (\(path) is missing); list \(path.split(separator: "/").dropLast(2).joined(separator: "/").isEmpty ? "events" : "/" + path.split(separator: "/").dropLast(2).joined(separator: "/")) to see the available ones"
        case .filesystemUnavailable(let kind, let path, let e):
            return "\(kind) is not available at \(path): \(errnoName(e)) — mount it (mount -t \(kind == "bpffs" ? "bpf bpf" : "tracefs tracefs") \(path)) or run as root"
        case .file(let path, let e):
            return "cannot access \(path): \(errnoName(e))"
        case .invalidArgument(let s):
            return "invalid argument: \(s)"
        case .malformedKernelOutput(let s):
            return "unexpected data from the kernel: \(s)"
        }
    }
}

/// "EPERM (Operation not permitted)".
func errnoName(_ e: Int32) -> String {
    let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EBADF: "EBADF",
        EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY",
        EEXIST: "EEXIST", ENODEV: "ENODEV", EINVAL: "EINVAL", EMFILE: "EMFILE", ENOSPC: "ENOSPC",
        E2BIG: "E2BIG", ERANGE: "ERANGE", ENOSYS: "ENOSYS", EOPNOTSUPP: "EOPNOTSUPP",
        ELOOP: "ELOOP", ENOTSUPP_KERNEL: "ENOTSUPP",
    ]
    let name = names[e] ?? "errno \(e)"
    let text = e == ENOTSUPP_KERNEL ? "Operation not supported" : String(cString: strerror(e))
    return "\(name) (\(text))"
}

private let permissionAdvice = " — needs CAP_BPF (plus CAP_PERFMON for tracing programs, CAP_NET_ADMIN for networking ones) or root; also check kernel.unprivileged_bpf_disabled and lockdown"

private func advice(_ e: Int32, command: BPFCommand) -> String {
    switch e {
    case EPERM:
        return permissionAdvice
    case EACCES where command != .progLoad:
        return permissionAdvice
    case EACCES:
        return " — the verifier refused the program (read the log below)"
    case E2BIG:
        return " — too big for this kernel: a size/max_entries/instruction count over its limit, or attribute bytes this (older) kernel does not know are non-zero"
    case EINVAL:
        return " — the kernel rejected an argument; check type, sizes, flags and attach type for this command"
    case ENOENT:
        return " — no such object, key or id"
    case EBADF:
        return " — a file descriptor argument is closed or of the wrong kind"
    case ENOMEM:
        return " — the kernel could not allocate (memory cgroup limit, or map too large)"
    case ENOSPC:
        return " — no space: the map is full or the log buffer was too small"
    case EEXIST:
        return " — already exists (BPF_NOEXIST update, or a path already pinned)"
    case EBUSY:
        return " — object busy (e.g. the map is frozen or being modified)"
    case ENOTSUPP_KERNEL, EOPNOTSUPP:
        return " — not supported by this kernel for this object"
    case ENOSYS:
        return " — the kernel was built without BPF syscall support"
    default:
        return ""
    }
}
