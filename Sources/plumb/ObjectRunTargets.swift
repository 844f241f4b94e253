import ArgumentParser
import Plumb
import Glibc
import Dispatch
import Synchronization

/// `object run --attach PROG=uprobe:BINARY:FUNCTION` (also `uretprobe:`, `usdt:BINARY:PROVIDER:NAME`):
/// a target for a program whose section names none (`SEC("uprobe")`, `SEC("usdt")`).
///
/// As with libbpf's `bpf_program__attach_uprobe()`, a program whose section already names a
/// target may be attached elsewhere: `--attach` then replaces the section's target (the program
/// is not also attached where its section says). Any kprobe-type program (uprobe, uretprobe, usdt
/// and kprobe sections) may take any of the three kinds; the kernel sees the same program type.
struct AttachRequest: Sendable {
    enum Target: Sendable {
        case uprobe(UprobeSectionTarget, retprobe: Bool)
        case usdt(binary: String, provider: String?, name: String)
    }

    var program: String
    var target: Target
    /// What the user wrote after `=`, for status lines.
    var text: String

    static let kinds = ["uprobe", "uretprobe", "usdt"]
    static let forms = "PROG=uprobe:BINARY:FUNCTION[+OFFSET], PROG=uretprobe:BINARY:FUNCTION or PROG=usdt:BINARY:PROVIDER:NAME"

    static func parse(_ argument: String) throws -> AttachRequest {
        guard let eq = argument.firstIndex(of: "="), eq != argument.startIndex else {
            throw ValidationError("--attach '\(argument)': write it as \(forms)")
        }
        let program = String(argument[..<eq])
        let text = String(argument[argument.index(after: eq)...])
        guard let colon = text.firstIndex(of: ":") else {
            throw ValidationError("--attach '\(argument)': '\(text)' names no target; write it as \(forms)")
        }
        let kind = String(text[..<colon])
        let rest = String(text[text.index(after: colon)...])
        switch kind {
        case "uprobe", "uretprobe":
            guard let t = UprobeSectionTarget(rest) else {
                throw ValidationError("--attach '\(argument)': write the target as \(kind):BINARY:FUNCTION[+OFFSET] or \(kind):BINARY:0xOFFSET (e.g. \(kind):/bin/bash:readline)")
            }
            return AttachRequest(program: program, target: .uprobe(t, retprobe: kind == "uretprobe"), text: text)
        case "usdt":
            // The binary may hold colons; provider and name do not: split from the end.
            let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }) else {
                throw ValidationError("--attach '\(argument)': write the target as usdt:BINARY:PROVIDER:NAME (or usdt:BINARY:NAME for any provider)")
            }
            let name = parts[parts.count - 1]
            let provider = parts.count >= 3 ? parts[parts.count - 2] : nil
            let binary = parts.dropLast(parts.count >= 3 ? 2 : 1).joined(separator: ":")
            return AttachRequest(program: program, target: .usdt(binary: binary, provider: provider, name: name), text: text)
        default:
            var message = "--attach '\(argument)': unknown attach kind '\(kind)'"
            if let guess = Suggestion.closest(to: kind, in: kinds) { message += "; did you mean '\(guess)'?" }
            throw ValidationError(message + " Use \(forms)")
        }
    }

    /// Checks against the object, before anything is loaded: the program exists (did you mean),
    /// will be loaded, and can take a user-space probe; a binary given as a path exists.
    func check(in spec: ObjectSpec, loading only: [String]) throws {
        let names = spec.programs.map(\.name)
        guard let p = spec.program(program) else {
            var message = "--attach: no program '\(program)' in \(spec.path)."
            if let guess = Suggestion.closest(to: program, in: names) { message += " Did you mean '\(guess)'?" }
            throw ValidationError(message + (names.isEmpty ? " It has none." : " It has: \(names.joined(separator: ", "))"))
        }
        if !only.isEmpty && !only.contains(program) {
            throw ValidationError("--attach: program '\(program)' is not loaded (--program names others); add --program \(program)")
        }
        guard p.kind.type == .kprobe else {
            throw ValidationError("--attach: program '\(program)' (section '\(p.section)') is a \(p.kind.type) program; only uprobe, uretprobe, usdt and kprobe sections can be attached to \(text)")
        }
        let binary: String
        switch target {
        case .uprobe(let t, _): binary = t.binary
        case .usdt(let b, _, _): binary = b
        }
        if binary.contains("/"), access(binary, R_OK) != 0 {
            throw ValidationError("--attach '\(program)=\(text)': cannot read \(binary): \(String(cString: strerror(errno)))")
        }
        // USDT notes are read from the file: a probe that is not there is a usage error, found before loading.
        if case .usdt(let binary, let provider, let name) = target {
            do {
                let (path, all) = try USDTResolver.probes(binary: binary)
                if USDTResolver.matching(all, provider: provider, name: name).isEmpty {
                    let known = Set(all.map(\.qualifiedName)).sorted()
                    let wanted = (provider.map { "\($0):" } ?? "") + name
                    var message = "--attach '\(program)=\(text)': no USDT probe '\(wanted)' in \(path)"
                    if let guess = Suggestion.closest(to: wanted, in: known) { message += "; did you mean '\(guess)'?" }
                    message += known.isEmpty ? " (it has no USDT notes)" : " It has: \(known.prefix(12).joined(separator: ", "))\(known.count > 12 ? ", ..." : "")"
                    throw ValidationError(message)
                }
            } catch let e as ValidationError { throw e } catch {
                throw ValidationError("--attach '\(program)=\(text)': \(Arguments.message(error))")
            }
        }
    }

    /// What the program's section said, when --attach replaces it (for the status line).
    func replacedTarget(in spec: ObjectSpec) -> String? {
        guard let p = spec.program(program), !p.kind.target.isEmpty else { return nil }
        return p.section
    }

    /// Attaches; the returned owner detaches when released.
    func attach(_ program: Program, pid: Int32, usdtSpecs: LibbpfUSDTSpecs? = nil) throws -> (owner: AnyObject, description: String) {
        switch target {
        case .uprobe(let t, let retprobe):
            let link: Link
            if let f = t.function {
                link = try program.attachUprobe(binary: t.binary, symbol: f, offset: t.offset, retprobe: retprobe, pid: pid)
            } else {
                link = try program.attachUprobe(binary: t.binary, fileOffset: t.offset, retprobe: retprobe, pid: pid)
            }
            return (link, link.description)
        case .usdt(let binary, let provider, let name):
            if let usdtSpecs {
                let a = try usdtSpecs.attach(program, binary: binary, provider: provider, name: name, pid: pid)
                return (a, a.description + " (usdt.bpf.h specs)")
            }
            let a = try program.attachUSDT(binary: binary, provider: provider, name: name, pid: pid)
            return (a, a.description)
        }
    }
}

/// `object run --pid-global NAME`: the global the command's pid goes into, checked like --set.
enum PidGlobal {
    /// The bytes of `pid` as global `name`; a type that cannot hold every pid is refused.
    static func value(_ name: String, pid: Int32, in spec: ObjectSpec) throws -> [UInt8] {
        // The largest pid the kernel hands out (PID_MAX_LIMIT, 2^22) must fit, not just this one.
        do { _ = try spec.globalValue(name, "0") } catch {
            throw ValidationError("--pid-global: \(Arguments.message(error))")
        }
        // Text would take "1234" too: the global must be an integer (or an enum) in its BTF.
        if let btf = spec.btf, let v = spec.maps.lazy.compactMap({ $0.dataSection != nil ? $0.variable(name) : nil }).first,
           v.type != 0, let r = try? btf.resolve(v.type), let t = try? btf.type(r), !(t.kind == .int || t.kind.isEnum) {
            throw ValidationError("--pid-global: \(name) is \(btf.cTypeName(v.type)), not an integer; it needs an integer global that holds a pid (__u32, int, __u64, pid_t)")
        }
        do { _ = try spec.globalValue(name, "4194304") } catch {
            throw ValidationError("--pid-global: \(Arguments.message(error)); it needs an integer global that holds a pid (__u32, int, __u64, pid_t)")
        }
        do { return try spec.globalValue(name, String(pid)) } catch {
            throw ValidationError("--pid-global: \(Arguments.message(error))")
        }
    }
}

/// `object run -c CMD`: whether the held command has exited, without reaping it (its
/// `wait()` reaps it and gives the status).
enum CommandState {
    static func hasExited(_ pid: Int32) -> Bool {
        var info = siginfo_t()
        // WNOWAIT: leave it a zombie for HeldCommand.wait().
        let rc = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
        if rc != 0 { return errno == ECHILD }
        // Linux zeroes the info when nothing has happened yet.
        return info.si_signo == SIGCHLD
    }

    /// sh -c CMD, as bpftrace runs -c: words split by the shell, PATH searched.
    static func argv(_ command: String) -> [String] {
        ["/bin/sh", "-c", "exec " + command]
    }
}

/// Ends an event loop when a process exits: checks every 20 ms on a background thread.
final class CommandWatch: Sendable {
    private let done = Atomic<Bool>(false)

    init(pid: Int32, loop: EventLoop) {
        DispatchQueue.global().async { [self] in
            while !done.load(ordering: .relaxed) {
                if CommandState.hasExited(pid) { loop.requestStop(); return }
                usleep(20_000)
            }
        }
    }

    func stop() { done.store(true, ordering: .relaxed) }
}
