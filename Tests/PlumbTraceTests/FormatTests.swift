// Formatters against text captured from bpftrace 0.17 runs (the scripts are in each test's comment).
import PlumbLang
import PlumbTrace
import Testing
import Glibc

func le(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
func le(_ v: Int64) -> [UInt8] { le(UInt64(bitPattern: v)) }
func str(_ s: String, _ size: Int) -> [UInt8] { Array((Array(s.utf8) + [UInt8](repeating: 0, count: size)).prefix(size)) }

let u64Key = [Field(offset: 0, type: .integer(size: 8, signed: false))]
let i64Key = [Field(offset: 0, type: .integer(size: 8, signed: true))]

/// Per-CPU values for two CPUs, the second empty.
func twoCPUs(_ v: [UInt8]) -> [[UInt8]] { [v, [UInt8](repeating: 0, count: v.count)] }

@Suite struct MapTextTests {
    let printer = TraceMapPrinter()

    // BEGIN { @c[1]=count(); @c[2]=count(); @c[2]=count(); }
    @Test func countMapSortedByValue() {
        let m = PlannedMap(name: "@c", mapName: "c", keys: u64Key, keySize: 8, value: .count)
        let s = MapSnapshot(map: m, raw: [(le(UInt64(2)), [le(UInt64(1)), le(UInt64(1))]), (le(UInt64(1)), twoCPUs(le(UInt64(1))))])
        #expect(printer.text(s) == "@c[1]: 1\n@c[2]: 2\n")
    }

    // @s["abc"]=sum(5); @s["x"]=sum(-3)
    @Test func signedSumWithStringKeys() {
        let m = PlannedMap(name: "@s", mapName: "s", keys: [Field(offset: 0, type: .string(size: 16))], keySize: 16, value: .sum(signed: true))
        let s = MapSnapshot(map: m, raw: [(str("abc", 16), twoCPUs(le(Int64(5)))), (str("x", 16), twoCPUs(le(Int64(-3))))])
        #expect(printer.text(s) == "@s[x]: -3\n@s[abc]: 5\n")
    }

    // Keys equal up to their NUL are one key (leftover bytes after it must not split them).
    @Test func stringKeysCompareUpToTheirEnd() {
        let m = PlannedMap(name: "@", mapName: "m", keys: [Field(offset: 0, type: .string(size: 8))], keySize: 8, value: .count)
        let a: [UInt8] = Array("ab".utf8) + [0, 9, 9, 9, 9, 9], b: [UInt8] = Array("ab".utf8) + [0, 0, 0, 0, 0, 0]
        #expect(printer.text(MapSnapshot(map: m, raw: [(a, [le(UInt64(2))]), (b, [le(UInt64(3))])])) == "@[ab]: 5\n")
    }

    // @t[1,"ab"]=count()  ->  @t[1, ab]: 1 ; @a=avg(3); @a=avg(4) -> "@a: 3" then a blank line
    @Test func tupleKeysAndAverages() {
        let t = PlannedMap(name: "@t", mapName: "t", keys: [Field(offset: 0, type: .integer(size: 8, signed: true)), Field(offset: 8, type: .string(size: 8))],
                           keySize: 16, value: .count)
        #expect(printer.text(MapSnapshot(map: t, raw: [(le(Int64(1)) + str("ab", 8), [le(UInt64(1))])])) == "@t[1, ab]: 1\n")
        let a = PlannedMap(name: "@a", mapName: "a", keys: [], keySize: 8, value: .avg(signed: true))
        #expect(printer.text(MapSnapshot(map: a, raw: [(le(UInt64(0)), [le(Int64(3)) + le(UInt64(1)), le(Int64(4)) + le(UInt64(1))])])) == "@a: 3\n\n")
        let st = PlannedMap(name: "@st", mapName: "st", keys: [], keySize: 8, value: .stats(signed: true))
        #expect(printer.text(MapSnapshot(map: st, raw: [(le(UInt64(0)), [le(Int64(6)) + le(UInt64(2))])])) == "@st: count 2, average 3, total 6\n\n")
    }

    // @mn=min(3); @e=max(-5) where no CPU set it prints as an empty map: a blank line.
    @Test func minMaxAndEmpty() {
        let mn = PlannedMap(name: "@mn", mapName: "mn", keys: [], keySize: 8, value: .min(signed: true))
        let raw = [(le(UInt64(0)), [le(Int64(7)) + le(UInt64(1)), le(Int64(3)) + le(UInt64(1)), le(Int64(-9)) + le(UInt64(0))])]
        #expect(printer.text(MapSnapshot(map: mn, raw: raw)) == "@mn: 3\n")
        let e = PlannedMap(name: "@e", mapName: "e", keys: [], keySize: 8, value: .max(signed: true))
        #expect(printer.text(MapSnapshot(map: e, raw: [(le(UInt64(0)), [le(Int64(0)) + le(UInt64(0))])])) == "\n")
    }

    // Maps a script declares but never writes: "\n" each, except a keyless count() which is 0.
    // BEGIN { exit() } tracepoint:syscalls:sys_enter_getpid /0/ { @c = count(); @s = sum(1); @k[1] = count(); }
    @Test func unwrittenMaps() {
        let c = PlannedMap(name: "@c", mapName: "c", keys: [], keySize: 8, value: .count)
        #expect(printer.text(MapSnapshot(map: c, raw: [])) == "@c: 0\n")
        #expect(printer.json(MapSnapshot(map: c, raw: [])) == "{\"type\": \"map\", \"data\": {\"@c\": 0}}\n")
        let s = PlannedMap(name: "@s", mapName: "s", keys: [], keySize: 8, value: .sum(signed: true))
        #expect(printer.text(MapSnapshot(map: s, raw: [])) == "\n")
        let k = PlannedMap(name: "@k", mapName: "k", keys: u64Key, keySize: 8, value: .count)
        #expect(printer.text(MapSnapshot(map: k, raw: [])) == "\n")
        let a = PlannedMap(name: "@a", mapName: "a", keys: [], keySize: 8, value: .avg(signed: true))
        #expect(printer.text(MapSnapshot(map: a, raw: [])) == "\n\n")
        let h = PlannedMap(name: "@h", mapName: "h", keys: [], keySize: 16, value: .hist)
        #expect(printer.text(MapSnapshot(map: h, raw: [])) == "\n")
        #expect(printer.json(MapSnapshot(map: k, raw: [])) == "")
    }

    // @x[1]=3;@x[2]=1;@x[3]=2; print(@x,2); print(@x, 0, 2)
    @Test func topAndDivisor() {
        let m = PlannedMap(name: "@x", mapName: "x", keys: i64Key, keySize: 8, value: .value(.integer(size: 8, signed: true)))
        let s = MapSnapshot(map: m, raw: [(le(Int64(1)), [le(Int64(3))]), (le(Int64(2)), [le(Int64(1))]), (le(Int64(3)), [le(Int64(2))])])
        #expect(printer.text(s, top: 2) == "@x[3]: 2\n@x[1]: 3\n")
        #expect(printer.text(s, divisor: 2) == "@x[2]: 0\n@x[3]: 1\n@x[1]: 1\n")
        #expect(printer.text(s) == "@x[2]: 1\n@x[3]: 2\n@x[1]: 3\n")
    }

    // @tup = (1, "abc", -2) -> @tup: (1, abc, -2)
    @Test func tupleValue() {
        let tuple = ValueType.tuple([Field(offset: 0, type: .integer(size: 8, signed: true)), Field(offset: 8, type: .string(size: 8)),
                                     Field(offset: 16, type: .integer(size: 8, signed: true))], size: 24)
        let m = PlannedMap(name: "@tup", mapName: "tup", keys: [], keySize: 8, value: .value(tuple))
        let s = MapSnapshot(map: m, raw: [(le(UInt64(0)), [le(Int64(1)) + str("abc", 8) + le(Int64(-2))])])
        #expect(printer.text(s) == "@tup: (1, abc, -2)\n")
        #expect(printer.json(s) == "{\"type\": \"map\", \"data\": {\"@tup\": [1,\"abc\",-2]}}\n")
    }

    static func histRaw(_ counts: [Int: UInt64], key: [UInt8] = []) -> [(key: [UInt8], values: [[UInt8]])] {
        counts.map { (key + le(UInt64($0.key)), twoCPUs(le($0.value))) }
    }

    // @h=hist(-1), hist(0), hist(1), hist(3), hist(1000), hist(2000000)
    @Test func histogramArt() {
        let m = PlannedMap(name: "@h", mapName: "h", keys: [], keySize: 16, value: .hist)
        let s = MapSnapshot(map: m, raw: MapTextTests.histRaw([0: 1, 1: 1, 2: 1, 3: 1, 11: 1, 22: 1], key: le(UInt64(0))))
        let full = String(repeating: "@", count: 52), none = String(repeating: " ", count: 52)
        var expected = "@h: \n"
        expected += "(..., 0)               1 |\(full)|\n"
        expected += "[0]                    1 |\(full)|\n"
        expected += "[1]                    1 |\(full)|\n"
        expected += "[2, 4)                 1 |\(full)|\n"
        expected += "[4, 8)                 0 |\(none)|\n"
        for (lo, hi) in [("8", "16"), ("16", "32"), ("32", "64"), ("64", "128"), ("128", "256"), ("256", "512")] {
            let label = "[\(lo), \(hi))"
            expected += label + String(repeating: " ", count: 16 - label.count) + "       0 |\(none)|\n"
        }
        expected += "[512, 1K)              1 |\(full)|\n"
        for (lo, hi) in [("1K", "2K"), ("2K", "4K"), ("4K", "8K"), ("8K", "16K"), ("16K", "32K"), ("32K", "64K"), ("64K", "128K"),
                         ("128K", "256K"), ("256K", "512K"), ("512K", "1M")] {
            let label = "[\(lo), \(hi))"
            expected += label + String(repeating: " ", count: 16 - label.count) + "       0 |\(none)|\n"
        }
        expected += "[1M, 2M)               1 |\(full)|\n\n"
        #expect(printer.text(s) == expected)
    }

    // 7 x hist(1), 3 x hist(5): bars scale to the peak (3 * 52 / 7 = 22)
    @Test func histogramBarsScale() {
        let m = PlannedMap(name: "@h", mapName: "h", keys: [], keySize: 16, value: .hist)
        let s = MapSnapshot(map: m, raw: MapTextTests.histRaw([2: 7, 4: 3], key: le(UInt64(0))))
        let expected = "@h: \n[1]                    7 |\(String(repeating: "@", count: 52))|\n[2, 4)                 0 |\(String(repeating: " ", count: 52))|\n"
            + "[4, 8)                 3 |\(String(repeating: "@", count: 22))\(String(repeating: " ", count: 30))|\n\n"
        #expect(printer.text(s) == expected)
    }

    // @h = hist(5); @h = hist(500); print(@h, 0, 2): counts divided, bars from the raw counts
    @Test func histogramDivisor() {
        let m = PlannedMap(name: "@h", mapName: "h", keys: [], keySize: 16, value: .hist)
        let text = printer.text(MapSnapshot(map: m, raw: MapTextTests.histRaw([4: 1, 10: 1], key: le(UInt64(0)))), divisor: 2)
        #expect(text.hasPrefix("@h: \n[4, 8)                 0 |\(String(repeating: "@", count: 52))|\n[8, 16)                0 |\(String(repeating: " ", count: 52))|\n"))
    }

    // @l=lhist(55,0,100,10); @l=lhist(75,0,100,10); @o=lhist(2048,1024,4096,1024); @l[1]: below and above
    @Test func linearHistograms() {
        let full = String(repeating: "@", count: 52), none = String(repeating: " ", count: 52)
        let l = PlannedMap(name: "@l", mapName: "l", keys: [], keySize: 16, value: .lhist(min: 0, max: 100, step: 10))
        #expect(printer.text(MapSnapshot(map: l, raw: MapTextTests.histRaw([6: 1, 8: 1], key: le(UInt64(0))))) ==
            "@l: \n[50, 60)               1 |\(full)|\n[60, 70)               0 |\(none)|\n[70, 80)               1 |\(full)|\n\n")
        let o = PlannedMap(name: "@o", mapName: "o", keys: [], keySize: 16, value: .lhist(min: 1024, max: 4096, step: 1024))
        #expect(printer.text(MapSnapshot(map: o, raw: MapTextTests.histRaw([2: 1], key: le(UInt64(0))))) == "@o: \n[2K, 3K)               1 |\(full)|\n\n")
        let k = PlannedMap(name: "@l", mapName: "l", keys: u64Key, keySize: 16, value: .lhist(min: 0, max: 10, step: 5))
        let text = printer.text(MapSnapshot(map: k, raw: MapTextTests.histRaw([0: 1, 3: 1], key: le(UInt64(1)))))
        #expect(text == "@l[1]: \n(..., 0)               1 |\(full)|\n[0, 5)                 0 |\(none)|\n[5, 10)                0 |\(none)|\n[10, ...)              1 |\(full)|\n\n")
    }

    @Test func impossibleBucketsAreDropped() {
        let m = PlannedMap(name: "@h", mapName: "h", keys: [], keySize: 16, value: .hist)
        let text = printer.text(MapSnapshot(map: m, raw: MapTextTests.histRaw([2: 1, 1 << 40: 5], key: le(UInt64(0)))))
        #expect(text == "@h: \n[1]                    1 |\(String(repeating: "@", count: 52))|\n\n")
    }

    // hist groups are ordered by their total count: @h[2] (1), @h[3] (1), @h[1] (2)
    @Test func histGroupsByTotal() {
        let m = PlannedMap(name: "@h", mapName: "h", keys: u64Key, keySize: 16, value: .hist)
        let raw = MapTextTests.histRaw([8: 2], key: le(UInt64(1))) + MapTextTests.histRaw([1: 1], key: le(UInt64(2))) + MapTextTests.histRaw([2: 1], key: le(UInt64(3)))
        let text = printer.text(MapSnapshot(map: m, raw: raw))
        let full = String(repeating: "@", count: 52)
        #expect(text == "@h[2]: \n[0]                    1 |\(full)|\n\n@h[3]: \n[1]                    1 |\(full)|\n\n@h[1]: \n[64, 128)              2 |\(full)|\n\n")
    }
}

@Suite struct JSONTests {
    let printer = TraceMapPrinter()

    // {"type": "map", "data": {"@c": {"1,a": 1}}} and {"x": 1, "y": 2}
    @Test func maps() {
        let m = PlannedMap(name: "@c", mapName: "c", keys: [Field(offset: 0, type: .integer(size: 8, signed: true)), Field(offset: 8, type: .string(size: 8))],
                           keySize: 16, value: .count)
        #expect(printer.json(MapSnapshot(map: m, raw: [(le(Int64(1)) + str("a", 8), [le(UInt64(1))])])) == "{\"type\": \"map\", \"data\": {\"@c\": {\"1,a\": 1}}}\n")
        let empty = PlannedMap(name: "@e", mapName: "e", keys: u64Key, keySize: 8, value: .count)
        #expect(printer.json(MapSnapshot(map: empty, raw: [])) == "")
    }

    // {"type": "stats", "data": {"@st": {"1,a": {"count": 1, "average": 3, "total": 3}, ...}}} and {"@a": 5}
    @Test func stats() {
        let a = PlannedMap(name: "@a", mapName: "a", keys: [], keySize: 8, value: .avg(signed: true))
        #expect(printer.json(MapSnapshot(map: a, raw: [(le(UInt64(0)), [le(Int64(5)) + le(UInt64(1))])])) == "{\"type\": \"stats\", \"data\": {\"@a\": 5}}\n")
        let s = PlannedMap(name: "@s", mapName: "s", keys: [], keySize: 8, value: .stats(signed: true))
        #expect(printer.json(MapSnapshot(map: s, raw: [(le(UInt64(0)), [le(Int64(4)) + le(UInt64(1))])])) ==
            "{\"type\": \"stats\", \"data\": {\"@s\": {\"count\": 1, \"average\": 4, \"total\": 4}}}\n")
    }

    // @h=hist(-1),hist(0),hist(1),hist(8); @l=lhist(-3,0,10,5),lhist(30,0,10,5)
    @Test func histograms() {
        let h = PlannedMap(name: "@h", mapName: "h", keys: [], keySize: 16, value: .hist)
        #expect(printer.json(MapSnapshot(map: h, raw: MapTextTests.histRaw([0: 1, 1: 1, 2: 1, 5: 1], key: le(UInt64(0))))) ==
            "{\"type\": \"hist\", \"data\": {\"@h\": [{\"max\": -1, \"count\": 1}, {\"min\": 0, \"max\": 0, \"count\": 1}, {\"min\": 1, \"max\": 1, \"count\": 1}, {\"min\": 2, \"max\": 3, \"count\": 0}, {\"min\": 4, \"max\": 7, \"count\": 0}, {\"min\": 8, \"max\": 15, \"count\": 1}]}}\n")
        let l = PlannedMap(name: "@l", mapName: "l", keys: [], keySize: 16, value: .lhist(min: 0, max: 10, step: 5))
        #expect(printer.json(MapSnapshot(map: l, raw: MapTextTests.histRaw([0: 1, 3: 1], key: le(UInt64(0))))) ==
            "{\"type\": \"hist\", \"data\": {\"@l\": [{\"max\": -1, \"count\": 1}, {\"min\": 0, \"max\": 4, \"count\": 0}, {\"min\": 5, \"max\": 9, \"count\": 0}, {\"min\": 10, \"count\": 1}]}}\n")
        let k = PlannedMap(name: "@h2", mapName: "h2", keys: u64Key, keySize: 16, value: .hist)
        #expect(printer.json(MapSnapshot(map: k, raw: MapTextTests.histRaw([3: 1], key: le(UInt64(1))))) ==
            "{\"type\": \"hist\", \"data\": {\"@h2\": {\"1\": [{\"min\": 2, \"max\": 3, \"count\": 1}]}}}\n")
    }

    // printf("tab\there \x01 q\"\\ %s\n", "é") -> "tab\there \u0001 q\"\\ \uffffffc3\uffffffa9\n"
    @Test func escapes() {
        #expect(JSON.quote("tab\there \u{01} q\"\\ é\n") == "\"tab\\there \\u0001 q\\\"\\\\ \\uffffffc3\\uffffffa9\\n\"")
    }
}

@Suite struct PrintfTests {
    func run(_ format: String, _ values: [(ValueType, [UInt8])], symbols: Symbolizer = Symbolizer()) -> String {
        var record = le(UInt64(0))
        var args: [Field] = []
        for (t, bytes) in values {
            while record.count % 8 != 0 { record.append(0) }
            args.append(Field(offset: record.count, type: t))
            record += bytes
        }
        return record.withUnsafeBytes { PrintfFormat(format).format($0, args: args, printer: ValuePrinter(symbols: symbols)) }
    }

    let i64 = ValueType.integer(size: 8, signed: true)

    // printf("[%d] [%u] [%x] [%X] [%o] [%5d] [%-5d] [%05d] [%s] [%-6s] [%6s] [%.2s] [%c] [%lu] [%llx] [%ld] [%%] [%i] [%hhd] [%hx]\n", ...)
    @Test func integersAndStrings() {
        let s = ValueType.string(size: 16)
        let out = run("[%d] [%u] [%x] [%X] [%o] [%5d] [%-5d] [%05d] [%s] [%-6s] [%6s] [%.2s] [%c] [%lu] [%llx] [%ld] [%%] [%i] [%hhd] [%hx]\n", [
            (i64, le(Int64(-5))), (i64, le(Int64(-5))), (i64, le(Int64(-5))), (i64, le(Int64(255))), (i64, le(Int64(8))),
            (i64, le(Int64(42))), (i64, le(Int64(42))), (i64, le(Int64(42))), (s, str("abc", 16)), (s, str("ab", 16)), (s, str("ab", 16)),
            (s, str("abcdef", 16)), (i64, le(Int64(65))), (i64, le(Int64(-1))), (i64, le(Int64(255))), (i64, le(Int64(-7))),
            (i64, le(Int64(0x1234))), (i64, le(Int64(300))), (i64, le(Int64(-1))),
        ])
        #expect(out == "[-5] [4294967291] [fffffffb] [FF] [10] [   42] [42   ] [00042] [abc] [ab    ] [    ab] [ab] [A] [18446744073709551615] [ff] [-7] [%] [4660] [44] [ffff]\n")
        #expect(run("%-10s|%8.3s|\n", [(s, str("abc", 16)), (s, str("abcdef", 16))]) == "abc       |     abc|\n")
    }

    // printf("%r|%r\n", buf("ab\x01\xff", 4), buf("hello", 5)) -> ab\x01\xff|hello
    @Test func buffersAndAddresses() {
        let b = ValueType.buffer(capacity: 8)
        let out = run("%r|%r\n", [(b, [4, 0, 0, 0] + [0x61, 0x62, 1, 0xff, 0, 0, 0, 0]), (b, [5, 0, 0, 0] + Array("hello".utf8) + [0, 0, 0])])
        #expect(out == "ab\\x01\\xff|hello\n")
        // ksym(0), usym(0x1234), ksym(1) unresolved: C++ showbase hex
        #expect(run("%s %s %s\n", [(.kernelSymbol, le(UInt64(0))), (.userSymbol, le(UInt64(0x1234)) + le(UInt64(1))), (.kernelSymbol, le(UInt64(1)))]) == "0 0x1234 0x1\n")
        // ntop(0x0100007f), ntop(pton("::1"))
        #expect(run("%s %s\n", [(.inet, le(UInt64(2)) + [127, 0, 0, 1] + [UInt8](repeating: 0, count: 12)),
                                (.inet, le(UInt64(10)) + [UInt8](repeating: 0, count: 15) + [1])]) == "127.0.0.1 ::1\n")
    }

    // printf("%s|%s|%d\n", kstack(perf,2), ustack(2), 5): perf frames tab-indented, bpftrace frames 8 spaces in printf
    @Test func stacks() {
        let symbols = Symbolizer(kernelSymbol: { a, off in a == 0xffffffff81f081aa ? "__bpf_prog_test_run_raw_tp" + (off ? "+106" : "") : nil },
                                 userSymbol: { a, _, off in a == 0x1000 ? "syscall" + (off ? "+25" : "") : nil },
                                 kernelStack: { _ in [0xffffffff81f081aa] }, userStack: { _ in [0x1000, 0x7ffe75caa228] })
        let out = run("%s|%s|%d\n", [(.kernelStack(limit: 2, mode: .perf), le(UInt64(1))), (.userStack(limit: 2, mode: .bpftrace), le(UInt64(2)) + le(UInt64(9))),
                                     (i64, le(Int64(5)))], symbols: symbols)
        #expect(out == "\n\tffffffff81f081aa __bpf_prog_test_run_raw_tp+106\n|\n        syscall+25\n        0x7ffe75caa228\n|5\n")
        // As a map key: four spaces.
        let m = PlannedMap(name: "@k", mapName: "k", keys: [Field(offset: 0, type: .kernelStack(limit: 2, mode: .bpftrace))], keySize: 8, value: .count)
        let text = TraceMapPrinter(values: ValuePrinter(symbols: symbols)).text(MapSnapshot(map: m, raw: [(le(UInt64(1)), [le(UInt64(1))])]))
        #expect(text == "@k[\n    __bpf_prog_test_run_raw_tp+106\n]: 1\n")
    }

    // strftime("%Y", nsecs): the monotonic clock's now is this year, wall-clock.
    @Test func timestamps() {
        var mono = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        let ns = UInt64(mono.tv_sec) * 1_000_000_000 + UInt64(mono.tv_nsec)
        var now = time(nil), parts = tm()
        localtime_r(&now, &parts)
        #expect(run("%s", [(.timestamp(format: "%Y"), le(ns))]) == String(parts.tm_year + 1900))
    }

    // usym of an address in this very process: /proc/self/maps, then libc's ELF symbols.
    @Test func userSymbolsOfThisProcess() throws {
        let address = try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "getpid"))
        let a = UInt64(UInt(bitPattern: address))
        let name = try #require(SystemSymbols().userSymbol(a, pid: getpid(), withOffset: true))
        #expect(name.hasSuffix("getpid+0"), "\(name)")
        #expect(SystemSymbols().userSymbol(1, pid: getpid(), withOffset: false) == nil)
    }

    @Test func symbolSources() {
        let syms = SystemSymbols.parseKallsyms("ffffffff81000000 T _text\nffffffff81000100 t helper\n0000000000000000 T zero\nffffffff82000000 D data\n"
            + "ffffffffc0001000 t ext4_fn\t[ext4]\nffffffffc0002000 t bpf_prog_0123456789abcdef_p0_BEGIN\t[bpf]\n")
        #expect(syms.map(\.1) == ["_text", "helper", "ext4_fn"])
        #expect(SystemSymbols.parsePasswd("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/usr/sbin/nologin\n") == [0: "root", 65534: "nobody"])
    }
}
