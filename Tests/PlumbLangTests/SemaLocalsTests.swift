// Statement probes compiled without a kernel: `uprobe:PATH@FILE:LINE` sites, `$local` typing,
// and the diagnostics (optimized out, no code at a line, unknown local, uretprobe) against
// Tests/Fixtures/tracer-user/locals.c.
import Testing
import PlumbLang
import PlumbDWARF
import TestSupport

@Suite struct SemaLocalsTests {
    func compileScript(_ text: String) -> (plan: TracePlan?, diagnostics: String) {
        let file = SourceFile(name: "t.bt", text: text)
        let (script, parseDiags) = parse(file)
        let printer = DiagnosticPrinter(file: file)
        if parseDiags.contains(where: { $0.severity == .error }) { return (nil, printer.render(parseDiags)) }
        let (plan, diags) = compile(script, file: file, environment: .system(), options: CompileOptions())
        return (plan, printer.render(diags))
    }

    @Test(arguments: LocalsFixtures.names) func sitesBecomeUprobes(_ flavour: String) throws {
        let bin = try LocalsFixtures.path(flavour)
        let line = try LocalsFixtures.line("inline")
        let r = compileScript("uprobe:\(bin)@locals.c:\(line) { printf(\"%d %d\\n\", $tripled, $v); }")
        let expected = try DWARF.load(binary: bin).statementSites(file: "locals.c", line: line).map(\.address)
        let plan = try #require(r.plan, "\(r.diagnostics)")
        #expect(expected.count == 2)
        #expect(plan.probes.map(\.target) == expected.map { .uprobe(path: bin, symbol: nil, address: $0, isReturn: false, pid: nil) })
        #expect(plan.probes.allSatisfy { $0.name == "uprobe:\(bin)@locals.c:\(line)" })
    }

    @Test func optimizedOutIsATypeError() throws {
        let bin = try LocalsFixtures.path("gcc-O2")
        let line = try LocalsFixtures.line("loop")
        let r = compileScript("uprobe:\(bin)@locals.c:\(line) { printf(\"%d %d\\n\", $i, $a); }")
        #expect(r.plan == nil)
        #expect(r.diagnostics.contains("error: '$a' is optimized out at locals.c:\(line)"), "\(r.diagnostics)")
        #expect(r.diagnostics.contains("note: 'a' has a location only at 0x"), "\(r.diagnostics)")
        // $i is fine: the only error is $a's.
        #expect(r.diagnostics.components(separatedBy: "error:").count == 2, "\(r.diagnostics)")
    }

    @Test func lineAndNameDiagnostics() throws {
        let bin = try LocalsFixtures.path("gcc-O0")
        let loop = try LocalsFixtures.line("loop")
        let noCode = compileScript("uprobe:\(bin)@locals.c:1 { print(1); }").diagnostics
        #expect(noCode.contains("error: no code at locals.c:1 in \(bin)") && noCode.contains("note: the nearest line with code is locals.c:"), "\(noCode)")
        let file = compileScript("uprobe:\(bin)@local.c:\(loop) { print(1); }").diagnostics
        #expect(file.contains("error: no source file 'local.c' in the line table") && file.contains("did you mean 'locals.c'?"), "\(file)")
        let name = compileScript("uprobe:\(bin)@locals.c:\(loop) { print($squre); }").diagnostics
        #expect(name.contains("no variable of that name is visible at locals.c:\(loop)") && name.contains("did you mean '$square'?"), "\(name)")
        let ret = compileScript("uretprobe:\(bin)@locals.c:\(loop) { print(1); }").diagnostics
        #expect(ret.contains("error: uretprobe cannot probe a source line"), "\(ret)")
        let fn = compileScript("uprobe:\(bin):main@locals.c:\(loop) { print(1); }").diagnostics
        #expect(fn.contains("has code, but none of it in 'main' (it is in 'work')"), "\(fn)")
        // Assigned in the script: the script's variable, not the local.
        #expect(compileScript("uprobe:\(bin)@locals.c:\(loop) { $i = 5; print($i); }").plan != nil)
        // Elsewhere $name is still an undefined variable.
        #expect(compileScript("uprobe:\(bin):work { print($i); }").diagnostics.contains("Undefined or undeclared variable: $i"))
    }
}
