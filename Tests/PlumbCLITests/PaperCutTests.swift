// Issue 8's paper cuts: "did you mean" for subcommands and type names, the verifier's message
// (its header once, paths as the user gave them), help that states each default once.
import Foundation
import Glibc
import Testing
import TestSupport

@Suite struct PaperCutTests {
    @Test func mistypedSubcommandsGetASuggestion() {
        let top = plumb(["prgo", "list"])
        #expect(top.status == 64)
        #expect(top.stderr.contains("unknown command 'plumb prgo'. Did you mean 'plumb prog'?"), "\(top.stderr)")
        let nested = plumb(["prog", "lsit"])
        #expect(nested.status == 64)
        #expect(nested.stderr.contains("Did you mean 'plumb prog list'?"), "\(nested.stderr)")
        let object = plumb(["object", "rnu", "x.o"])
        #expect(object.stderr.contains("Did you mean 'plumb object run'?"), "\(object.stderr)")
        // Far from every subcommand: the tracer's own message for a missing script file stays.
        let script = plumb(["no_such_script_file.bt"])
        #expect(script.status != 0 && !script.stderr.contains("Did you mean"), "\(script.stderr)")
    }

    @Test func mistypedTypeNamesGetASuggestion() throws {
        let object = try fixturePath("basic.bpfel.o")
        let r = plumb(["btf", "show", "evnet", object])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no BTF type named 'evnet'; did you mean 'event'?"), "\(r.stderr)")
        let tagged = plumb(["btf", "show", "struct evnet", object])
        #expect(tagged.stderr.contains("did you mean 'struct event'?"), "\(tagged.stderr)")
        let path = plumb(["btf", "show", "evnet.pid", object])
        #expect(path.stderr.contains("did you mean 'event'?"), "\(path.stderr)")
        guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else { return }
        let kernel = plumb(["btf", "show", "task_strct"])
        #expect(kernel.stderr.contains("did you mean 'task_struct'?"), "\(kernel.stderr)")
    }

    @Test func verifierMessageSaysItsHeaderOnceWithPathsAsGiven() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        // Built here with the source's absolute path (as build.sh does): printed relative to the current folder.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-verifier-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = TestEnv.fixturesSource.appendingPathComponent("bad_verifier.bpf.c").path
        let multiarch = "/usr/include/\(TestEnv.run("/usr/bin/uname", ["-m"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines))-linux-gnu"
        let cc = TestEnv.run(TestEnv.clang, ["-g", "-O2", "-target", "bpfel", "-mcpu=v3", "-I", TestEnv.fixturesSource.appendingPathComponent("include").path,
                                             "-idirafter", multiarch, "-c", source, "-o", dir.appendingPathComponent("bad.o").path])
        try #require(cc.status == 0, "\(cc.stderr)")
        let r = TestEnv.run(TestEnv.plumb, ["object", "run", "bad.o", "--duration", "0s"], cwd: dir)
        #expect(r.status != 0)
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.hasPrefix("Error: bad.o: loading program 'unchecked': EACCES"), "\(first)")
        #expect(!r.stderr.contains("BPF_PROG_LOAD of"), "the program is named once: \(first)")
        #expect(r.stderr.contains("verifier log:"))
        // From the repository's root, the source is Tests/Fixtures/..., as one would type it.
        let fromRoot = TestEnv.run(TestEnv.plumb, ["object", "run", dir.appendingPathComponent("bad.o").path, "--duration", "0s"], cwd: TestEnv.root)
        #expect(fromRoot.stderr.contains("instruction 7: Tests/Fixtures/bad_verifier.bpf.c:18:5: *v += 1;"), "\(fromRoot.stderr.suffix(300))")
    }

    @Test func helpStatesEachDefaultOnce() {
        let commands = [["btf", "dump"], ["btf", "show"], ["btf", "list"], ["object", "dump"], ["object", "run"], ["object", "load"],
                        ["prog", "list"], ["prog", "show"], ["prog", "dump"], ["prog", "tracelog"], ["map", "list"], ["map", "show"],
                        ["map", "dump"], ["map", "lookup"], ["map", "update"], ["map", "delete"], ["link", "list"], ["link", "detach"],
                        ["gen", "swift"], ["features"]]
        for c in commands {
            let r = plumb(c + ["--help"])
            #expect(r.status == 0, "\(c): \(r.stderr)")
            // One entry per option/argument: its first line, then the indented lines it wraps onto.
            var entries: [String] = []
            for line in r.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("  "), !line.hasPrefix("   "), !line.dropFirst(2).hasPrefix(" ") { entries.append(String(line)) }
                else if line.hasPrefix("   "), !entries.isEmpty { entries[entries.count - 1] += " " + line.trimmingCharacters(in: .whitespaces) }
            }
            for e in entries {
                let count = e.lowercased().components(separatedBy: "default").count - 1
                #expect(count <= 1, "\(c.joined(separator: " ")) --help states a default twice: \(e)")
            }
        }
    }
}

@Suite(.serialized) struct PinnedPathsCLITests {
    /// `prog show -f` / `map show -f` (bpftool's --bpffs): the pinned paths, in bpftool's JSON shape.
    @Test func showListsPinnedPathsAsBpftoolDoes() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let dir = "/sys/fs/bpf/plumb-cli-pinned-\(getpid())"
        let load = plumb(["object", "load", try fixturePath("basic.bpfel.o"), "--pin", dir])
        try #require(load.status == 0, "\(load.stderr)")
        defer { _ = TestEnv.run("/bin/rm", ["-rf", dir]) }
        let programs = try JSONSerialization.jsonObject(with: plumb(["prog", "list", "-f", "-j"]).stdoutData) as? [[String: Any]] ?? []
        let mine = programs.filter { ($0["pinned"] as? [String])?.contains { $0.hasPrefix(dir + "/") } ?? false }
        #expect(mine.count == 2, "both programs of basic.bpfel.o are pinned under \(dir)")
        for p in mine {
            guard let id = p["id"] as? Int else { continue }
            let ours = plumb(["prog", "show", String(id), "-f", "-j"]).stdout
            let bpftool = TestEnv.run("/usr/sbin/bpftool", ["prog", "show", "id", String(id), "-f", "-j"])
            guard bpftool.status == 0 else { continue }   // bpftool missing: our own answer was checked above
            let a = try JSONSerialization.jsonObject(with: Data(ours.utf8)) as? [String: Any]
            let b = try JSONSerialization.jsonObject(with: bpftool.stdoutData) as? [String: Any]
            #expect(a?["pinned"] as? [String] == b?["pinned"] as? [String], "\(ours) vs \(bpftool.stdout)")
            #expect(plumb(["prog", "show", String(id), "-f"]).stdout.contains("\tpinned \(dir)/progs/"))
        }
        // Without -f nothing is walked and nothing printed.
        #expect(!plumb(["prog", "list"]).stdout.contains("pinned \(dir)"))
        let maps = try JSONSerialization.jsonObject(with: plumb(["map", "list", "--bpffs", "--json"]).stdoutData) as? [[String: Any]] ?? []
        #expect(maps.contains { ($0["pinned"] as? [String])?.contains("\(dir)/maps/counts") ?? false }, "the counts map pinned as maps/counts")
    }
}
