// The command-line tool as a user runs it: real files, the real kernel, real processes.
import PlumbSys
import Foundation
import Glibc
import Testing
import TestSupport

func plumb(_ args: [String]) -> TestEnv.Result {
    TestEnv.run(TestEnv.plumb, args)
}

func fixturePath(_ name: String) throws -> String {
    try TestEnv.fixtures().appendingPathComponent(name).path
}

func bpfUsable() -> String? {
    do {
        _ = try Sys.mapCreate(MapAttributes(type: .array, keySize: 4, valueSize: 4, maxEntries: 1))
        return nil
    } catch {
        return "bpf() unusable: \(error)"
    }
}

/// Program ids from `object run`'s "loaded NAME: TYPE program, id N" lines.
func loadedProgramIDs(_ output: String) -> [UInt32] {
    output.split(separator: "\n").compactMap { line -> UInt32? in
        guard line.hasPrefix("loaded "), let id = line.split(separator: " ").last else { return nil }
        return UInt32(id)
    }
}

/// The ids still loaded after up to 2 s (programs are freed after an RCU grace period).
func stillLoaded(_ ids: [UInt32]) throws -> [UInt32] {
    var alive = ids
    for _ in 0..<200 where !alive.isEmpty {
        alive = try alive.filter { try Sys.exists(id: $0, kind: .program) }
        usleep(10_000)
    }
    return alive
}

/// `plumb ARGS` running in the background with its output in a file, for tests that signal it.
final class BackgroundRun {
    let process = Process()
    let outputFile: URL

    init(_ args: [String], name: String) throws {
        outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-\(name)-\(getpid()).txt")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: TestEnv.plumb)
        process.arguments = args
        // Both streams into one file: status lines ("attached ...", summaries) are on stderr.
        let handle = try FileHandle(forWritingTo: outputFile)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }

    /// The output once it contains `text`, or after 6 s.
    func waitFor(_ text: String) -> String {
        for _ in 0..<300 {
            let o = output
            if o.contains(text) { return o }
            usleep(20_000)
        }
        return output
    }

    func cleanUp() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: outputFile)
    }
}

@Suite struct BTFCLITests {
    @Test func rawDumpMatchesBpftool() throws {
        let ours = plumb(["btf", "dump", "--format", "raw", try fixturePath("objects.bpfel.o")])
        let theirs = TestEnv.run("/usr/sbin/bpftool", ["btf", "dump", "file", try fixturePath("objects.bpfel.o")])
        #expect(ours.status == 0 && theirs.status == 0)
        #expect(ours.stdout == theirs.stdout)
    }

    @Test func showPrintsLayout() {
        let r = plumb(["btf", "show", "task_struct"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("struct task_struct {"))
        #expect(r.stdout.contains("/* size: "))
    }

    @Test func showFieldPathPrintsStepsAndFinalType() {
        let r = plumb(["btf", "show", "task_struct.mm.arg_start"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "struct task_struct", "\(r.stdout)")
        // Offsets agree with the layout `btf show TYPE` prints.
        func offset(_ type: String, _ member: String) -> Int? {
            let show = plumb(["btf", "show", type]).stdout
            guard let line = show.split(separator: "\n").first(where: { $0.hasPrefix("\t") && $0.contains(member + ";") }),
                  let comment = line.split(separator: "/*").last?.split(separator: " ", omittingEmptySubsequences: true).first
            else { return nil }
            return Int(comment)
        }
        let mm = offset("task_struct", "*mm"), argStart = offset("mm_struct", " arg_start")
        #expect(mm != nil && argStart != nil)
        #expect(lines.contains { $0.hasPrefix("  .mm ") && $0.contains("+\(mm ?? -1) ") && $0.hasSuffix("struct mm_struct *") }, "\(r.stdout)")
        #expect(lines.contains { $0.hasPrefix("  ->arg_start ") && $0.contains("+\(argStart ?? -1) ") }, "\(r.stdout)")
        #expect(lines.last == "arg_start: long unsigned int, 8 bytes", "\(r.stdout)")
        // Subscripts and bitfields.
        let comm = plumb(["btf", "show", "task_struct.comm[2]"])
        #expect(comm.stdout.hasSuffix("comm[2]: char, 1 byte\n"), "\(comm.stdout)")
        let bits = plumb(["btf", "show", "task_struct.sched_reset_on_fork"])
        #expect(bits.stdout.contains("+") && bits.stdout.contains(":0 (1 bit)") && bits.stdout.hasSuffix(", 1 bit\n"), "\(bits.stdout)")
        // A missing field is an error that names what is there.
        let bad = plumb(["btf", "show", "task_struct.mm.arg_strat"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("did you mean 'arg_start'?"), "\(bad.stderr)")
    }

    @Test func badInputsFailWithClearErrors() {
        let missing = plumb(["btf", "dump", "/nonexistent/file"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot read /nonexistent/file"))
        let notBTF = plumb(["btf", "dump", "/etc/hostname"])
        #expect(notBTF.status != 0)
        #expect(notBTF.stderr.contains("not BTF"))
        let noType = plumb(["btf", "show", "no_such_type_at_all"])
        #expect(noType.status != 0)
        #expect(noType.stderr.contains("no_such_type_at_all"))
        let empty = plumb(["btf", "show", ""])
        #expect(empty.status == 1)
        #expect(empty.stderr.contains("the type name is empty"))
        // Device files are refused, not read forever.
        for args in [["btf", "dump", "/dev/zero"], ["object", "dump", "/dev/zero"]] {
            let r = plumb(args)
            #expect(r.status != 0)
            #expect(r.stderr.contains("/dev/zero is not a regular file"), "\(args): \(r.stderr)")
        }
    }
}

@Suite struct ObjectCLITests {
    @Test func dumpAnnotatesCORERelocationsAgainstTheKernel() throws {
        let r = plumb(["object", "dump", try fixturePath("core_kernel.bpfel.o")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("<core_kernel>:"))
        #expect(r.stdout.contains("; CO-RE byte_off struct task_struct.pid:"))
        // The patched offset is the kernel's: the same one `plumb btf` finds.
        let show = plumb(["btf", "show", "task_struct"])
        if let line = show.stdout.split(separator: "\n").first(where: { $0.hasPrefix("\tpid_t pid;") }),
           let comment = line.split(separator: "/*").last?.split(separator: " ", omittingEmptySubsequences: true).first,
           let offset = Int(comment) {
            #expect(r.stdout.contains("struct task_struct.pid: 8 -> \(offset)"))
        } else {
            Issue.record("btf show printed no pid offset")
        }
    }

    @Test func dumpWithCustomTargetAndRefusedRelocation() throws {
        let ok = plumb(["object", "dump", try fixturePath("core_fields.bpfel.o"), "--target-btf", try fixturePath("core_target_a.bpfel.o")])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("poisoned"))
        // A relocation libbpf refuses (not poisonable) makes the command fail with that error.
        let bad = plumb(["object", "dump", try fixturePath("core_errors.bpfel.o"), "--target-btf", try fixturePath("core_target_err.bpfel.o")])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("CO-RE relocation"))
    }

    @Test func runPrintsTypedRecordsAndMapsThenDetaches() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let path = try fixturePath("basic.bpfel.o")
        // A child that calls getpid in a loop while plumb runs.
        let r = TestEnv.run("/bin/sh", ["-c", whileAttached("\(TestEnv.plumb) object run \(path) --set seen_value=0x2a",
            "for i in 1 2 3 4 5; do /bin/true; done; python3 -c 'import os; [os.getpid() for _ in range(3)]'")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("attached on_getpid: tracepoint syscalls/sys_enter_getpid"))
        #expect(!r.stdout.contains("attached "), "status lines go to stderr")
        #expect(r.stdout.contains(".kind = 1, .value = 42, .comm = "), "typed records with the --set value: \(r.stdout.prefix(600))")
        #expect(r.stdout.contains("seen_value = 42"))
        #expect(r.stdout.contains("counts (hash, "))
        #expect(r.stdout.contains("tag = \"plumb\""))
        let ids = loadedProgramIDs(r.stderr)
        #expect(ids.count == 2)
        #expect(try stillLoaded(ids).isEmpty, "programs still loaded after exit")
    }

    @Test func runJSONPrintsOneObjectPerRecordAndMap() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let path = try fixturePath("basic.bpfel.o")
        let r = TestEnv.run("/bin/sh", ["-c", whileAttached("\(TestEnv.plumb) object run \(path) --json --set seen_value=0x2a",
            "python3 -c 'import os; [os.getpid() for _ in range(3)]'")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("attached on_getpid"), "status lines on stderr: \(r.stderr)")
        #expect(r.stderr.contains("ring buffers: "))
        // Every stdout line is one JSON object.
        var objects: [[String: Any]] = []
        for line in r.stdout.split(separator: "\n") {
            let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(o != nil, "not a JSON object: \(line)")
            if let o { objects.append(o) }
        }
        let records = objects.filter { $0["map"] as? String == "events" }
        #expect(!records.isEmpty, "\(r.stdout.prefix(600))")
        if let first = records.first {
            #expect((first["timestamp"] as? Int ?? 0) > 0)
            #expect(first["cpu"] == nil, "ring buffer records have no CPU")
            let value = first["value"] as? [String: Any]
            #expect(value?["kind"] as? Int == 1)
            #expect(value?["value"] as? Int == 42)
            #expect(value?["comm"] is String, "char arrays as strings: \(String(describing: value))")
        }
        // Maps at exit: one object each, entries typed.
        let counts = objects.first { $0["map"] as? String == "counts" }
        let entries = counts?["entries"] as? [[String: Any]] ?? []
        #expect(!entries.isEmpty, "\(String(describing: counts))")
        #expect(entries.allSatisfy { $0["key"] is Int && $0["value"] is Int })
        let globals = objects.compactMap { ($0["entries"] as? [[String: Any]])?.first?["value"] as? [String: Any] }
        #expect(globals.contains { $0["seen_value"] as? Int == 42 }, "\(globals)")
        #expect(globals.contains { $0["tag"] as? String == "plumb" }, "\(globals)")
    }

    @Test func libraryShortNamesAreFoundThroughTheLoaderCache() {
        // What the loader's cache says, as `ldconfig -p` prints it: "\tSONAME (libc6,x86-64) => PATH".
        let ldconfig = TestEnv.run("/sbin/ldconfig", ["-p"])
        guard ldconfig.status == 0 else { return }
        var cache: [(String, String)] = []
        for line in ldconfig.stdout.split(separator: "\n") where line.hasPrefix("\t") {
            guard let arrow = line.range(of: " => "), let name = line.dropFirst().split(separator: " ").first else { continue }
            #if arch(x86_64)
            guard line.contains("x86-64") else { continue }
            #endif
            cache.append((String(name), String(line[arrow.upperBound...])))
        }
        func resolved(_ library: String) -> String? {
            let r = plumb(["trace", "-l", "uprobe:\(library):*"])
            guard let first = r.stdout.split(separator: "\n").first else { return nil }
            let parts = first.split(separator: ":")
            return parts.count == 3 ? String(parts[1]) : nil
        }
        if let libc = cache.first(where: { $0.0 == "libc.so.6" })?.1 {
            #expect(resolved("libc.so.6") == libc)
            #expect(resolved("libc") == libc, "a short name without .so is looked up in the cache")
            #expect(resolved("libc.so") == libc)
        }
        // A library in a folder only the cache knows (ld.so.conf.d), not the fixed list.
        let fixed = ["/lib64", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib",
                     "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]
        if let (name, path) = cache.first(where: { e in
            !fixed.contains(String(e.1.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")))
                && access(e.1, R_OK) == 0
        }) {
            #expect(resolved(name) == path, "\(name) => \(path)")
        }
        let missing = plumb(["trace", "-e", "uprobe:nosuchlib_plumb.so:foo { exit(); }"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("searched /etc/ld.so.cache, "), "\(missing.stderr)")
    }

    @Test func execsnoopDemoPrintsTypedExecEvents() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let path = try fixturePath("execsnoop.bpfel.o")
        let r = TestEnv.run("/bin/sh", ["-c", whileAttached("\(TestEnv.plumb) object run \(path)", "/bin/true; echo shell=$$")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("attached handle_exec: tp_btf sched_process_exec"))
        // The event for /bin/true, its parent being the shell, read through CO-RE'd task fields.
        let shell = r.stdout.split(separator: "\n").first { $0.hasPrefix("shell=") }.map { String($0.dropFirst(6)) } ?? "?"
        #expect(r.stdout.contains(".ppid = \(shell), .uid = \(getuid()), .comm = \"true\", .filename = \"/bin/true\" }"), "\(r.stdout.prefix(800))")
        #expect(r.stdout.contains("  1: 0"), "no drops")
    }

    @Test func badSetValuesAreRefused() throws {
        let path = try fixturePath("basic.bpfel.o")
        let unknown = plumb(["object", "run", path, "--set", "nope=1", "--duration", "0s"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no global variable 'nope'"))
        let tooBig = plumb(["object", "run", path, "--set", "target_pid=0x1ffffffff", "--duration", "0s"])
        #expect(tooBig.status != 0)
        #expect(tooBig.stderr.contains("does not fit in 4 bytes"))
    }

    @Test func sigkillLeavesNothingBehind() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let run = try BackgroundRun(["object", "run", try fixturePath("objects.bpfel.o"), "--duration", "60s"], name: "kill")
        defer { run.cleanUp() }
        // Wait until it has attached, then kill it hard.
        let text = run.waitFor("attached third_prog")
        #expect(text.contains("attached third_prog"), "plumb did not attach: \(text)")
        let p = run.process
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let ids = loadedProgramIDs(text)
        #expect(ids.count == 3)
        #expect(try stillLoaded(ids).isEmpty, "programs left loaded after SIGKILL")
        // Pinned maps are the one thing meant to survive; remove ours.
        if let dir = try? BPFFS.path() { unlink(dir + "/m_lru") }
    }

    @Test func sigtermEndsTheRunCleanly() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let run = try BackgroundRun(["object", "run", try fixturePath("basic.bpfel.o")], name: "term") // no --duration: until a signal
        defer { run.cleanUp() }
        _ = run.waitFor("attached on_sys_enter")
        let p = run.process
        kill(p.processIdentifier, SIGTERM)
        // It must stop by itself; if it does not within 5 s, kill it so the suite goes on.
        for _ in 0..<250 where p.isRunning { usleep(20_000) }
        let stopped = !p.isRunning
        if !stopped { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        #expect(stopped, "plumb ignored SIGTERM")
        let text = run.output
        #expect(p.terminationStatus == 0)
        #expect(text.contains("ring buffers: "), "the summary is printed on SIGTERM: \(text.suffix(300))")
        #expect(text.contains("totals (array, 4 entries):"))
        #expect(try stillLoaded(loadedProgramIDs(text)).isEmpty)
    }

    @Test func featuresTableNamesWhatIsMissing() {
        let r = plumb(["features", "--no-helpers"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("PROGRAM TYPE"))
        #expect(r.stdout.contains("tracepoint"))
        #expect(r.stdout.contains("ringbuf"))
        let kprobe = r.stdout.split(separator: "\n").first { $0.hasPrefix("kprobe/kretprobe") }
        #expect(kprobe != nil)
    }
}

/// A shell script that starts `command` in the background, waits (up to 30 s, however loaded
/// the machine is) until it prints its first `attached` line, runs `workload`, gives the
/// events a moment to arrive, then ends the run with SIGINT and prints its output.
func whileAttached(_ command: String, _ workload: String) -> String {
    """
    out=$(mktemp); err=$(mktemp); \(command) >"$out" 2>"$err" & p=$!
    for i in $(seq 600); do grep -q '^attached' "$err" && break; sleep 0.05; done
    \(workload)
    sleep 0.3; kill -INT $p; wait $p; s=$?; cat "$out"; cat "$err" >&2; rm -f "$out" "$err"; exit $s
    """
}
