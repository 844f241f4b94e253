// Untrusted input: deterministic mutations of real debug sections must give typed errors or
// answers, never a crash, a hang or an absurd allocation.
import Foundation
import Testing
import PlumbDWARF
import PlumbELF
import TestSupport

@Suite struct MalformedTests {
    /// Runs the whole reader on one mutated file.
    static func exercise(_ bytes: [UInt8]) {
        guard let elf = try? ELFFile(bytes: Bytes(bytes)) else { return }
        guard let d = try? DWARF(elf: elf) else { return }
        d.exercise(limit: 16)
    }

    @Test(arguments: [0, 1, 2, 3, 5])
    func mutatedDebugSectionsNeverCrash(_ flavour: Int) throws {
        let f = Progs.flavours[flavour]
        let path = try Progs.build(f)
        let elf = try ELFFile(path: path)
        let original = elf.bytes.array(0..<elf.bytes.count)
        // Mutate only inside the debug sections, so the ELF layer keeps accepting the file.
        let ranges = elf.sections.filter { $0.name.hasPrefix(".debug_") && $0.size > 0 }
            .map { Int($0.offset)..<Int($0.offset + $0.size) }
        #expect(!ranges.isEmpty)
        var rng = SplitMix(seed: 0xd1a5 &+ UInt64(flavour))
        for round in 0..<300 {
            var m = original
            let r = ranges[Int.random(in: 0..<ranges.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let i = Int.random(in: r, using: &rng)
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: m[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                case 1: m[i] = UInt8.random(in: 0...255, using: &rng)
                case 2: for k in 0..<4 where i + k < r.upperBound { m[i + k] = 0xff }
                case 3: m[i] = 0
                default:
                    // Small values in the places LEB128 lengths and codes live.
                    m[i] = UInt8.random(in: 0...8, using: &rng) | (round & 1 == 0 ? 0x80 : 0)
                }
            }
            Self.exercise(m)
        }
    }

    @Test func compressedSectionWithHostileSizes() throws {
        let path = try Progs.build(Progs.flavours[2])
        let elf = try ELFFile(path: path)
        let info = try #require(elf.section(named: ".debug_info"))
        #expect(info.flags & 0x800 != 0, "built with -gz")
        let base = Int(info.offset)
        let original = elf.bytes.array(0..<elf.bytes.count)
        func withSize(_ size: UInt64) -> [UInt8] {
            var m = original
            for k in 0..<8 { m[base + 8 + k] = UInt8(truncatingIfNeeded: size >> (8 * UInt64(k))) }
            return m
        }
        func load(_ m: [UInt8]) throws(DWARFError) {
            do { _ = try DWARF(elf: try ELFFile(bytes: Bytes(m))) } catch let e as DWARFError { throw e } catch { Issue.record("\(error)") }
        }
        // Absurd: refused before allocating.
        #expect(throws: DWARFError.self) { try load(withSize(1 << 60)) }
        // Too small or too large by a little: zlib says so, we report it.
        for s in [UInt64(1), UInt64(info.size) * 3] {
            do { try load(withSize(s)); Issue.record("size \(s) accepted") } catch {
                guard case .decompressionFailed = error else { Issue.record("\(error)"); continue }
            }
        }
        // zstd: a clear "unsupported" error.
        var z = original
        z[base] = 2
        do { try load(z); Issue.record("zstd accepted") } catch {
            #expect(error == .unsupportedCompression(section: ".debug_info", type: 2))
            #expect(error.description.contains("zstd"))
        }
    }
}

@Suite struct FuzzRegressionTests {
    /// Inputs the fuzzer once crashed on (Tests/Fixtures/dwarf/regressions): now typed errors.
    @Test func regressionsStayFixed() throws {
        let dir = TestEnv.fixturesSource.appendingPathComponent("dwarf/regressions")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(!files.isEmpty)
        for f in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(f))
            MalformedTests.exercise([UInt8](data))
        }
    }
}
