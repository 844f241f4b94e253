// usdt: probes through the plumb CLI against Tests/Fixtures/tracer-user/usdt.c: every site
// attached, argN typed by the spec and dispatched per site, semaphores raised, -l listing.
import Foundation
import Glibc
import Testing
import TestSupport

@Suite(.serialized) struct TracerUserUSDTTests {
    @Test(arguments: ["usdt", "usdt-nopie"]) func argumentsAndCounts(_ name: String) throws {
        let bin = try TracerUserFixtures.directory() + "/" + name
        let script = """
        usdt:\(bin):plumbu:add { printf("add %d %d %d %s\\n", arg0, arg1, arg2, str(arg3)); }
        U:\(bin):two { @two[arg0] = count(); }
        usdt:\(bin):global { printf("global %d\\n", arg0); }
        usdt:\(bin):plumbu:gate { @gate = count(); @gsum = sum(arg0); }
        """
        for perSite in ["0", "1"] {
        setenv("PLUMB_USDT_PER_SITE", perSite, 1)
        defer { unsetenv("PLUMB_USDT_PER_SITE") }
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin + " 3"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Attaching 4 probes..."))
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("add ") } == ["add 1 10 -1 plumb", "add 2 20 -2 plumb", "add 3 30 -3 plumb"])
        #expect(lines.filter { $0.hasPrefix("global ") } == ["global 41", "global 42", "global 43"])
        // The two sites of plumbu:two pass v and v*100 from different registers.
        for v in [1, 2, 3, 100, 200, 300] { #expect(lines.contains("@two[\(v)]: 1"), "\(r.stdout)") }
        // Fires only while the semaphore is raised.
        #expect(lines.contains("@gate: 3") && lines.contains("@gsum: 6"), "\(r.stdout)")
        }
    }

    @Test func processBinariesWithoutPath() throws {
        let bin = try TracerUserFixtures.directory() + "/usdt"
        let r = TestEnv.run(TestEnv.plumb, ["-e", "usdt:*:add { @[probe, arg1] = count(); } U::plumbu:gate { @g = count(); }", "-c", bin + " 2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("@[usdt:\(bin):plumbu:add, 10]: 1"), "\(r.stdout)")
        #expect(r.stdout.contains("@[usdt:\(bin):plumbu:add, 20]: 1"), "\(r.stdout)")
        #expect(r.stdout.contains("@g: 2"), "\(r.stdout)")
    }

    /// -p: `usdt:*:...` and `U::PROVIDER:NAME` mean the process's executable and the libraries it has mapped.
    @Test func runningProcessAndItsLibraries() throws {
        let fx = try USDTFixtures.build()
        let target = Process()
        target.executableURL = URL(fileURLWithPath: fx.pie)
        target.arguments = ["3"]
        let input = Pipe(), output = Pipe()
        target.standardInput = input
        target.standardOutput = output
        try target.run()
        defer { if target.isRunning { target.terminate() } }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let d = output.fileHandleForReading.availableData
            if d.isEmpty { break }
            line.append(d)
        }
        let pid = try #require(Int32(String(decoding: line, as: UTF8.self).split(separator: "\n").first ?? ""))
        let tracer = Process()
        tracer.executableURL = URL(fileURLWithPath: TestEnv.plumb)
        tracer.arguments = ["-p", "\(pid)", "-e", "usdt:*:plumb:twice { @[probe] = count(); } U::plumblib:* { @l[probe, arg0] = count(); } usdt:tick { @t = count(); }"]
        let traced = Pipe(), errors = Pipe()
        tracer.standardOutput = traced
        tracer.standardError = errors
        try tracer.run()
        // Wait for "Attaching 3 probes..." plus the attach itself, then run two rounds and end the target.
        var head = Data()
        while !head.contains(UInt8(ascii: "\n")) {
            let d = traced.fileHandleForReading.availableData
            if d.isEmpty { break }
            head.append(d)
        }
        usleep(500_000)
        input.fileHandleForWriting.write(Data("ab".utf8))
        try input.fileHandleForWriting.close()
        target.waitUntilExit()
        let rest = traced.fileHandleForReading.readDataToEndOfFile()
        tracer.waitUntilExit()
        let out = String(decoding: head + rest, as: UTF8.self)
        let lib = URL(fileURLWithPath: fx.library).resolvingSymlinksInPath().path
        #expect(out.contains("@[usdt:\(fx.pie):plumb:twice]: 12"), "\(out) \(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        for v in 0..<3 { #expect(out.contains("@l[usdt:\(lib):plumblib:work, \(v)]: 2"), "\(out)") }
        #expect(out.contains("@t: 6"), "\(out)")
    }

    /// var() in a usdt probe with two sites: each site relocates by its own address (cookie).
    @Test(arguments: ["usdt", "usdt-nopie"]) func globalsInMultiSiteProbe(_ name: String) throws {
        let bin = try TracerUserFixtures.directory() + "/" + name
        let r = TestEnv.run(TestEnv.plumb, ["-e", "U:\(bin):two { @[var(\"g_counter\"), arg0] = count(); }", "-c", bin + " 2"])
        #expect(r.status == 0, "\(r.stderr)")
        for k in ["41, 1", "41, 100", "42, 2", "42, 200"] { #expect(r.stdout.contains("@[\(k)]: 1"), "\(r.stdout)") }
    }

    @Test func diagnostics() throws {
        let bin = try TracerUserFixtures.directory() + "/usdt"
        let range = TestEnv.run(TestEnv.plumb, ["-e", "usdt:\(bin):add { print(arg4); }"])
        #expect(range.status == 1 && range.stderr.contains("usdt probe plumbu:add has 4 arguments (arg0..arg3); arg4 is out of range"), "\(range.stderr)")
        let missing = TestEnv.run(TestEnv.plumb, ["-e", "usdt:\(bin):ad { exit(); }"])
        #expect(missing.status == 1 && missing.stderr.contains("no USDT probe matches") && missing.stderr.contains("did you mean 'add'?"), "\(missing.stderr)")
        let noPath = TestEnv.run(TestEnv.plumb, ["-e", "usdt:add { exit(); }"])
        #expect(noPath.status == 1 && noPath.stderr.contains("give a path or trace a process with -p PID or -c CMD"), "\(noPath.stderr)")
    }

    @Test func listing() throws {
        let bin = try TracerUserFixtures.directory() + "/usdt"
        let l = TestEnv.run(TestEnv.plumb, ["-l", "usdt:\(bin)"])
        #expect(l.stdout == ["two", "add", "global", "gate"].map { "usdt:\(bin):plumbu:\($0)\n" }.joined())
        let lv = TestEnv.run(TestEnv.plumb, ["-lv", "usdt:\(bin):plumbu:two"])
        #expect(lv.stdout.hasPrefix("usdt:\(bin):plumbu:two  (2 sites, semaphore)\n"), "\(lv.stdout)")
        let pg = "/usr/lib/postgresql/15/bin/postgres"
        if FileManager.default.fileExists(atPath: pg) {
            let names = TestEnv.run(TestEnv.plumb, ["-l", "usdt:\(pg)"]).stdout.split(separator: "\n")
            #expect(names.count == 57)
            let verbose = TestEnv.run(TestEnv.plumb, ["-lv", "U:\(pg)"]).stdout
            let sites = verbose.split(separator: "\n").filter { !$0.hasPrefix(" ") }.compactMap { line -> Int? in
                guard let open = line.range(of: "  (") else { return Int(exactly: 1) }
                return Int(line[open.upperBound...].prefix { $0.isNumber })
            }
            #expect(sites.reduce(0, +) == 71)
        }
    }
}
