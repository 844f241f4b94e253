import PlumbELF

/// One row of a line-number program.
public struct LineRow: Equatable, Sendable {
    public var address: UInt64
    /// Index into the table's `files`.
    public var file: Int
    public var line: Int
    public var column: Int
    public var isStatement: Bool
    public var endSequence: Bool
}

/// A decoded line table (.debug_line program of one unit), DWARF 2 to 5 headers.
public struct LineTable: Sendable {
    public var version: Int
    /// File names, joined with their directories. For DWARF 5, index 0 is the unit's primary file;
    /// before 5, index 0 is unused and numbering starts at 1 (we keep the same indices).
    public var files: [String]
    public var rows: [LineRow]
    /// Bytes the table occupies in .debug_line.
    var byteLength = 0

    static let maxRows = 1 << 24

    init(data: ByteView, offset: UInt64, addressSize unitAddressSize: Int, compDir: String, unitName: String,
         strings: ByteView, lineStrings: ByteView) throws(DWARFError) {
        let sec = ".debug_line"
        guard let start = Int(exactly: offset) else { throw .truncated(section: sec, offset: 0, what: "line table offset \(offset)") }
        var c = Cursor(data, section: sec, offset: start)
        let (length, offsetSize) = try c.initialLength()
        guard length <= UInt64(c.remaining) else { throw .truncated(section: sec, offset: start, what: "line table of \(length) bytes") }
        let end = c.offset + Int(length)
        version = Int(try c.u16())
        guard (2...5).contains(version) else { throw .unsupportedVersion(section: sec, offset: start, version: version) }
        var addressSize = unitAddressSize
        if version >= 5 {
            addressSize = Int(try c.u8())
            _ = try c.u8()  // segment selector size
            guard addressSize == 4 || addressSize == 8 else {
                throw .malformed(section: sec, offset: start, reason: "address size \(addressSize)")
            }
        }
        let headerLength = try c.unsigned(size: offsetSize)
        guard c.offset <= end, headerLength <= UInt64(end - c.offset) else { throw .truncated(section: sec, offset: start, what: "line table header") }
        let programStart = c.offset + Int(headerLength)
        let minInst = UInt64(try c.u8())
        if version >= 4 { _ = try c.u8() }  // maximum_operations_per_instruction (VLIW only)
        let defaultIsStmt = try c.u8() != 0
        let lineBase = Int(Int8(bitPattern: try c.u8()))
        let lineRange = Int(try c.u8())
        let opcodeBase = Int(try c.u8())
        guard lineRange > 0 else { throw .malformed(section: sec, offset: start, reason: "line_range is 0") }
        var standardLengths: [Int] = []
        for _ in 1..<max(opcodeBase, 1) { standardLengths.append(Int(try c.u8())) }

        var dirs: [String] = []
        var files: [String] = []
        func join(_ dir: String, _ name: String) -> String {
            if name.hasPrefix("/") || dir.isEmpty { return name }
            return dir + "/" + name
        }
        if version >= 5 {
            // Entry formats: (content type, form) pairs, then the entries.
            func readEntries(_ c: inout Cursor) throws(DWARFError) -> [(path: String, dir: Int)] {
                let formatCount = Int(try c.u8())
                var formats: [(UInt64, UInt64)] = []
                for _ in 0..<formatCount { formats.append((try c.uleb(), try c.uleb())) }
                let count = try c.uleb()
                guard count <= UInt64(c.remaining) else { throw c.fail("\(count) line table entries") }
                var out: [(String, Int)] = []
                for _ in 0..<count {
                    var path = "", dir = 0
                    for (type, form) in formats {
                        var str: String?
                        var num: UInt64?
                        switch UInt16(truncatingIfNeeded: form) {
                        case DW.FORM.string: str = try c.cString()
                        case DW.FORM.lineStrp: str = lineStrings.string(at: try c.unsigned(size: offsetSize))
                        case DW.FORM.strp: str = strings.string(at: try c.unsigned(size: offsetSize))
                        case DW.FORM.udata: num = try c.uleb()
                        case DW.FORM.data1: num = UInt64(try c.u8())
                        case DW.FORM.data2: num = UInt64(try c.u16())
                        case DW.FORM.data4: num = UInt64(try c.u32())
                        case DW.FORM.data8: num = try c.u64()
                        case DW.FORM.data16: try c.skip(16)
                        case DW.FORM.block: try c.skip(try c.uleb())
                        default: throw .unsupportedForm(offset: c.offset, form: form)
                        }
                        if type == 1, let str { path = str }                 // DW_LNCT_path
                        if type == 2, let num { dir = Int(clamping: num) }   // DW_LNCT_directory_index
                    }
                    out.append((path, dir))
                }
                return out
            }
            dirs = try readEntries(&c).map { $0.path }
            for f in try readEntries(&c) {
                let d = f.dir < dirs.count ? dirs[f.dir] : ""
                let full = d.hasPrefix("/") || d.isEmpty ? join(d, f.path) : join(join(compDir, d), f.path)
                files.append(full)
            }
        } else {
            dirs = [compDir]
            while true {
                let d = try c.cString()
                if d.isEmpty { break }
                dirs.append(d.hasPrefix("/") ? d : join(compDir, d))
            }
            files = [unitName.hasPrefix("/") ? unitName : join(compDir, unitName)]
            while true {
                let name = try c.cString()
                if name.isEmpty { break }
                let d = Int(clamping: try c.uleb())
                _ = try c.uleb(); _ = try c.uleb()
                files.append(join(d < dirs.count ? dirs[d] : "", name))
            }
        }
        self.files = files

        // The line-number state machine (DWARF 5 section 6.2.2).
        var rows: [LineRow] = []
        c.offset = programStart
        var address: UInt64 = 0, file = 1, line = 1, column = 0, isStmt = defaultIsStmt
        func reset() { address = 0; file = 1; line = 1; column = 0; isStmt = defaultIsStmt }
        func emit(_ endSeq: Bool) throws(DWARFError) {
            guard rows.count < Self.maxRows else { throw .tooDeep(what: "line table rows", limit: Self.maxRows) }
            rows.append(LineRow(address: address, file: file, line: line, column: column, isStatement: isStmt, endSequence: endSeq))
        }
        while c.offset < end {
            let op = Int(try c.u8())
            if op >= opcodeBase {
                let adj = op - opcodeBase
                address &+= UInt64(adj / lineRange) &* minInst
                line &+= lineBase + adj % lineRange
                try emit(false)
                continue
            }
            switch op {
            case 0:
                let len = try c.uleb()
                guard len > 0, c.offset <= end, len <= UInt64(end - c.offset) else { throw c.fail("extended opcode of \(len) bytes") }
                let next = c.offset + Int(len)
                let sub = try c.u8()
                switch sub {
                case 1: try emit(true); reset()
                case 2:
                    let n = Int(len - 1)
                    address = try c.unsigned(size: n == 4 || n == 8 ? n : addressSize)
                case 3:  // DW_LNE_define_file (pre-5)
                    let name = try c.cString()
                    files.append(name)
                case 4: _ = try c.uleb()  // discriminator
                default: break
                }
                c.offset = next
            case 1: try emit(false)
            case 2: address &+= try c.uleb() &* minInst
            case 3: line &+= Int(truncatingIfNeeded: try c.sleb())
            case 4: file = Int(clamping: try c.uleb())
            case 5: column = Int(clamping: try c.uleb())
            case 6: isStmt.toggle()
            case 7: break
            case 8: address &+= UInt64((255 - opcodeBase) / lineRange) &* minInst
            case 9: address &+= UInt64(try c.u16())
            case 10, 11: break
            case 12: _ = try c.uleb()
            default:
                // Unknown standard opcode: skip its ULEB operands as the header declares.
                let n = op - 1 < standardLengths.count ? standardLengths[op - 1] : 0
                for _ in 0..<n { _ = try c.uleb() }
            }
        }
        self.files = files
        self.rows = rows
        byteLength = end - start
    }
}

extension DWARF {
    /// The line table of a unit (decoded once).
    func lineTable(unit ui: Int) throws(DWARFError) -> LineTable? {
        guard !units[ui].inAlt, let off = units[ui].stmtList else { return nil }
        if let t = lineTables[off] { return t }
        let t = try LineTable(data: try sections.lazy(".debug_line"), offset: off, addressSize: units[ui].addressSize,
                              compDir: units[ui].compDir, unitName: units[ui].name,
                              strings: sections.str, lineStrings: sections.lineStr)
        lineTables[off] = t
        // Units pointing into overlapping tables could make decoding quadratic: bound the total.
        lineBytesDecoded += t.byteLength
        let section = try sections.lazy(".debug_line").count
        guard lineBytesDecoded <= 16 &* section &+ (1 << 20) else {
            throw .malformed(section: ".debug_line", offset: Int(clamping: off),
                             reason: "units point into overlapping line tables (read 16 times the section); the file is corrupt")
        }
        return t
    }

    /// A unit's line table for whole-file searches: a corrupt one is skipped (and remembered in
    /// `skippedLineTables`) so the other units still answer; the work bound still throws.
    func usableLineTable(unit ui: Int) throws(DWARFError) -> LineTable? {
        if let off = units[ui].stmtList, failedLineTables.contains(off) { return nil }
        do {
            return try lineTable(unit: ui)
        } catch {
            if case .malformed(".debug_line", _, let r) = error, r.hasPrefix("units point into overlapping") { throw error }
            if let off = units[ui].stmtList { failedLineTables.insert(off) }
            skippedLineTables.append((units[ui].offset, error))
            return nil
        }
    }

    static func fileMatches(_ full: String, _ wanted: String) -> Bool {
        full == wanted || full.hasSuffix("/" + wanted)
    }

    /// Addresses where code for `file:line` starts: the first address of each run of rows for
    /// that line (one per inlined copy or split block), statement rows only, sorted.
    /// `file` may be a bare name ("prog.c") or any trailing part of the path.
    public func addresses(file: String, line: Int) throws(DWARFError) -> [UInt64] {
        var out = Set<UInt64>()
        try forEachLineTable(of: file) { t, matching in
            var previousMatched = false
            for r in t.rows {
                let hit = !r.endSequence && r.isStatement && r.line == line && matching.contains(r.file)
                if hit && !previousMatched { out.insert(r.address) }
                previousMatched = hit || (previousMatched && !r.endSequence && r.line == line && matching.contains(r.file))
                if r.endSequence { previousMatched = false }
            }
        }
        return out.sorted()
    }

    /// Each line table (once, however many units share it) that names `file`, with the
    /// indices of its file entries that `file` matches.
    func forEachLineTable(of file: String, _ body: (LineTable, Set<Int>) -> Void) throws(DWARFError) {
        var seenTables = Set<UInt64>()
        for ui in units.indices {
            guard !units[ui].inAlt, let off = units[ui].stmtList, seenTables.insert(off).inserted else { continue }
            guard let t = try usableLineTable(unit: ui) else { continue }
            let matching = Set(t.files.indices.filter { Self.fileMatches(t.files[$0], file) })
            if !matching.isEmpty { body(t, matching) }
        }
    }

    /// The source position of an address (like addr2line without inlining): file and line.
    public func sourceLocation(address: UInt64) throws(DWARFError) -> (file: String, line: Int)? {
        var seenTables = Set<UInt64>()
        for ui in units.indices {
            guard !units[ui].inAlt, let off = units[ui].stmtList, seenTables.insert(off).inserted else { continue }
            guard let t = try usableLineTable(unit: ui) else { continue }
            var prev: LineRow?
            for r in t.rows {
                if let p = prev, !p.endSequence, p.address <= address, address < r.address {
                    return (p.file < t.files.count ? t.files[p.file] : "??", p.line)
                }
                prev = r.endSequence ? nil : r
            }
        }
        return nil
    }
}
