// libFuzzer target for the tracing language front end: lexer and parser (and, where it needs
// no kernel, the checker). Build and run: fuzz/run.sh lang
import PlumbLang
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLang(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let file = SourceFile(name: "fuzz.bt", text: text)
    let (script, diagnostics) = parse(file)
    // Walk what came back the way later passes do: ids unique, ranges inside the text,
    // every diagnostic renderable.
    var ids = Set<Int>()
    func visit(_ e: Expr) {
        precondition(ids.insert(e.id).inserted, "duplicate expression id \(e.id)")
        precondition(e.range.start >= 0 && e.range.end <= file.bytes.count, "range \(e.range) outside the text")
        e.kind.forEachChild(visit)
    }
    func visit(_ b: Block) {
        for s in b.statements { s.kind.forEachChild(expression: visit, block: visit) }
    }
    for c in script.config { visit(c.value) }
    for p in script.probes {
        if let e = p.predicate { visit(e) }
        visit(p.body)
    }
    _ = script.sexpr
    _ = DiagnosticPrinter(file: file).render(diagnostics)
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzLang) }
}
