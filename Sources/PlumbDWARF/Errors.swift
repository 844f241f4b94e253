import PlumbELF
import PlumbBTF

/// Errors reading DWARF. Each names the section and offset at fault, or says where we looked.
public enum DWARFError: Error, CustomStringConvertible, Sendable, Equatable {
    case elf(ELFError)
    /// The binary carries no .debug_info and no separate debug file was found.
    case noDebugInfo(binary: String, searched: [String])
    /// Bytes ran out: `what` at `offset` in `section`.
    case truncated(section: String, offset: Int, what: String)
    /// A structural problem the reader cannot work around.
    case malformed(section: String, offset: Int, reason: String)
    case unsupportedVersion(section: String, offset: Int, version: Int)
    case unsupportedForm(offset: Int, form: UInt64)
    case unsupportedCompression(section: String, type: UInt32)
    case decompressionFailed(section: String, reason: String)
    /// Nesting or chain deeper than the reader allows (hostile or corrupt input).
    case tooDeep(what: String, limit: Int)
    case noSuchFunction(String)
    case noSuchVariable(String)
    case noSuchType(String)
    case noLineInfo(file: String, line: Int)
    case btf(BTFError)
    /// Only skeleton units: the debug info lives in .dwo files (-gsplit-dwarf).
    case splitDWARF(binary: String, dwo: [String])

    public var description: String {
        switch self {
        case .elf(let e): return e.description
        case .noDebugInfo(let b, let searched):
            var s = "\(b) has no DWARF debug info (no .debug_info section)"
            if searched.isEmpty { return s + "; rebuild it with -g" }
            s += " and no separate debug file was found; looked in:"
            for p in searched { s += "\n  \(p)" }
            return s + "\ninstall the debug symbols (Debian: the -dbg or -dbgsym package) or rebuild with -g"
        case .truncated(let sec, let off, let what):
            return "\(sec) truncated: \(what) at offset \(off) runs past the end of the section"
        case .malformed(let sec, let off, let r): return "\(sec) is malformed at offset \(off): \(r)"
        case .unsupportedVersion(let sec, let off, let v):
            return "\(sec) at offset \(off) has DWARF version \(v); only versions 2 to 5 are supported"
        case .unsupportedForm(let off, let f):
            return "attribute form 0x\(String(f, radix: 16)) at .debug_info offset \(off) is not supported"
        case .unsupportedCompression(let sec, let t):
            let name = t == 2 ? "zstd (ELFCOMPRESS_ZSTD)" : "type \(t)"
            return "\(sec) is compressed with \(name), which this build cannot decompress; "
                + "decompress it first (objcopy --decompress-debug-sections) or recompress with zlib (-gz=zlib)"
        case .decompressionFailed(let sec, let r): return "cannot decompress \(sec): \(r)"
        case .tooDeep(let what, let limit): return "\(what) nests deeper than \(limit) levels; the debug info is corrupt or hostile"
        case .noSuchFunction(let n): return "no function named \(n) in the debug info"
        case .noSuchVariable(let n): return "no global or static variable named \(n) in the debug info"
        case .noSuchType(let n): return "no type named \(n) in the debug info"
        case .noLineInfo(let f, let l): return "no code at \(f):\(l) in the line table (try a nearby line that holds a statement)"
        case .btf(let e): return "building BTF from DWARF: \(e)"
        case .splitDWARF(let b, let dwo):
            return "\(b) uses split DWARF (-gsplit-dwarf): its debug info lives in \(dwo.prefix(3).joined(separator: ", "))"
                + (dwo.count > 3 ? " and \(dwo.count - 3) more" : "")
                + ", which Plumb does not read yet; rebuild without -gsplit-dwarf"
        }
    }
}
