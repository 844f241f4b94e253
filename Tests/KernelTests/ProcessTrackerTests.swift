// The process tracker for real: a C program forks children and grandchildren (one of which
// execs, one of which starts a thread) after tracking started; the set and the begin/exec/end
// records are checked exactly.
import PlumbBPF
import PlumbSys
import PlumbTrace
import Foundation
import Glibc
import Testing
import TestSupport

/// Built once: `forker PRE` forks PRE children at once (they wait), then reads one byte from
/// stdin, forks A; A forks G1 (execs cat) and G2 (starts a thread); A prints "A G1 G2".
/// Everyone waits for the test to close the shared stdin (polling, never reading), then exits, parents reaping children.
enum ForkerProgram {
    static let source = #"""
    #include <pthread.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <sys/wait.h>
    #include <unistd.h>
    #include <poll.h>
    /* Waits for the test to close stdin without reading: the one byte meant for main must not
       be taken by a child. */
    static void wait_eof(void) {
        struct pollfd p = { .fd = 0, .events = POLLIN };
        for (;;) {
            if (poll(&p, 1, -1) < 0) continue;
            if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return;
            usleep(1000);
        }
    }
    static void *thread_main(void *arg) { (void)arg; wait_eof(); return NULL; }
    int main(int argc, char **argv) {
        int pre = argc > 1 ? atoi(argv[1]) : 0;
        setvbuf(stdout, NULL, _IONBF, 0);
        for (int i = 0; i < pre; i++) if (fork() == 0) { wait_eof(); _exit(0); }
        printf("ready\n");
        char c;
        if (read(0, &c, 1) != 1) return 1;
        pid_t a = fork();
        if (a == 0) {
            pid_t g1 = fork();
            if (g1 == 0) { execl("/bin/cat", "cat", (char *)NULL); _exit(127); }
            pid_t g2 = fork();
            if (g2 == 0) {
                pthread_t t;
                pthread_create(&t, NULL, thread_main, NULL);
                pthread_join(t, NULL);
                _exit(0);
            }
            printf("%d %d %d\n", getpid(), g1, g2);
            wait_eof();
            while (wait(NULL) > 0) {}
            _exit(0);
        }
        wait_eof();
        while (wait(NULL) > 0) {}
        return 0;
    }
    """#

    static let built: Result<String, FixtureBuildError> = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-forker-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let src = dir.appendingPathComponent("forker.c"), exe = dir.appendingPathComponent("forker")
        do { try source.write(to: src, atomically: true, encoding: .utf8) } catch {
            return .failure(FixtureBuildError(message: "\(error)"))
        }
        let r = TestEnv.run("/usr/bin/cc", ["-O1", "-pthread", "-o", exe.path, src.path])
        return r.status == 0 ? .success(exe.path) : .failure(FixtureBuildError(message: "cc: \(r.stderr)"))
    }()
}

@Suite(.serialized) struct ProcessTrackerTests {
    static func unavailable() -> String? {
        if let r = bpfUnavailableReason() { return r }
        if !FileManager.default.fileExists(atPath: "/usr/bin/cc") { return "no C compiler at /usr/bin/cc" }
        return nil
    }

    /// Collects records until `done` says so or 5 s pass.
    func collect(_ tracker: ProcessTracker, into events: inout [ProcessTracker.Event], until done: ([ProcessTracker.Event]) -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !done(events), ContinuousClock.now < deadline {
            events += try tracker.events(timeout: 100)
        }
    }

    @Test("forks after attach join the set, threads do not, exits leave; begin/exec/end counts exact", arguments: [0, 2])
    func forkExecExitChain(preForked: Int) throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let exe = try ForkerProgram.built.get()
        try withRuntimeLeakCheck { leaks in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["\(preForked)"]
            let input = Pipe(), output = Pipe()
            p.standardInput = input
            p.standardOutput = output
            try p.run()
            defer { if p.isRunning { p.terminate() } }
            #expect(readLine(output.fileHandleForReading) == "ready")
            let root = p.processIdentifier
            let pre = ProcessTracker.processTable().filter { $0.value == root }.map(\.key).sorted()
            #expect(pre.count == preForked)

            let tracker = try ProcessTracker(pids: [root])
            leaks.track(tracker.object)
            #expect(try tracker.pids == ([root] + pre).sorted(), "the seed and its current descendants")
            var events = try tracker.events()
            #expect(events.count == 1 + preForked && events.allSatisfy { $0.kind == .begin && $0.synthetic })
            #expect(events.first == .init(pid: root, parent: getpid(), kind: .begin, synthetic: true))

            input.fileHandleForWriting.write(Data("g".utf8))
            let line = readLine(output.fileHandleForReading).split(separator: " ").compactMap { Int32($0) }
            try #require(line.count == 3)
            let (a, g1, g2) = (line[0], line[1], line[2])
            try collect(tracker, into: &events) { e in e.filter { $0.kind == .begin }.count == 4 + preForked && e.contains { $0.kind == .exec } }
            let all = Set([root, a, g1, g2] + pre)
            #expect(Set(try tracker.pids) == all, "grandchildren forked after attach are tracked, G2's thread is not")
            let begins = events.filter { $0.kind == .begin && !$0.synthetic }
            #expect(begins.count == 3)
            #expect(Set(begins.map { "\($0.pid)<\($0.parent)" }) == ["\(a)<\(root)", "\(g1)<\(a)", "\(g2)<\(a)"])
            #expect(events.filter { $0.kind == .exec }.map(\.pid) == [g1], "G1 exec'd cat and stays tracked")

            try input.fileHandleForWriting.close()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            try collect(tracker, into: &events) { e in e.filter { $0.kind == .end }.count >= all.count }
            let ends = events.filter { $0.kind == .end }
            #expect(ends.count == all.count, "one end per process, none for the thread: \(ends)")
            #expect(Set(ends.map(\.pid)) == all)
            #expect(ends.first { $0.pid == g1 }?.parent == a)
            #expect(try tracker.pids.isEmpty, "exited processes leave the set")
            #expect(events.count == all.count * 2 + 1)
            try tracker.detach()
        }
    }

    @Test("-c CMD: the held command is tracked from its first instruction; its exec and its children are seen")
    func heldCommand() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        try withRuntimeLeakCheck { leaks in
            // sh -c forks two children (true, true) and exits 3.
            let command = try HeldCommand(["/bin/sh", "-c", "/bin/true; /bin/true; exit 3"])
            let tracker = try ProcessTracker.start(pids: [], command: command)
            leaks.track(tracker.object)
            #expect(command.wait() == 3)
            var events = try tracker.events()
            #expect(events.first == .init(pid: command.pid, parent: getpid(), kind: .begin, synthetic: true))
            #expect(events.filter(\.synthetic).count == 1)
            let deadline = ContinuousClock.now + .seconds(5)
            while events.filter({ $0.kind == .end }).count < 3, ContinuousClock.now < deadline { events += try tracker.events(timeout: 100) }
            #expect(events.filter { $0.kind == .begin && !$0.synthetic }.count == 2 && events.allSatisfy { $0.kind != .begin || $0.synthetic || $0.parent == command.pid })
            // The holder's exec of sh, then each child's exec of true (a shell may exec its last command directly).
            #expect(events.filter { $0.kind == .exec }.count >= 3)
            #expect(events.filter { $0.kind == .end }.count == 3)
            #expect(try tracker.pids.isEmpty)
        }
    }

    /// Seeding takes a whole subtree, however deep: a test runner can sit a dozen levels below
    /// init, and `process:begin` without a target then missed it (seeding stopped after 8 levels).
    @Test("seeding reaches descendants 12 levels down")
    func deepSeeding() throws {
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-chain-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Each level is a shell waiting for the next (an `if`, so the shell does not exec it).
        try "if [ \"$1\" -gt 0 ]; then /bin/sh \"$0\" $(($1 - 1)) \"$2\"; else echo $$ > \"$2.tmp\"; mv \"$2.tmp\" \"$2\"; exec sleep 30; fi\n"
            .write(toFile: dir + "/chain.sh", atomically: true, encoding: .utf8)
        let top = Process()
        top.executableURL = URL(fileURLWithPath: "/bin/sh")
        top.arguments = [dir + "/chain.sh", "12", dir + "/bottom"]
        try top.run()
        var bottom: Int32 = 0
        for _ in 0..<200 where bottom == 0 {
            if let text = try? String(contentsOfFile: dir + "/bottom", encoding: .utf8), let p = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) { bottom = p } else { usleep(20_000) }
        }
        #expect(bottom > 0, "the chain did not start")
        defer { if bottom > 0 { kill(bottom, SIGKILL) }; top.waitUntilExit() }
        let tracker = try ProcessTracker(pids: [top.processIdentifier])
        #expect(try tracker.contains(bottom), "the process 13 levels below the seed is not tracked")
        #expect(try tracker.pids.count >= 13)   // 12 shells waiting and the last one, exec'd into sleep
        try tracker.detach()
    }

    @Test("seeding errors and the /proc parser")
    func seedingErrors() throws {
        #expect(ProcessTracker.parseParent(stat: "42 (a) b) c) S 7 42 42 0") == 7)
        #expect(ProcessTracker.parent(of: getpid()) == getppid())
        guard TestEnv.kernelAvailable(Self.unavailable()) else { return }
        #expect(throws: BPFError.self) { _ = try ProcessTracker(pids: []) }
        do {
            _ = try ProcessTracker(pids: [Int32.max])
            Issue.record("tracked a missing pid")
        } catch { #expect("\(error)".contains("no process \(Int32.max)")) }
    }
}
