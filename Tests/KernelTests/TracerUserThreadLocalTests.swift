// Thread-locals through var() against Tests/Fixtures/tracer-user/tls.c: three threads, one
// after another, each sets the executable's __thread variables to its own values and calls
// tls_tick(k); the probe must read each thread's copy. PIE, non-PIE, and without DWARF (the
// symbol's size with the type-guess warning); a library's thread-local is a clear error.
import Foundation
import Testing
import TestSupport

@Suite struct TracerUserThreadLocalTests {
    static let expected = ["t 1 11 -1000 8 4097 b", "t 2 21 -2000 9 4098 c", "t 3 31 -3000 10 4099 d"]

    @Test(arguments: ["tls", "tls-nopie"]) func perThreadValues(_ name: String) throws {
        let bin = try TracerUserFixtures.directory() + "/" + name
        let script = """
        uprobe:\(bin):tls_tick { printf("t %d %d %d %d %d %s\\n", arg0, var("tls_int"), var("tls_long"),
                                        var("tls_short@tls.c"), var("tls_aligned"), var("tls_name")); }
        """
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").filter { $0.hasPrefix("t ") }.map(String.init) == Self.expected, "\(r.stdout)")
    }

    /// Without DWARF: the STT_TLS symbol's size gives an unsigned integer, with the warning.
    @Test func withoutDWARF() throws {
        let bin = try TracerUserFixtures.directory() + "/tls-nodebug"
        let script = "uprobe:\(bin):tls_tick { printf(\"t %d %d %d\\n\", arg0, var(\"tls_int\"), var(\"tls_aligned\")); }"
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").filter { $0.hasPrefix("t ") } == ["t 1 11 4097", "t 2 21 4098", "t 3 31 4099"], "\(r.stdout)")
        #expect(r.stderr.contains("no DWARF type for 'tls_int'") && r.stderr.contains("reading it as a 4-byte unsigned integer (the type is a guess)"), "\(r.stderr)")
    }

    @Test func errors() throws {
        let dir = try TracerUserFixtures.directory()
        let libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"].first { FileManager.default.fileExists(atPath: $0) }
        if let libc {
            let lib = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(dir)/tls:tls_tick { print(var(\"errno\", \"\(libc)\")); }"])
            #expect(lib.status == 1 && lib.stderr.contains("is a thread-local of the shared library")
                    && lib.stderr.contains("l_tls_offset"), "\(lib.stderr)")
        }
        let begin = TestEnv.run(TestEnv.plumb, ["-e", "BEGIN { print(var(\"tls_int\", \"\(dir)/tls\")); }"])
        #expect(begin.status == 1 && begin.stderr.contains("can be read only in a thread of"), "\(begin.stderr)")
    }
}
