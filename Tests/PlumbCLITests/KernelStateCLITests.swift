// `plumb prog|map|link` against the live kernel, with bpftool 7.1 as the oracle: both tools'
// JSON parsed and compared field by field for the objects a fixture run loaded.
import PlumbSys
import Foundation
import Glibc
import Testing
import TestSupport

let bpftool = "/usr/sbin/bpftool"

func parseJSON(_ r: TestEnv.Result, sourceLocation: SourceLocation = #_sourceLocation) -> Any? {
    guard r.status == 0 else {
        Issue.record("exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        return nil
    }
    do { return try JSONSerialization.jsonObject(with: r.stdoutData, options: [.fragmentsAllowed]) } catch {
        Issue.record("not JSON: \(error): \(r.stdout.prefix(300))", sourceLocation: sourceLocation)
        return nil
    }
}

func objects(_ any: Any?) -> [[String: Any]] { any as? [[String: Any]] ?? [] }

func byID(_ list: [[String: Any]]) -> [Int: [String: Any]] {
    var out: [Int: [String: Any]] = [:]
    for o in list { if let id = o["id"] as? Int { out[id] = o } }
    return out
}

/// Compares `fields` of two JSON objects (as NSObject, so numbers, strings, arrays compare by value).
func expectSame(_ ours: [String: Any]?, _ theirs: [String: Any]?, _ fields: [String], _ what: String,
                sourceLocation: SourceLocation = #_sourceLocation) {
    guard let ours, let theirs else {
        Issue.record("\(what): missing on \(ours == nil ? "our" : "bpftool's") side", sourceLocation: sourceLocation)
        return
    }
    for f in fields {
        let a = ours[f] as? NSObject, b = theirs[f] as? NSObject
        #expect(a == b, "\(what).\(f): ours \(String(describing: a)), bpftool \(String(describing: b))", sourceLocation: sourceLocation)
    }
}

/// A fixture loaded and attached by `plumb object run` in the background for the test's length.
final class LoadedFixture {
    let run: BackgroundRun
    let programIDs: [UInt32]

    init(_ fixture: String, waitFor line: String, name: String) throws {
        run = try BackgroundRun(["object", "run", try fixturePath(fixture), "--duration", "60s"], name: name)
        let text = run.waitFor(line)
        programIDs = loadedProgramIDs(text)
    }

    func stop() {
        run.cleanUp()
        run.process.waitUntilExit()
        if let dir = try? BPFFS.path() { unlink(dir + "/m_lru") }
    }
}

@Suite(.serialized) struct KernelStateCLITests {
    @Test func progListAndShowMatchBpftool() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let f = try LoadedFixture("basic.bpfel.o", waitFor: "attached on_sys_enter", name: "proglist")
        defer { f.stop() }
        #expect(f.programIDs.count == 2)
        let ours = byID(objects(parseJSON(plumb(["prog", "list", "-j"]))))
        let theirs = byID(objects(parseJSON(TestEnv.run(bpftool, ["-j", "prog", "list"]))))
        let fields = ["id", "type", "name", "tag", "gpl_compatible", "uid", "bytes_xlated", "jited", "bytes_jited",
                      "bytes_memlock", "map_ids", "btf_id"]
        for id in f.programIDs {
            expectSame(ours[Int(id)], theirs[Int(id)], fields, "prog \(id)")
            // Wall-clock load times are computed the same way; a second boundary may fall between.
            if let a = ours[Int(id)]?["loaded_at"] as? Int, let b = theirs[Int(id)]?["loaded_at"] as? Int {
                #expect(abs(a - b) <= 1)
            } else { Issue.record("loaded_at missing") }
            let show = parseJSON(plumb(["prog", "show", String(id), "--json"])) as? [String: Any]
            let bshow = parseJSON(TestEnv.run(bpftool, ["-j", "prog", "show", "id", String(id)])) as? [String: Any]
            expectSame(show, bshow, fields, "prog show \(id)")
        }
        // Pretty output is the same JSON.
        let pretty = plumb(["prog", "show", String(f.programIDs[0]), "-p"])
        #expect(pretty.stdout.contains("\n    \"id\": \(f.programIDs[0]),"))
        // The plain listing names the programs as bpftool's does.
        let text = plumb(["prog", "list"]).stdout
        #expect(text.contains("\(f.programIDs[0]): tracepoint  name on_getpid  tag "))
    }

    @Test func mapAndLinkListsMatchBpftool() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let f = try LoadedFixture("basic.bpfel.o", waitFor: "attached on_sys_enter", name: "maplist")
        defer { f.stop() }
        let progs = byID(objects(parseJSON(plumb(["prog", "list", "-j"]))))
        let mapIDs = Set(f.programIDs.flatMap { (progs[Int($0)]?["map_ids"] as? [Int]) ?? [] })
        #expect(mapIDs.count == 6, "counts, totals, events, rodata, bss, data: \(mapIDs)")
        let ours = byID(objects(parseJSON(plumb(["map", "list", "-j"]))))
        let theirs = byID(objects(parseJSON(TestEnv.run(bpftool, ["-j", "map", "list"]))))
        let fields = ["id", "type", "name", "flags", "bytes_key", "bytes_value", "max_entries", "bytes_memlock", "frozen"]
        for id in mapIDs {
            expectSame(ours[id], theirs[id], fields, "map \(id)")
            // bpftool's `map list` can carry one map's btf_id over to the next; `map show` asks afresh.
            let show = parseJSON(plumb(["map", "show", String(id), "-j"])) as? [String: Any]
            let bshow = parseJSON(TestEnv.run(bpftool, ["-j", "map", "show", "id", String(id)])) as? [String: Any]
            expectSame(show, bshow, fields + ["btf_id"], "map show \(id)")
        }
        let names = Set(mapIDs.compactMap { ours[$0]?["name"] as? String })
        #expect(names.isSuperset(of: ["counts", "totals", "events", "basic.bp.rodata"]))

        let ourLinks = objects(parseJSON(plumb(["link", "list", "-j"]))).filter { f.programIDs.contains(UInt32($0["prog_id"] as? Int ?? -1)) }
        let theirLinks = byID(objects(parseJSON(TestEnv.run(bpftool, ["-j", "link", "list"]))))
        #expect(ourLinks.count == 2)
        for l in ourLinks {
            guard let id = l["id"] as? Int else { continue }
            expectSame(l, theirLinks[id], ["id", "type", "prog_id", "tp_name"], "link \(id)")
        }
        #expect(ourLinks.contains { $0["type"] as? String == "raw_tracepoint" && $0["tp_name"] as? String == "sys_enter" })
        #expect(ourLinks.contains { $0["type"] as? String == "perf_event" })
    }

    @Test func mapDumpEqualsBpftoolAndEditsWork() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let f = try LoadedFixture("objects.bpfel.o", waitFor: "attached third_prog", name: "mapdump")
        defer { f.stop() }
        let maps = objects(parseJSON(plumb(["map", "list", "-j"])))
        // Maps no program uses are in no map_ids list; they share the programs' BTF object, though
        // (other tests may have the same fixture loaded at the same time).
        let progs = byID(objects(parseJSON(plumb(["prog", "list", "-j"]))))
        let btfID = f.programIDs.compactMap { progs[Int($0)]?["btf_id"] as? Int }.first ?? -1
        func mapID(_ name: String) -> Int? {
            maps.first { $0["name"] as? String == name && $0["btf_id"] as? Int == btfID }?["id"] as? Int
        }
        guard let hash = mapID("m_hash"), let percpu = mapID("m_percpu_hash"), let lpm = mapID("m_lpm") else {
            Issue.record("fixture maps not found among \(maps.map { $0["name"] ?? "" })")
            return
        }
        // Typed and byte-wise writes, as bpftool takes keys and values.
        var r = plumb(["map", "update", String(hash), "key", "0x07", "0x00", "0x00", "0x00",
                       "value", "1", "0", "0", "0", "0", "0", "0", "0", "2", "0", "0", "0", "0", "0", "0", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        r = plumb(["map", "update", String(hash), "key", "9", "value", "hex", "ff", "00", "00", "00", "00", "00", "00", "00",
                   "01", "00", "00", "00", "00", "00", "00", "00"])
        #expect(r.status == 0, "\(r.stderr)")
        // A negative number does not go silently into an unsigned value; its bit pattern does.
        r = plumb(["map", "update", String(percpu), "key", "3", "value", "-2"])
        #expect(r.status != 0 && r.stderr.contains("-2 does not fit u64"), "\(r.stderr)")
        r = plumb(["map", "update", String(percpu), "key", "3", "value", "0xfffffffffffffffe"])
        #expect(r.status == 0, "\(r.stderr)")
        r = plumb(["map", "update", String(lpm), "key", "24", "0", "0", "0", "10", "1", "2", "0", "value", "0x2a"])
        #expect(r.status == 0, "\(r.stderr)")

        for (id, what) in [(hash, "hash of structs"), (percpu, "per-CPU hash"), (lpm, "LPM trie")] {
            let a = parseJSON(plumb(["map", "dump", String(id), "-j"])) as? NSArray
            let b = parseJSON(TestEnv.run(bpftool, ["-j", "map", "dump", "id", String(id)])) as? NSArray
            #expect(a != nil && a == b, "\(what) dump differs:\nours    \(String(describing: a))\nbpftool \(String(describing: b))")
        }
        // Global data sections dump as bpftool's DATASEC objects (these do not change while running).
        for name in maps.compactMap({ $0["name"] as? String }) where name.hasSuffix(".rodata") || name.hasSuffix(".kconfig") {
            guard let id = mapID(name) else { continue }
            let a = parseJSON(plumb(["map", "dump", String(id), "-j"])) as? NSArray
            let b = parseJSON(TestEnv.run(bpftool, ["-j", "map", "dump", "id", String(id)])) as? NSArray
            #expect(a == b, "\(name): \(String(describing: a)) vs \(String(describing: b))")
        }
        // By name, and the typed text form.
        let text = plumb(["map", "dump", String(hash)])
        #expect(text.stdout.contains("{ .a = 7 }: { .x = 1, .y = 2 }"), "\(text.stdout)\(text.stderr)")
        #expect(text.stdout.contains("Found 2 elements"))
        let look = parseJSON(plumb(["map", "lookup", String(hash), "key", "9", "-j"])) as? [String: Any]
        #expect((look?["formatted"] as? [String: Any])?["value"] as? NSDictionary == ["x": 255, "y": 1] as NSDictionary)
        // Per-CPU lookups show every CPU's value (the update wrote -2 to each).
        let perCPU = parseJSON(plumb(["map", "lookup", String(percpu), "key", "3", "-j"])) as? [String: Any]
        let values = perCPU?["values"] as? [[String: Any]] ?? []
        #expect(!values.isEmpty && values.allSatisfy { ($0["value"] as? [String])?.first == "0xfe" })
        // Delete, then the key is gone and a second delete fails with a message.
        #expect(plumb(["map", "delete", String(hash), "key", "7"]).status == 0)
        let again = plumb(["map", "delete", String(hash), "key", "7"])
        #expect(again.status != 0 && again.stderr.contains("is not in map"))
        let wrong = plumb(["map", "lookup", String(hash), "key", "1", "2"])
        #expect(wrong.status != 0 && wrong.stderr.contains("4 bytes"))
    }

    @Test func progDumpShowsSourceHelpersAndMaps() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let f = try LoadedFixture("objects.bpfel.o", waitFor: "attached third_prog", name: "progdump")
        defer { f.stop() }
        let progs = byID(objects(parseJSON(plumb(["prog", "list", "-j"]))))
        guard let first = f.programIDs.first(where: { progs[Int($0)]?["name"] as? String == "first_prog" }) else {
            Issue.record("first_prog not loaded")
            return
        }
        let r = plumb(["prog", "dump", String(first)])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("<first_prog>:\n"))
        #expect(r.stdout.contains("<global_helper>:"), "subprograms by func_info name")
        #expect(r.stdout.contains("; bpf_loop(4, loop_cb, &sum, 0);"), "source lines from line_info")
        #expect(r.stdout.contains("call <global_helper>"), "bpf-to-bpf calls by name")
        #expect(r.stdout.contains("= <loop_cb>"), "callbacks by name")
        #expect(r.stdout.contains("= map[id:"), "map references by id")
        #expect(!r.stdout.contains("<unknown>"), "\(r.stdout)")
        if let second = f.programIDs.first(where: { progs[Int($0)]?["name"] as? String == "second_prog" }) {
            let s = plumb(["prog", "dump", String(second)]).stdout
            #expect(s.contains("call bpf_trace_printk"), "helpers by kernel symbol: \(s)")
            #expect(s.contains("call bpf_rcu_read_lock"), "kfuncs by kernel symbol")
        }
        // As many instructions as bpftool shows.
        let theirs = TestEnv.run(bpftool, ["prog", "dump", "xlated", "id", String(first)])
        let count = { (s: String) in s.split(separator: "\n").filter { $0.range(of: #"^\s*\d+: "#, options: .regularExpression) != nil }.count }
        #expect(count(r.stdout) == count(theirs.stdout), "\(r.stdout)\n---\n\(theirs.stdout)")
    }

    @Test func linkDetachUnpinsLinksWithoutDetach() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let missing = plumb(["link", "detach", "4000000000"])
        #expect(missing.status != 0 && missing.stderr.contains("no link with id"))
        let notPinned: TestEnv.Result
        do {
            let f = try LoadedFixture("basic.bpfel.o", waitFor: "attached on_sys_enter", name: "detach")
            defer { f.stop() }
            let links = objects(parseJSON(plumb(["link", "list", "-j"]))).filter { f.programIDs.contains(UInt32($0["prog_id"] as? Int ?? -1)) }
            notPinned = plumb(["link", "detach", String(links.first?["id"] as? Int ?? 0)])
        }
        #expect(notPinned.status != 0)
        #expect(notPinned.stderr.contains("not pinned"), "\(notPinned.stderr)")
    }

    @Test func tracelogStreamsBpfPrintk() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        // second_prog of objects.bpfel.o prints cfg_name with bpf_printk on every getpid; a unique
        // value set with --set tells our lines from anything else in the shared trace_pipe.
        let marker = "plm\(getpid() % 100000)"
        let log = try BackgroundRun(["prog", "tracelog"], name: "tracelog")
        defer { log.cleanUp() }
        let run = try BackgroundRun(["object", "run", try fixturePath("objects.bpfel.o"), "--duration", "30s", "--set", "cfg_name=\(marker)"], name: "printk")
        defer {
            run.cleanUp()
            if let dir = try? BPFFS.path() { unlink(dir + "/m_lru") }
        }
        #expect(run.waitFor("attached third_prog").contains("attached third_prog"))
        var text = ""
        for _ in 0..<100 {
            _ = getpid()
            text = log.output
            if text.contains(marker) { break }
            usleep(50_000)
        }
        #expect(text.contains(marker), "trace_pipe output: \(text.suffix(500))")
        #expect(text.contains("bpf_trace_printk: \(marker)"))
    }

    @Test func badMapArgumentsAreRefused() {
        let none = plumb(["map", "dump"])
        #expect(none.status != 0 && none.stderr.contains("name one map"))
        let noName = plumb(["map", "dump", "--name", "no_such_map_xyz"])
        #expect(noName.status != 0 && noName.stderr.contains("no map named"))
    }
}

@Suite struct FeaturesCLITests {
    @Test func hasAnswersWithTheExitCode() {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        #expect(plumb(["features", "--has", "prog_type=tracepoint"]).status == 0)
        #expect(plumb(["features", "--has", "map_type=task_storage"]).status == 0, "BTF-valued maps probed for real")
        #expect(plumb(["features", "--has", "map_type=sk_storage"]).status == 0)
        #expect(plumb(["features", "--has", "helper=bpf_get_current_pid_tgid@tracepoint"]).status == 0)
        #expect(plumb(["features", "--has", "helper=bpf_skb_load_bytes@tracepoint"]).status == 1, "socket helpers are not for tracepoints")
        #expect(plumb(["features", "--has", "attach=kprobe/kretprobe"]).status == 1, "this kernel has no kprobes")
        let unknown = plumb(["features", "--has", "prog_type=no_such_type"])
        #expect(unknown.status == 2 && unknown.stderr.contains("unknown feature"))
        #expect(plumb(["features", "--has", "nonsense"]).status == 2)
    }

    @Test func jsonAgreesWithBpftool() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let ours = parseJSON(plumb(["features", "-j"])) as? [String: Any] ?? [:]
        let theirs = parseJSON(TestEnv.run(bpftool, ["-j", "feature", "probe", "kernel"])) as? [String: Any] ?? [:]
        let sys = ours["system_config"] as? [String: Any] ?? [:], bsys = theirs["system_config"] as? [String: Any] ?? [:]
        for key in ["unprivileged_bpf_disabled", "bpf_jit_enable", "bpf_jit_harden", "bpf_jit_kallsyms", "bpf_jit_limit",
                    "CONFIG_BPF", "CONFIG_BPF_SYSCALL", "CONFIG_BPF_JIT", "CONFIG_DEBUG_INFO_BTF", "CONFIG_KPROBE_EVENTS", "CONFIG_HZ"] {
            #expect(sys[key] as? NSObject == bsys[key] as? NSObject, "\(key): \(String(describing: sys[key])) vs \(String(describing: bsys[key]))")
        }
        let maps = ours["map_types"] as? [String: Bool] ?? [:], bmaps = theirs["map_types"] as? [String: Bool] ?? [:]
        #expect(!bmaps.isEmpty)
        for (k, v) in bmaps { #expect(maps[k] == v, "\(k)") }
        // bpftool 7.1 loads tracing, ext and lsm programs without an attach target and so calls them unsupported.
        let progs = ours["program_types"] as? [String: Bool] ?? [:], bprogs = theirs["program_types"] as? [String: Bool] ?? [:]
        for (k, v) in bprogs where !["have_tracing_prog_type", "have_ext_prog_type", "have_lsm_prog_type"].contains(k) {
            #expect(progs[k] == v, "\(k)")
        }
        // bpftool 7.1 misreads this kernel's verifier messages and lists every helper for every
        // type, so helpers are checked against facts instead: socket helpers only where sockets are.
        let helpers = ours["helpers"] as? [String: [String]] ?? [:]
        let kprobe = Set(helpers["kprobe_available_helpers"] ?? []), xdp = Set(helpers["xdp_available_helpers"] ?? [])
        let filter = Set(helpers["socket_filter_available_helpers"] ?? [])
        #expect(kprobe.contains("bpf_get_current_pid_tgid") && kprobe.contains("bpf_probe_read_kernel"))
        #expect(!kprobe.contains("bpf_skb_load_bytes") && !kprobe.contains("bpf_xdp_adjust_head"))
        #expect(xdp.contains("bpf_xdp_adjust_head") && !xdp.contains("bpf_get_stackid") && kprobe.contains("bpf_get_stackid"))
        #expect(filter.contains("bpf_skb_load_bytes") && !filter.contains("bpf_xdp_adjust_head"))
        #expect(helpers.count >= 25, "helpers listed for every loadable program type")
    }
}

@Suite struct GenSwiftCLITests {
    /// swiftc against the built modules (Plumb and the C shim's module map), through SIL so that
    /// definite-initialization errors count too (-typecheck stops before them).
    func typecheck(_ file: String) -> TestEnv.Result {
        let build = TestEnv.root.appendingPathComponent(".build").path
        let triple = (try? FileManager.default.destinationOfSymbolicLink(atPath: build + "/debug")) ?? "x86_64-unknown-linux-gnu/debug"
        let debug = triple.hasPrefix("/") ? triple : build + "/" + triple
        return TestEnv.run(TestEnv.toolchainBin + "/swiftc", [
            "-emit-sil", "-o", "/dev/null", "-I", debug + "/Modules",
            "-Xcc", "-fmodule-map-file=\(debug)/CPlumbSys.build/module.modulemap",
            "-Xcc", "-I", "-Xcc", TestEnv.root.appendingPathComponent("Sources/CPlumbSys/include").path, file])
    }

    @Test func everyFixtureGeneratesCodeThatTypechecksWithoutWarnings() throws {
        let dir = try TestEnv.fixtures()
        let objects = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".bpfel.o") }.sorted()
        #expect(objects.count >= 15)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-gen-\(getpid())")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        for o in objects {
            let gen = plumb(["gen", "swift", dir.appendingPathComponent(o).path])
            #expect(gen.status == 0, "\(o): \(gen.stderr)")
            let file = out.appendingPathComponent(o.replacingOccurrences(of: ".bpfel.o", with: ".swift"))
            try gen.stdoutData.write(to: file)
            let tc = typecheck(file.path)
            #expect(tc.status == 0 && tc.stderr.isEmpty, "\(o):\n\(tc.stderr.prefix(2000))")
        }
    }

    @Test func committedGeneratedFilesAreWhatGenPrints() throws {
        let dir = try TestEnv.fixtures()
        for (fixture, file) in [("basic", "BasicProbe"), ("btf_layout", "BtfLayoutProbe"), ("objects", "ObjectsProbe"),
                                ("btf_edge", "BtfEdgeProbe"), ("btf_decls", "BtfDeclsProbe"), ("execsnoop", "ExecsnoopProbe"), ("core_proc", "CoreProcProbe"),
                                ("bare_attach", "BareAttachProbe")] {
            let gen = plumb(["gen", "swift", dir.appendingPathComponent("\(fixture).bpfel.o").path])
            let committed = try String(contentsOf: TestEnv.root.appendingPathComponent("Tests/PlumbTests/Generated/\(file).swift"), encoding: .utf8)
            #expect(gen.stdout == committed, "regenerate Tests/PlumbTests/Generated/\(file).swift with `plumb gen swift .build/fixtures/\(fixture).bpfel.o`")
        }
    }
}
