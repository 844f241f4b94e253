// `plumb object run --attach PROG=usdt:...` for programs written with libbpf's <bpf/usdt.bpf.h>
// (Tests/Fixtures/usdt_libbpf.bpf.c): BPF_USDT()/bpf_usdt_arg() read each argument through the
// spec Plumb writes to __bpf_usdt_specs, found by the site's cookie. Real kernel, real process.
import Foundation
import Testing
import TestSupport

@Suite(.serialized) struct ObjectRunUSDTArgsTests {
    /// The `seen` array (slot -> value) from `object run --json`'s maps at exit.
    func seen(_ stdout: String) throws -> [Int: Int64] {
        var out: [Int: Int64] = [:]
        for line in stdout.split(separator: "\n") where line.hasPrefix("{\"map\":\"seen\"") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            for e in object?["entries"] as? [[String: Any]] ?? [] {
                if let k = e["key"] as? Int, let v = e["value"] as? NSNumber { out[k] = v.int64Value }
            }
        }
        return out
    }

    func fixtures() -> USDTFixtures? {
        do { return try USDTFixtures.build() } catch {
            if TestEnv.skipsAreFailures { Issue.record("\(error)") }
            return nil
        }
    }

    /// usdt/target.c with n = 3: the last round has i = 2, so regs(0x1000000 + 0x10203 * 2) and many(2).
    @Test(arguments: ["pie", "nopie"]) func bpfUSDTReadsRegisterArgumentsAsTheProgramPassedThem(_ kind: String) throws {
        guard TestEnv.kernelAvailable(bpfUsable()), let f = fixtures() else { return }
        let binary = kind == "pie" ? f.pie : f.nopie
        let r = TestEnv.run(TestEnv.plumb, ["object", "run", try fixturePath("usdt_libbpf.bpfel.o"), "--json", "-c", "\(binary) 3",
                                            "--attach", "on_regs=usdt:\(binary):plumb:regs",
                                            "--attach", "on_many=usdt:\(binary):plumb:many"], stdin: Data("x".utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("attached on_regs: usdt \(binary):plumb:regs") && r.stderr.contains("(usdt.bpf.h specs)"), "\(r.stderr)")
        let s = try seen(r.stdout)
        let v: Int64 = 0x1000000 + 0x10203 * 2   // 0x1020406
        // 1@%ah 1@%al 2@%ax -4@%r14d -2@%r14w 1@%r14b 8@%rax
        let regs: [Int64?] = (0..<7).map { s[$0] }
        let expected: [Int64?] = [0x04, 0x06, 0x0406, v, 0x0406, 0x06, v]
        #expect(regs == expected, "\(s)")
        let many: [Int64?] = (0..<12).map { s[8 + $0] }
        let passed: [Int64?] = (0..<12).map { Int64(2 + $0) }
        #expect(many == passed, "many(2): \(s)")
        #expect(s[20] == 7 && s[21] == 12, "bpf_usdt_arg_cnt(): \(s)")
        #expect(s[22] == 3, "one hit per iteration: \(s)")
    }

    /// plumb:tick has RIP-relative and indexed operands, which libbpf's three spec forms cannot
    /// express: refused before attaching, naming the site and the argument.
    @Test func formsLibbpfCannotReadAreRefusedBeforeAttaching() throws {
        guard TestEnv.kernelAvailable(bpfUsable()), let f = fixtures() else { return }
        let r = TestEnv.run(TestEnv.plumb, ["object", "run", try fixturePath("usdt_libbpf.bpfel.o"), "-c", "\(f.pie) 1",
                                            "--attach", "on_regs=usdt:\(f.pie):plumb:tick"], stdin: Data("x".utf8))
        #expect(r.status != 0)
        #expect(r.stderr.contains("USDT site \(f.pie):plumb:tick at 0x"), "\(r.stderr)")
        #expect(r.stderr.contains("argument 2 '-8@g_total(%rip)' has a form libbpf's bpf_usdt_arg() cannot read"), "\(r.stderr)")
        #expect(!r.stderr.contains("attached on_regs"), "\(r.stderr)")
    }
}
