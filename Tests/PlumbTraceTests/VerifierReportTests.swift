// A verifier rejection told at its place in the script: the reason picked from the log, the
// line found from the program's line_info, and the rendered text.
import PlumbLang
import PlumbTrace
import Testing

@Suite struct VerifierReportTests {
    static let loopLog = """
    arg#0 reference type('UNKNOWN ') size cannot be determined: -22
    0: R1=ctx() R10=fp0
    ; BEGIN { @ t.bt:1
    0: (bf) r6 = r1                       ; R1=ctx() R6=ctx()
    ; while (1) { } @ t.bt:2
    1: (b7) r0 = 1                        ; R0=1
    2: (15) if r0 == 0x0 goto pc+1        ; R0=1
    3: (05) goto pc-3
    infinite loop detected at insn 1
    cur state: R0=1 R1=ctx() R6=ctx() R10=fp0
    old state: R0=1 R1=ctx() R6=ctx() R10=fp0
    processed 11 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0

    """

    @Test func reasonAndInstruction() {
        #expect(VerifierRejection.reason(in: Self.loopLog) == "infinite loop detected at insn 1")
        #expect(VerifierRejection.failingInstruction(in: Self.loopLog) == 3)
        #expect(VerifierRejection.reason(in: "5: (85) call bpf_probe_read#4\nR1 type=ctx expected=fp\nprocessed 6 insns\n") == "R1 type=ctx expected=fp")
        #expect(VerifierRejection.reason(in: "7: (bf) r7 = r0\nBPF program is too large. Processed 1000001 insn\nprocessed 1000001 insns (limit 1000000)\n")
                == "BPF program is too large. Processed 1000001 insn")
        #expect(VerifierRejection.annotatedLine(in: Self.loopLog) == 2)
    }

    @Test func locatedFromLineInfo() throws {
        let file = SourceFile(name: "t.bt", text: "BEGIN {\n  while (1) { }\n}\n")
        let (script, _) = parse(file)
        let (plan, diags) = compile(script, file: file, environment: .empty())
        #expect(diags.isEmpty)
        let p = try #require(plan)
        let r = try #require(VerifierRejection.locate(program: "p0_BEGIN", log: Self.loopLog, plan: p))
        #expect(r.probe == "BEGIN" && r.file == "t.bt" && r.line == 2 && r.column == 3)
        #expect(r.rendered(verbose: false) == """
        t.bt:2:3: error: the kernel's BPF verifier rejected the program of BEGIN
          while (1) { }
          ^
        verifier: infinite loop detected at insn 1
        note: run with -v for the verifier's full log

        """)
        #expect(r.rendered(verbose: true).hasSuffix("verifier: infinite loop detected at insn 1\nverifier log:\n" + Self.loopLog))
    }
}
