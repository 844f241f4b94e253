// Call frame information: our CFA rule at every row readelf's interpreted .eh_frame lists.
import Foundation
import Testing
import PlumbDWARF
import PlumbELF
import TestSupport

@Suite struct CallFrameTests {
    static let registers = ["rax": 0, "rdx": 1, "rcx": 2, "rbx": 3, "rsi": 4, "rdi": 5, "rbp": 6, "rsp": 7,
                            "r8": 8, "r9": 9, "r10": 10, "r11": 11, "r12": 12, "r13": 13, "r14": 14, "r15": 15]

    @Test(arguments: [Progs.flavours[0], Progs.flavours[4], Progs.flavours[5]])
    func cfaMatchesReadelf(_ f: Flavour) throws {
        let path = try Progs.build(f)
        let d = try DWARF.load(binary: path)
        var rows = 0
        for line in TestEnv.run("/usr/bin/readelf", ["--debug-dump=frames-interp", path]).stdout.split(separator: "\n") {
            let cols = line.split(separator: " ", omittingEmptySubsequences: true)
            guard cols.count >= 2, cols[0].count == 16, let pc = UInt64(cols[0], radix: 16), pc != 0 else { continue }  // 0: CIE rows
            let cfa = String(cols[1])
            let got = try d.cfa(at: pc)
            if cfa == "exp" {
                if case .expression? = got {} else { Issue.record("0x\(String(pc, radix: 16)): want an expression, got \(String(describing: got))") }
            } else if let plus = cfa.firstIndex(where: { $0 == "+" || $0 == "-" }),
                      let reg = Self.registers[String(cfa[..<plus])], let off = Int64(cfa[cfa.index(after: plus)...]) {
                let want = CFARule.register(reg, cfa[plus] == "-" ? -off : off)
                #expect(got == want, "0x\(String(pc, radix: 16))")
            } else {
                continue
            }
            rows += 1
        }
        #expect(rows > 5)
        let add = try d.function(named: "add_points")
        #expect(try d.cfa(at: add.lowPC) == .register(7, 8), "at entry the CFA is rsp+8")
        #expect(try d.cfa(at: 1) == nil)
    }

    @Test func libcCFIFromTheStrippedBinary() throws {
        guard SystemTests.libcDebugAvailable else { return }
        let d = try DWARF.load(binary: SystemTests.libc)
        let m = try d.function(named: "malloc")
        #expect(try d.cfa(at: m.lowPC) == .register(7, 8))
    }
}
