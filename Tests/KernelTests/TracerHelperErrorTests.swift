// -k / -kk against the real kernel: every failing helper is reported when it fails, in the
// output stream, at its script location, in bpftrace 0.17's words:
//   stdin:1:26-27: WARNING: Failed to map_update_elem: Argument list too long (-7)
//   <the line>
//   <tildes>
// -k: map updates and deletes; -kk: probe reads and missing map elements too.
import Foundation
import Glibc
import Testing
import TestSupport

@Suite struct TracerHelperErrorTests {
    static func plumb(_ args: [String], env: [String] = []) -> TestEnv.Result? {
        guard getuid() == 0 else {
            #expect(!TestEnv.skipsAreFailures, "needs root to load programs")
            return nil
        }
        return TestEnv.run("/usr/bin/env", env + [TestEnv.plumb] + args)
    }

    static let mapScript = "BEGIN { @m[1] = 1; @m[2] = 2; delete(@m[5]); @c[3] = count(); exit(); }"
    /// What bpftrace 0.17 prints for mapScript with -k (BPFTRACE_MAP_KEYS_MAX=1).
    static let mapWarnings = """
    stdin:1:26-27: WARNING: Failed to map_update_elem: Argument list too long (-7)
    BEGIN { @m[1] = 1; @m[2] = 2; delete(@m[5]); @c[3] = count(); exit(); }
                             ~
    stdin:1:31-44: WARNING: Failed to map_delete_elem: No such file or directory (-2)
    BEGIN { @m[1] = 1; @m[2] = 2; delete(@m[5]); @c[3] = count(); exit(); }
                                  ~~~~~~~~~~~~~

    """

    @Test func mapUpdatesAndDeletesWithK() throws {
        guard let r = Self.plumb(["-k", "-e", Self.mapScript], env: ["BPFTRACE_MAP_KEYS_MAX=1"]) else { return }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "Attaching 1 probe...\n" + Self.mapWarnings + "\n\n@c[3]: 1\n@m[1]: 1\n", "\(r.stdout)")
        // Without -k nothing is said.
        guard let quiet = Self.plumb(["-e", Self.mapScript], env: ["BPFTRACE_MAP_KEYS_MAX=1"]) else { return }
        #expect(!quiet.stdout.contains("WARNING") && !quiet.stderr.contains("WARNING"), "\(quiet.stdout)\(quiet.stderr)")
        // -kk adds the count() lookup of an element not there yet.
        guard let kk = Self.plumb(["-kk", "-e", Self.mapScript], env: ["BPFTRACE_MAP_KEYS_MAX=1"]) else { return }
        #expect(kk.stdout.contains(Self.mapWarnings + """
        stdin:1:54-61: WARNING: Failed to map_lookup_elem: 0
        BEGIN { @m[1] = 1; @m[2] = 2; delete(@m[5]); @c[3] = count(); exit(); }
                                                             ~~~~~~~

        """), "\(kk.stdout)")
    }

    @Test func probeReadsOnlyWithKK() throws {
        let script = #"BEGIN { @x = *(uint64*)8; printf("%s|\n", str(8)); exit(); }"#
        guard let k = Self.plumb(["-k", "-e", script]) else { return }
        #expect(k.status == 0 && !k.stdout.contains("WARNING"), "\(k.stdout)")
        guard let kk = Self.plumb(["-kk", "-e", script]) else { return }
        #expect(kk.status == 0, "\(kk.stderr)")
        let lines = kk.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // The read's `*`, then the str() call, each before the printf its failure feeds.
        guard let first = lines.firstIndex(where: { $0.hasPrefix("stdin:1:14-15: WARNING: Failed to probe_read_kernel: ") }) else {
            Issue.record("no probe_read_kernel warning at 1:14-15: \(kk.stdout)")
            return
        }
        #expect(lines[first].hasSuffix(")") && lines[first + 1] == #"BEGIN { @x = *(uint64*)8; printf("%s|\n", str(8)); exit(); }"#)
        #expect(lines[first + 2] == "             ~")
        #expect(lines[first + 3].hasPrefix("stdin:1:43-49: WARNING: Failed to probe_read_kernel_str: "), "\(kk.stdout)")
        #expect(lines[first + 5] == String(repeating: " ", count: 42) + "~~~~~~")
        #expect(lines[first + 6] == "|")
    }

    @Test func jsonHelperErrors() throws {
        guard let r = Self.plumb(["-f", "json", "-kk", "-e", "BEGIN { @x = *(uint64*)8; exit(); }"]) else { return }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(#"{"type": "helper_error", "helper": "probe_read_kernel", "retcode": -"#), "\(r.stdout)")
        #expect(r.stdout.contains(#", "line": 1, "col": 14}"#))
    }

    @Test func sameAsBpftrace() throws {
        // The map warnings are word for word bpftrace 0.17's (probe reads differ in the helper:
        // bpftrace reads an address-space-less pointer with the old probe_read).
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bpftrace"), getuid() == 0 else { return }
        let bt = TestEnv.run("/usr/bin/env", ["BPFTRACE_MAP_KEYS_MAX=1", "/usr/bin/bpftrace", "-k", "-e", Self.mapScript])
        guard bt.status == 0 else { return }
        #expect(bt.stdout.contains(Self.mapWarnings), "\(bt.stdout)")
        let script = "BEGIN { @m[1] = 1; @x = @m[2]; @n++; @s = sum(5); @h = hist(3); $v = @m[9]; @y[1] += 2; exit(); }"
        let theirs = TestEnv.run("/usr/bin/bpftrace", ["-kk", "-e", script]).stdout
        guard let ours = Self.plumb(["-kk", "-e", script])?.stdout else { return }
        func warnings(_ s: String) -> [String] {
            let l = s.split(separator: "\n").map(String.init)
            return l.indices.filter { l[$0].contains(": WARNING: ") }.map { l[$0] + "|" + (l.count > $0 + 2 ? l[$0 + 2] : "") }
        }
        #expect(warnings(ours) == warnings(theirs), "plumb:\n\(ours)\nbpftrace:\n\(theirs)")
    }
}
