// Helpers for the CO-RE tests: loading fixture objects, running Plumb's engine over them the
// way libbpf walks relocations, and running libbpf itself (Tests/Fixtures/libbpf/core_oracle.c).
import PlumbAsm
import PlumbBPF
import PlumbBTF
import PlumbELF
import Foundation
import TestSupport
import Testing

/// A BPF object as the CO-RE engine needs it: BTF, .BTF.ext, instructions per section, and the
/// programs (function symbols) that partition them.
struct COREObject {
    struct Program { var name: String; var section: String; var start: Int; var count: Int }
    let path: String
    let elf: ELFFile
    let btf: BTF
    let ext: BTFExt
    /// Each executable section's code, decoded once, as the object reader does.
    var sections: [String: [Instruction]]
    let programs: [Program]

    init(_ path: String) throws {
        self.path = path
        elf = try ELFFile(path: path)
        btf = try BTF(elf: elf, path: path)
        guard let e = try BTFExt(elf: elf, btf: btf) else { throw COREObjectError(message: "\(path) has no .BTF.ext") }
        ext = e
        var secs: [String: [Instruction]] = [:]
        for s in elf.sections where s.isExecutable && s.size > 0 {
            secs[s.name] = try Instruction.decode(elf.contents(of: s).toArray(), byteOrder: elf.order)
        }
        sections = secs
        var progs: [Program] = []
        for sym in try elf.symbols() where sym.type == ELFSymbol.STT_FUNC && Int(sym.sectionIndex) < elf.sections.count {
            let sec = elf.sections[Int(sym.sectionIndex)]
            guard sec.isExecutable else { continue }
            progs.append(Program(name: sym.name, section: sec.name, start: Int(sym.value / 8), count: Int(sym.size / 8)))
        }
        programs = progs
    }

    func program(section: String, slot: Int) -> Program? {
        programs.first { $0.section == section && slot >= $0.start && slot < $0.start + $0.count }
    }

    func hex(_ p: Program, _ secs: [String: [Instruction]]) -> String {
        // The one encode, as at load time, for comparison with libbpf's bytes.
        let bytes = Instruction.encode(secs[p.section]!, byteOrder: elf.order)[(p.start * 8)..<((p.start + p.count) * 8)]
        return bytes.map { String(format: "%02x", $0) }.joined()
    }
}

struct COREObjectError: Error, CustomStringConvertible { var message: String; var description: String { message } }

/// One relocation decision, keyed like libbpf's log (program, relocation number in its section).
struct CORERecord {
    var program: String
    var index: Int
    var relocation: CORERelocation
    var solution: CORESolution?
    var patch: COREPatch?
    var error: BTFError?
    /// The instruction as it was before patching (section-relative slot).
    var slot: Int
    var originalImm: Int32
    var originalOff: Int16
}

struct CORERun {
    /// libbpf-format lines: `prog 'x': relo #N: patched insn #M (...) ...`, `... substituting insn #M w/ invalid insn`,
    /// `prog 'x': relo #N: FAILED`.
    var lines: [String] = []
    /// Program name -> hex of its instructions after relocation (only when every relocation succeeded).
    var insns: [String: String] = [:]
    var records: [CORERecord] = []
    var failed: Bool { records.contains { $0.error != nil } }
}

enum COREHarness {
    /// Runs Plumb's engine over an object like libbpf's bpf_object__relocate_core: .BTF.ext
    /// sections in order, records in order, one candidate cache for the object; only the
    /// program `only` when given. Stops at the first error.
    static func engine(_ obj: COREObject, targets: [BTF], only: String? = nil) -> CORERun {
        var run = CORERun()
        var resolver = COREResolver(local: obj.btf, targets: targets, order: obj.elf.order)
        var secs = obj.sections
        outer: for sec in obj.ext.coreRelocations {
            for (i, r) in sec.records.enumerated() {
                let slot = r.instructionIndex
                guard let prog = obj.program(section: sec.name, slot: slot) else { continue }
                if let only, prog.name != only { continue }
                let rel = slot - prog.start
                let head = "prog '\(prog.name)': relo #\(i): "
                var insns = secs[sec.name]!
                // A poisoned ld_imm64 becomes two instructions: map the slot afresh each time.
                let index = insns.slotIndices.firstIndex(of: slot) ?? insns.count
                let original = index < insns.count ? insns[index] : Instruction(opcode: 0)
                var rec = CORERecord(program: prog.name, index: i, relocation: r, slot: slot,
                                     originalImm: original.imm, originalOff: original.offset)
                do {
                    let s = try resolver.solve(r, index: i, context: prog.name)
                    rec.solution = s
                    let p = try insns.applyCORE(s, at: index, slot: slot, relocation: i, context: prog.name)
                    rec.patch = p
                    secs[sec.name] = insns
                    switch p {
                    case .immediate(let o, let n): run.lines.append(head + "patched insn #\(rel) (ALU/ALU64) imm \(o) -> \(n)")
                    case .immediate64(let o, let n): run.lines.append(head + "patched insn #\(rel) (LDIMM64) imm64 \(o) -> \(n)")
                    case .offset(let o, let n, let m):
                        run.lines.append(head + "patched insn #\(rel) (LDX/ST/STX) off \(UInt64(bitPattern: o)) -> \(n)")
                        if let m { run.lines.append(head + "patched insn #\(rel) (LDX/ST/STX) mem_sz \(m.old) -> \(m.new)") }
                    case .poisoned(let slots):
                        for s in slots { run.lines.append(head + "substituting insn #\(s - prog.start) w/ invalid insn") }
                    }
                    run.records.append(rec)
                } catch {
                    // libbpf logs the offset patch before it checks the load size.
                    switch error.coreReason {
                    case .unexpectedMemorySize, .invalidMemorySize:
                        if let s = rec.solution {
                            run.lines.append(head + "patched insn #\(rel) (LDX/ST/STX) off \(UInt64(bitPattern: Int64(rec.originalOff))) -> \(s.targetValue)")
                        }
                    default: break
                    }
                    rec.error = error
                    run.records.append(rec)
                    run.lines.append(head + "FAILED")
                    break outer
                }
            }
        }
        if !run.failed {
            for p in obj.programs where only == nil || p.name == only { run.insns[p.name] = obj.hex(p, secs) }
        }
        return run
    }

    /// Why libbpf cannot be the oracle here, or nil when it can (root, cc, libbpf-dev).
    static var oracleUnavailable: String? {
        if getuid() != 0 { return "the libbpf oracle needs root (bpf_object__load probes the kernel)" }
        if !FileManager.default.fileExists(atPath: "/usr/include/bpf/libbpf.h") { return "libbpf-dev is not installed" }
        if case .failure(let e) = oracleBuild { return "cannot build the libbpf oracle: \(e)" }
        return nil
    }

    static let oracleBuild: Result<String, COREObjectError> = {
        let out = TestEnv.root.appendingPathComponent(".build/fixtures/core_oracle").path
        let src = TestEnv.fixturesSource.appendingPathComponent("libbpf/core_oracle.c").path
        try? FileManager.default.createDirectory(atPath: (out as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let r = TestEnv.run("/usr/bin/cc", ["-O1", "-Wall", "-o", out, src, "-lbpf", "-lelf", "-lz"])
        if r.status != 0 { return .failure(COREObjectError(message: r.stderr)) }
        return .success(out)
    }()

    /// Runs libbpf 1.x over the object with `target` as btf_custom_path; the same line format
    /// as `engine`.
    static func oracle(_ object: String, target: String, only: String? = nil) throws -> (run: CORERun, log: [String]) {
        let exe = try oracleBuild.get()
        let r = TestEnv.run(exe, [object, target] + (only.map { [$0] } ?? []))
        guard r.status == 0 else { throw COREObjectError(message: "core_oracle failed (\(r.status)): \(r.stderr)") }
        var run = CORERun()
        var log: [String] = []
        for line in r.stdout.split(separator: "\n").map(String.init) {
            if line.hasPrefix("INSNS ") {
                let parts = line.split(separator: " ")
                run.insns[String(parts[1])] = parts.count > 2 ? String(parts[2]) : ""
                continue
            }
            guard line.hasPrefix("LOG ") else { continue }
            var l = String(line.dropFirst(4))
            if l.hasPrefix("libbpf: ") { l = String(l.dropFirst(8)) }
            log.append(l)
            guard l.hasPrefix("prog '"), let r = l.range(of: ": relo #") else { continue }
            if l.contains("patched insn #") || l.contains("substituting insn #") {
                run.lines.append(l)
            } else if l.contains("failed to relocate") || l.contains("failed to patch insn") {
                let rest = l[r.upperBound...]
                let num = rest.prefix { $0.isNumber }
                run.lines.append(String(l[..<r.lowerBound]) + ": relo #\(num): FAILED")
            }
        }
        return (run, log)
    }

    /// Fixture object path.
    static func fixture(_ name: String, _ arch: String = "bpfel") throws -> String {
        try TestEnv.fixtures().appendingPathComponent("\(name).\(arch).o").path
    }
}
