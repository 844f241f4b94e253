import Foundation
import PlumbLang
import TestSupport
import Testing

/// Checks what every consumer of the tree relies on: ids unique, ranges inside the text,
/// statements nested no deeper than the parser's limit. Returns the number of expressions.
@discardableResult
func checkTree(_ script: Script, textLength: Int, sourceLocation: SourceLocation = #_sourceLocation) -> Int {
    var ids = Set<Int>()
    var ok = true
    func visit(_ e: Expr) {
        ok = ok && ids.insert(e.id).inserted && e.range.start >= 0 && e.range.end <= textLength
        e.kind.forEachChild(visit)
    }
    func visit(_ b: Block) {
        ok = ok && b.range.end <= textLength
        for s in b.statements { s.kind.forEachChild(expression: visit, block: visit) }
    }
    for c in script.config { visit(c.value) }
    for p in script.probes {
        if let e = p.predicate { visit(e) }
        visit(p.body)
        for ap in p.attachPoints { ok = ok && ap.range.end <= textLength }
    }
    #expect(ok, "tree invariant broken", sourceLocation: sourceLocation)
    return ids.count
}

/// Seed scripts shared with the fuzzer (fuzz/seeds/lang).
func seedScripts() -> [String] {
    let dir = TestEnv.root.appendingPathComponent("fuzz/seeds/lang")
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    return names.compactMap { try? String(contentsOf: dir.appendingPathComponent($0), encoding: .utf8) }
}

@Suite("Parser: robustness")
struct ParserRobustnessTests {
    @Test func seedsParse() throws {
        let seeds = seedScripts()
        #expect(seeds.count >= 4)
        for text in seeds {
            let r = parse(SourceFile(name: "seed.bt", text: text))
            checkTree(r.0, textLength: text.utf8.count)
        }
        // The realistic ones are clean.
        let dir = TestEnv.root.appendingPathComponent("fuzz/seeds/lang")
        for name in ["opensnoop.bt", "latency.bt", "all-constructs.bt"] {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            let r = parseText(text)
            #expect(r.diagnostics.hasPrefix("") && !r.diagnostics.contains("error:"), "\(name): \(r.diagnostics)")
        }
        let latency = parseText(try String(contentsOf: dir.appendingPathComponent("latency.bt"), encoding: .utf8))
        #expect(latency.script.probes.count == 17)
        #expect(latency.script.probes.flatMap(\.attachPoints).map(\.provider) == [
            "rawtracepoint", "rawtracepoint", "profile", "software", "hardware", "interval", "interval", "uretprobe", "usdt",
            "watchpoint", "kfunc", "kretfunc", "iter", "uprobe", "uprobe", "uprobe", "tracepoint", "END",
        ])
    }

    @Test(arguments: [
        ("parentheses", String(repeating: "(", count: 10_000) + "1" + String(repeating: ")", count: 10_000)),
        ("unclosed parentheses", String(repeating: "(", count: 10_000)),
        ("unary", String(repeating: "!", count: 10_000) + "1"),
        ("negation", String(repeating: "-", count: 10_001) + "1"),
        ("casts", String(repeating: "(uint8)", count: 10_000) + "1"),
        ("map keys", String(repeating: "@m[", count: 10_000) + "1" + String(repeating: "]", count: 10_000)),
        ("calls", String(repeating: "f(", count: 10_000) + String(repeating: ")", count: 10_000)),
        ("left-deep sum", Array(repeating: "1", count: 10_000).joined(separator: " + ")),
        ("right-deep ternary", String(repeating: "1 ? 2 : ", count: 10_000) + "3"),
        ("fields", "$x" + String(repeating: ".a", count: 10_000)),
        ("postfix increments", "$x" + String(repeating: "++", count: 10_000)),
        ("indexes", "$x" + String(repeating: "[1]", count: 10_000)),
    ])
    func deepExpressionsAreRefused(name: String, expression: String) {
        let text = "BEGIN { $x = \(expression); }\nEND { }"
        let r = parse(SourceFile(name: "t.bt", text: text))
        let messages = r.1.map(\.message)
        #expect(messages.contains { $0.contains("too deep") }, "\(name): \(messages.prefix(3))")
        #expect(r.1.count <= 3, "\(name): one message, not one per level: \(messages.prefix(5))")
        checkTree(r.0, textLength: text.utf8.count)
    }

    @Test func nestingJustUnderTheLimitIsFine() {
        let depth = Parser.maxNesting - 3
        let text = "BEGIN { $x = " + String(repeating: "(", count: depth) + "1" + String(repeating: ")", count: depth) + "; }"
        #expect(parseText(text).diagnostics == "")
        let blocks = "BEGIN " + String(repeating: "{ ", count: depth) + String(repeating: "} ", count: depth)
        #expect(parseText(blocks).diagnostics == "")
    }

    @Test(arguments: [
        ("blocks", "BEGIN " + String(repeating: "{", count: 10_000) + String(repeating: "}", count: 10_000)),
        ("ifs", "BEGIN { " + String(repeating: "if (1) { ", count: 10_000) + String(repeating: "} ", count: 10_000) + "}"),
        ("else-if chain", "BEGIN { if (1) { } " + String(repeating: "else if (1) { } ", count: 10_000) + "}"),
        ("loops", "BEGIN { " + String(repeating: "while (1) { ", count: 10_000) + String(repeating: "} ", count: 10_000) + "}"),
        ("predicate", "BEGIN /" + String(repeating: "(", count: 10_000) + "/ { }"),
        ("config", "config = { a = " + String(repeating: "(", count: 10_000) + " }\nBEGIN { }"),
    ])
    func deepStatementsAreRefused(name: String, text: String) {
        let r = parse(SourceFile(name: "t.bt", text: text))
        #expect(r.1.contains { $0.message.contains("too deep") }, "\(name): \(r.1.prefix(3).map(\.message))")
        #expect(r.1.count <= 3, "\(name): \(r.1.prefix(5).map(\.message))")
        checkTree(r.0, textLength: text.utf8.count)
    }

    @Test func nestingDiagnostic() {
        let text = "BEGIN { $x = " + String(repeating: "(", count: 200) + "1" + String(repeating: ")", count: 200) + "; }"
        let d = parse(SourceFile(name: "t.bt", text: text)).1
        #expect(d.map(\.message) == ["nesting is too deep (more than \(Parser.maxNesting) levels)"])
        #expect(d.first?.range == SourceRange(13 + Parser.maxNesting - 1, 13 + Parser.maxNesting))
    }

    /// Deterministic mutations of the seeds: the parser must not crash, hang or break the
    /// tree's invariants on any of them, and must be deterministic.
    @Test func mutationCorpus() {
        var rng = SplitMix64(seed: 0x5EED)
        let seeds = seedScripts().map { Array($0.utf8) }
        let fragments: [[UInt8]] = ["{", "}", "(", ")", "/", "\"", "'", "/*", "*/", "//", ":", ",", ";", "[", "]", "$", "@",
                                    "\n", "#include <", "struct S {", "(uint8)", "->", "..", "?", "\\", "kprobe:", "BEGIN", "0x",
                                    "1e", "\u{e9}", "\0"].map { Array($0.utf8) }
        var total: Duration = .zero
        var worst: Duration = .zero
        for i in 0..<1500 {
            var b = seeds[i % seeds.count]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
                switch rng.next() % 6 {
                case 0: b.removeSubrange(at..<min(b.count, at + Int(rng.next() % 16)))
                case 1: b.insert(contentsOf: fragments[Int(rng.next() % UInt64(fragments.count))], at: at)
                case 2: if !b.isEmpty { b[at] = UInt8(truncatingIfNeeded: rng.next()) }
                case 3: b.removeSubrange(at...)
                case 4:
                    let len = min(b.count - at, Int(rng.next() % 64))
                    b.insert(contentsOf: b[at..<(at + len)], at: at)
                default: if b.count > 1 { b.swapAt(at, Int(rng.next() % UInt64(b.count))) }
                }
            }
            let text = String(decoding: b, as: UTF8.self)
            let file = SourceFile(name: "m.bt", text: text)
            let start = ContinuousClock.now
            let (script, diags) = parse(file)
            let t = ContinuousClock.now - start
            total += t
            worst = max(worst, t)
            checkTree(script, textLength: file.bytes.count)
            for d in diags { #expect(d.range.start >= 0 && d.range.end <= file.bytes.count) }
            _ = DiagnosticPrinter(file: file).render(diags)
            if i % 100 == 0 {
                let again = parse(file)
                #expect(again.0.sexpr == script.sexpr && again.1.map(\.message) == diags.map(\.message))
            }
        }
        // Hang guards, not speed goals (those are in bench/): a quadratic or looping parse of
        // some mutation takes far longer than these, even on a busy 2-core machine.
        #expect(worst < .seconds(5), "slowest mutated parse took \(worst)")
        #expect(total < .seconds(120))
    }

    @Test func largeScriptParsesQuickly() {
        var text = "BEGIN { @start = nsecs; }\n"
        for i in 0..<250 {
            text += """
            tracepoint:syscalls:sys_enter_read\(i) /pid == $1 && comm == "bash"/ {
                @reads[comm, tid] = count(); $x = (struct task_struct *)curtask;
                if ($x->pid > 100) { printf("%d %s\\n", $x->pid, str(args->buf, 16)); } else { @h = hist(args->count * 2 + 1); }
            }

            """
        }
        let lines = text.split(separator: "\n").count
        #expect(lines >= 1000)
        let file = SourceFile(name: "big.bt", text: text)
        _ = parse(file)  // warm up
        let start = ContinuousClock.now
        let (script, diags) = parse(file)
        let elapsed = ContinuousClock.now - start
        #expect(diags.isEmpty)
        #expect(script.probes.count == 251)
        // A hang guard, not a speed goal (bench/ measures speed): release builds take a few
        // milliseconds, debug builds about 0.3 s; a quadratic parse would take minutes.
        #expect(elapsed < .seconds(5), "\(lines) lines took \(elapsed)")
    }
}

/// A tiny deterministic generator (SplitMix64), so the mutation corpus is the same every run.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
