import PlumbELF
import Glibc
import Synchronization

/// Where a uprobe goes: a file and an offset into it (what the uprobe PMU takes).
public struct UprobeTarget: Sendable, Equatable, CustomStringConvertible {
    /// Absolute path of the binary or library.
    public var path: String
    /// The symbol as asked for (nil when attaching at a raw offset).
    public var symbol: String?
    /// The symbol's virtual address in the ELF file (0 for raw offsets).
    public var address: UInt64
    /// Extra bytes past the symbol's start.
    public var extraOffset: UInt64
    /// File offset the probe is placed at (symbol's file offset + extra offset).
    public var fileOffset: UInt64
    /// True when the symbol is an STT_GNU_IFUNC: the probe sits on the resolver, which runs
    /// once at load; probe the implementation (e.g. __memcpy_avx_unaligned) to see calls.
    public var isIFunc: Bool

    public var description: String {
        "\(path):\(symbol ?? "")+0x\(String(extraOffset, radix: 16)) (offset 0x\(String(fileOffset, radix: 16)))"
    }
}

/// Finds uprobe targets the way libbpf does: library short names through the loader's
/// search paths, program names through PATH, symbols through .symtab then .dynsym.
public enum UprobeResolver {
    /// Library folders searched after LD_LIBRARY_PATH (libbpf's list for the common arches).
    public static var standardLibraryPaths: [String] {
        #if arch(x86_64)
        let triple = "x86_64-linux-gnu"
        #elseif arch(arm64)
        let triple = "aarch64-linux-gnu"
        #else
        let triple = "unknown"
        #endif
        return ["/lib64", "/usr/lib64", "/lib/\(triple)", "/usr/lib/\(triple)", "/lib", "/usr/lib"]
    }

    /// The absolute path of `name`: a path (contains "/") is taken as is; a name containing ".so"
    /// is searched in LD_LIBRARY_PATH, /etc/ld.so.cache and the standard library folders;
    /// anything else in PATH, then as a library short name (`libc`) in /etc/ld.so.cache.
    public static func resolveBinary(_ name: String) throws(BPFError) -> String {
        guard !name.isEmpty else { throw .invalidArgument("empty binary name") }
        if name.contains("/") {
            guard access(name, F_OK) == 0 else { throw .binaryNotFound(name: name, searched: [name]) }
            return absolute(name)
        }
        let env = { (v: String) in getenv(v).map { String(cString: $0) } ?? "" }
        let library = name.contains(".so")
        var searched: [String] = []
        // Executables must be executable; libraries only readable.
        func search(_ dirs: [String]) -> String? {
            for dir in dirs where !dir.isEmpty {
                let candidate = dir.hasSuffix("/") ? dir + name : dir + "/" + name
                searched.append(dir)
                if access(candidate, library ? R_OK : X_OK) == 0 { return candidate }
            }
            return nil
        }
        func cache() -> String? {
            searched.append(LDSOCache.path)
            return LDSOCache.shared.lookup(name)
        }
        if library {
            // As the loader: LD_LIBRARY_PATH overrides the cache; the fixed folders come last.
            if let hit = search(env("LD_LIBRARY_PATH").split(separator: ":").map(String.init)) { return hit }
            if let hit = cache() { return hit }
            if let hit = search(standardLibraryPaths) { return hit }
        } else {
            let path = env("PATH")
            if let hit = search((path.isEmpty ? "/usr/local/bin:/usr/bin:/bin" : path).split(separator: ":").map(String.init)) { return hit }
            // Not a program: perhaps a library's short name (`libc`).
            if let hit = cache() { return hit }
        }
        throw .binaryNotFound(name: name, searched: searched)
    }

    /// Resolves `symbol` (optionally `name@VERSION` / `name@@VERSION`) in `binary` to a file offset.
    public static func resolve(binary: String, symbol: String, offset extra: UInt64 = 0) throws(BPFError) -> UprobeTarget {
        let path = try resolveBinary(binary)
        // The tracer resolves each probe when checking it and again when attaching: the answer
        // is kept per file version (device, inode, size, mtime), so a replaced file is read anew.
        var st = stat()
        let key: String? = stat(path, &st) == 0
            ? "\(path)\u{0}\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)\u{0}\(symbol)\u{0}\(extra)" : nil
        if let key, let hit = resolved.withLock({ $0[key] }) { return hit }
        let target = try resolve(path: path, symbol: symbol, extra: extra)
        if let key { resolved.withLock { $0[key] = target } }
        return target
    }

    private static let resolved = Mutex<[String: UprobeTarget]>([:])

    private static func resolve(path: String, symbol: String, extra: UInt64) throws(BPFError) -> UprobeTarget {
        let elf: ELFFile
        do { elf = try ELFFile(path: path) } catch {
            throw .elf(path: path, error)
        }
        let (wantedBase, wantedVersion) = split(symbol)
        var found: [ELFSymbol] = []
        var sawUndefined = false, sawWrongType = false
        for dynamic in [false, true] {
            let symbols: [ELFSymbol]
            do { symbols = try elf.symbols(dynamic: dynamic) } catch {
                throw .elf(path: path, error)
            }
            for s in symbols {
                // Bytes first: splitting every name of libc as Characters was most of the lookup.
                guard nameHasBase(s.name, wantedBase) else { continue }
                let (_, version) = split(s.name)
                // A versioned request must match a versioned .symtab name exactly; .dynsym names carry
                // no version (it lives in .gnu.version), so the base name decides there.
                if let wantedVersion, let version, version != wantedVersion { continue }
                if s.sectionIndex == ELFSymbol.SHN_UNDEF { sawUndefined = true; continue }
                guard s.type == ELFSymbol.STT_FUNC || s.type == ELFSymbol.STT_GNU_IFUNC else { sawWrongType = true; continue }
                found.append(s)
            }
            if !found.isEmpty { break }
        }
        guard !found.isEmpty else {
            var why = "no function symbol named '\(symbol)' in .symtab or .dynsym"
            if sawUndefined { why += " (it is imported from another library there: probe that library instead)" }
            else if sawWrongType { why += " (a symbol of that name exists but is not a function)" }
            throw .symbolNotFound(binary: path, symbol: symbol, reason: why)
        }
        // Aliases (getpid and __getpid) share an address; different addresses are ambiguous unless
        // exactly one is global.
        var addresses = Set(found.map(\.value))
        if addresses.count > 1 {
            let globals = found.filter { $0.binding == ELFSymbol.STB_GLOBAL }
            if Set(globals.map(\.value)).count == 1 { found = globals; addresses = [globals[0].value] }
            else {
                let list = addresses.sorted().map { "0x" + String($0, radix: 16) }.joined(separator: ", ")
                throw .symbolNotFound(binary: path, symbol: symbol, reason: "ambiguous: '\(symbol)' is defined at \(list); attach by offset instead")
            }
        }
        let sym = found[0]
        guard extra == 0 || sym.size == 0 || extra < sym.size else {
            throw .symbolNotFound(binary: path, symbol: symbol, reason: "offset +0x\(String(extra, radix: 16)) is past the function's \(sym.size) bytes")
        }
        guard let fileOffset = elf.fileOffset(ofVirtualAddress: sym.value) else {
            throw .symbolNotFound(binary: path, symbol: symbol, reason: "address 0x\(String(sym.value, radix: 16)) is in no PT_LOAD segment")
        }
        let (total, overflow) = fileOffset.addingReportingOverflow(extra)
        guard !overflow else { throw .invalidArgument("offset overflow") }
        return UprobeTarget(path: path, symbol: symbol, address: sym.value, extraOffset: extra, fileOffset: total,
                            isIFunc: sym.type == ELFSymbol.STT_GNU_IFUNC)
    }

    /// "malloc@@GLIBC_2.2.5" → ("malloc", "GLIBC_2.2.5").
    static func split(_ name: String) -> (String, String?) {
        let bytes = name.utf8
        guard let at = bytes.firstIndex(of: UInt8(ascii: "@")) else { return (name, nil) }
        let base = String(name[..<at])
        let version = bytes[at...].drop(while: { $0 == UInt8(ascii: "@") })
        return (base, version.isEmpty ? nil : String(decoding: version, as: UTF8.self))
    }

    /// Whether `name` is `base`, or `base@…` (a versioned name), compared as bytes.
    static func nameHasBase(_ name: String, _ base: String) -> Bool {
        let n = name.utf8, b = base.utf8
        guard n.count >= b.count, n.starts(with: b) else { return false }
        return n.count == b.count || n[n.index(n.startIndex, offsetBy: b.count)] == UInt8(ascii: "@")
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return path }
        let cwd = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd + "/" + path
    }
}

/// A C++ function found by its source name.
public struct CppFunctionMatch: Sendable, Equatable {
    /// The symbol as the binary spells it (`_ZN2ns5Class6methodEi`).
    public var mangled: String
    /// As c++filt prints it (`ns::Class::method(int)`).
    public var demangled: String
    public var address: UInt64
}

extension UprobeResolver {
    /// C++ functions of `binary` whose demangled name is `name`: `ns::Class::method` matches every
    /// overload (and every template instance, `f` matching `f<int>`); with a parameter list,
    /// `ns::Class::method(int, char const*)`, the parameters must match as c++filt prints them
    /// (spaces ignored; a trailing ` const` selects the const member). Aliases at one address
    /// (complete and base constructors) are listed once.
    public static func cppFunctions(binary: String, name: String) throws(BPFError) -> [CppFunctionMatch] {
        let path = try resolveBinary(binary)
        let elf: ELFFile
        do { elf = try ELFFile(path: path) } catch { throw .elf(path: path, error) }
        let query = CppName(name)
        var out: [CppFunctionMatch] = []
        var seen = Set<UInt64>()
        for dynamic in [false, true] {
            let symbols: [ELFSymbol]
            do { symbols = try elf.symbols(dynamic: dynamic) } catch { throw .elf(path: path, error) }
            for s in symbols where s.name.hasPrefix("_Z") && s.sectionIndex != ELFSymbol.SHN_UNDEF && s.value != 0
                && (s.type == ELFSymbol.STT_FUNC || s.type == ELFSymbol.STT_GNU_IFUNC) {
                let (base, _) = split(s.name)
                guard let text = Demangler.demangleItanium(base), query.matches(text), seen.insert(s.value).inserted else { continue }
                out.append(CppFunctionMatch(mangled: base, demangled: text, address: s.value))
            }
        }
        return out.sorted { $0.address < $1.address }
    }

    /// Uprobe targets for a C++ function by source name (`uprobe:PATH:cpp:"ns::Class::method"`):
    /// every overload when `allowOverloads`, else an error listing them so one can be picked by
    /// its parameters.
    public static func resolveCpp(binary: String, name: String, offset extra: UInt64 = 0,
                                  allowOverloads: Bool = true) throws(BPFError) -> [UprobeTarget] {
        let path = try resolveBinary(binary)
        let matches = try cppFunctions(binary: path, name: name)
        guard !matches.isEmpty else {
            throw .symbolNotFound(binary: path, symbol: name,
                                  reason: "no C++ function named '\(name)' (names are written as c++filt prints them, e.g. ns::Class::method or ns::Class::method(int))")
        }
        if matches.count > 1 && !allowOverloads {
            let list = matches.map { $0.demangled }.joined(separator: "; ")
            throw .symbolNotFound(binary: path, symbol: name, reason: "ambiguous: \(matches.count) overloads: \(list); add the parameter list to pick one")
        }
        var targets: [UprobeTarget] = []
        for m in matches {
            var t = try resolve(binary: path, symbol: m.mangled, offset: extra)
            t.symbol = m.demangled
            targets.append(t)
        }
        return targets
    }
}

/// A C++ function name as a user writes it, split into the qualified name and the optional
/// parameter list, compared with demangled symbols the same way.
struct CppName {
    var name: String
    var params: String?

    init(_ text: String) {
        (name, params) = CppName.split(text)
    }

    /// "void ns::f<int>(int) const" → ("ns::f<int>", "(int)const"); the return type of template
    /// functions is dropped.
    static func split(_ text: String) -> (String, String?) {
        // Compiler clones (" [clone .isra.0]", ".constprop", ".cold") are the same function's code.
        var text = text
        while text.hasSuffix("]") {
            let marker = Array(" [clone ".utf8), bytes = Array(text.utf8)
            guard bytes.count >= marker.count,
                  let at = (0...(bytes.count - marker.count)).reversed().first(where: { Array(bytes[$0..<($0 + marker.count)]) == marker })
            else { break }
            text = String(decoding: bytes[..<at], as: UTF8.self)
        }
        let chars = Array(text)
        // The parameter list is the last top-level "(...)" group, unless the name is an operator
        // whose own text has parentheses ("operator()").
        var end = chars.count
        while end > 0, chars[end - 1] != ")" { end -= 1 }
        var nameEnd = chars.count
        var params: String? = nil
        if end > 0 {
            var depth = 0
            var k = end - 1
            while k >= 0 {
                if chars[k] == ")" { depth += 1 } else if chars[k] == "(" { depth -= 1; if depth == 0 { break } }
                k -= 1
            }
            if k > 0 {
                let before = String(chars[..<k])
                // "operator()" without parameters: the group is part of the name.
                if !(before.hasSuffix("operator") && end - k == 2 && end == chars.count) {
                    nameEnd = k
                    params = String(chars[k...]).filter { $0 != " " }
                }
            }
        }
        var name = String(chars[..<nameEnd])
        // A return type ends at the last top-level space (outside <> and ()).
        var depth = 0
        var cut: Int? = nil
        let n = Array(name)
        for (k, c) in n.enumerated() {
            if c == "<" || c == "(" { depth += 1 } else if c == ">" || c == ")" { depth = max(0, depth - 1) }
            else if c == " " && depth == 0 {
                let rest = String(n[(k + 1)...])
                if !rest.hasPrefix("namespace") && !String(n[..<k]).hasSuffix("operator") { cut = k }
            }
        }
        if let cut { name = String(n[(cut + 1)...]) }
        return (CppName.trim(name), params)
    }

    static func trim(_ s: String) -> String {
        var v = Substring(s)
        while v.first == " " { v = v.dropFirst() }
        while v.last == " " { v = v.dropLast() }
        return String(v)
    }

    /// The name without template argument lists ("ns::f<int>::g<char>" → "ns::f::g").
    static func withoutTemplateArgs(_ s: String) -> String {
        var out = ""
        var depth = 0
        let chars = Array(s)
        var k = 0
        while k < chars.count {
            let c = chars[k]
            // Operators that contain angle brackets are names, not argument lists.
            if depth == 0 && out.hasSuffix("operator"),
               let op = ["<=>", "<<=", ">>=", "<<", ">>", "<=", ">=", "<", ">", "->*", "->"].first(where: { String(chars[k...]).hasPrefix($0) }) {
                out += op
                k += op.count
                continue
            }
            if c == "<" { depth += 1 } else if c == ">" && depth > 0 { depth -= 1 } else if depth == 0 { out.append(c) }
            k += 1
        }
        return out
    }

    func matches(_ demangled: String) -> Bool {
        let (n, p) = CppName.split(demangled)
        if let params {
            guard let p, p == params else { return false }
        }
        return n == name || CppName.withoutTemplateArgs(n) == name
    }
}

/// The loader's library cache (/etc/ld.so.cache, format "glibc-ld.so.cache1.1", which ldconfig
/// writes): sonames to paths, for libraries in folders outside the fixed list (ld.so.conf.d).
struct LDSOCache: Sendable {
    static let path = "/etc/ld.so.cache"
    /// Read once per process: a trace resolves many probes.
    static let shared = LDSOCache(path: path)

    struct Entry: Sendable, Equatable {
        var name: String
        var path: String
        var flags: Int32
    }

    /// The entries for this machine's architecture, in the cache's order (newest sonames first).
    let entries: [Entry]

    init(path: String) {
        let bytes = LDSOCache.readFile(path)
        entries = LDSOCache.parse(bytes).filter { LDSOCache.matchesHost($0.flags) }
    }

    init(entries: [Entry]) { self.entries = entries }

    /// `libc.so.6` exactly; else `libc` or `libc.so` as the start of a soname (`libc.so.6`).
    func lookup(_ name: String) -> String? {
        if let e = entries.first(where: { $0.name == name }), access(e.path, R_OK) == 0 { return e.path }
        let prefix = name.hasSuffix(".so") ? name + "." : (name.contains(".so") ? nil : name + ".so")
        guard let prefix else { return nil }
        for e in entries where e.name == name + ".so" || e.name.hasPrefix(prefix) {
            if access(e.path, R_OK) == 0 { return e.path }
        }
        return nil
    }

    static let magic = Array("glibc-ld.so.cache1.1".utf8)

    /// Entries of a cache file. The new-format header may follow an old-format ("ld.so-1.7.0")
    /// part; string offsets count from the new header. Anything out of bounds ends the parse.
    static func parse(_ bytes: [UInt8]) -> [Entry] {
        guard let base = find(magic, in: bytes) else { return [] }
        func u32(_ at: Int) -> UInt32? {
            guard at >= 0, at <= bytes.count - 4 else { return nil }
            return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        func string(_ offset: UInt32) -> String? {
            let start = base + Int(offset)
            guard start < bytes.count else { return nil }
            guard let end = bytes[start...].firstIndex(of: 0) else { return nil }
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }
        // Header: magic (20), nlibs, len_strings, flags + 3 padding, extension offset, 3 unused: 48 bytes.
        guard let count = u32(base + 20) else { return [] }
        var out: [Entry] = []
        // Entries: flags, key, value, osversion (4 bytes each), hwcap (8): 24 bytes.
        for i in 0..<Int(min(count, 1 << 20)) {
            let at = base + 48 + 24 * i
            guard let flags = u32(at), let key = u32(at + 4), let value = u32(at + 8),
                  let name = string(key), let path = string(value) else { break }
            out.append(Entry(name: name, path: path, flags: Int32(bitPattern: flags)))
        }
        return out
    }

    /// ELF libc6 libraries of this architecture (ldconfig's FLAG_ELF_LIBC6 and arch bits).
    static func matchesHost(_ flags: Int32) -> Bool {
        guard flags & 0xff == 0x03 else { return false }
        #if arch(x86_64)
        return flags & 0xff00 == 0x0300
        #elseif arch(arm64)
        return flags & 0xff00 == 0x0a00
        #else
        return true
        #endif
    }

    static func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        if bytes.starts(with: needle) { return 0 }
        // After an old-format part: bounded search, the header is near the start.
        for i in 0...min(bytes.count - needle.count, 1 << 20) where bytes[i] == needle[0] {
            if bytes[i..<i + needle.count].elementsEqual(needle) { return i }
        }
        return nil
    }

    static func readFile(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while out.count < 64 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}
