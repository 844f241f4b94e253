import PlumbLang
import Testing

@Suite("Diagnostics render as the Swift compiler's")
struct DiagnosticsTests {
    @Test func caretUnderRange() {
        let file = SourceFile(name: "script.bt", text: "BEGIN {\n  printf(\"%d\\n\", curtask->pdi);\n}\n")
        let start = file.text.utf8.count - 8  // "pdi);\n}\n" -> "pdi"
        let d = Diagnostic.error("'struct task_struct' has no member named 'pdi'", at: SourceRange(start, start + 3),
                                 notes: [.init("did you mean 'pid'?")])
        let text = DiagnosticPrinter(file: file).render(d)
        #expect(text == """
        script.bt:2:27: error: 'struct task_struct' has no member named 'pdi'
          printf("%d\\n", curtask->pdi);
                                  ^~~
        note: did you mean 'pid'?

        """)
    }
}
