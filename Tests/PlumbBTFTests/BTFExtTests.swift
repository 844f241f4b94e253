import PlumbBTF
import PlumbELF
import Foundation
import TestSupport
import Testing

/// Writes .BTF.ext (for round trips with other record sizes, header lengths and byte orders).
struct BTFExtWriter {
    var order: ByteOrder
    var hdrLen = 32
    var extraRecordBytes = 0
    var out: [UInt8] = []

    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: order == .little ? v.littleEndian : v.bigEndian) { out += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: order == .little ? v.littleEndian : v.bigEndian) { out += $0 } }

    func block<R>(_ secs: [BTFExtSection<R>], size: Int, _ rec: (inout BTFExtWriter, R) -> Void) -> [UInt8] {
        guard !secs.isEmpty else { return [] }
        var w = BTFExtWriter(order: order)
        w.u32(UInt32(size + extraRecordBytes))
        for s in secs {
            w.u32(s.nameOffset); w.u32(UInt32(s.records.count))
            for r in s.records {
                rec(&w, r)
                for i in 0..<extraRecordBytes { w.out.append(UInt8(0xa0 + i)) }
            }
        }
        return w.out
    }

    mutating func encode(_ e: BTFExt) -> [UInt8] {
        let f = block(e.functionInfo, size: 8) { w, r in w.u32(r.insnOffset); w.u32(r.typeID) }
        let l = block(e.lineInfo, size: 16) { w, r in
            w.u32(r.insnOffset); w.u32(r.fileNameOffset); w.u32(r.lineOffset); w.u32(r.lineNumber << 10 | r.column)
        }
        let c = block(e.coreRelocations, size: 16) { w, r in
            w.u32(r.insnOffset); w.u32(r.typeID); w.u32(r.accessStringOffset); w.u32(r.kind.rawValue)
        }
        out = []
        u16(0xeb9f); out.append(1); out.append(0); u32(UInt32(hdrLen))
        u32(0); u32(UInt32(f.count))
        u32(UInt32(f.count)); u32(UInt32(l.count))
        if hdrLen >= 32 { u32(UInt32(f.count + l.count)); u32(UInt32(c.count)) }
        while out.count < hdrLen { out.append(0xee) }  // header fields from the future
        return out + f + l + c
    }
}

func parseExt(_ bytes: [UInt8], btf: BTF) throws(BTFError) -> BTFExt {
    try BTFExt(ByteView(Bytes(bytes), order: .little), btf: btf)
}

@Suite("BTF.ext")
struct BTFExtTests {
    static let objects = ["core_fields", "core_bits", "core_kernel", "core_errors"]

    @Test("fixtures parse identically in both byte orders", arguments: objects)
    func bothOrders(_ name: String) throws {
        let le = try COREObject(try COREHarness.fixture(name, "bpfel"))
        let be = try COREObject(try COREHarness.fixture(name, "bpfeb"))
        #expect(le.ext.order == .little && be.ext.order == .big)
        #expect(le.ext.headerLength >= 32)
        #expect(le.ext.functionInfo.map(\.name) == be.ext.functionInfo.map(\.name))
        #expect(le.ext.functionInfo.map(\.records) == be.ext.functionInfo.map(\.records))
        #expect(le.ext.lineInfo.map(\.records) == be.ext.lineInfo.map(\.records))
        #expect(le.ext.coreRelocations.map(\.records) == be.ext.coreRelocations.map(\.records))
        #expect(le.ext.coreRelocations.map(\.name) == be.ext.coreRelocations.map(\.name))
    }

    @Test("records agree with the objects: func_info names programs, line_info points at source, CO-RE count = llvm-objdump's", arguments: objects)
    func recordsMatchObject(_ name: String) throws {
        let path = try COREHarness.fixture(name)
        let obj = try COREObject(path)
        // func_info: every program starts with a FUNC of its own name.
        for p in obj.programs {
            let sec = try #require(obj.ext.functionInfo.first { $0.name == p.section })
            let fi = try #require(sec.records.first { $0.insnOffset == UInt32(p.start * 8) })
            #expect(obj.btf.name(of: fi.typeID) == p.name)
            #expect(obj.btf.kind(of: fi.typeID) == .function)
        }
        // line_info: the recorded source text is that line of the file, the column is inside it.
        let source = try String(contentsOf: TestEnv.fixturesSource.appendingPathComponent("\(name).bpf.c"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var lines = 0
        for sec in obj.ext.lineInfo {
            for li in sec.records {
                #expect(li.fileName.hasSuffix("\(name).bpf.c"))
                let n = Int(li.lineNumber)
                guard n >= 1, n <= source.count else { Issue.record("line \(n) out of range"); continue }
                #expect(source[n - 1] == li.line, "line \(n)")
                #expect(Int(li.column) <= source[n - 1].utf8.count + 1)
                lines += 1
            }
        }
        #expect(lines > 10)
        // CO-RE relocations: as many as llvm-objdump annotates, same kinds.
        let dump = TestEnv.run(TestEnv.llvmObjdump, ["-dr", path]).stdout
        let annotated = dump.split(separator: "\n").filter { $0.contains("CO-RE <") }
        let ours = obj.ext.coreRelocations.flatMap(\.records)
        #expect(ours.count == annotated.count)
        for (r, line) in zip(ours, annotated) {
            #expect(line.contains("CO-RE <\(r.kind.name)> [\(r.typeID)]"), "\(line) vs \(r.kind.name) [\(r.typeID)]")
        }
    }

    @Test("larger record sizes and header lengths are honoured, both byte orders")
    func futureSizes() throws {
        let obj = try COREObject(try COREHarness.fixture("core_fields"))
        for order in [ByteOrder.little, .big] {
            for (hdr, extra) in [(32, 0), (40, 4), (32, 8), (48, 12)] {
                var w = BTFExtWriter(order: order, hdrLen: hdr, extraRecordBytes: extra)
                let e = try parseExt(w.encode(obj.ext), btf: obj.btf)
                #expect(e.order == order && e.headerLength == hdr)
                #expect(e.functionInfo.map(\.records) == obj.ext.functionInfo.map(\.records))
                #expect(e.lineInfo.map(\.records) == obj.ext.lineInfo.map(\.records))
                #expect(e.coreRelocations.map(\.records) == obj.ext.coreRelocations.map(\.records))
                #expect(e.coreRelocations.first?.recordSize == 16 + extra)
            }
        }
        // A header without core_relo (hdr_len 24) still parses func and line info.
        var w = BTFExtWriter(order: .little, hdrLen: 24)
        let e = try parseExt(w.encode(obj.ext), btf: obj.btf)
        #expect(e.coreRelocations.isEmpty && !e.lineInfo.isEmpty)
    }

    /// Patches a u32 at `offset` of a little-endian blob.
    static func poke(_ b: [UInt8], _ offset: Int, _ v: UInt32) -> [UInt8] {
        var b = b
        withUnsafeBytes(of: v.littleEndian) { for i in 0..<4 { b[offset + i] = $0[i] } }
        return b
    }

    @Test("malformed .BTF.ext gives typed errors naming offsets")
    func malformed() throws {
        let obj = try COREObject(try COREHarness.fixture("core_fields"))
        var w = BTFExtWriter(order: .little)
        let good = w.encode(obj.ext)
        let btf = obj.btf
        let funcLen = Int(good[12]) | Int(good[13]) << 8
        let lineLen = Int(good[20]) | Int(good[21]) << 8
        let core = 32 + funcLen + lineLen  // start of the core_relo block
        func expectError(_ bytes: [UInt8], _ check: (BTFError) -> Bool, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try parseExt(bytes, btf: btf)
                Issue.record("\(what): parsed", sourceLocation: sourceLocation)
            } catch {
                #expect(check(error), "\(what): \(error)", sourceLocation: sourceLocation)
                #expect(!error.description.isEmpty)
            }
        }
        expectError([], { if case .extTooShort = $0 { true } else { false } }, "empty")
        expectError(Array(good.prefix(10)), { if case .extTooShort = $0 { true } else { if case .extBadHeader = $0 { true } else { false } } }, "short header")
        expectError([0x12, 0x34] + good.dropFirst(2), { $0 == .extBadMagic(0x3412) }, "magic")
        var v2 = good; v2[2] = 2
        expectError(v2, { $0 == .extBadVersion(2) }, "version")
        expectError(Self.poke(good, 4, 20), { if case .extBadHeader(offset: 4, _) = $0 { true } else { false } }, "hdr_len < 24")
        expectError(Self.poke(good, 4, 1 << 20), { if case .extBadHeader(offset: 4, _) = $0 { true } else { false } }, "hdr_len past end")
        expectError(Self.poke(good, 8, 1 << 20), { if case .extBadHeader(offset: 8, _) = $0 { true } else { false } }, "func_info off past end")
        expectError(Self.poke(good, 8, 2), { if case .extBadHeader(offset: 8, _) = $0 { true } else { false } }, "func_info misaligned")
        expectError(Self.poke(good, 28, UInt32(good.count)), { if case .extBadHeader(offset: 24, _) = $0 { true } else { false } }, "core_relo len")
        expectError(Self.poke(good, 32, 4), { if case .extBadRecord(what: "func_info", offset: 0, _) = $0 { true } else { false } }, "rec_size < 8")
        expectError(Self.poke(good, 32, 10), { if case .extBadRecord(what: "func_info", offset: 0, _) = $0 { true } else { false } }, "rec_size % 4")
        expectError(Self.poke(good, 36, 0xffff_ffff), { if case .extBadString(what: "func_info section name", offset: 4, _) = $0 { true } else { false } }, "sec name")
        expectError(Self.poke(good, 40, 0), { if case .extBadRecord(what: "func_info", offset: 8, _) = $0 { true } else { false } }, "num_info 0")
        expectError(Self.poke(good, 40, 0x1000_0000), { if case .extBadRecord(what: "func_info", offset: 8, _) = $0 { true } else { false } }, "num_info huge")
        // line_info: first record's file name offset.
        let line0 = 32 + funcLen + 4 + 8
        expectError(Self.poke(good, line0 + 4, 0x7fff_0000), { if case .extBadString(what: "line_info file name", offset: 16, _) = $0 { true } else { false } }, "file name")
        expectError(Self.poke(good, line0 + 8, 0x7fff_0000), { if case .extBadString(what: "line_info source line", offset: 20, _) = $0 { true } else { false } }, "line")
        // core_relo: first record (block offset 12).
        let relo0 = core + 12
        expectError(Self.poke(good, relo0, 3), { if case .extBadRecord(what: "core_relo", offset: 12, _) = $0 { true } else { false } }, "insn_off % 8")
        expectError(Self.poke(good, relo0 + 4, 1 << 30), { if case .extBadRecord(what: "core_relo", offset: 16, _) = $0 { true } else { false } }, "type id")
        expectError(Self.poke(good, relo0 + 8, 0x7fff_0000), { if case .extBadString(what: "core_relo access string", offset: 20, _) = $0 { true } else { false } }, "access string")
        expectError(Self.poke(good, relo0 + 12, 13), { if case .extBadRecord(what: "core_relo", offset: 24, _) = $0 { true } else { false } }, "kind 13")
        // Every truncation fails cleanly (or parses, when it cuts at a block boundary: never crashes).
        for n in 0..<good.count { _ = try? parseExt(Array(good.prefix(n)), btf: btf) }
        // Deterministic random mutations: flip bytes and words, never crash.
        var rng = SplitMix(seed: 0x5eed)
        var errors = 0
        for _ in 0..<3000 {
            var b = good
            for _ in 0..<Int(rng.next() % 4 + 1) {
                let at = Int(rng.next() % UInt64(b.count))
                if rng.next() % 2 == 0 { b[at] = UInt8(truncatingIfNeeded: rng.next()) }
                else if at + 4 <= b.count { b = Self.poke(b, at, UInt32(truncatingIfNeeded: rng.next())) }
            }
            do { _ = try parseExt(b, btf: btf) } catch { errors += 1 }
        }
        #expect(errors > 500)
    }
}

