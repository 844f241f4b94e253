import PlumbBPF
import Glibc

/// `-c CMD`: the command is started held at a barrier, so the tracer can put its pid into the
/// `ProcessTracker` (and attach) before the command runs a single instruction of its own;
/// `release()` lets it exec. The holder is `/bin/sh`, blocked reading a pipe on fd 3, which
/// then execs the command (same pid), so begin/exec records come out as for any process.
public final class HeldCommand: @unchecked Sendable {
    public let pid: Int32
    private var gate: Int32
    private var reaped = false

    public enum Failure: Error, CustomStringConvertible {
        case spawn(String, Int32)
        public var description: String {
            switch self {
            case .spawn(let what, let code): "cannot start '\(what)': \(String(cString: strerror(code))); check the path and permissions"
            }
        }
    }

    /// argv[0] is looked up in PATH by the shell's exec, as `bpftrace -c` does with its command.
    public init(_ argv: [String]) throws(Failure) {
        guard !argv.isEmpty else { throw .spawn("", EINVAL) }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw .spawn(argv[0], errno) }
        // Close-on-exec: no other child of the tracer may hold the gate open.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears FD_CLOEXEC on the copy: the shell gets the read end as fd 3, nothing else.
        posix_spawn_file_actions_adddup2(&actions, fds[0], 3)
        let script = "read -r _ <&3; exec 3<&-; exec \"$@\""
        let args = ["/bin/sh", "-c", script, "sh"] + argv
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, &cargs, environ)
        close(fds[0])
        guard rc == 0 else { close(fds[1]); throw .spawn(argv[0], rc) }
        self.pid = pid
        gate = fds[1]
    }

    /// Lets the command exec (once).
    public func release() {
        guard gate >= 0 else { return }
        _ = write(gate, "\n", 1)
        close(gate)
        gate = -1
    }

    /// Waits for the command; its exit status (128 + signal when killed).
    public func wait() -> Int32 {
        release()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return -1 }
        }
        reaped = true
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    deinit {
        if gate >= 0 { close(gate) }   // EOF: `read` fails, the shell still execs; nothing is left held
        if !reaped { var s: Int32 = 0; _ = waitpid(pid, &s, WNOHANG) }
    }
}

extension ProcessTracker {
    /// The tracer's `-p PID...` / `-c CMD`: tracks the pids (with their descendants) and the
    /// held command, then releases the command so everything it forks is seen.
    public static func start(pids: [Int32], command: HeldCommand?) throws(BPFError) -> ProcessTracker {
        let tracker = try ProcessTracker(pids: pids + (command.map { [$0.pid] } ?? []))
        command?.release()
        return tracker
    }
}
