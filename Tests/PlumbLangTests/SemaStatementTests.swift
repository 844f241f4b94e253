import PlumbLang
import Testing

@Suite("Checker: statements and control flow")
struct SemaStatementTests {
    @Test("break and continue need a loop; unroll needs a constant count")
    func loops() {
        #expect(failures("BEGIN { break; }").contains("error: 'break' outside of a loop"))
        #expect(failures("BEGIN { continue; }").contains("error: 'continue' outside of a loop"))
        #expect(failures("BEGIN { unroll(pid) { } }").contains("error: unroll needs a constant count"))
        #expect(failures("BEGIN { unroll(101) { } }").contains("error: unroll count must be between 1 and 100 (101 given)"))
        #expect(failures(#"BEGIN { for ($i : 0.."a") { } }"#).contains("error: for range bounds must be integers"))
        #expect(failures("BEGIN { for ($kv : @nope) { } }").contains("error: Undefined map: @nope"))
    }

    @Test("conditions must be scalars")
    func conditions() {
        #expect(failures(#"BEGIN { if ("abc") { } }"#).contains("error: an if condition must be an integer, bool or pointer, not 'string[4]'"))
        #expect(failures(#"BEGIN /comm/ { }"#).contains("error: a predicate must be an integer, bool or pointer, not 'string[16]'"))
        #expect(failures(#"BEGIN { while ((1, 2)) { } }"#).contains("error: a while condition must be an integer, bool or pointer"))
    }

    @Test("assignments: only variables and maps; no struct values")
    func assignments() {
        #expect(failures("BEGIN { $t = *curtask; }").contains("error: cannot assign a struct to a variable; assign a pointer to it or one of its members"))
        #expect(check("BEGIN { $x = 1; $x += 2; $x <<= 1; @m += 5; @m++; ++@m; }").diagnostics == "")
    }

    @Test("exit() and return end the probe; code after them is checked but not emitted")
    func deadCode() {
        #expect(failures("BEGIN { exit(); @x = nope; }").contains("error: Unknown identifier: 'nope'"))
        let r = check("BEGIN { return; @x = 1; }")
        #expect(r.diagnostics == "")
    }

    @Test("printf's %r takes a buffer; %s takes strings and printable values")
    func printfKinds() {
        #expect(failures(#"BEGIN { printf("%r\n", 1); }"#).contains("error: printf: %r specifier expects a value of type buffer (integer supplied)"))
        #expect(check(#"BEGIN { printf("%r %s %s\n", buf("ab", 2), kstack, ntop(1)); }"#).diagnostics == "")
    }
}
