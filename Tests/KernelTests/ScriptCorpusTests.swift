// The tracer's proof corpus (Tests/Scripts, see its README.md): every script run through the
// built plumb binary against the real kernel with the deterministic workload, its stdout matched
// against NAME.expected; the negative corpus (Tests/Scripts/errors) matched against exact
// diagnostics; and selected scripts compared with /usr/bin/bpftrace 0.17.
import Foundation
import Testing
import TestSupport
import PlumbTrace

enum ScriptCorpus {
    static let folder = TestEnv.root.appendingPathComponent("Tests/Scripts")
    static let errorsFolder = folder.appendingPathComponent("errors")

    /// The `.bt` files of a folder, without the extension, sorted.
    static func names(in dir: URL) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.filter { $0.hasSuffix(".bt") }.map { String($0.dropLast(3)) }.sorted()
    }

    static var scripts: [String] { names(in: folder) }
    static var errorScripts: [String] { names(in: errorsFolder) }

    static func text(_ url: URL) -> String? { try? String(contentsOf: url, encoding: .utf8) }

    /// Builds Tests/Fixtures/workload/workload.c (once per process), -no-pie so that its symbol
    /// addresses are the ELF's own (uaddr, ustack).
    static func workload() throws -> String { try workloadBuild.get() }

    private static let workloadBuild: Swift.Result<String, FixtureBuildError> = {
        let src = TestEnv.fixturesSource.appendingPathComponent("workload/workload.c").path
        let dir = TestEnv.root.appendingPathComponent(".build/fixtures/workload").path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            return .failure(FixtureBuildError(message: "\(error)"))
        }
        let out = dir + "/workload"
        let r = TestEnv.run("/usr/bin/env", ["cc", "-g", "-O1", "-fno-inline", "-no-pie", "-o", out, src])
        guard r.status == 0 else { return .failure(FixtureBuildError(message: r.stdout + r.stderr)) }
        return .success(out)
    }()

    /// `{{workload}}` is the workload's path, `{{addr:NAME}}` the address of its symbol NAME.
    static func substitute(_ text: String, workload w: String) throws -> String {
        var out = text.replacingOccurrences(of: "{{workload}}", with: w)
        while let open = out.range(of: "{{addr:"), let close = out.range(of: "}}", range: open.upperBound..<out.endIndex) {
            let name = String(out[open.upperBound..<close.lowerBound])
            let nm = TestEnv.run("/usr/bin/env", ["nm", w]).stdout.split(separator: "\n")
            guard let line = nm.first(where: { $0.hasSuffix(" " + name) }), let hex = line.split(separator: " ").first,
                  let value = UInt64(hex, radix: 16) else { throw FixtureBuildError(message: "no symbol \(name) in \(w)") }
            out.replaceSubrange(open.lowerBound..<close.upperBound, with: "0x" + String(value, radix: 16))
        }
        return out
    }

    /// Runs NAME.bt (with `{{workload}}` substituted) under `tool` with NAME.args; at most
    /// 60 seconds, so that a script that never ends fails instead of hanging the suite.
    static func run(_ name: String, tool: String) throws -> TestEnv.Result {
        let w = try workload()
        guard let source = text(folder.appendingPathComponent(name + ".bt")) else {
            throw FixtureBuildError(message: "cannot read \(name).bt")
        }
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("plumb-corpus-\(ProcessInfo.processInfo.processIdentifier)-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent(name + ".bt")
        try substitute(source, workload: w).write(to: script, atomically: true, encoding: .utf8)
        var args: [String] = []
        if let a = text(folder.appendingPathComponent(name + ".args")) {
            args = a.split(separator: "\n").map { $0.replacingOccurrences(of: "{{workload}}", with: w) }
        }
        return TestEnv.run("/usr/bin/timeout", ["60", tool] + args + [script.path])
    }
}

/// NAME.expected's substitutions: `{{int}}`, `{{hex}}`, `{{any}}` within a line, and a line that
/// is only `{{lines}}` for any number of lines.
enum ExpectedOutput {
    enum Piece: Equatable { case literal(Character), int, hex, any }

    static func pieces(_ line: Substring) -> [Piece] {
        var out: [Piece] = []
        var rest = line
        while let c = rest.first {
            if rest.hasPrefix("{{int}}") { out.append(.int); rest = rest.dropFirst(7); continue }
            if rest.hasPrefix("{{hex}}") { out.append(.hex); rest = rest.dropFirst(7); continue }
            if rest.hasPrefix("{{any}}") { out.append(.any); rest = rest.dropFirst(7); continue }
            out.append(.literal(c))
            rest = rest.dropFirst()
        }
        return out
    }

    static func lineMatches(_ p: ArraySlice<Piece>, _ s: Substring) -> Bool {
        guard let first = p.first else { return s.isEmpty }
        let rest = p.dropFirst()
        switch first {
        case .literal(let c):
            return s.first == c && lineMatches(rest, s.dropFirst())
        case .any:
            var t = s
            while true {
                if lineMatches(rest, t) { return true }
                if t.isEmpty { return false }
                t = t.dropFirst()
            }
        case .int, .hex:
            var t = s
            if first == .int, t.first == "-" { t = t.dropFirst() }
            if first == .hex { guard t.hasPrefix("0x") else { return false }; t = t.dropFirst(2) }
            let digit: (Character) -> Bool = first == .int ? { $0.isASCII && $0.isNumber } : { $0.isHexDigit }
            var n = 0
            while let c = t.first, digit(c) {
                t = t.dropFirst()
                n += 1
                if lineMatches(rest, t) { return true }
            }
            return n > 0 && lineMatches(rest, t)
        }
    }

    static func matches(expected: String, actual: String) -> Bool {
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let ep = e.map { $0 == "{{lines}}" ? nil : pieces($0) }
        // memo[i][j]: expected lines from i match actual lines from j.
        var memo = [[Bool?]](repeating: [Bool?](repeating: nil, count: a.count + 1), count: e.count + 1)
        func go(_ i: Int, _ j: Int) -> Bool {
            if let m = memo[i][j] { return m }
            let r: Bool
            if i == e.count {
                r = j == a.count
            } else if let p = ep[i] {
                r = j < a.count && lineMatches(p[...], a[j]) && go(i + 1, j + 1)
            } else {
                r = go(i + 1, j) || (j < a.count && go(i, j + 1))
            }
            memo[i][j] = r
            return r
        }
        return go(0, 0)
    }

    /// Map entries printed one a line (`@m[key]: value`) sorted within each run of one map:
    /// bpftrace and plumb order entries with equal values differently.
    static func normalized(_ text: String) -> String {
        var out: [Substring] = []
        var run: [Substring] = []
        var runMap: Substring?
        func flush() { out += run.sorted(); run = []; runMap = nil }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("@"), let bracket = line.firstIndex(of: "["), line.contains("]: ") {
                let map = line[..<bracket]
                if map != runMap { flush(); runMap = map }
                run.append(line)
            } else {
                flush()
                out.append(line)
            }
        }
        flush()
        return out.joined(separator: "\n")
    }
}

@Suite(.serialized) struct ScriptCorpusTests {
    @Test(arguments: ScriptCorpus.scripts)
    func script(_ name: String) throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let expected = try #require(ScriptCorpus.text(ScriptCorpus.folder.appendingPathComponent(name + ".expected")),
                                    "\(name).bt has no \(name).expected")
            .replacingOccurrences(of: "{{workload}}", with: try ScriptCorpus.workload())
        let r = try ScriptCorpus.run(name, tool: TestEnv.plumb)
        let check = {
            #expect(r.status == 0, "\(name): exit status \(r.status)\n\(r.stderr)")
            #expect(ExpectedOutput.matches(expected: expected, actual: r.stdout),
                    "\(name): stdout differs from \(name).expected\n--- got:\n\(r.stdout)--- stderr:\n\(r.stderr)")
        }
        if let reason = ScriptCorpus.text(ScriptCorpus.folder.appendingPathComponent(name + ".xfail")) {
            // "machine:" reasons depend on the hardware (a PMU): passing there is no news.
            withKnownIssue(Comment(rawValue: reason.trimmingCharacters(in: .whitespacesAndNewlines)),
                           isIntermittent: reason.hasPrefix("machine:")) { check() }
        } else {
            check()
        }
    }

    @Test(arguments: ScriptCorpus.errorScripts)
    func diagnostic(_ name: String) throws {
        let expected = try #require(ScriptCorpus.text(ScriptCorpus.errorsFolder.appendingPathComponent(name + ".expected")))
        let r = TestEnv.run(TestEnv.plumb, [name + ".bt"], cwd: ScriptCorpus.errorsFolder)
        #expect(r.status == 1, "errors/\(name): exit status \(r.status)")
        #expect(r.stdout.isEmpty, "errors/\(name): printed \(r.stdout)")
        #expect(r.stderr == expected, "errors/\(name): diagnostics differ\n--- got:\n\(r.stderr)--- expected:\n\(expected)")
    }

    /// Scripts whose output bpftrace 0.17 gets right and whose syntax it knows.
    static let differential = [
        "aggregations", "begin_end", "buf", "cat", "control", "exit_end", "fork", "interval", "join", "json",
        "json_events", "json_values", "map_functions", "maps_misc", "ntop", "printf", "profile", "retval_args", "signal", "software", "stacks", "strcontains",
        "strings", "symbols", "tracepoint_args", "tracepoint_count", "tracepoint_wildcard", "uprobe_libc",
        "uprobe_state", "uprobe_workload", "variables", "watchpoint",
        "codegen9_scratch_key", "more_functions",
    ]

    @Test(arguments: differential)
    func sameAsBpftrace(_ name: String) throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bpftrace") else {
            _ = TestEnv.kernelAvailable("no /usr/bin/bpftrace to compare with")
            return
        }
        let ours = try ScriptCorpus.run(name, tool: TestEnv.plumb)
        let theirs = try ScriptCorpus.run(name, tool: "/usr/bin/bpftrace")
        #expect(ours.status == theirs.status, "\(name): plumb exits \(ours.status), bpftrace \(theirs.status)\n\(theirs.stderr)")
        #expect(ExpectedOutput.normalized(ours.stdout) == ExpectedOutput.normalized(theirs.stdout),
                "\(name): plumb\n\(ours.stdout)--- bpftrace:\n\(theirs.stdout)")
    }

    @Test func expectedSyntax() {
        #expect(ExpectedOutput.matches(expected: "pid {{int}}\nx", actual: "pid -42\nx"))
        #expect(!ExpectedOutput.matches(expected: "pid {{int}}", actual: "pid "))
        #expect(ExpectedOutput.matches(expected: "a {{hex}} b", actual: "a 0x4011fe b"))
        #expect(ExpectedOutput.matches(expected: "[{{any}}]", actual: "[x] y [z]"))
        #expect(ExpectedOutput.matches(expected: "a\n{{lines}}\nz", actual: "a\nb\nc\nz"))
        #expect(ExpectedOutput.matches(expected: "a\n{{lines}}\nz", actual: "a\nz"))
        #expect(!ExpectedOutput.matches(expected: "a\nz", actual: "a\nb\nz"))
        #expect(ExpectedOutput.normalized("@a[2]: 1\n@a[1]: 1\n\n@b: 3") == "@a[1]: 1\n@a[2]: 1\n\n@b: 3")
    }
}

@Suite struct ExitedProcessSymbolTests {
    // A -c command that exits before its events are printed: the non-PIE workload's
    // addresses still resolve (the runtime registers probed and run binaries).
    @Test func nonPIEResolvesWithoutTheProcess() throws {
        let w = try ScriptCorpus.workload()
        let symbols = SystemSymbols()
        let gone: Int32 = 0x3fff_fff0
        let work = try #require(TestEnv.run("/usr/bin/env", ["nm", w]).stdout
            .split(separator: "\n").first { $0.hasSuffix(" T work") }?.split(separator: " ").first
            .flatMap { UInt64($0, radix: 16) })
        #expect(symbols.userSymbol(work + 2, pid: gone, withOffset: true) == nil)
        symbols.addKnownFile(w)
        #expect(symbols.userSymbol(work + 2, pid: gone, withOffset: true) == "work+2")
        #expect(symbols.userSymbol(0x10, pid: gone, withOffset: true) == nil)
    }
}
