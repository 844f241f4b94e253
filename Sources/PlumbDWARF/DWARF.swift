import Glibc
import PlumbELF
import PlumbBTF

/// DWARF debug info of one ELF file, indexed by name in one pass and decoded lazily.
///
/// Types come out in the BTF model (like pahole's DWARF -> BTF): `typeID(named:)`, the types of
/// function parameters and variables are converted on first use into one growing BTF, which
/// `btf` encodes and parses, so the tracer's checker treats DWARF and kernel types alike.
/// Not thread-safe: use one instance per thread (or guard it).
public final class DWARF {
    /// The file the debug info was read from (the separate debug file when one was found).
    public let path: String
    /// The binary the caller asked about.
    public let binaryPath: String
    let sections: DWARFSections
    /// The dwz file (.gnu_debugaltlink) holding units shared between debug files, if any.
    var altSections: DWARFSections?
    public private(set) var altPath: String?
    var altBase = 0
    /// ELF files whose symbol tables name aliases DWARF does not (glibc's malloc is __libc_malloc).
    var symbolFiles: [ELFFile]
    var aliasTable: [String: UInt64]?
    var aliasSourcesRead = 0
    var callFrames: [CallFrameTable]?
    var lineBytesDecoded = 0
    var failedLineTables: Set<UInt64> = []
    /// Units whose line tables could not be decoded (skipped by file:line searches).
    public internal(set) var skippedLineTables: [(unit: Int, error: DWARFError)] = []
    var locationLists: [LocationListKey: DWARFLocation] = [:]
    var units: [DWARFUnit] = []
    var abbrevs: [AbbrevTable] = []
    var typeUnitsBySignature: [UInt64: Int] = [:]

    // The name index: absolute DIE offsets.
    var functionIndex: [String: [Int]] = [:]
    var variableIndex: [String: [Int]] = [:]
    /// Keys are "struct X", "union X", "enum X" and plain names for typedefs and base types.
    var typeIndex: [String: [Int]] = [:]
    var typeDeclarations: Set<Int> = []
    /// Entry addresses (DW_AT_low_pc) of indexed functions, for symbol aliases.
    var functionEntries: [UInt64: Int] = [:]
    /// Names met in the index pass by .debug_str offset: each string is built once.
    private var nameCache: [UInt64: String] = [:]
    /// Units that could not be indexed (corrupt): skipped, their error kept.
    public private(set) var skippedUnits: [(offset: Int, error: DWARFError)] = []

    // Type conversion state (TypeConverter.swift).
    var builder = BTFBuilder()
    var typeMemo: [Int: TypeID] = [:]
    var dedup: [String: TypeID] = [:]
    var canonicalChecked: [Int: Bool] = [:]
    var pendingComposites: [(Int, TypeID)] = []
    /// Types that could not be converted completely (corrupt input); they stay as empty shells.
    public internal(set) var typeWarnings: [String] = []
    var cachedBTF: BTF?
    var arrayIndexType: TypeID?
    /// Names of the types converted so far ("struct X", typedef and base names) to their ids:
    /// those asked for by name and those reached from functions, variables and other types.
    public internal(set) var typeIDs: [String: TypeID] = [:]
    var lineTables: [UInt64: LineTable] = [:]
    var functionRangeTable: [(range: Range<UInt64>, die: Int, name: String)]?

    /// How long each loading step took, in seconds.
    public struct Timings: Sendable, CustomStringConvertible {
        public var read: Double = 0
        public var decompress: Double = 0
        public var units: Double = 0
        public var index: Double = 0
        /// CPU time of the load on this thread: on a busy machine the wall times above say as
        /// much about the neighbours as about us.
        public var cpuDecompress: Double = 0
        public var cpuUnits: Double = 0
        public var cpuIndex: Double = 0
        public var total: Double { read + decompress + units + index }
        public var description: String {
            func ms(_ s: Double) -> String { String(Int((s * 1000).rounded())) + " ms" }
            return "read \(ms(read)), decompress \(ms(decompress)), units \(ms(units)), index \(ms(index)), total \(ms(total))"
                + " (cpu: decompress \(ms(cpuDecompress)), units \(ms(cpuUnits)), index \(ms(cpuIndex)))"
        }
    }
    public private(set) var timings = Timings()

    /// Limits that keep hostile input from exhausting the stack or memory.
    static let maxTypeDepth = 200

    /// Reads the debug info inside `elf` (no separate file lookup).
    public init(elf: ELFFile, path: String = "<memory>", binaryPath: String? = nil) throws(DWARFError) {
        self.path = path
        self.binaryPath = binaryPath ?? path
        let c0 = threadCPUSeconds()
        sections = try DWARFSections(elf: elf)
        symbolFiles = [elf]
        altBase = sections.info.count &+ sections.types.count
        if let (altPath, altElf) = DebugFileLocator.altFile(for: elf, debugPath: path) {
            altSections = try DWARFSections(elf: altElf)
            self.altPath = altPath
        }
        timings.decompress = sections.decompressSeconds
        let t0 = monotonicSeconds(), c1 = threadCPUSeconds()
        try parseUnits()
        let skeletons = units.compactMap(\.dwoName)
        if !skeletons.isEmpty && skeletons.count == units.count {
            throw .splitDWARF(binary: binaryPath ?? path, dwo: skeletons)
        }
        let t1 = monotonicSeconds(), c2 = threadCPUSeconds()
        buildIndex()
        timings.units = t1 - t0
        timings.index = monotonicSeconds() - t1
        timings.cpuDecompress = c1 - c0
        timings.cpuUnits = c2 - c1
        timings.cpuIndex = threadCPUSeconds() - c2
    }

    /// Opens a binary and its debug info: its own sections, or a separate debug file found by
    /// build id or .gnu_debuglink under `debugRoots` (Debian's /usr/lib/debug layout).
    public static func load(binary path: String, debugRoots: [String] = DebugFileLocator.defaultRoots) throws(DWARFError) -> DWARF {
        let t0 = monotonicSeconds()
        let elf: ELFFile
        do { elf = try ELFFile(path: path) } catch { throw .elf(error) }
        if elf.section(named: ".debug_info") != nil || elf.section(named: ".zdebug_info") != nil {
            let d = try DWARF(elf: elf, path: path, binaryPath: path)
            d.timings.read = monotonicSeconds() - t0 - d.timings.total
            return d
        }
        let candidates = DebugFileLocator.candidates(for: elf, binaryPath: path, roots: debugRoots)
        let link = DebugFileLocator.debugLink(of: elf)
        let wantedID = DebugFileLocator.buildID(of: elf)
        for c in candidates where access(c, R_OK) == 0 {
            guard let dbg = try? ELFFile(path: c),
                  dbg.section(named: ".debug_info") != nil || dbg.section(named: ".zdebug_info") != nil else { continue }
            // A debug file must belong to this binary: same build id, or the CRC the link records.
            if let wantedID, let id = DebugFileLocator.buildID(of: dbg) {
                if id != wantedID { continue }
            } else if let link, DebugFileLocator.crc32(dbg.view) != link.crc {
                continue
            }
            let d = try DWARF(elf: dbg, path: c, binaryPath: path)
            d.symbolFiles.append(elf)
            d.timings.read = max(0, monotonicSeconds() - t0 - d.timings.decompress - d.timings.units - d.timings.index)
            return d
        }
        throw .noDebugInfo(binary: path, searched: candidates)
    }

    /// The compile units (and type/partial units) in file order.
    public var allUnits: [DWARFUnit] { units }

    // MARK: Index

    /// One pass over every DIE: names of functions with code, variables with static storage,
    /// and named types. Values are decoded only for the few attributes the index needs.
    func buildIndex() {
        var pendingFunctions: [(Int, Int)] = []   // (die, origin/specification)
        var pendingVariables: [(Int, Int)] = []
        for ui in units.indices {
            do {
                try indexUnit(ui, &pendingFunctions, &pendingVariables)
            } catch {
                skippedUnits.append((units[ui].offset, error))
            }
        }
        // Concrete DIEs that borrow their name from an abstract or declaring DIE.
        for (die, origin) in pendingFunctions {
            if let n = try? nameThroughOrigins(origin) { functionIndex[n, default: []].append(die) }
        }
        for (die, origin) in pendingVariables {
            if let n = try? nameThroughOrigins(origin) { variableIndex[n, default: []].append(die) }
        }
        nameCache = [:]
    }

    func nameThroughOrigins(_ start: Int) throws(DWARFError) -> String? {
        var off = start
        for _ in 0..<8 {
            guard let d = try die(at: off) else { return nil }
            if let n = string(d.value(DW.AT.name), unit: d.unit) { return n }
            guard let next = reference(d.value(DW.AT.abstractOrigin)) ?? reference(d.value(DW.AT.specification)) else { return nil }
            off = next
        }
        return nil
    }

    private func indexUnit(_ ui: Int, _ pendingFunctions: inout [(Int, Int)], _ pendingVariables: inout [(Int, Int)]) throws(DWARFError) {
        let u = units[ui]
        let (view, local, secName) = sectionView(forAbsolute: u.firstDIE)
        let shift = u.firstDIE - local
        var c = Cursor(view, section: secName, offset: local)
        let table = abbrevs[u.abbrevIndex]
        let fixed = fixedSizes(table, unit: u)
        var depth = 0
        // Namespaces and the unit root are the scopes whose children are global names.
        var globalScope: [Bool] = [true]
        while c.offset + shift < u.end {
            let dieOffset = c.offset + shift
            let code = try c.uleb()
            if code == 0 {
                depth -= 1
                if depth <= 0 { break }
                globalScope.removeLast()
                continue
            }
            guard let ab = table.lookup(code) else {
                throw .malformed(section: secName, offset: c.offset, reason: "abbreviation code \(code) is not in the unit's table")
            }
            let tag = ab.tag
            let interesting: Bool
            switch tag {
            case DW.TAG.subprogram, DW.TAG.variable, DW.TAG.structureType, DW.TAG.unionType, DW.TAG.classType,
                 DW.TAG.enumerationType, DW.TAG.typedef, DW.TAG.baseType:
                interesting = true
            default: interesting = false
            }
            var name: FormValue?
            var origin: Int?
            var hasCode = false, declaration = false, staticLocation = false
            var lowPC: FormValue?
            if interesting {
                for s in ab.specs {
                    switch s.at {
                    case DW.AT.name:
                        name = try readForm(s.form, implicit: s.implicitConst, &c, unit: u, shift: shift)
                    case DW.AT.abstractOrigin, DW.AT.specification:
                        origin = reference(try readForm(s.form, implicit: s.implicitConst, &c, unit: u, shift: shift))
                    case DW.AT.lowPC:
                        hasCode = true
                        lowPC = try readForm(s.form, implicit: s.implicitConst, &c, unit: u, shift: shift)
                    case DW.AT.ranges:
                        hasCode = true
                        try skipForm(s.form, &c, unit: u)
                    case DW.AT.declaration:
                        declaration = flag(try readForm(s.form, implicit: s.implicitConst, &c, unit: u, shift: shift))
                    case DW.AT.location where tag == DW.TAG.variable:
                        let v = try readForm(s.form, implicit: s.implicitConst, &c, unit: u, shift: shift)
                        if case .block(let b) = v { staticLocation = DWARFExpression.isStaticLocation(b) }
                    default:
                        try skipForm(s.form, &c, unit: u)
                    }
                }
            } else if code < UInt64(fixed.count), fixed[Int(code)] >= 0 {
                // Most DIEs the index ignores have only fixed-size attributes: one jump.
                try c.skip(Int(fixed[Int(code)]))
            } else {
                for s in ab.specs { try skipForm(s.form, &c, unit: u) }
            }
            let inGlobalScope = globalScope.last ?? false
            if interesting {
                switch tag {
                case DW.TAG.subprogram where hasCode:
                    if let a = address(lowPC, unit: ui), functionEntries[a] == nil { functionEntries[a] = dieOffset }
                    if let n = indexName(name, unit: ui) { functionIndex[n, default: []].append(dieOffset) }
                    else if let origin { pendingFunctions.append((dieOffset, origin)) }
                case DW.TAG.variable where !declaration && staticLocation:
                    if let n = indexName(name, unit: ui) { variableIndex[n, default: []].append(dieOffset) }
                    else if let origin { pendingVariables.append((dieOffset, origin)) }
                case DW.TAG.variable:
                    break
                case DW.TAG.subprogram:
                    break
                default:
                    if inGlobalScope, let n = indexName(name, unit: ui) {
                        let key: String
                        switch tag {
                        case DW.TAG.structureType, DW.TAG.classType: key = "struct " + n
                        case DW.TAG.unionType: key = "union " + n
                        case DW.TAG.enumerationType: key = "enum " + n
                        default: key = n
                        }
                        typeIndex[key, default: []].append(dieOffset)
                        if declaration { typeDeclarations.insert(dieOffset) }
                    }
                }
            }
            if ab.hasChildren {
                depth += 1
                guard depth < 4096 else { throw .tooDeep(what: "DIE tree", limit: 4096) }
                if depth == 1 {
                    globalScope = [true]
                } else {
                    // C gives types nested in a struct file scope; C++ namespaces hold globals.
                    let opensScope = tag == DW.TAG.namespace || tag == DW.TAG.structureType
                        || tag == DW.TAG.unionType || tag == DW.TAG.classType
                    globalScope.append(opensScope && inGlobalScope)
                }
            } else if depth == 0 {
                break
            }
        }
    }

    /// For each dense abbreviation code: the byte size of all its attributes when every form
    /// has a fixed size in this unit, else -1.
    private func fixedSizes(_ t: AbbrevTable, unit u: DWARFUnit) -> [Int32] {
        t.dense.map { ab -> Int32 in
            guard let ab else { return -1 }
            var total: Int32 = 0
            for s in ab.specs {
                let n: Int32
                switch s.form {
                case DW.FORM.flagPresent, DW.FORM.implicitConst: n = 0
                case DW.FORM.data1, DW.FORM.ref1, DW.FORM.flag, DW.FORM.strx1, DW.FORM.addrx1: n = 1
                case DW.FORM.data2, DW.FORM.ref2, DW.FORM.strx2, DW.FORM.addrx2: n = 2
                case DW.FORM.strx3, DW.FORM.addrx3: n = 3
                case DW.FORM.data4, DW.FORM.ref4, DW.FORM.strx4, DW.FORM.addrx4, DW.FORM.refSup4: n = 4
                case DW.FORM.data8, DW.FORM.ref8, DW.FORM.refSig8, DW.FORM.refSup8: n = 8
                case DW.FORM.data16: n = 16
                case DW.FORM.addr: n = Int32(u.addressSize)
                case DW.FORM.strp, DW.FORM.lineStrp, DW.FORM.secOffset, DW.FORM.strpSup, DW.FORM.gnuRefAlt,
                     DW.FORM.gnuStrpAlt: n = Int32(u.offsetSize)
                case DW.FORM.refAddr: n = Int32(u.version <= 2 ? u.addressSize : u.offsetSize)
                default: return -1
                }
                total += n
            }
            return total
        }
    }

    /// A name for the index, through the cache when it lives in .debug_str.
    @inline(__always) private func indexName(_ v: FormValue?, unit ui: Int) -> String? {
        guard let v else { return nil }
        if units[ui].inAlt { return string(v, unit: ui) }  // the cache is keyed by the main file's offsets
        var off: UInt64
        switch v {
        case .strp(let o): off = o
        case .strx(let i):
            let u = units[ui]
            let (p, o) = i.multipliedReportingOverflow(by: UInt64(u.offsetSize))
            guard !o, let at = Int(exactly: u.strOffsetsBase &+ p) else { return nil }
            var c = Cursor(sections.strOffsets, section: ".debug_str_offsets", offset: at)
            guard let so = try? c.unsigned(size: u.offsetSize) else { return nil }
            off = so
        default: return string(v, unit: ui)
        }
        if let s = nameCache[off] { return s }
        guard let s = sections.str.string(at: off) else { return nil }
        nameCache[off] = s
        return s
    }

    // MARK: Lookups by name

    /// Names of every function with code, every static-storage variable and every named type.
    public var functionNames: [String] { Array(functionIndex.keys) }
    public var variableNames: [String] { Array(variableIndex.keys) }
    public var typeNames: [String] { Array(typeIndex.keys) }

    /// Splits "name@file.c" into the name and a compile-unit filter.
    static func splitQualified(_ s: String) -> (String, String?) {
        guard let at = s.lastIndex(of: "@") else { return (s, nil) }
        return (String(s[..<at]), String(s[s.index(after: at)...]))
    }

    /// Whether a unit's name matches a file filter (full path, or trailing path components).
    func unit(_ ui: Int, matchesFile file: String) -> Bool {
        let n = units[ui].name
        return n == file || n.hasSuffix("/" + file) || (units[ui].compDir + "/" + n).hasSuffix("/" + file)
    }
}

extension DWARF {
    /// Runs every query on up to `limit` names of each kind and ignores the answers: the fuzz
    /// target and the malformed-input tests call it to reach all decoding paths.
    public func exercise(limit: Int = 32) {
        for n in functionIndex.keys.sorted().prefix(limit) {
            if let f = try? function(named: n) {
                _ = try? variables(at: f.lowPC)
                _ = try? sourceLocation(address: f.lowPC)
                _ = try? cfa(at: f.lowPC &+ 4)
            }
        }
        for n in variableIndex.keys.sorted().prefix(limit) { _ = try? variable(named: n) }
        for n in typeIndex.keys.sorted().prefix(limit) { _ = try? typeID(named: n) }
        for ui in units.indices.prefix(limit) {
            if let t = try? lineTable(unit: ui), let f = t.files.last, let r = t.rows.first {
                _ = try? addresses(file: f, line: r.line)
            }
        }
        _ = try? btf()
    }
}
