import PlumbLang
import Testing

/// Every syntax error path, with its exact rendering (and what recovery still parsed).
@Suite("Parser: diagnostics")
struct ParserDiagnosticTests {
    @Test func missingOperand() {
        let r = parseText(#"""
        BEGIN { $x = 1 + ; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:18: error: syntax error, unexpected ';'
        BEGIN { $x = 1 + ; }
                         ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func strayClosingBrace() {
        let r = parseText(#"""
        BEGIN { $x = 1 }}
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:17: error: syntax error, unexpected '}', expecting attach point
        BEGIN { $x = 1 }}
                        ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (= $x 1) }
        """#)
    }

    @Test func missingClosingBraceAtEnd() {
        let r = parseText(#"""
        BEGIN { $x = 1
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:15: error: syntax error, unexpected end of file, expecting '}'
        BEGIN { $x = 1
                      ^
        t.bt:1:7: note: to match this '{'
        BEGIN { $x = 1
              ^

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func unterminatedStringEndsAtTheLine() {
        let r = parseText(#"""
        BEGIN { printf("abc) }
        END { @x = 1 }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:16: error: unterminated string
        BEGIN { printf("abc) }
                       ^~~~~~~
        t.bt:2:1: error: syntax error, unexpected identifier 'END', expecting ')' or ','
        END { @x = 1 }
        ^~~

        """#)
        #expect(r.sexpr == #"""
        END { (= @x 1) }
        """#)
    }

    @Test func missingParen() {
        let r = parseText(#"""
        BEGIN { $x = (1 + 2; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:20: error: syntax error, unexpected ';', expecting ')' or ','
        BEGIN { $x = (1 + 2; }
                           ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func missingComma() {
        let r = parseText(#"""
        BEGIN { f(1 2); }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:13: error: syntax error, unexpected integer 2, expecting ')' or ','
        BEGIN { f(1 2); }
                    ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func missingBracket() {
        let r = parseText(#"""
        BEGIN { @x[1 = 2; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:14: error: syntax error, unexpected '=', expecting ']' or ','
        BEGIN { @x[1 = 2; }
                     ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func assignToNonLvalue() {
        let r = parseText(#"""
        BEGIN { 1 = 2; pid += 1; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:9: error: cannot assign to this expression: only maps ('@m', '@m[k]') and variables ('$x') can be assigned
        BEGIN { 1 = 2; pid += 1; }
                ^~~
        t.bt:1:16: error: cannot assign to this expression: only maps ('@m', '@m[k]') and variables ('$x') can be assigned
        BEGIN { 1 = 2; pid += 1; }
                       ^~~~~~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func chainedAssignment() {
        let r = parseText(#"""
        BEGIN { $x = $y = 1; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:17: error: syntax error, unexpected '=', expecting ';' or '}'
        BEGIN { $x = $y = 1; }
                        ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (= $x $y) }
        """#)
    }

    @Test func ifNeedsBlock() {
        let r = parseText(#"""
        BEGIN { if ($x) $y = 1; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:17: error: syntax error, unexpected variable '$y', expecting '{'
        BEGIN { if ($x) $y = 1; }
                        ^~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func elseWithoutIf() {
        let r = parseText(#"""
        BEGIN { else { } }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:9: error: 'else' without a matching 'if'
        BEGIN { else { } }
                ^~~~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func badForLoops() {
        let r = parseText(#"""
        BEGIN { for (i : @m) { } for ($i : 0..) { } for ($i in @m) { } for ($i : pid) { } }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:14: error: syntax error, unexpected identifier 'i', expecting a variable
        BEGIN { for (i : @m) { } for ($i : 0..) { } for ($i in @m) { } for ($i : pid) { } }
                     ^
        t.bt:1:39: error: syntax error, unexpected ')'
        BEGIN { for (i : @m) { } for ($i : 0..) { } for ($i in @m) { } for ($i : pid) { } }
                                              ^
        t.bt:1:53: error: syntax error, unexpected identifier 'in', expecting ':'
        BEGIN { for (i : @m) { } for ($i : 0..) { } for ($i in @m) { } for ($i : pid) { } }
                                                            ^~
        t.bt:1:74: error: a for loop iterates over a map ('for ($kv : @m)') or a range ('for ($i : 0..10)')
        BEGIN { for (i : @m) { } for ($i : 0..) { } for ($i in @m) { } for ($i : pid) { } }
                                                                                 ^~~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func badTypes() {
        let r = parseText(#"""
        BEGIN { $x = sizeof(struct); $y = offsetof(struct s, ); $z = (struct s *; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:27: error: syntax error, unexpected ')', expecting a struct name
        BEGIN { $x = sizeof(struct); $y = offsetof(struct s, ); $z = (struct s *; }
                                  ^
        t.bt:1:54: error: syntax error, unexpected ')', expecting a field name
        BEGIN { $x = sizeof(struct); $y = offsetof(struct s, ); $z = (struct s *; }
                                                             ^
        t.bt:1:73: error: syntax error, unexpected ';', expecting ')'
        BEGIN { $x = sizeof(struct); $y = offsetof(struct s, ); $z = (struct s *; }
                                                                                ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func badFieldNames() {
        let r = parseText(#"""
        BEGIN { $x = @a.; $y = $t->1; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:17: error: syntax error, unexpected ';', expecting a field name
        BEGIN { $x = @a.; $y = $t->1; }
                        ^
        t.bt:1:28: error: syntax error, unexpected integer 1, expecting a field name
        BEGIN { $x = @a.; $y = $t->1; }
                                   ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func ternaryWithoutColon() {
        let r = parseText(#"""
        BEGIN { $x = 1 ? 2; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:19: error: syntax error, unexpected ';', expecting ':'
        BEGIN { $x = 1 ? 2; }
                          ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func unclosedPredicate() {
        let r = parseText(#"""
        BEGIN / pid == 1 { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:18: error: syntax error, unexpected '{', expecting '/'
        BEGIN / pid == 1 { }
                         ^
        t.bt:1:7: note: the predicate began here
        BEGIN / pid == 1 { }
              ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN /(== pid 1)/ { }
        """#)
    }

    @Test func predicateWithoutSlashes() {
        let r = parseText(#"""
        BEGIN pid { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:7: error: syntax error, unexpected identifier 'pid', expecting '{' or a predicate
        BEGIN pid { }
              ^~~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func trailingCommaInAttachPoints() {
        let r = parseText(#"""
        kprobe:f,
        { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:2:1: error: syntax error, unexpected '{', expecting attach point
        { }
        ^

        """#)
        #expect(r.sexpr == #"""
        kprobe:f { }
        """#)
    }

    @Test func leadingComma() {
        let r = parseText(#"""
        , BEGIN { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:1: error: syntax error, unexpected ',', expecting attach point
        , BEGIN { }
        ^

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func probeWithoutAttachPoint() {
        let r = parseText(#"""
        { $x = 1; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:1: error: syntax error, unexpected '{', expecting attach point
        { $x = 1; }
        ^

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func misspelledBegin() {
        let r = parseText(#"""
        BEGN { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:1: error: unknown probe type 'BEGN'
        BEGN { }
        ^~~~
        note: did you mean 'BEGIN'?

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func misspelledProvider() {
        let r = parseText(#"""
        kprob:vfs_read { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:1: error: unknown probe type 'kprob'
        kprob:vfs_read { }
        ^~~~~
        note: did you mean 'kprobe'?

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func misspelledTracepoint() {
        let r = parseText(#"""
        tracepiont:a:b { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:1: error: unknown probe type 'tracepiont'
        tracepiont:a:b { }
        ^~~~~~~~~~
        note: did you mean 'tracepoint'?

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func invalidAttachPoint() {
        let r = parseText(#"""
        $x:a { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:1: error: invalid attach point '$x:a'
        $x:a { }
        ^~~~

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func probeWithoutBody() {
        let r = parseText(#"""
        BEGIN
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:6: error: syntax error, unexpected end of file, expecting '{' or a predicate
        BEGIN
             ^

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func structFieldWithoutSemicolon() {
        let r = parseText(#"""
        struct S { int a };
        BEGIN { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:18: error: syntax error, unexpected '}', expecting ';'
        struct S { int a };
                         ^

        """#)
        #expect(r.sexpr == #"""
        (struct S (int a))
        BEGIN { }
        """#)
    }

    @Test func unsupportedFields() {
        let r = parseText(#"""
        struct S { int a : 3; struct { int b; } c; int (*f)(void); int d[2][3]; int; };
        BEGIN { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:18: error: bit-fields are not supported
        struct S { int a : 3; struct { int b; } c; int (*f)(void); int d[2][3]; int; };
                         ^
        t.bt:1:23: error: anonymous struct definitions are not supported; define the type separately and name it
        struct S { int a : 3; struct { int b; } c; int (*f)(void); int d[2][3]; int; };
                              ^~~~~~~~
        t.bt:1:48: error: function pointer fields are not supported; use a pointer such as 'void *'
        struct S { int a : 3; struct { int b; } c; int (*f)(void); int d[2][3]; int; };
                                                       ^
        t.bt:1:68: error: multi-dimensional arrays are not supported
        struct S { int a : 3; struct { int b; } c; int (*f)(void); int d[2][3]; int; };
                                                                           ^
        t.bt:1:76: error: syntax error, unexpected ';', expecting a field name
        struct S { int a : 3; struct { int b; } c; int (*f)(void); int d[2][3]; int; };
                                                                                   ^

        """#)
        #expect(r.sexpr == #"""
        (struct S)
        BEGIN { }
        """#)
    }

    @Test func enumDefinition() {
        let r = parseText(#"""
        enum E { A, B };
        BEGIN { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:1: error: enum definitions are not supported in scripts; use the values directly
        enum E { A, B };
        ^~~~~~~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func preambleAfterProbes() {
        let r = parseText(#"""
        BEGIN { }
        struct S { int a; };
        #include <x.h>
        config = { a = 1 }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:2:1: error: type definitions must come before the first probe
        struct S { int a; };
        ^~~~~~
        t.bt:3:1: error: #include must come before the first probe
        #include <x.h>
        ^~~~~~~~~~~~~~
        t.bt:4:1: error: the config block must come before the first probe
        config = { a = 1 }
        ^~~~~~

        """#)
        #expect(r.sexpr == #"""
        #include x.h
        (struct S (int a))
        (config a 1)
        BEGIN { }
        """#)
    }

    @Test func badInclude() {
        let r = parseText(#"""
        #include x.h
        BEGIN { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:1: error: #include expects <file> or "file"
        #include x.h
        ^~~~~~~~~~~~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func badConfig() {
        let r = parseText(#"""
        config = { a = ; b = 2 }
        BEGIN { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:16: error: syntax error, unexpected ';'
        config = { a = ; b = 2 }
                       ^

        """#)
        #expect(r.sexpr == #"""
        (config b 2)
        BEGIN { }
        """#)
    }

    @Test func unclosedConfig() {
        let r = parseText(#"""
        config = { a = 1
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:17: error: syntax error, unexpected end of file, expecting '}'
        config = { a = 1
                        ^
        t.bt:1:10: note: to match this '{'
        config = { a = 1
                 ^

        """#)
        #expect(r.sexpr == #"""
        (config a 1)
        """#)
    }

    @Test func hashInsideProbe() {
        let r = parseText(#"""
        BEGIN { $x = 1 # 2; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:16: error: invalid character '#'
        BEGIN { $x = 1 # 2; }
                       ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (= $x 1) }
        """#)
    }

    @Test func keywordsMisused() {
        let r = parseText(#"""
        BEGIN { return return; break 1; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:16: error: syntax error, unexpected identifier 'return', expecting an expression
        BEGIN { return return; break 1; }
                       ^~~~~~
        t.bt:1:30: error: syntax error, unexpected integer 1, expecting ';' or '}'
        BEGIN { return return; break 1; }
                                     ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { break }
        """#)
    }

    @Test func emptyMapKey() {
        let r = parseText(#"""
        BEGIN { @x[] = 1; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:11: error: a map key is missing between '[' and ']'
        BEGIN { @x[] = 1; }
                  ^~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func stringAcrossLines() {
        let r = parseText(#"""
        BEGIN { $x = "a
        b"; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:14: error: unterminated string
        BEGIN { $x = "a
                     ^~
        t.bt:2:1: error: syntax error, unexpected identifier 'b', expecting ';' or '}'
        b"; }
        ^
        t.bt:2:2: error: unterminated string
        b"; }
         ^~~~
        t.bt:2:6: error: syntax error, unexpected end of file, expecting '}'
        b"; }
             ^
        t.bt:1:7: note: to match this '{'
        BEGIN { $x = "a
              ^

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func missingBraceBeforeNextProbe() {
        let r = parseText(#"""
        BEGIN {
          $x = 1;
        kprobe:f { $y = 2 }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:3:1: error: syntax error, unexpected identifier 'kprobe', expecting '}'
        kprobe:f { $y = 2 }
        ^~~~~~
        t.bt:1:7: note: to match this '{'
        BEGIN {
              ^

        """#)
        #expect(r.sexpr == #"""
        kprobe:f { (= $y 2) }
        """#)
    }

    @Test func errorsInSeveralProbes() {
        let r = parseText(#"""
        BEGIN { a() } BEGIN { 1 +} END { )( }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:26: error: syntax error, unexpected '}'
        BEGIN { a() } BEGIN { 1 +} END { )( }
                                 ^
        t.bt:1:34: error: syntax error, unexpected ')'
        BEGIN { a() } BEGIN { 1 +} END { )( }
                                         ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (call a) }
        BEGIN { }
        END { }
        """#)
    }

    @Test func unterminatedQuoteInAttachPoint() {
        let r = parseText(#"""
        uprobe:"/bin/bash:readline { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:8: error: unterminated string
        uprobe:"/bin/bash:readline { }
               ^~~~~~~~~~~~~~~~~~~~~~~
        t.bt:1:31: error: syntax error, unexpected end of file, expecting '{' or a predicate
        uprobe:"/bin/bash:readline { }
                                      ^

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func unterminatedComment() {
        let r = parseText(#"""
        BEGIN { $x = 1; } /* open
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:19: error: unterminated comment
        BEGIN { $x = 1; } /* open
                          ^~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (= $x 1) }
        """#)
    }

    @Test func badCharLiteralsAndEscapes() {
        let r = parseText(#"""
        BEGIN { $x = 'ab'; $y = '\q'; $z = "\x"; $w = ''; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:14: error: a character literal holds exactly one byte
        BEGIN { $x = 'ab'; $y = '\q'; $z = "\x"; $w = ''; }
                     ^~~~
        t.bt:1:26: error: invalid escape character '\q'
        BEGIN { $x = 'ab'; $y = '\q'; $z = "\x"; $w = ''; }
                                 ^~
        t.bt:1:37: error: invalid escape character '\x': expected hex digits
        BEGIN { $x = 'ab'; $y = '\q'; $z = "\x"; $w = ''; }
                                            ^~
        t.bt:1:47: error: a character literal holds exactly one byte
        BEGIN { $x = 'ab'; $y = '\q'; $z = "\x"; $w = ''; }
                                                      ^~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (= $x 0) (= $y 0) (= $z "") (= $w 0) }
        """#)
    }

    @Test func badIntegerLiterals() {
        let r = parseText(#"""
        BEGIN { $x = 0x; $y = 18446744073709551616; $z = 12ab; $w = 09; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:14: error: invalid integer literal '0x'
        BEGIN { $x = 0x; $y = 18446744073709551616; $z = 12ab; $w = 09; }
                     ^~
        t.bt:1:23: error: integer literal '18446744073709551616' does not fit in 64 bits
        BEGIN { $x = 0x; $y = 18446744073709551616; $z = 12ab; $w = 09; }
                              ^~~~~~~~~~~~~~~~~~~~
        t.bt:1:50: error: invalid integer literal '12ab'
        BEGIN { $x = 0x; $y = 18446744073709551616; $z = 12ab; $w = 09; }
                                                         ^~~~
        t.bt:1:61: error: invalid integer literal '09'
        BEGIN { $x = 0x; $y = 18446744073709551616; $z = 12ab; $w = 09; }
                                                                    ^~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (= $x 0) (= $y 0) (= $z 0) (= $w 0) }
        """#)
    }

    @Test func invalidCharacters() {
        let r = parseText(#"""
        BEGIN { $x = 1; @a = ` ; $y = $; $z = é; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:22: error: invalid character '`'
        BEGIN { $x = 1; @a = ` ; $y = $; $z = é; }
                             ^
        t.bt:1:31: error: expected a variable name after '$'
        BEGIN { $x = 1; @a = ` ; $y = $; $z = é; }
                                      ^
        t.bt:1:39: error: invalid character 'é'
        BEGIN { $x = 1; @a = ` ; $y = $; $z = é; }
                                              ^~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (= $x 1) }
        """#)
    }

    @Test func elseIfWithoutCondition() {
        let r = parseText(#"""
        BEGIN { if ($x) { } else if { } }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:29: error: syntax error, unexpected '{', expecting '('
        BEGIN { if ($x) { } else if { } }
                                    ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func loopsWithoutParentheses() {
        let r = parseText(#"""
        BEGIN { unroll 3 { } while $x { } }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:16: error: syntax error, unexpected integer 3, expecting '('
        BEGIN { unroll 3 { } while $x { } }
                       ^
        t.bt:1:28: error: syntax error, unexpected variable '$x', expecting '('
        BEGIN { unroll 3 { } while $x { } }
                                   ^~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func castWithoutOperand() {
        let r = parseText(#"""
        BEGIN { $x = (uint32); }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:22: error: syntax error, unexpected ';'
        BEGIN { $x = (uint32); }
                             ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func emptySizeof() {
        let r = parseText(#"""
        BEGIN { $x = sizeof(); }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:21: error: syntax error, unexpected ')'
        BEGIN { $x = sizeof(); }
                            ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func missingSemicolon() {
        let r = parseText(#"""
        BEGIN { @x = count() @y = 1; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:22: error: syntax error, unexpected map '@y', expecting ';' or '}'
        BEGIN { @x = count() @y = 1; }
                             ^~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (= @x (call count)) }
        """#)
    }

    @Test func trailingCommaInCall() {
        let r = parseText(#"""
        BEGIN { print(@x,); }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:18: error: syntax error, unexpected ')'
        BEGIN { print(@x,); }
                         ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func incompleteLastStatement() {
        let r = parseText(#"""
        BEGIN { $x = 1 +
        }
        END { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:2:1: error: syntax error, unexpected '}'
        }
        ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        END { }
        """#)
    }

    @Test func tabIndentedCaret() {
        let r = parseText(#"""
        BEGIN {
        	$x = 1 +;
        }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:2:10: error: syntax error, unexpected ';'
        	$x = 1 +;
        	        ^

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }

    @Test func nestedBlocksOpenAtEnd() {
        let r = parseText(#"""
        BEGIN { if (1) { while (1) { $x = 1


        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:36: error: syntax error, unexpected end of file, expecting '}'
        BEGIN { if (1) { while (1) { $x = 1
                                           ^
        t.bt:1:28: note: to match this '{'
        BEGIN { if (1) { while (1) { $x = 1
                                   ^

        """#)
        #expect(r.sexpr == #"""

        """#)
    }

    @Test func letDeclarations() {
        let r = parseText(#"""
        BEGIN { let $x: uint8 = 1; let @m = hash(10); $y = 2; }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:9: error: 'let' declarations are not supported; assign the variable directly ('$x = ...')
        BEGIN { let $x: uint8 = 1; let @m = hash(10); $y = 2; }
                ^~~~~~
        t.bt:1:28: error: map declarations ('let @m = ...') are not supported; maps are created by assigning to them
        BEGIN { let $x: uint8 = 1; let @m = hash(10); $y = 2; }
                                   ^~~~~~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { (= $y 2) }
        """#)
    }

    @Test func functionsAndMacros() {
        let r = parseText(#"""
        fn f($a: int64): int64 { return $a; }
        macro m(x) { x }
        BEGIN { }
        """#)
        #expect(r.diagnostics == #"""
        t.bt:1:1: error: 'fn' is not supported: scripts are probes and their preamble
        fn f($a: int64): int64 { return $a; }
        ^~
        t.bt:2:1: error: 'macro' is not supported: scripts are probes and their preamble
        macro m(x) { x }
        ^~~~~

        """#)
        #expect(r.sexpr == #"""
        BEGIN { }
        """#)
    }
}
