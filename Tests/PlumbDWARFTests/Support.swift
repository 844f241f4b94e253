// Builds Tests/Fixtures/dwarf/prog.c in several debug-info flavours (once per process) and
// asks the system tools (nm, objdump, the program itself) for the answers to check against.
import Foundation
import PlumbDWARF
import PlumbBTF
import TestSupport

struct Flavour: Sendable, CustomStringConvertible {
    var name: String
    var compiler: String
    var flags: [String]
    var description: String { name }
}

enum Progs {
    static let flavours: [Flavour] = [
        Flavour(name: "gcc-dwarf5", compiler: "/usr/bin/cc", flags: ["-g", "-O2"]),
        Flavour(name: "gcc-dwarf4", compiler: "/usr/bin/cc", flags: ["-gdwarf-4", "-O2"]),
        Flavour(name: "gcc-dwarf5-gz", compiler: "/usr/bin/cc", flags: ["-g", "-O2", "-gz=zlib"]),
        Flavour(name: "gcc-dwarf4-gz-types", compiler: "/usr/bin/cc", flags: ["-gdwarf-4", "-O2", "-gz=zlib", "-fdebug-types-section"]),
        Flavour(name: "gcc-dwarf5-O0", compiler: "/usr/bin/cc", flags: ["-g", "-O0"]),
        Flavour(name: "clang-dwarf5", compiler: TestEnv.clang, flags: ["-g", "-O2", "-fuse-ld=bfd"]),
        Flavour(name: "gcc-dwarf5-types", compiler: "/usr/bin/cc", flags: ["-g", "-O2", "-fdebug-types-section"]),
        Flavour(name: "clang-dwarf4-gz", compiler: TestEnv.clang, flags: ["-gdwarf-4", "-O2", "-gz=zlib", "-fuse-ld=bfd"]),
    ]

    static let dir: URL = {
        // Rebuilt by every test process (cheap), beside the BPF fixtures.
        let d = TestEnv.root.appendingPathComponent(".build/dwarf-progs")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()

    static var source: String { TestEnv.fixturesSource.appendingPathComponent("dwarf/prog.c").path }

    struct BuildError: Error, CustomStringConvertible { var description: String }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var built: [String: String] = [:]

    /// The path of `prog` built with a flavour (extra flags allowed), compiled once.
    static func build(_ f: Flavour, extra: [String] = [], suffix: String = "") throws -> String {
        lock.lock(); defer { lock.unlock() }
        let key = f.name + suffix
        if let p = built[key] { return p }
        let out = dir.appendingPathComponent("prog-" + key).path
        let r = TestEnv.run(f.compiler, f.flags + extra + ["-o", out, source])
        guard r.status == 0 else { throw BuildError(description: "\(f.compiler) \(f.flags + extra) failed: \(r.stderr)") }
        built[key] = out
        return out
    }

    /// `nm` symbol values by name.
    static func symbols(_ path: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in TestEnv.run("/usr/bin/nm", [path]).stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let v = UInt64(parts[0], radix: 16) else { continue }
            out[String(parts[2])] = v
        }
        return out
    }

    /// The program's own answer for struct node's layout: "node 96 next 0 ..." as a dictionary.
    static func layout(_ path: String) -> [String: Int] {
        let words = TestEnv.run(path, ["layout"]).stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
        var out: [String: Int] = [:]
        var i = 0
        while i + 1 < words.count {
            out[String(words[i])] = Int(words[i + 1])
            i += 2
        }
        return out
    }

    /// objdump's decoded line table: addresses of statement rows per (file, line).
    static func decodedLines(_ path: String, file: String, line: Int) -> Set<UInt64> {
        var out = Set<UInt64>()
        for l in TestEnv.run("/usr/bin/objdump", ["--dwarf=decodedline", path]).stdout.split(separator: "\n") {
            let cols = l.split(separator: " ", omittingEmptySubsequences: true)
            guard cols.count >= 3, cols[0] == file, Int(cols[1]) == line, cols[2].hasPrefix("0x"),
                  let a = UInt64(cols[2].dropFirst(2), radix: 16) else { continue }
            // Non-statement rows carry no "x" in the stmt column of objdump's output.
            if cols.count >= 4 && cols.last != "x" && !cols.contains("x") { continue }
            out.insert(a)
        }
        return out
    }

    static func addr2line(_ path: String, _ address: UInt64) -> (String, Int)? {
        let s = TestEnv.run("/usr/bin/addr2line", ["-e", path, "0x" + String(address, radix: 16)]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let colon = s.lastIndex(of: ":") else { return nil }
        let lineText = s[s.index(after: colon)...].split(separator: " ").first ?? ""
        guard let line = Int(lineText) else { return nil }
        return (String(s[..<colon]), line)
    }
}

extension BTF {
    /// Skips typedefs and modifiers.
    func resolved(_ id: TypeID) throws -> BTFType {
        var t = try type(id)
        var hops = 0
        while (t.kind == .typedef || t.kind.isModifier) && hops < 32 {
            t = try type(t.type)
            hops += 1
        }
        return t
    }
}
