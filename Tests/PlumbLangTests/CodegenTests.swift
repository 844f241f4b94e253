import PlumbLang
import PlumbAsm
import PlumbBPF
import Testing

/// The disassembly of the first program of a script that compiles cleanly.
func disassembly(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let r = check(text)
    #expect(r.diagnostics == "", sourceLocation: sourceLocation)
    guard let p = r.plan?.object.programs.first else { return "" }
    return Disassembler().lines(p.instructions).map { line in
        // Drop the slot and bytes columns: "   3:\t<hex>\t<text>" -> "<text>".
        String(line.split(separator: "\t").last ?? "")
    }.joined(separator: "\n")
}

@Suite("Code generator: golden programs")
struct CodegenTests {
    @Test("constants fold; a plain value map is one update")
    func constantFolding() {
        #expect(disassembly("BEGIN { @x = (1 + 2) * 4 - 10 / 5; }") == """
        *(u64 *)(r10 - 0x8) = 0xa
        *(u64 *)(r10 - 0x10) = 0x0
        r1 = 0x0 ll
        r2 = r10
        r2 += -0x10
        r3 = r10
        r3 += -0x8
        r4 = 0x0
        call 0x2
        r0 = 0x0
        exit
        """)
    }

    @Test("count(): lookup, atomic add of an immediate, insert 1 when missing")
    func count() {
        #expect(disassembly("BEGIN { @c = count(); }") == """
        *(u64 *)(r10 - 0x8) = 0x0
        r1 = 0x0 ll
        r2 = r10
        r2 += -0x8
        call 0x1
        if r0 == 0x0 goto +0x3
        r1 = 0x1
        lock *(u64 *)(r0 + 0x0) += r1
        goto +0x9
        *(u64 *)(r10 - 0x10) = 0x1
        r1 = 0x0 ll
        r2 = r10
        r2 += -0x8
        r3 = r10
        r3 += -0x10
        r4 = 0x0
        call 0x2
        r0 = 0x0
        exit
        """)
    }

    @Test("predicates jump to the exit; builtins become helper calls")
    func predicate() {
        let d = disassembly("BEGIN /pid == 42/ { @p = tid; }")
        #expect(d.hasPrefix("""
        call 0xe
        r0 >>= 0x20
        r7 = r0
        if r7 != 0x2a goto
        """))
    }

    @Test("map references and line info point at maps and script lines")
    func references() {
        let r = check("BEGIN {\n  @a = 1;\n  @b = 2;\n}")
        guard let p = r.plan?.object.programs.first else { Issue.record("no program"); return }
        #expect(p.references.sorted { $0.key < $1.key }.map(\.value) == [.map("AT_a"), .map("AT_b")])
        // The probe's own line covered only the context copy, which this program does without.
        #expect(p.lineInfo.map(\.line) == [2, 3])
        #expect(p.functionInfo.count == 1)
        #expect(r.plan?.object.maps.map(\.name).sorted() == ["AT_a", "AT_b", "plumb_errors"])
    }
}
