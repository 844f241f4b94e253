import PlumbSys
import PlumbELF

/// Everything the BPF runtime (maps, programs, links, readers) can fail with.
/// Messages name the object and say what to do next.
public enum BPFError: Error, CustomStringConvertible, Sendable {
    /// A system call failed; the wrapped error carries the command, errno and context.
    case system(BPFSysError, context: String)
    /// The running kernel lacks what this needs (`feature`), and why we think so.
    case unsupported(feature: String, reason: String, suggestion: String)
    /// A map operation does not apply to this map (wrong type, wrong sizes, ...).
    case mapMismatch(map: String, reason: String)
    /// A program cannot be attached this way (wrong type, missing attach target, ...).
    case programMismatch(program: String, reason: String)
    /// A uprobe target binary or library could not be found.
    case binaryNotFound(name: String, searched: [String])
    /// A uprobe target binary could not be read as ELF.
    case binaryUnreadable(path: String, reason: String)
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
        case .system(let e, let ctx):
            return ctx.isEmpty ? e.description : "\(ctx): \(e.description)"
        case .unsupported(let feature, let reason, let suggestion):
            return "\(feature) are not supported by this kernel (\(reason))\(suggestion.isEmpty ? "" : ": \(suggestion)")"
        case .mapMismatch(let map, let reason):
            return "map '\(map)': \(reason)"
        case .programMismatch(let prog, let reason):
            return "program '\(prog)': \(reason)"
        case .binaryNotFound(let name, let searched):
            return "cannot find binary '\(name)'; searched \(searched.isEmpty ? "nothing" : searched.joined(separator: ", ")); pass an absolute path"
        case .binaryUnreadable(let path, let reason):
            return "cannot read \(path) as an ELF file: \(reason)"
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

    /// The errno behind this error, when a system call failed.
    public var errno: Int32? {
        if case .system(let e, _) = self { return e.errno }
        return nil
    }
}

/// Runs a BPFSys call, wrapping its error with what we were doing.
@inline(__always)
func sys<R: ~Copyable>(_ context: @autoclosure () -> String, _ body: () throws(BPFSysError) -> R) throws(BPFError) -> R {
    do {
        return try body()
    } catch {
        throw .system(error, context: context())
    }
}
