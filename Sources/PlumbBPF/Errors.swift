import PlumbSys
import PlumbELF
import PlumbBTF
import PlumbAsm

/// Everything PlumbBPF can fail with: reading an object, loading it, and the runtime (maps,
/// programs, links, readers). Errors of the layers below are carried as they are, one level
/// deep (`.system` holds the syscall's command, errno, context and verifier log). Messages
/// name the object at fault and say what to do next.
public enum BPFError: Error, CustomStringConvertible, Sendable {
    /// A system call failed.
    case system(SysError)
    /// A file is not readable as ELF.
    case elf(path: String, ELFError)
    /// An object's BTF is malformed.
    case btf(path: String, BTFError)
    /// A program section's bytes do not decode as BPF instructions.
    case instructions(section: String, BPFAsmError)

    // Reading an object.
    /// The ELF file is for another machine.
    case notBPF(path: String, machine: UInt16)
    case badSection(String, String)
    case badMap(String, String)
    case badProgram(String, String)
    case badRelocation(program: String, slot: Int, String)

    // Loading an object.
    /// The object's byte order is not the running kernel's.
    case wrongByteOrder(path: String, ByteOrder)
    /// Creating, filling or pinning a map of the object failed.
    case mapCreation(map: String, SysError)
    /// The kernel refused a program; `sourceLine` is where the verifier stopped, from line_info.
    case programLoad(program: String, SysError, sourceLine: String?)
    /// A `.kconfig` or `.ksyms` extern has no value on this kernel.
    case missingExtern(String, reason: String)

    // The runtime.
    /// The running kernel lacks what this needs (`feature`), and why we think so.
    case unsupported(feature: String, reason: String, suggestion: String)
    /// A map operation does not apply to this map (wrong type, wrong sizes, ...).
    case mapMismatch(map: String, reason: String)
    /// A program cannot be attached this way (wrong type, missing attach target, ...).
    case programMismatch(program: String, reason: String)
    /// A uprobe target binary or library could not be found.
    case binaryNotFound(name: String, searched: [String])
    /// A uprobe symbol is missing, ambiguous, or has no file offset.
    case symbolNotFound(binary: String, symbol: String, reason: String)
    /// The link was already detached.
    case detached(String)
    /// A perf or ring buffer record did not make sense (a bug, or memory corruption).
    case malformedRecord(String)
    /// The caller passed something that cannot work.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .system(let e):
            return e.description
        case .elf(let p, let e):
            return "\(p): \(e)"
        case .btf(let p, let e):
            return "\(p): \(e)"
        case .instructions(let s, let e):
            return "section \(s): \(e)"
        case .notBPF(let p, let m):
            return "\(p): not a BPF object (ELF machine \(m), expected 247); compile with clang -target bpf"
        case .badSection(let s, let r): return "section \(s): \(r)"
        case .badMap(let m, let r): return "map '\(m)': \(r)"
        case .badProgram(let p, let r): return "program '\(p)': \(r)"
        case .badRelocation(let p, let slot, let r): return "program '\(p)', instruction #\(slot): \(r)"
        case .wrongByteOrder(let p, let order):
            return "\(p) is \(order == .big ? "big" : "little")-endian but this kernel is not; compile with -target bpf (host order) or bpfel/bpfeb to match"
        case .mapCreation(let m, let e): return "creating map '\(m)': \(e)"
        case .programLoad(let p, let e, let line):
            // The system error names the command and the program again: say it once.
            let system = e.description
            var s = "loading program '\(p)': \(system)"
            if case .verifierRejected(_, let name, _, _) = e, system.hasPrefix("BPF_PROG_LOAD of '\(name)' rejected: ") {
                s = "loading program '\(p)': " + system.dropFirst("BPF_PROG_LOAD of '\(name)' rejected: ".count)
            }
            if let line { s += "\n\(line)" }
            return s
        case .missingExtern(let n, let why): return "extern '\(n)': \(why)"
        case .unsupported(let feature, let reason, let suggestion):
            return "\(feature) are not supported by this kernel (\(reason))\(suggestion.isEmpty ? "" : ": \(suggestion)")"
        case .mapMismatch(let map, let reason):
            return "map '\(map)': \(reason)"
        case .programMismatch(let prog, let reason):
            return "program '\(prog)': \(reason)"
        case .binaryNotFound(let name, let searched):
            // PATH often names a folder twice; each is shown once, in search order.
            var seen = Set<String>()
            let folders = searched.filter { seen.insert($0).inserted }
            return "cannot find binary '\(name)'; searched \(folders.isEmpty ? "nothing" : folders.joined(separator: ", ")); pass an absolute path"
        case .symbolNotFound(let binary, let symbol, let reason):
            return "cannot attach to '\(symbol)' in \(binary): \(reason); list its functions with `nm -D \(binary)` (dynamic symbols) or `nm \(binary)` (.symtab)"
        case .detached(let what):
            return "\(what) is already detached"
        case .malformedRecord(let s):
            return "malformed record: \(s)"
        case .invalidArgument(let s):
            return "invalid argument: \(s)"
        }
    }

    /// The system error behind this one, when a system call failed.
    public var systemError: SysError? {
        switch self {
        case .system(let e), .mapCreation(_, let e), .programLoad(_, let e, _): e
        default: nil
        }
    }

    /// The errno behind this error, when a system call failed.
    public var errno: Errno? { systemError?.errno }

    /// The verifier's log when the kernel rejected a program (or the BTF checker's, for BTF).
    public var verifierLog: String? { systemError?.verifierLog }
}
