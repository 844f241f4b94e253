import Glibc
import PlumbELF
import CPlumbZlib

/// The DWARF sections of one ELF file, decompressed. Absent sections are empty views.
final class DWARFSections {
    var info, abbrev, str, lineStr, strOffsets, addr, types: ByteView
    var order: ByteOrder
    /// Sections only some queries read (line tables, location and range lists): inflated on
    /// first use, so opening a big debug file pays only for what the index needs.
    private var deferred: [String: ELFSection] = [:]
    private var inflated: [String: ByteView] = [:]
    private let elf: ELFFile
    /// Time spent decompressing, for the timings report.
    var decompressSeconds: Double = 0

    /// The largest section we agree to inflate: 4 GiB is beyond any real debug file.
    static let maxSectionSize: UInt64 = 1 << 32

    init(elf: ELFFile) throws(DWARFError) {
        order = elf.order
        self.elf = elf
        let empty = ByteView(elf.bytes, order: elf.order, start: 0, count: 0)
        info = empty; abbrev = empty; str = empty; lineStr = empty; strOffsets = empty; addr = empty; types = empty
        let start = monotonicSeconds()
        for s in elf.sections where s.name.hasPrefix(".debug_") || s.name.hasPrefix(".zdebug_") {
            let base = s.name.hasPrefix(".z") ? "." + s.name.dropFirst(2) : s.name
            // Only the sections we read are decompressed (libc's .debug_info inflates to ~20 MB).
            let wanted: ReferenceWritableKeyPath<DWARFSections, ByteView>
            switch base {
            case ".debug_info": wanted = \.info
            case ".debug_abbrev": wanted = \.abbrev
            case ".debug_str": wanted = \.str
            case ".debug_line_str": wanted = \.lineStr
            case ".debug_str_offsets": wanted = \.strOffsets
            case ".debug_addr": wanted = \.addr
            case ".debug_types": wanted = \.types
            case ".debug_rnglists", ".debug_ranges", ".debug_line", ".debug_loc", ".debug_loclists":
                deferred[base] = s
                continue
            default: continue
            }
            self[keyPath: wanted] = try relocated(try Self.contents(of: s, in: elf, legacyZ: s.name.hasPrefix(".z")), section: s)
        }
        decompressSeconds = monotonicSeconds() - start
    }

    /// A deferred section ("".debug_line", ".debug_loc", ...), inflated once; empty when absent.
    func lazy(_ name: String) throws(DWARFError) -> ByteView {
        if let v = inflated[name] { return v }
        guard let s = deferred[name] else { return ByteView(elf.bytes, order: order, start: 0, count: 0) }
        let t0 = monotonicSeconds()
        let v = try relocated(try Self.contents(of: s, in: elf, legacyZ: s.name.hasPrefix(".z")), section: s)
        decompressSeconds += monotonicSeconds() - t0
        inflated[name] = v
        return v
    }

    static let SHF_COMPRESSED: UInt64 = 0x800

    private var symbolTable: [ELFSymbol]?

    /// In a relocatable object (.o) references between debug sections and to code are left to
    /// the linker: apply the absolute relocations (x86-64, AArch64, BPF) to a copy.
    func relocated(_ v: ByteView, section s: ELFSection) throws(DWARFError) -> ByteView {
        guard elf.type == ELFFile.ET_REL else { return v }
        let relSections = elf.sections.filter {
            ($0.type == ELFSection.SHT_RELA || $0.type == ELFSection.SHT_REL) && $0.info == UInt32(truncatingIfNeeded: s.index)
        }
        if relSections.isEmpty { return v }
        if symbolTable == nil {
            do { symbolTable = try elf.symbols() } catch { throw .elf(error) }
        }
        let syms = symbolTable ?? []
        var bytes = v.toArray()
        for rs in relSections {
            let rels: [ELFRelocation]
            do { rels = try elf.relocations(in: rs) } catch { throw .elf(error) }
            let isRela = rs.type == ELFSection.SHT_RELA
            for r in rels {
                let size: Int
                switch (elf.machine, r.type) {
                case (ELFFile.EM_X86_64, 1), (ELFFile.EM_X86_64, 17), (ELFFile.EM_AARCH64, 257), (ELFFile.EM_BPF, 2): size = 8
                case (ELFFile.EM_X86_64, 10), (ELFFile.EM_X86_64, 11), (ELFFile.EM_X86_64, 21),
                     (ELFFile.EM_AARCH64, 258), (ELFFile.EM_BPF, 3), (ELFFile.EM_BPF, 10): size = 4
                default: continue
                }
                guard let off = Int(exactly: r.offset), off >= 0, off <= bytes.count - size,
                      Int(r.symbolIndex) < syms.count else {
                    throw .malformed(section: rs.name, offset: Int(clamping: r.offset), reason: "relocation outside \(s.name) or naming a missing symbol")
                }
                let sym = syms[Int(r.symbolIndex)]
                var inPlace: UInt64 = 0
                if !isRela {
                    let cur = ByteView(Bytes(bytes[off..<(off + size)]), order: order)
                    inPlace = size == 8 ? (cur.u64(0) ?? 0) : UInt64(cur.u32(0) ?? 0)
                }
                let value = sym.value &+ (isRela ? UInt64(bitPattern: r.addend) : inPlace)
                for k in 0..<size {
                    let shift = order == .little ? k * 8 : (size - 1 - k) * 8
                    bytes[off + k] = UInt8(truncatingIfNeeded: value >> UInt64(shift))
                }
            }
        }
        return ByteView(Bytes(bytes), order: order)
    }

    /// A section's bytes, inflated when SHF_COMPRESSED (Elf64_Chdr) or a legacy .zdebug_ section.
    static func contents(of s: ELFSection, in elf: ELFFile, legacyZ: Bool) throws(DWARFError) -> ByteView {
        let raw = elf.contents(of: s)
        if s.flags & SHF_COMPRESSED != 0 {
            // Elf64_Chdr: ch_type, ch_reserved, ch_size, ch_addralign.
            guard let type = raw.u32(0), let size = raw.u64(8), let payload = raw.slice(24, raw.count - 24) else {
                throw .truncated(section: s.name, offset: 0, what: "compression header")
            }
            guard type == 1 else { throw .unsupportedCompression(section: s.name, type: type) }
            return try inflate(payload, size: size, section: s.name, order: elf.order)
        }
        if legacyZ {
            // "ZLIB" then the uncompressed size, big-endian.
            guard raw.count >= 12, raw.u8(0) == 0x5a, raw.u8(1) == 0x4c, raw.u8(2) == 0x49, raw.u8(3) == 0x42,
                  let sizeBE = raw.u64(4), let payload = raw.slice(12, raw.count - 12) else {
                throw .malformed(section: s.name, offset: 0, reason: "a .zdebug section must start with \"ZLIB\" and an 8-byte size")
            }
            let size = raw.order == .big ? sizeBE : sizeBE.byteSwapped
            return try inflate(payload, size: size, section: s.name, order: elf.order)
        }
        return raw
    }

    /// Inflates a zlib stream into exactly `size` bytes. The size comes from the file, so it is
    /// bounded by zlib's best ratio (1032:1) and a hard ceiling before anything is allocated.
    static func inflate(_ payload: ByteView, size: UInt64, section: String, order: ByteOrder) throws(DWARFError) -> ByteView {
        let bound = UInt64(payload.count).multipliedReportingOverflow(by: 1032).partialValue &+ 64
        guard size <= maxSectionSize, size <= bound else {
            throw .decompressionFailed(section: section, reason: "header claims \(size) bytes from \(payload.count) compressed bytes, beyond what zlib can produce")
        }
        let n = Int(size)
        let out = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 16)
        defer { out.deallocate() }
        var destLen = uLong(n)
        let rc = CPlumbZlib.uncompress(out.assumingMemoryBound(to: Bytef.self), &destLen,
                                       (payload.bytes.base + payload.start).assumingMemoryBound(to: Bytef.self),
                                       uLong(payload.count))
        guard rc == Z_OK else {
            let why = rc == Z_BUF_ERROR ? "the data inflates past the \(size) bytes the header declares, or is cut short"
                : rc == Z_DATA_ERROR ? "corrupt zlib data" : rc == Z_MEM_ERROR ? "out of memory" : "zlib error \(rc)"
            throw .decompressionFailed(section: section, reason: why)
        }
        guard destLen == uLong(n) else {
            throw .decompressionFailed(section: section, reason: "inflated to \(destLen) bytes, header declares \(size)")
        }
        let bytes = Bytes(UnsafeRawBufferPointer(start: out, count: n))
        return ByteView(bytes, order: order)
    }
}

func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Where separate debug files live and how they are named (build id, .gnu_debuglink).
public enum DebugFileLocator {
    public static let defaultRoots = ["/usr/lib/debug"]

    /// The build id (NT_GNU_BUILD_ID) as lowercase hex, if the file has one.
    public static func buildID(of elf: ELFFile) -> String? {
        for s in elf.sections where s.type == ELFSection.SHT_NOTE {
            guard let notes = try? elf.notes(in: s) else { continue }
            for n in notes where n.name == "GNU" && n.type == 3 && n.descriptor.count > 0 {
                return n.descriptor.toArray().map { b in
                    let h = String(b, radix: 16)
                    return h.count == 1 ? "0" + h : h
                }.joined()
            }
        }
        return nil
    }

    /// The file name and CRC32 in .gnu_debuglink.
    public static func debugLink(of elf: ELFFile) -> (name: String, crc: UInt32)? {
        guard let s = elf.section(named: ".gnu_debuglink") else { return nil }
        let v = elf.contents(of: s)
        guard let name = v.cString(at: 0), !name.isEmpty, !name.contains("/") || name.first != "/" else { return nil }
        let crcOff = (name.utf8.count + 1 + 3) & ~3
        guard let crc = v.u32(crcOff) else { return nil }
        return (name, crc)
    }

    /// Candidate paths in search order, for `binaryPath`.
    public static func candidates(for elf: ELFFile, binaryPath: String, roots: [String] = defaultRoots) -> [String] {
        var out: [String] = []
        if let id = buildID(of: elf), id.count > 2 {
            for r in roots {
                out.append("\(r)/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug")
            }
        }
        if let link = debugLink(of: elf) {
            var dirs = [directory(of: binaryPath)]
            if let real = realPath(binaryPath) {
                let d = directory(of: real)
                if d != dirs[0] { dirs.append(d) }
            }
            for d in dirs {
                out.append("\(d)/\(link.name)")
                out.append("\(d)/.debug/\(link.name)")
                for r in roots { out.append("\(r)\(d.hasPrefix("/") ? "" : "/")\(d)/\(link.name)") }
            }
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// The dwz file a debug file shares units with (.gnu_debugaltlink: a path, then its build
    /// id): the path as written (relative to the debug file), or by build id under `roots`.
    public static func altFile(for elf: ELFFile, debugPath: String, roots: [String] = defaultRoots) -> (String, ELFFile)? {
        guard let s = elf.section(named: ".gnu_debugaltlink") else { return nil }
        let v = elf.contents(of: s)
        guard let name = v.cString(at: 0), !name.isEmpty else { return nil }
        let idStart = name.utf8.count + 1
        let id = (v.slice(idStart, v.count - idStart)?.toArray() ?? []).map { b in
            let h = String(b, radix: 16)
            return h.count == 1 ? "0" + h : h
        }.joined()
        var paths = [name.hasPrefix("/") ? name : directory(of: debugPath) + "/" + name]
        if id.count > 2 {
            for r in roots { paths.append("\(r)/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug") }
        }
        for p in paths where access(p, R_OK) == 0 {
            guard let alt = try? ELFFile(path: p) else { continue }
            if !id.isEmpty, let altID = buildID(of: alt), altID != id { continue }
            return (p, alt)
        }
        return nil
    }

    /// zlib's CRC-32, as .gnu_debuglink records it.
    public static func crc32(_ v: ByteView) -> UInt32 {
        var crc: uLong = 0
        var off = 0
        // zlib takes a 32-bit length: feed large files in chunks.
        while off < v.count {
            let n = min(v.count - off, 1 << 30)
            crc = CPlumbZlib.crc32(crc, (v.bytes.base + v.start + off).assumingMemoryBound(to: Bytef.self), uInt(n))
            off += n
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}
