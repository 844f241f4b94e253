import PlumbLang
import Testing

/// Parses `text` named `t.bt`; returns the tree's S-expression and the rendered diagnostics.
func parseText(_ text: String) -> (script: Script, sexpr: String, diagnostics: String) {
    let file = SourceFile(name: "t.bt", text: text)
    let (script, diags) = parse(file)
    return (script, script.sexpr, DiagnosticPrinter(file: file).render(diags))
}

/// The S-expression of a script that must parse cleanly.
func tree(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let r = parseText(text)
    #expect(r.diagnostics == "", sourceLocation: sourceLocation)
    return r.sexpr
}

/// The S-expression of one expression (parsed as `BEGIN { $x = <e>; }`).
func expr(_ e: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let r = parseText("BEGIN { $x = \(e); }")
    #expect(r.diagnostics == "", sourceLocation: sourceLocation)
    guard let s = r.script.probes.first?.body.statements.first, case .assign(_, _, let v) = s.kind else { return "<none>" }
    return v.sexpr
}

/// The rendered diagnostics of a script that must not parse cleanly.
func errors(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let r = parseText(text)
    #expect(r.diagnostics != "", sourceLocation: sourceLocation)
    return r.diagnostics
}
