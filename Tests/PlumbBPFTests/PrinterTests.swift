// The printing side of a trace without the kernel: --set values, record printers and the
// output buffer, on the fixtures' specs.
@testable import PlumbBPF
import PlumbBTF
import Foundation
import Glibc
import Testing
import TestSupport

func message(_ body: () throws -> Void) -> String? {
    do { try body() } catch let e as BPFError {
        if case .invalidArgument(let m) = e { return m }
        return e.description
    } catch { return "\(error)" }
    return nil
}

@Suite struct GlobalValueTests {
    @Test func integersAreCheckedAgainstTheVariablesType() throws {
        let spec = try ObjectSpec(path: try fixture("basic.bpfel.o"))   // const volatile __u32 target_pid
        #expect(try spec.globalValue("target_pid", "42") == [42, 0, 0, 0])
        #expect(try spec.globalValue("target_pid", "0xffffffff") == [255, 255, 255, 255])
        #expect(try spec.globalValue("seen_value", "0x1_0000_0000") == [0, 0, 0, 0, 1, 0, 0, 0])
        // Negative into unsigned: refused, not wrapped to 4294967295.
        #expect(message { _ = try spec.globalValue("target_pid", "-1") }?.hasPrefix("-1 does not fit u32 target_pid") == true)
        #expect(try spec.globalValue("target_pid", "-0") == [0, 0, 0, 0])
        let tooBig = message { _ = try spec.globalValue("target_pid", "0x1ffffffff") }
        #expect(tooBig?.contains("does not fit in 4 bytes: out of range for u32 target_pid (0 to 4294967295)") == true, "\(tooBig ?? "")")
        // Beyond 64 bits is out of range too, not "not an integer".
        let huge = message { _ = try spec.globalValue("target_pid", "99999999999999999999999") }
        #expect(huge == "99999999999999999999999 is out of range for u32 target_pid (0 to 4294967295)")
        #expect(message { _ = try spec.globalValue("target_pid", "12abc") }?.hasPrefix("'12abc' is not an integer") == true)
    }

    @Test func stringsCountBytes() throws {
        let spec = try ObjectSpec(path: try fixture("basic.bpfel.o"))   // char tag[8]
        #expect(try spec.globalValue("tag", "héllo") == Array("héllo".utf8) + [0, 0])
        // 7 characters but 8 bytes: does not fit 7 bytes + NUL.
        let long = message { _ = try spec.globalValue("tag", "héllo12") }
        #expect(long == "'héllo12' is 8 bytes (7 characters in UTF-8); tag (char[8]) holds at most 7 bytes and the terminating NUL")
    }

    @Test func unknownNamesSuggestTheClosest() throws {
        let spec = try ObjectSpec(path: try fixture("basic.bpfel.o"))
        let m = message { _ = try spec.globalValues(["target_pdi=1"]) }
        #expect(m?.contains("no global variable 'target_pdi'") == true)
        #expect(m?.contains("Did you mean 'target_pid'?") == true)
        #expect(message { _ = try spec.globalValues(["=1"]) } == "'=1' is not VAR=VALUE")
        #expect(try spec.globalValues(["target_pid=7", "tag=x"]) == ["target_pid": [7, 0, 0, 0], "tag": [120, 0, 0, 0, 0, 0, 0, 0]])
    }

    @Test func signedRangesAndBitPatterns() {
        let s32 = IntegerShapeProbe(size: 4, signed: true)
        #expect(s32.encode("-2147483648") == [0, 0, 0, 0x80])
        #expect(s32.encode("0xffffffff") == [255, 255, 255, 255])   // a bit pattern, as C allows
        #expect(s32.refusal("2147483648")?.contains("out of range for s32 v (-2147483648 to 2147483647)") == true)
        #expect(s32.refusal("-2147483649")?.contains("does not fit in 4 bytes") == true)
    }
}

/// Encodes as a variable `v` of the given integer shape.
struct IntegerShapeProbe {
    let shape: IntegerShape

    init(size: Int, signed: Bool) { shape = IntegerShape(size: size, signed: signed) }

    func encode(_ text: String) -> [UInt8]? { try? GlobalEncoding.integer(text, shape, what: "v") }
    func refusal(_ text: String) -> String? { message { _ = try GlobalEncoding.integer(text, shape, what: "v") } }
}

@Suite struct RecordPrinterTests {
    @Test func recordTypesAreCheckedBeforeLoading() throws {
        let spec = try ObjectSpec(path: try fixture("basic.bpfel.o"))
        _ = try RecordPrinter(spec: spec, recordTypes: ["events": "event"])
        _ = try RecordPrinter(spec: spec, recordTypes: ["events": "struct event"])
        let map = message { _ = try RecordPrinter(spec: spec, recordTypes: ["evnets": "event"]) }
        #expect(map?.contains("no map 'evnets'") == true && map?.contains("did you mean 'events'?") == true, "\(map ?? "")")
        let kind = message { _ = try RecordPrinter(spec: spec, recordTypes: ["counts": "event"]) }
        #expect(kind?.contains("map 'counts' is a hash map") == true, "\(kind ?? "")")
        let type = message { _ = try RecordPrinter(spec: spec, recordTypes: ["events": "evnet"]) }
        #expect(type?.contains("no struct, union or typedef named 'evnet'") == true && type?.contains("did you mean 'event'?") == true, "\(type ?? "")")
        #expect(message { _ = try RecordPrinter.parseRecordTypes(["events"]) } == "'events' is not MAP=TYPE (for example events=event)")
        #expect(try RecordPrinter.parseRecordTypes(["a=b", "c=struct d"]) == ["a": "b", "c": "struct d"])
    }

    @Test func recordsPrintTypedByNameOrSizeElseHex() throws {
        let spec = try ObjectSpec(path: try fixture("basic.bpfel.o"))
        let printer = try RecordPrinter(spec: spec)
        var record = [UInt8](repeating: 0, count: 32)   // struct event: pid, kind, value, comm[16]
        record[0] = 7; record[4] = 1; record[8] = 42
        record.replaceSubrange(16 ..< 21, with: Array("bash".utf8) + [0])
        let line = record.withUnsafeBytes { printer.line(map: "events", $0) }
        #expect(line == "events: { .pid = 7, .kind = 1, .value = 42, .comm = \"bash\" }\n")
        // A size no struct has: hex.
        #expect([UInt8]([1, 2, 0xff]).withUnsafeBytes { printer.line(map: "events", $0) } == "events: 01 02 ff\n")
        // Records of one map alternating sizes use the right plan each time.
        let format = printer.format(forMap: "events")
        var out: [UInt8] = []
        for bytes in [record, [9], record] { bytes.withUnsafeBytes { format.append($0, to: &out) } }
        #expect(String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init) == [
            "events: { .pid = 7, .kind = 1, .value = 42, .comm = \"bash\" }", "events: 09",
            "events: { .pid = 7, .kind = 1, .value = 42, .comm = \"bash\" }"])
    }
}

@Suite struct OutputBufferTests {
    /// A temporary file's fd and a reader of what was written.
    func temporary() throws -> (fd: Int32, read: () -> String, close: () -> Void) {
        var template = Array((FileManager.default.temporaryDirectory.path + "/plumb-out-XXXXXX").utf8CString)
        let fd = mkstemp(&template)
        try #require(fd >= 0)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (fd, { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }, { close(fd); unlink(path) })
    }

    @Test func writesInLargePiecesAndOnFlush() throws {
        let file = try temporary()
        defer { file.close() }
        let out = OutputBuffer(fd: file.fd, capacity: 1000)
        for i in 0 ..< 100 { out.append("line \(i)\n") }   // ~790 bytes: still pending
        #expect(out.writes == 0)
        #expect(file.read() == "")
        for i in 100 ..< 200 { out.append("line \(i)\n") }
        #expect(out.writes == 1)
        out.flush()
        #expect(out.writes == 2)
        #expect(file.read() == (0 ..< 200).map { "line \($0)\n" }.joined())
        out.flush()
        #expect(out.writes == 2, "nothing pending: no write")
    }

    @Test func releasedBufferFlushesAndErrorsStopOutput() throws {
        let file = try temporary()
        defer { file.close() }
        do {
            let out = OutputBuffer(fd: file.fd)
            out.append("kept\n")
        }
        #expect(file.read() == "kept\n")
        let closed = OutputBuffer(fd: -1)
        closed.append("lost\n")
        closed.flush()
        #expect(closed.failed)
    }
}

/// The loader cache parser on built bytes: order kept, other arches dropped, bad input survived.
@Suite struct LDSOCacheTests {
    /// A cache file: header, entries (flags, soname, path), then the strings.
    func cache(_ entries: [(Int32, String, String)], prefix: [UInt8] = []) -> [UInt8] {
        var strings: [UInt8] = []
        var offsets: [(UInt32, UInt32)] = []
        let stringsStart = 48 + 24 * entries.count
        for (_, name, path) in entries {
            let n = UInt32(stringsStart + strings.count); strings += Array(name.utf8) + [0]
            let p = UInt32(stringsStart + strings.count); strings += Array(path.utf8) + [0]
            offsets.append((n, p))
        }
        func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
        var out = Array("glibc-ld.so.cache1.1".utf8) + le(UInt32(entries.count)) + le(UInt32(strings.count))
        out += [UInt8](repeating: 0, count: 48 - out.count)
        for (i, e) in entries.enumerated() {
            out += le(UInt32(bitPattern: e.0)) + le(offsets[i].0) + le(offsets[i].1) + le(0) + [UInt8](repeating: 0, count: 8)
        }
        return prefix + out + strings
    }

    @Test func parsesEntriesAndSurvivesTruncation() {
        let bytes = cache([(0x0303, "libz.so.1", "/opt/z/libz.so.1"), (0x0a03, "libz.so.1", "/arm/libz.so.1"), (0x0303, "libc.so.6", "/l/libc.so.6")])
        let entries = LDSOCache.parse(bytes)
        #expect(entries.map(\.name) == ["libz.so.1", "libz.so.1", "libc.so.6"])
        #expect(entries.map(\.path) == ["/opt/z/libz.so.1", "/arm/libz.so.1", "/l/libc.so.6"])
        // After an old-format part, offsets count from the new header.
        #expect(LDSOCache.parse(cache([(0x0303, "liba.so", "/a/liba.so")], prefix: Array("ld.so-1.7.0\0\0\0\0\0".utf8))).map(\.path) == ["/a/liba.so"])
        #if arch(x86_64)
        #expect(entries.filter { LDSOCache.matchesHost($0.flags) }.map(\.path) == ["/opt/z/libz.so.1", "/l/libc.so.6"])
        #endif
        // Every truncation parses to a prefix of the entries, never traps.
        for n in 0..<bytes.count {
            let part = LDSOCache.parse(Array(bytes.prefix(n)))
            #expect(part.count <= entries.count)
        }
        #expect(LDSOCache.parse(Array("not a cache".utf8)).isEmpty)
    }

    @Test func shortNamesMatchSonames() {
        let c = LDSOCache(entries: [.init(name: "libc.so.6", path: "/bin/sh", flags: 0x0303),
                                    .init(name: "libcrypt.so.1", path: "/bin/true", flags: 0x0303)])
        // Readable files stand in for libraries.
        #expect(c.lookup("libc.so.6") == "/bin/sh")
        #expect(c.lookup("libc") == "/bin/sh")
        #expect(c.lookup("libc.so") == "/bin/sh")
        #expect(c.lookup("libcrypt") == "/bin/true")
        #expect(c.lookup("libcr") == nil)
        #expect(c.lookup("libc.so.7") == nil)
    }
}
