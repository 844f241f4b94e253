// Compares our disassembly with llvm-objdump (LLVM 21) on clang-built objects.
//
// For every executable section of every fixture (little and big endian, -mcpu=v4):
// the section bytes (dumped with llvm-objcopy) are decoded, re-encoded (must equal the
// input), and printed with `Disassembler.line`; each line must equal llvm-objdump -d's
// line for that slot: slot number, raw bytes and instruction text including branch
// annotations, byte for byte (tabs and padding included; nothing is normalized).
// Symbols for the `<sym+0xN>` annotations are taken from the `<sym>:` headers objdump
// prints for the section. Objects are built for -mcpu=v1...v4 and printed by objdump's
// default decoder (alu32 `w` registers for 32-bit loads/stores); one case also runs
// `llvm-objdump --mcpu=v1` against `Disassembler(alu32: false)`.
import Foundation
import Testing
import TestSupport
@testable import PlumbAsm

@Suite("Differential against llvm-objdump")
struct DifferentialTests {
    static let fixtures = ["programs", "inline"]
    static let objcopy = TestEnv.toolchainBin + "/llvm-objcopy"

    struct ObjdumpSection {
        var name: String
        var symbols: [Disassembler.Symbol] = []
        var lines: [(slot: Int, line: String)] = []
        var skippedZeros = false
    }

    /// Splits `llvm-objdump -d` output into sections, symbol headers and instruction lines.
    static func parse(_ output: String) -> [ObjdumpSection] {
        var sections: [ObjdumpSection] = []
        for raw in output.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(raw)
            if line.hasPrefix("Disassembly of section "), line.hasSuffix(":") {
                sections.append(ObjdumpSection(name: String(line.dropFirst("Disassembly of section ".count).dropLast())))
                continue
            }
            guard !sections.isEmpty else { continue }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "..." {
                sections[sections.count - 1].skippedZeros = true
            } else if let lt = line.firstIndex(of: "<"), line.hasSuffix(">:"),
                      let addr = UInt64(line[..<lt].trimmingCharacters(in: .whitespaces), radix: 16) {
                let name = String(line[line.index(after: lt)..<line.index(line.endIndex, offsetBy: -2)])
                sections[sections.count - 1].symbols.append(.init(name: name, address: addr))
            } else if let colon = trimmed.firstIndex(of: ":"), let slot = Int(trimmed[..<colon]) {
                sections[sections.count - 1].lines.append((slot, line))
            }
        }
        return sections
    }

    struct Case: CustomStringConvertible, Sendable {
        var fixture: String
        var arch: String
        var cpu = "v4"
        /// Run objdump with --mcpu=v1 and disassemble without alu32.
        var noALU32 = false
        var description: String { "\(fixture).\(arch).\(cpu)\(noALU32 ? ".noalu32" : "")" }
    }

    static let cases: [Case] = fixtures.flatMap { f in ["bpfel", "bpfeb"].map { Case(fixture: f, arch: $0) } }
        + ["v1", "v2", "v3"].map { Case(fixture: "programs", arch: "bpfel", cpu: $0) }
        + [Case(fixture: "programs", arch: "bpfeb", cpu: "v2", noALU32: true),
           Case(fixture: "inline", arch: "bpfel", cpu: "v4", noALU32: true)]

    @Test("disassembly equals llvm-objdump -d", arguments: cases)
    func matchesObjdump(_ c: Case) throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bpfasm-\(c.description)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }

        let src = TestEnv.fixturesSource.appendingPathComponent("asm/\(c.fixture).c").path
        let obj = tmp.appendingPathComponent("\(c.fixture).o").path
        let cc = TestEnv.run(TestEnv.clang, ["-g", "-O2", "-target", c.arch, "-mcpu=\(c.cpu)", "-c", src, "-o", obj])
        try #require(cc.status == 0, "clang failed: \(cc.stderr)")

        let dump = TestEnv.run(TestEnv.llvmObjdump, ["-d"] + (c.noALU32 ? ["--mcpu=v1"] : []) + [obj])
        try #require(dump.status == 0, "llvm-objdump failed: \(dump.stderr)")
        let sections = Self.parse(dump.stdout)
        try #require(!sections.isEmpty)
        let order: ByteOrder = c.arch == "bpfeb" ? .big : .little

        var compared = 0
        for section in sections {
            #expect(!section.skippedZeros, "objdump skipped zero bytes in \(section.name); fixtures must not contain them")
            let bin = tmp.appendingPathComponent("section.bin").path
            let cp = TestEnv.run(Self.objcopy, ["--dump-section", "\(section.name)=\(bin)", obj, tmp.appendingPathComponent("scratch.o").path])
            try #require(cp.status == 0, "llvm-objcopy failed: \(cp.stderr)")
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: bin)))

            let program = try Instruction.decode(bytes, byteOrder: order)
            #expect(Instruction.encode(program, byteOrder: order) == bytes, "re-encoding \(section.name)")

            let dis = Disassembler(alu32: !c.noALU32, symbols: section.symbols)
            let ours = Dictionary(uniqueKeysWithValues: zip(program.slotIndices, dis.lines(program, byteOrder: order)))
            #expect(ours.count == section.lines.count, "\(section.name): instruction count")
            for (slot, theirs) in section.lines {
                let mine = ours[slot] ?? "<no instruction starts at slot \(slot)>"
                #expect(mine == theirs, "\(c) \(section.name) slot \(slot)")
                compared += 1
            }
        }
        // Guard against a parser that silently finds nothing.
        #expect(compared > 50)
    }

    @Test("the fixtures exercise every instruction class and the newer forms")
    func coverage() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bpfasm-cov-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        var texts = ""
        for f in Self.fixtures {
            let obj = tmp.appendingPathComponent("\(f).o").path
            let src = TestEnv.fixturesSource.appendingPathComponent("asm/\(f).c").path
            let cc = TestEnv.run(TestEnv.clang, ["-g", "-O2", "-target", "bpfel", "-mcpu=v4", "-c", src, "-o", obj])
            try #require(cc.status == 0, "clang failed: \(cc.stderr)")
            texts += TestEnv.run(TestEnv.llvmObjdump, ["-d", "--no-show-raw-insn", obj]).stdout
        }
        for needle in ["lock ", "atomic_fetch_", "xchg_64", "cmpxchg32_32", "load_acquire", "store_release",
                       "(s8)", "(s32)", "*(s16 *)", "s/=", "s%=", "bswap64", "be16", "le32", "gotol", "may_goto",
                       "if w", "ll", "ld_pseudo", "callx", "skb[", "addr_space_cast", "call -0x1", "exit"] {
            #expect(texts.contains(needle), "no fixture instruction prints \(needle)")
        }
    }
}
