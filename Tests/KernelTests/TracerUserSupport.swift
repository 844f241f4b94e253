// C targets of the user-space tracer tests (Tests/Fixtures/tracer-user), built with gcc -g -O2
// once per process, PIE unless the name says otherwise.
import Foundation
import Testing
import TestSupport

enum TracerUserFixtures {
    struct Unavailable: Error, CustomStringConvertible { var message: String; var description: String { message } }
    static let built: Result<String, TracerUserFixtures.Unavailable> = {
        let src = TestEnv.fixturesSource.appendingPathComponent("tracer-user").path
        let dir = TestEnv.root.appendingPathComponent(".build/fixtures/tracer-user").path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            return .failure(.init(message: "cannot create \(dir): \(error)"))
        }
        let steps: [[String]] = [
            ["-g", "-O2", "-fPIE", "-pie", "-o", dir + "/usdt", src + "/usdt.c"],
            ["-g", "-O2", "-fno-PIE", "-no-pie", "-o", dir + "/usdt-nopie", src + "/usdt.c"],
            ["-g", "-O2", "-fPIE", "-pie", "-o", dir + "/dwarf", src + "/dwarf.c"],
            ["-g", "-O2", "-fno-PIE", "-no-pie", "-o", dir + "/dwarf-nopie", src + "/dwarf.c"],
            // Symbols but no debug info (and a build id no /usr/lib/debug file has).
            ["-O2", "-fPIE", "-pie", "-o", dir + "/dwarf-nodebug", src + "/dwarf.c"],
            // Thread-locals and parameter passing (TracerUserThreadLocalTests, TracerUserParameterTests).
            ["-g", "-O2", "-fPIE", "-pie", "-pthread", "-o", dir + "/tls", src + "/tls.c"],
            ["-g", "-O2", "-fno-PIE", "-no-pie", "-pthread", "-o", dir + "/tls-nopie", src + "/tls.c"],
            ["-O2", "-fPIE", "-pie", "-pthread", "-o", dir + "/tls-nodebug", src + "/tls.c"],
            ["-g", "-O2", "-fPIE", "-pie", "-o", dir + "/params", src + "/params.c"],
            ["-g", "-O2", "-fPIC", "-shared", "-o", dir + "/libtlsfix.so", src + "/tlslib.c"],
            ["-g", "-O2", "-fPIE", "-pie", "-pthread", "-o", dir + "/tlsuser", src + "/tlsuser.c", "-L" + dir, "-ltlsfix", "-Wl,-rpath," + dir],
        ]
        for args in steps {
            let r = TestEnv.run("/usr/bin/env", ["gcc"] + args)
            if r.status != 0 { return .failure(.init(message: "gcc \(args.joined(separator: " ")) failed (systemtap-sdt-dev installed?): \(r.stderr)")) }
        }
        return .success(dir)
    }()

    /// The folder holding the built targets.
    static func directory() throws -> String { try built.get() }
}
