// DWARF-typed parameters where the SysV ABI puts them, against
// Tests/Fixtures/tracer-user/params.c: integer registers, structs of one and two INTEGER
// eightbytes in registers, parameters past the sixth integer register and a 24-byte struct
// on the stack, a struct that no longer fits the registers left (stack, while a later long
// still takes r9), the hidden return-buffer pointer, and floats/doubles refused clearly.
import Foundation
import Testing
import TestSupport

@Suite struct TracerUserParameterTests {
    @Test func mixedKinds() throws {
        let bin = try TracerUserFixtures.directory() + "/params"
        let script = """
        uprobe:\(bin):many { printf("m %d %d %d %d %d %d %s %ld %d %d %d %d %d %d %d %d\\n", args.a1, args.t.x, args.t.y, args.a3,
            args.s.a, args.s.b, str(args.p), args.a6, args.a7, args.bg.v[0], args.bg.v[2], args.a9, args.s2.a, args.s2.b,
            args.m.l, args.a12); }
        uprobe:\(bin):make { printf("k %d %d %d\\n", args.a, args.b, args.c); }
        uprobe:\(bin):spill { printf("s %d %d %d %d\\n", args.e, args.t.x, args.t.y, args.f); }
        """
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("m ") } == [
            "m 1 101 201 -31 3 -4 params 6000000001 -8 1001 3001 91 51 -61 701 201",
            "m 2 102 202 -32 6 -8 params 6000000002 -9 1002 3002 92 52 -62 702 202"], "\(r.stdout)")
        #expect(lines.filter { $0.hasPrefix("k ") } == ["k 1 2 3", "k 2 4 6"], "\(r.stdout)")
        #expect(lines.filter { $0.hasPrefix("s ") } == ["s 5 101 201 401", "s 5 102 202 402"], "\(r.stdout)")
    }

    @Test(arguments: ["d", "f"]) func floatingPoint(_ name: String) throws {
        let bin = try TracerUserFixtures.directory() + "/params"
        let r = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(bin):many { print(args.\(name)); }"])
        #expect(r.status == 1 && r.stderr.contains("'\(name)' is passed in an SSE register, which uprobes cannot read"), "\(r.stderr)")
    }

    /// A struct of a double and a long is split between xmm0 and rdi: refused; the next long is in rsi.
    @Test func partlySSE() throws {
        let bin = try TracerUserFixtures.directory() + "/params"
        let m = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(bin):fpfirst { print(args.m.l); }"])
        #expect(m.status == 1 && m.stderr.contains("'m' is a struct passed partly in an SSE register"), "\(m.stderr)")
        let r = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(bin):fpfirst { printf(\"a %d\\n\", args.after); }", "-c", bin])
        #expect(r.status == 0 && r.stdout.contains("a 801\na 802\n"), "\(r.stdout) \(r.stderr)")
    }
}
