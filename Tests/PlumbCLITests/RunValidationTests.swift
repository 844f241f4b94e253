// `plumb object run` refusing bad arguments before anything is loaded, with messages that
// say what is wrong and this subcommand's usage; signals from the first instant; --version.
import Foundation
import Glibc
import Testing
import TestSupport

@Suite struct RunValidationTests {
    /// `object run basic.bpfel.o ARGS` (a zero duration: it would stop at once if it ran).
    func run(_ args: [String]) throws -> TestEnv.Result {
        plumb(["object", "run", try fixturePath("basic.bpfel.o"), "--duration", "0s"] + args)
    }

    /// Refused while parsing: a non-zero exit, the message, this subcommand's usage, nothing loaded.
    func expectRefused(_ r: TestEnv.Result, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status != 0, sourceLocation: sourceLocation)
        #expect(r.stderr.contains(message), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains("Usage: plumb object run "), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(!r.stderr.contains("plumb <subcommand>"), "the top-level usage: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(!r.stderr.contains("loaded "), sourceLocation: sourceLocation)
    }

    @Test func setRefusesValuesThatDoNotFitTheType() throws {
        // Used to wrap to 4294967295 silently.
        expectRefused(try run(["--set", "target_pid=-1"]), "-1 does not fit u32 target_pid")
        // Used to say "is not an integer".
        expectRefused(try run(["--set", "target_pid=99999999999999999999"]), "99999999999999999999 is out of range for u32 target_pid")
        // Bytes, not characters: "héllo12" is 7 characters and 8 bytes; char tag[8] holds 7 + NUL.
        expectRefused(try run(["--set", "tag=héllo12"]), "'héllo12' is 8 bytes (7 characters in UTF-8); tag (char[8]) holds at most 7 bytes")
        expectRefused(try run(["--set", "target_pdi=1"]), "Did you mean 'target_pid'?")
    }

    @Test func numericOptionsSayWhatIsWrong() throws {
        // A zero frequency never samples; negative numbers used to be "Missing value" (read as flags).
        expectRefused(try run(["--perf-freq", "0"]), "the frequency must be positive")
        expectRefused(try run(["--perf-freq", "-5"]), "the frequency must be positive")
        expectRefused(try run(["--pid", "-1"]), "a process id must be positive")
        expectRefused(try run(["--pid=-1"]), "a process id must be positive")
        expectRefused(try run(["--pid", "0"]), "a process id must be positive")
        expectRefused(try run(["--duration", "-1s"]), "a duration cannot be negative")
        expectRefused(try run(["--duration", "soon"]), "use a number with s, ms, m or h")
        for r in [try run(["--pid", "-1"]), try run(["--duration", "-1"])] {
            #expect(!r.stderr.contains("Missing value"), "\(r.stderr)")
        }
    }

    @Test func recordTypesAreCheckedBeforeLoading() throws {
        expectRefused(try run(["--record-type", "evnets=event"]), "no map 'evnets'")
        expectRefused(try run(["--record-type", "evnets=event"]), "did you mean 'events'?")
        expectRefused(try run(["--record-type", "events=evnet"]), "did you mean 'event'?")
        expectRefused(try run(["--record-type", "counts=event"]), "map 'counts' is a hash map")
        expectRefused(try run(["--record-type", "events"]), "'events' is not MAP=TYPE")
    }

    @Test func aSignalWhileStartingStopsCleanly() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        // SIGTERM is sent the moment plumb exists, blocked (the mask is inherited) so it
        // waits for plumb's own main: it must find the handler there and stop before loading,
        // exit 0 — not die of the signal, nor load and attach first.
        let script = """
            import os, signal, subprocess, sys
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=30)
            sys.stdout.write("status %d\\n" % p.returncode + out.decode() + err.decode())
            """
        let r = TestEnv.run("/usr/bin/python3", ["-c", script, TestEnv.plumb, "object", "run", try fixturePath("basic.bpfel.o")])
        #expect(r.stdout.hasPrefix("status 0\n"), "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("stopped by SIGTERM before loading"), "\(r.stdout)")
        #expect(!r.stdout.contains("loaded "))
    }

    @Test func otherCommandsStillDieOfSignals() throws {
        // `btf dump` of the kernel's types runs long enough to be interrupted.
        let script = """
            import signal, subprocess, sys, time
            p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
            time.sleep(0.05)
            p.send_signal(signal.SIGINT)
            p.wait(timeout=30)
            print(p.returncode)
            """
        let r = TestEnv.run("/usr/bin/python3", ["-c", script, TestEnv.plumb, "btf", "dump"])
        let status = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Killed by SIGINT (-2), or finished first (0) on a fast machine; never hanging.
        #expect(status == "-2" || status == "0", "\(r.stdout) \(r.stderr)")
    }

    @Test func versionNamesTheCommit() {
        let r = plumb(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("plumb 0.1.0 (commit "), "\(r.stdout)")
        let head = TestEnv.run("/usr/bin/git", ["-C", TestEnv.root.path, "rev-parse", "--short=12", "HEAD"])
        if head.status == 0 {
            #expect(r.stdout.contains(head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(r.stdout)")
        }
    }

    @Test func nonASCIICharArraysPrintAsStrings() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        // char tag[8]; its UTF-8 bytes used to print as negative numbers.
        let r = try run(["--set", "tag=héllo"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("  tag = \"héllo\"\n"), "\(r.stdout)")
    }
}
