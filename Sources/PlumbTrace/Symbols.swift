// Addresses to names: kernel symbols from /proc/kallsyms, user symbols from the ELF files a
// process maps (/proc/PID/maps), user names from /etc/passwd. Each source is read once, lazily.
import PlumbELF
import PlumbDWARF
import Glibc
import Synchronization

func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        data.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: data, as: UTF8.self)
}

/// A sorted address -> name table; lookups find the symbol at or below an address.
struct SymbolTable: Sendable {
    var addresses: [UInt64] = []
    var names: [String] = []
    var sizes: [UInt64] = []
    /// PT_LOAD segments (file offset, virtual address, file size) of an ELF file.
    var segments: [(offset: UInt64, vaddr: UInt64, size: UInt64)] = []
    /// ET_EXEC (not position-independent): loaded at its own virtual addresses in every process.
    var fixedAddresses = false

    init(_ entries: [(UInt64, String, UInt64)]) {
        // Stable by address, so aliases keep file order; lookups take the last of a run,
        // except position-independent `__pi_` copies (bpftrace shows `_text`, not `__pi__text`).
        let sorted = entries.enumerated().sorted { l, r in
            if l.element.0 != r.element.0 { return l.element.0 < r.element.0 }
            let lp = l.element.1.hasPrefix("__pi_"), rp = r.element.1.hasPrefix("__pi_")
            if lp != rp { return lp }
            return l.offset < r.offset
        }.map(\.element)
        addresses = sorted.map(\.0); names = sorted.map(\.1); sizes = sorted.map(\.2)
    }

    func lookup(_ address: UInt64) -> (name: String, offset: UInt64)? {
        var lo = 0, hi = addresses.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if addresses[mid] <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let i = lo - 1
        let offset = address - addresses[i]
        if sizes[i] != 0 && offset >= sizes[i] { return nil }
        return (names[i], offset)
    }
}

public final class SystemSymbols: @unchecked Sendable {
    private let kernel = Mutex<SymbolTable?>(nil)
    private let files = Mutex<[String: SymbolTable]>([:])
    private let processMaps = Mutex<[Int32: [(start: UInt64, end: UInt64, offset: UInt64, path: String)]]>([:])
    private let users = Mutex<[UInt64: String]?>(nil)
    /// Files probed or run (-c): when a process has exited before its addresses are printed,
    /// those of these that are not position-independent still resolve.
    private let knownFiles = Mutex<[String]>([])

    /// Remembers a file this trace probes or runs (see `knownFiles`).
    public func addKnownFile(_ path: String) {
        knownFiles.withLock { if !$0.contains(path) { $0.append(path) } }
    }

    /// Whether user symbols print demangled (BPFTRACE_NO_CPP_DEMANGLE=1 turns it off).
    let demangle: Bool

    public init(demangle: Bool = true) { self.demangle = demangle }

    public static func parseKallsyms(_ text: String) -> [(UInt64, String, UInt64)] {
        var out: [(UInt64, String, UInt64)] = []
        for line in text.split(separator: "\n") {
            // "address type name" then, for modules, a tab and "[module]".
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 3, let a = UInt64(parts[0], radix: 16), a != 0 else { continue }
            let type = parts[1].lowercased()
            guard type == "t" || type == "w" else { continue }
            // BPF programs' own symbols are left out, as bpftrace's symbolizer leaves them out.
            if parts.count >= 4 && parts[3] == "[bpf]" { continue }
            out.append((a, String(parts[2]), 0))
        }
        return out
    }

    public func kernelSymbol(_ address: UInt64, withOffset: Bool) -> String? {
        let table = kernel.withLock { t -> SymbolTable in
            if let t { return t }
            let new = SymbolTable(SystemSymbols.parseKallsyms(readTextFile("/proc/kallsyms") ?? ""))
            t = new
            return new
        }
        guard let (name, off) = table.lookup(address) else { return nil }
        if withOffset { return "\(name)+\(off)" }
        return name
    }

    func table(for path: String) -> SymbolTable {
        if let t = files.withLock({ $0[path] }) { return t }
        var entries: [(UInt64, String, UInt64)] = []
        if let elf = try? ELFFile(path: path) {
            func functions(_ file: ELFFile) {
                for dynamic in [false, true] {
                    for s in (try? file.symbols(dynamic: dynamic)) ?? []
                    where (s.type == ELFSymbol.STT_FUNC || s.type == ELFSymbol.STT_GNU_IFUNC) && s.value != 0 && !s.name.isEmpty {
                        entries.append((s.value, s.name, s.size))
                    }
                }
            }
            functions(elf)
            // Stripped files (ld.so, distribution binaries): the separate debug file by build id.
            if let id = SystemSymbols.buildID(elf), id.count > 1,
               let debug = try? ELFFile(path: "/usr/lib/debug/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug") {
                functions(debug)
            }
            // Symbol values are virtual addresses; remember the segments to map file offsets back.
            let loads = elf.programHeaders.filter { $0.type == ELFProgramHeader.PT_LOAD }
            var t = SymbolTable(entries)
            t.segments = loads.map { ($0.offset, $0.virtualAddress, $0.fileSize) }
            t.fixedAddresses = elf.type == ELFFile.ET_EXEC
            files.withLock { $0[path] = t }
            return t
        }
        let t = SymbolTable([])
        files.withLock { $0[path] = t }
        return t
    }

    /// The NT_GNU_BUILD_ID note as lowercase hex.
    static func buildID(_ elf: ELFFile) -> String? {
        for section in elf.sections where section.type == ELFSection.SHT_NOTE {
            for note in (try? elf.notes(in: section)) ?? [] where note.name == "GNU" && note.type == 3 {
                var hex = ""
                for i in 0..<note.descriptor.count {
                    guard let b = note.descriptor.u8(i) else { return nil }
                    hex += (b < 16 ? "0" : "") + String(b, radix: 16)
                }
                return hex
            }
        }
        return nil
    }

    func mappings(_ pid: Int32, fresh: Bool = false) -> [(start: UInt64, end: UInt64, offset: UInt64, path: String)] {
        if !fresh, let m = processMaps.withLock({ $0[pid] }) { return m }
        var out: [(start: UInt64, end: UInt64, offset: UInt64, path: String)] = []
        for line in (readTextFile("/proc/\(pid)/maps") ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            // Every file mapping: a library being loaded may still be read-only while its code runs
            // through another mapping of the same pages.
            guard parts.count == 6 else { continue }
            let range = parts[0].split(separator: "-")
            guard range.count == 2, let s = UInt64(range[0], radix: 16), let e = UInt64(range[1], radix: 16),
                  let off = UInt64(parts[2], radix: 16) else { continue }
            let path = String(parts[5]).trimmingCharacters(in: " ")
            guard path.hasPrefix("/") else { continue }
            out.append((s, e, off, path))
        }
        // Processes that have exited keep their last answer; empty answers are retried.
        if !out.isEmpty { processMaps.withLock { $0[pid] = out } }
        return out
    }

    /// The file mapped at a user address (the known non-PIE files once the process is gone).
    public func userModule(_ address: UInt64, pid: Int32) -> String? {
        var maps = mappings(pid)
        if !maps.contains(where: { address >= $0.start && address < $0.end }) { maps = mappings(pid, fresh: true) }
        if let m = maps.first(where: { address >= $0.start && address < $0.end }) { return m.path }
        for path in knownFiles.withLock({ $0 }) {
            let t = table(for: path)
            if t.fixedAddresses && t.segments.contains(where: { address >= $0.vaddr && address - $0.vaddr < $0.size }) { return path }
        }
        return nil
    }

    /// The file and link-time address an address of process `pid` falls in.
    func fileAddress(_ address: UInt64, pid: Int32) -> (path: String, vaddr: UInt64, table: SymbolTable)? {
        // Processes map libraries as they go: an address outside what was read re-reads the maps.
        var maps = mappings(pid)
        if !maps.contains(where: { address >= $0.start && address < $0.end }) { maps = mappings(pid, fresh: true) }
        for m in maps where address >= m.start && address < m.end {
            let t = table(for: m.path)
            let fileOffset = address - m.start + m.offset
            var vaddr = fileOffset
            for seg in t.segments where fileOffset >= seg.offset && fileOffset < seg.offset + seg.size {
                vaddr = fileOffset - seg.offset + seg.vaddr
                break
            }
            return (m.path, vaddr, t)
        }
        // The process is gone (its maps read empty): a non-PIE executable we probe or ran is
        // at its link-time addresses in every process.
        for path in knownFiles.withLock({ $0 }) {
            let t = table(for: path)
            guard t.fixedAddresses, t.segments.contains(where: { address >= $0.vaddr && address - $0.vaddr < $0.size }) else { continue }
            return (path, address, t)
        }
        return nil
    }

    /// The function at a user address, C++ and Swift names demangled (bpftrace demangles C++ too).
    public func userSymbol(_ address: UInt64, pid: Int32, withOffset: Bool) -> String? {
        guard let (_, vaddr, t) = fileAddress(address, pid: pid), let (name, off) = t.lookup(vaddr) else { return nil }
        let shown = demangle ? Demangler.displayName(name) : name
        return withOffset ? "\(shown)+\(off)" : shown
    }

    /// A user stack frame as lines, innermost first: the functions inlined at the address (from
    /// the file's DWARF, when it has any), each as `callee+off (inlined into caller at file:line)`,
    /// then the symbol's own `function+off` line as `userSymbol` gives it. A return address (every
    /// frame but the first) is looked up one byte back, inside the call, as addr2line -i does:
    /// the instruction after a call may already belong to the caller.
    public func userFrames(_ address: UInt64, pid: Int32, isReturnAddress: Bool = false) -> [String]? {
        guard let (path, vaddr, t) = fileAddress(address, pid: pid), let (name, off) = t.lookup(vaddr) else { return nil }
        let outer = demangle ? Demangler.displayName(name) : name
        let inlined = inlineFrames(path: path, vaddr: isReturnAddress && off > 0 ? vaddr - 1 : vaddr)
        var lines: [String] = []
        for (k, f) in inlined.enumerated() {
            let callee = f.linkageName.flatMap { Demangler.demangle($0) }.map(SystemSymbols.shortName) ?? f.function
            let caller: String
            if k + 1 < inlined.count {
                let c = inlined[k + 1]
                caller = c.linkageName.flatMap { Demangler.demangle($0) }.map(SystemSymbols.shortName) ?? c.function
            } else {
                caller = SystemSymbols.shortName(outer)
            }
            var site = ""
            if let file = f.callFile, let line = f.callLine {
                site = " at " + (file.split(separator: "/").last.map(String.init) ?? file) + ":\(line)"
            }
            let offset = vaddr >= f.entry ? vaddr - f.entry : 0
            lines.append("\(callee)+\(offset) (inlined into \(caller)\(site))")
        }
        lines.append("\(outer)+\(off)")
        return lines
    }

    /// "ns::f(int) const" → "ns::f": callers are named without their parameters.
    static func shortName(_ demangled: String) -> String {
        var depth = 0
        for (k, c) in demangled.enumerated() {
            if c == "<" { depth += 1 } else if c == ">" { depth = max(0, depth - 1) }
            else if c == "(" && depth == 0 && k > 0 && !demangled.prefix(k).hasSuffix("operator") {
                return String(demangled.prefix(k))
            }
        }
        return demangled
    }

    private let dwarfs = Mutex<[String: DWARFBox]>([:])

    /// Inlined calls at a link-time address of `path`, innermost first; none without DWARF.
    func inlineFrames(path: String, vaddr: UInt64) -> [DWARFInlineFrame] {
        dwarfs.withLock { cache -> [DWARFInlineFrame] in
            let box: DWARFBox
            if let b = cache[path] { box = b } else {
                // Read once per file; files without debug info (or unreadable) are remembered as such.
                box = DWARFBox(try? DWARF.load(binary: path))
                cache[path] = box
            }
            guard let d = box.dwarf else { return [] }
            return (try? d.inlinedFrames(at: vaddr)) ?? []
        }
    }

    public static func parsePasswd(_ text: String) -> [UInt64: String] {
        var out: [UInt64: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count >= 3, let uid = UInt64(parts[2]) else { continue }
            if out[uid] == nil { out[uid] = String(parts[0]) }
        }
        return out
    }

    public func username(_ uid: UInt64) -> String? {
        users.withLock { u in
            if u == nil { u = SystemSymbols.parsePasswd(readTextFile("/etc/passwd") ?? "") }
            return u?[uid]
        }
    }
}

/// A file's DWARF, used only under `SystemSymbols.dwarfs`' lock.
final class DWARFBox: @unchecked Sendable {
    let dwarf: DWARF?
    init(_ dwarf: DWARF?) { self.dwarf = dwarf }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
