import PlumbLang
import Testing

@Suite("Parser: preamble preprocessor")
struct ParserPreprocessorTests {
    @Test func btfBranchIsTaken() {
        // The tools' idiom: headers and hand-written structs only for kernels without BTF.
        #expect(tree("""
        #ifndef BPFTRACE_HAVE_BTF
        #include <linux/sched.h>
        struct cfs_rq { int isn't even C; };
        #else
        #include <sys/socket.h>
        #endif
        BEGIN { }
        """) == "#include sys/socket.h\nBEGIN { }")
        #expect(tree("#ifdef BPFTRACE_HAVE_BTF\nstruct A { int a; };\n#endif\nBEGIN { }") == "(struct A (int a))\nBEGIN { }")
    }

    @Test func conditionalsAndDefines() {
        #expect(tree("""
        #define LEN 16
        #define FLAG
        #if defined(FLAG) && LEN == 16
        struct S { char comm[LEN]; };
        #elif 1
        struct Wrong { int a; };
        #else
        struct Wrong2 { int a; };
        #endif
        #if 0
        #if 1
        struct Nested { int a; };
        #endif
        #elif !defined FLAG || (LEN < 8)
        struct Wrong3 { int a; };
        #else
        struct T { int t; };
        #endif
        #undef FLAG
        #ifdef FLAG
        struct Wrong4 { int a; };
        #endif
        BEGIN { }
        """) == "(struct S (char[16] comm))\n(struct T (int t))\nBEGIN { }")
    }

    @Test func objectLikeMacrosExpand() {
        let text = """
        #define MAX 100
        #define NAME "bash"
        #define LIMIT (MAX * 2)
        #define TWICE LIMIT + LIMIT
        BEGIN /comm == NAME/ { @x = MAX; @y = LIMIT; @z = TWICE; @s = sizeof(MAX); }
        """
        let r = parseText(text)
        #expect(r.diagnostics == "")
        #expect(r.sexpr == #"BEGIN /(== comm "bash")/ { (= @x 100) (= @y (* 100 2)) (= @z (+ (* 100 2) (* 100 2))) (= @s (sizeof 100)) }"#)
        checkTree(r.script, textLength: text.utf8.count)
        // Expanded nodes point at the macro's name.
        guard case .assign(_, _, let v) = r.script.probes[0].body.statements[1].kind else { Issue.record("no assignment"); return }
        let at = text.utf8.count - "LIMIT; @z = TWICE; @s = sizeof(MAX); }".utf8.count
        #expect(v.range == SourceRange(at, at + 5))
    }

    @Test func recursiveMacrosStop() {
        let r = parseText("#define A (B + 1)\n#define B (A + 1)\nBEGIN { @x = A; }")
        #expect(r.diagnostics == "")
        #expect(r.sexpr == "BEGIN { (= @x (+ (+ A 1) 1)) }")
    }

    @Test func explodingMacrosAreRefused() {
        // Wide: each level ten times the one below.
        var text = "#define M0 1\n"
        for i in 1...8 { text += "#define M\(i) (" + Array(repeating: "M\(i - 1)", count: 10).joined(separator: " + ") + ")\n" }
        text += "BEGIN { @x = M8; }\nEND { }"
        var start = ContinuousClock.now
        var r = parse(SourceFile(name: "t.bt", text: text))
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(r.1.map(\.message) == ["macro expansion is too large (more than \(Parser.maxMacroNodes) nodes)"])
        // Deep: a long chain reaches the nesting limit.
        text = "#define M0 1\n"
        for i in 1...200 { text += "#define M\(i) (M\(i - 1) + 1)\n" }
        text += "BEGIN { @x = M200; }\nEND { }"
        start = ContinuousClock.now
        r = parse(SourceFile(name: "t.bt", text: text))
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(r.1.map(\.message) == ["nesting is too deep (more than \(Parser.maxNesting) levels)"])
    }

    @Test func diagnostics() {
        #expect(errors("""
        #endif
        #else
        #define
        #define F(x) (x)
        #define T struct task_struct
        #if foo(
        #endif
        #error stop here
        #pragma once
        #ifdef
        #endif
        BEGIN { }
        #if 1
        """) == """
        t.bt:1:1: error: #endif without #if
        #endif
        ^~~~~~
        t.bt:2:1: error: #else without #if
        #else
        ^~~~~
        t.bt:3:1: error: #define expects a macro name
        #define
        ^~~~~~~
        t.bt:4:1: warning: function-like macro 'F' is not supported; only object-like macros ('#define NAME value') are expanded
        #define F(x) (x)
        ^~~~~~~~~~~~~~~~
        t.bt:5:1: warning: macro 'T' is not expanded: its body is not an expression
        #define T struct task_struct
        ^~~~~~~~~~~~~~~~~~~~~~~~~~~~
        t.bt:6:1: error: cannot evaluate '#if foo(': use integers, defined(NAME), !, &&, || and comparisons
        #if foo(
        ^~~~~~~~
        t.bt:8:1: error: #error stop here
        #error stop here
        ^~~~~~~~~~~~~~~~
        t.bt:9:1: warning: '#pragma' is ignored: only #include, #define and conditionals are understood
        #pragma once
        ^~~~~~~~~~~~
        t.bt:10:1: error: #ifdef expects a macro name
        #ifdef
        ^~~~~~
        t.bt:13:1: error: '#if' without '#endif'
        #if 1
        ^~~~~

        """)
    }

    @Test func unterminatedFalseBranchSkipsToTheEnd() {
        #expect(errors("#if 0\nBEGIN { }\n") == """
        t.bt:1:1: error: '#if' without '#endif'
        #if 0
        ^~~~~

        """)
    }
}
