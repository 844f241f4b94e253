// USDT test binaries (Tests/Fixtures/usdt, built with gcc -g -O2 against <sys/sdt.h>) and
// `readelf -n` as the oracle for their notes.
import Foundation

public struct USDTFixtures: Sendable {
    public var pie: String
    public var nopie: String
    public var library: String

    public struct Unavailable: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Builds the binaries once per process. Throws `Unavailable` when gcc or sys/sdt.h is missing
    /// (scripts/setup.sh installs systemtap-sdt-dev).
    public static func build() throws -> USDTFixtures { try built.get() }

    private static let built: Result<USDTFixtures, Unavailable> = {
        let src = TestEnv.fixturesSource.appendingPathComponent("usdt").path
        let dir = TestEnv.root.appendingPathComponent(".build/fixtures/usdt").path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            return .failure(Unavailable(message: "cannot create \(dir): \(error)"))
        }
        let lib = dir + "/libplumbusdt.so"
        let common = ["-g", "-O2", src + "/target.c", src + "/gated.c", "-L", dir, "-lplumbusdt", "-Wl,-rpath,$ORIGIN"]
        let steps: [[String]] = [
            ["-g", "-O2", "-fPIC", "-shared", "-o", lib, src + "/lib.c"],
            ["-fPIE", "-pie", "-o", dir + "/target-pie"] + common,
            ["-fno-PIE", "-no-pie", "-o", dir + "/target-nopie"] + common,
        ]
        for args in steps {
            let r = TestEnv.run("/usr/bin/env", ["gcc"] + args)
            if r.status != 0 {
                return .failure(Unavailable(message: "gcc \(args.joined(separator: " ")) failed (is systemtap-sdt-dev installed? scripts/setup.sh): \(r.stderr)"))
            }
        }
        return .success(USDTFixtures(pie: dir + "/target-pie", nopie: dir + "/target-nopie", library: lib))
    }()
}

/// One stapsdt note as `readelf -n` prints it.
public struct ReadelfUSDTNote: Sendable, Equatable {
    public var provider: String
    public var name: String
    public var location: UInt64
    public var base: UInt64
    public var semaphore: UInt64
    public var arguments: String
}

extension TestEnv {
    /// The stapsdt notes of `path` per `readelf -n`, in order.
    public static func readelfUSDT(_ path: String) -> [ReadelfUSDTNote] {
        let r = run("/usr/bin/env", ["readelf", "-n", path])
        var out: [ReadelfUSDTNote] = []
        var current: ReadelfUSDTNote?
        func hex(_ s: Substring) -> UInt64 { UInt64(s.trimmingCharacters(in: .whitespaces).dropFirst(2), radix: 16) ?? 0 }
        for raw in r.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.drop(while: { $0 == " " })
            if line.hasPrefix("Provider: ") {
                if let c = current { out.append(c) }
                current = ReadelfUSDTNote(provider: String(line.dropFirst(10)), name: "", location: 0, base: 0, semaphore: 0, arguments: "")
            } else if line.hasPrefix("Name: ") {
                current?.name = String(line.dropFirst(6))
            } else if line.hasPrefix("Location: ") {
                // Location: 0x..., Base: 0x..., Semaphore: 0x...
                let fields = line.split(separator: ",")
                for f in fields {
                    let kv = f.split(separator: ":", maxSplits: 1)
                    guard kv.count == 2 else { continue }
                    switch kv[0].trimmingCharacters(in: .whitespaces) {
                    case "Location": current?.location = hex(kv[1])
                    case "Base": current?.base = hex(kv[1])
                    case "Semaphore": current?.semaphore = hex(kv[1])
                    default: break
                    }
                }
            } else if line.hasPrefix("Arguments:") {
                current?.arguments = String(line.dropFirst(10)).trimmingCharacters(in: .whitespaces)
            }
        }
        if let c = current { out.append(c) }
        return out
    }
}
