// Statement probes through the plumb CLI against Tests/Fixtures/tracer-user/locals.c built
// with gcc and clang at -O0 and -O2: `uprobe:PATH@locals.c:LINE` with `$local`s in registers,
// on the stack, computed (DW_OP_stack_value), in pieces, a struct, a pointer, a loop variable
// and an inlined helper's locals (two sites), each value checked against the line the program
// prints for the same point ("P loop i=0 square=3 ...").
import Foundation
import Testing
import TestSupport

@Suite struct TracerStatementProbeTests {
    /// The program's own "P <what> ..." lines, and plumb's "L <what> ..." lines, in order.
    func lines(_ out: String, _ prefix: String) -> [String] {
        out.split(separator: "\n").filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(2)) }
    }

    @Test(arguments: LocalsFixtures.names) func localsMatchTheProgram(_ flavour: String) throws {
        let bin = try LocalsFixtures.path(flavour)
        let loop = try LocalsFixtures.line("loop"), structLine = try LocalsFixtures.line("struct"), inline = try LocalsFixtures.line("inline")
        let script = """
        uprobe:\(bin)@locals.c:\(loop) { printf("L loop i=%d square=%d total=%d\\n", $i, $square, $total); }
        uprobe:\(bin)@locals.c:\(structLine) { printf("L struct x=%d y=%d tag=%d uid=%d name=%s\\n", $pt.x, $pt.y, $pt.tag, $who->uid, $who->name); }
        uprobe:\(bin)@locals.c:\(inline) { printf("L inline v=%d tripled=%d\\n", $v, $tripled); printf("L g %d %d\\n", var("g_seed"), $g_seed); }
        """
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin + " 3"])
        #expect(r.status == 0, "\(r.stderr)")
        let program = lines(r.stdout, "P ").filter { !$0.hasPrefix("done") }
            .map { $0.hasPrefix("loop") ? String($0.components(separatedBy: " lo=")[0]) : $0 }
        #expect(program.count == 6, "\(r.stdout)")
        let traced = lines(r.stdout, "L ")
        #expect(traced.filter { !$0.hasPrefix("g ") } == program, "\(flavour): \(r.stdout)")
        // var() and $global relocate by the site that fired: both inlined copies read the global right.
        #expect(traced.filter { $0.hasPrefix("g ") } == ["g 11 11", "g 11 11"], "\(r.stdout)")
    }

    /// `struct span range = { i, i + n }`: on the stack at -O0, two pieces (a register and a
    /// computed value with DW_OP_convert) in clang -O2; gcc -O2 drops it.
    @Test(arguments: ["gcc-O0", "clang-O0", "clang-O2"]) func structFromPieces(_ flavour: String) throws {
        let bin = try LocalsFixtures.path(flavour)
        let loop = try LocalsFixtures.line("loop")
        let script = "uprobe:\(bin)@locals.c:\(loop) { printf(\"L lo=%d hi=%d\\n\", $range.lo, $range.hi); }"
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin + " 4"])
        #expect(r.status == 0, "\(r.stderr)")
        let program = lines(r.stdout, "P ").filter { $0.hasPrefix("loop") }.map { "lo=" + $0.components(separatedBy: " lo=")[1] }
        #expect(program.count == 4 && lines(r.stdout, "L ") == program, "\(r.stdout)")
    }

    @Test func optimizedOutFromTheCLI() throws {
        let bin = try LocalsFixtures.path("gcc-O2")
        let loop = try LocalsFixtures.line("loop")
        let r = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(bin)@locals.c:\(loop) { print($range); }"])
        #expect(r.status == 1 && r.stderr.contains("error: '$range' is optimized out at locals.c:\(loop)"), "\(r.stderr)")
        let listed = TestEnv.run(TestEnv.plumb, ["-lv", "uprobe:\(bin)@locals.c:\(loop)"])
        #expect(listed.stdout.hasPrefix("uprobe:\(bin)@locals.c:\(loop)\n") && listed.stdout.contains("    long int total\n")
                && listed.stdout.contains("    struct span range (optimized out)\n"), "\(listed.stdout)")
    }
}
