// What the compiler may ask the running system: kernel BTF, tracefs format files and
// listings, ELF symbols, kallsyms. Closures, so tests can give a fixed world and the
// compiler stays pure.
import PlumbBTF
import PlumbBPF
import PlumbSys
import PlumbELF
import Glibc
import Synchronization

/// The system the script is compiled for.
public struct ProbeEnvironment: Sendable {
    /// The kernel's BTF (nil when the kernel has none: BTF-typed features are errors then).
    public var kernelBTF: @Sendable () -> BTF?
    /// The text of a tracepoint's format file, or nil when the tracepoint does not exist.
    public var tracepointFormat: @Sendable (_ category: String, _ name: String) -> String?
    /// Every tracepoint as (category, name), for wildcards and "did you mean".
    public var tracepoints: @Sendable () -> [(category: String, name: String)]
    /// A function's address in a binary (path or library short name); throws a message.
    public var resolveUprobe: @Sendable (_ binary: String, _ symbol: String) throws -> (path: String, address: UInt64)
    /// The absolute path of a binary or library short name.
    public var resolveBinary: @Sendable (_ binary: String) -> String?
    /// A kernel symbol's address (kaddr), or nil.
    public var kernelSymbol: @Sendable (_ name: String) -> UInt64?
    /// The function names of a binary, for "did you mean" notes on uprobes.
    public var functionNames: @Sendable (_ binary: String) -> [String] = { _ in [] }
    /// A data or function symbol's address in a binary (uaddr), or nil.
    public var userSymbol: @Sendable (_ binary: String, _ symbol: String) -> UInt64? = { _, _ in nil }
    /// Tracepoints from the kernel's BTF when tracefs cannot be read (unprivileged `--check`);
    /// nil when tracefs answers, as it is exact.
    public var tracepointBTF: @Sendable () -> TracepointBTF? = { nil }

    public init(kernelBTF: @escaping @Sendable () -> BTF?,
                tracepointFormat: @escaping @Sendable (String, String) -> String?,
                tracepoints: @escaping @Sendable () -> [(category: String, name: String)],
                resolveUprobe: @escaping @Sendable (String, String) throws -> (path: String, address: UInt64),
                resolveBinary: @escaping @Sendable (String) -> String?,
                kernelSymbol: @escaping @Sendable (String) -> UInt64?) {
        self.kernelBTF = kernelBTF; self.tracepointFormat = tracepointFormat; self.tracepoints = tracepoints
        self.resolveUprobe = resolveUprobe; self.resolveBinary = resolveBinary; self.kernelSymbol = kernelSymbol
    }

    /// The kernel's types for scripts: the file `BPFTRACE_BTF` names (as bpftrace reads it: to
    /// check a script against another kernel's types), else the running kernel's BTF.
    public static func kernelTypes() throws(BTFError) -> BTF {
        guard let path = getenv("BPFTRACE_BTF").map({ String(cString: $0) }), !path.isEmpty else { return try BTF.kernel() }
        return try overrideBTF.withLock { (cached: inout (path: String, btf: BTF)?) throws(BTFError) -> BTF in
            if let cached, cached.path == path { return cached.btf }
            let btf = try BTF(path: path)
            cached = (path, btf)
            return btf
        }
    }
    private static let overrideBTF = Mutex<(path: String, btf: BTF)?>(nil)

    /// The running system: /sys/kernel/btf/vmlinux (or BPFTRACE_BTF), tracefs, ELF files on disk, /proc/kallsyms.
    public static func system() -> ProbeEnvironment {
        var env = ProbeEnvironment(
            kernelBTF: { try? ProbeEnvironment.kernelTypes() },
            tracepointFormat: { category, name in
                guard TracefsFormat.isPlainName(category), TracefsFormat.isPlainName(name),
                      let root = try? Tracefs.path() else { return nil }
                return try? readText("\(root)/events/\(category)/\(name)/format")
            },
            tracepoints: {
                guard let root = try? Tracefs.path(), let text = try? readText("\(root)/available_events") else { return [] }
                return text.split(separator: "\n").compactMap { line in
                    guard let c = line.firstIndex(of: ":") else { return nil }
                    return (String(line[..<c]), String(line[line.index(after: c)...]))
                }
            },
            resolveUprobe: { binary, symbol in
                let t = try UprobeResolver.resolve(binary: libraryName(binary), symbol: symbol)
                return (t.path, t.address)
            },
            resolveBinary: { try? UprobeResolver.resolveBinary(libraryName($0)) },
            kernelSymbol: { name in
                guard let text = try? readText("/proc/kallsyms") else { return nil }
                for line in text.split(separator: "\n") {
                    let parts = line.split(separator: " ")
                    if parts.count >= 3, parts[2] == name { return UInt64(parts[0], radix: 16) }
                }
                return nil
            })
        env.functionNames = { binary in
            guard let path = try? UprobeResolver.resolveBinary(libraryName(binary)), let elf = try? ELFFile(path: path) else { return [] }
            var names = Set<String>()
            for dynamic in [false, true] {
                for s in (try? elf.symbols(dynamic: dynamic)) ?? [] where s.type == ELFSymbol.STT_FUNC && s.sectionIndex != ELFSymbol.SHN_UNDEF {
                    names.insert(String(s.name.prefix { $0 != "@" }))
                }
            }
            return Array(names)
        }
        env.userSymbol = { binary, name in
            guard let path = try? UprobeResolver.resolveBinary(libraryName(binary)), let elf = try? ELFFile(path: path) else { return nil }
            for dynamic in [false, true] {
                for s in (try? elf.symbols(dynamic: dynamic)) ?? []
                where (s.type == ELFSymbol.STT_OBJECT || s.type == ELFSymbol.STT_FUNC) && s.sectionIndex != ELFSymbol.SHN_UNDEF
                    && s.name.prefix(while: { $0 != "@" }) == name {
                    return s.value
                }
            }
            return nil
        }
        env.tracepointBTF = { TracepointBTF.whenTracefsUnreadable { try? BTF.kernel() } }
        return env
    }

    /// An environment with nothing in it (unit tests add what they need).
    public static func empty(btf: BTF? = nil) -> ProbeEnvironment {
        ProbeEnvironment(kernelBTF: { btf }, tracepointFormat: { _, _ in nil }, tracepoints: { [] },
                         resolveUprobe: { b, s in throw CompileFailure("no symbol \(s) in \(b)") },
                         resolveBinary: { _ in nil }, kernelSymbol: { _ in nil })
    }
}

/// A message-carrying error for environment closures.
public struct CompileFailure: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// `libc` -> `libc.so.6` as bpftrace accepts library short names.
func libraryName(_ b: String) -> String {
    if b.contains("/") || b.contains(".so") { return b }
    if b.hasPrefix("lib") { return b == "libc" ? "libc.so.6" : b + ".so" }
    return b
}


/// Options of one compilation (bpftrace's environment variables and flags).
public struct CompileOptions: Sendable {
    /// BPFTRACE_STRLEN: bytes of a string value.
    public var stringLength: Int
    /// `$1`..`$N`.
    public var positionalParameters: [String]
    /// --unsafe: allow system(), signal() and friends.
    public var unsafe: Bool
    /// BPFTRACE_MAP_KEYS_MAX: entries per map.
    public var mapKeysMax: Int
    /// `cpid`: the child started with -c.
    public var childPID: Int32?
    /// Stack frames per kstack/ustack.
    public var stackDepth: Int
    /// -k: programs count failed probe reads and map updates in the error counter map.
    public var reportHelperErrors = false
    /// -kk: probe reads are checked too.
    public var reportReadErrors = false
    /// -p: the traced process (usdt probes without a path mean its binary and libraries).
    public var pid: Int32?
    /// -c: the command (held before exec, so its /proc/PID/exe is not the program yet).
    public var childCommand: String?
    public init(stringLength: Int = 64, positionalParameters: [String] = [], unsafe: Bool = false,
                mapKeysMax: Int = 4096, childPID: Int32? = nil, stackDepth: Int = 127) {
        self.stringLength = stringLength; self.positionalParameters = positionalParameters; self.unsafe = unsafe
        self.mapKeysMax = mapKeysMax; self.childPID = childPID; self.stackDepth = stackDepth
    }
}
