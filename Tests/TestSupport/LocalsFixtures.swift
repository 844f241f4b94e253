// The statement-probe target (Tests/Fixtures/tracer-user/locals.c) built with gcc and clang at
// -O0 and -O2 (locals on the stack, in registers, computed, in pieces), and the line numbers
// of its `MARK:name` comments, so tests never hard-code a line.
import Foundation

public enum LocalsFixtures {
    public struct Unavailable: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Flavour name -> compiler and flags. "gcc-O2-nopie" is the ET_EXEC build (no load bias).
    public static let flavours: [(name: String, compiler: String, flags: [String])] = [
        ("gcc-O0", "/usr/bin/gcc", ["-g", "-O0", "-fPIE", "-pie"]),
        ("gcc-O2", "/usr/bin/gcc", ["-g", "-O2", "-fPIE", "-pie"]),
        ("gcc-O2-nopie", "/usr/bin/gcc", ["-g", "-O2", "-fno-PIE", "-no-pie"]),
        ("gcc-O2-dwarf4", "/usr/bin/gcc", ["-gdwarf-4", "-O2", "-fPIE", "-pie"]),
        ("clang-O0", TestEnv.clang, ["-g", "-O0", "-fuse-ld=bfd"]),
        ("clang-O2", TestEnv.clang, ["-g", "-O2", "-fuse-ld=bfd"]),
    ]
    public static var names: [String] { flavours.map(\.name) }

    public static var source: String { TestEnv.fixturesSource.appendingPathComponent("tracer-user/locals.c").path }

    /// The path of the binary of one flavour (all are built once per process).
    public static func path(_ flavour: String) throws -> String {
        let dir = try built.get()
        guard names.contains(flavour) else { throw Unavailable(message: "no locals flavour \(flavour)") }
        return dir + "/locals-" + flavour
    }

    /// The line of `/* MARK:name */` in locals.c.
    public static func line(_ marker: String) throws -> Int {
        let text = try String(contentsOfFile: source, encoding: .utf8)
        for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where l.contains("/* MARK:\(marker) */") {
            return i + 1
        }
        throw Unavailable(message: "no MARK:\(marker) in \(source)")
    }

    private static let built: Result<String, Unavailable> = {
        let dir = TestEnv.root.appendingPathComponent(".build/fixtures/locals").path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            return .failure(Unavailable(message: "cannot create \(dir): \(error)"))
        }
        for f in flavours {
            let r = TestEnv.run(f.compiler, f.flags + ["-o", dir + "/locals-" + f.name, source])
            if r.status != 0 { return .failure(Unavailable(message: "\(f.compiler) \(f.flags.joined(separator: " ")) locals.c failed: \(r.stderr)")) }
        }
        return .success(dir)
    }()
}
