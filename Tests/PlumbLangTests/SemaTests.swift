import PlumbLang
import PlumbBTF
import Testing

@Suite("Checker: types and diagnostics")
struct SemaTests {
    @Test("a wrong struct member names the type, with the nearest member")
    func wrongMember() throws {
        guard kernelHasBTF else { return }
        #expect(failures(#"BEGIN { printf("%d\n", curtask->pdi); }"#) == """
        t.bt:1:24: error: 'struct task_struct' has no member named 'pdi'
        BEGIN { printf("%d\\n", curtask->pdi); }
                               ^~~~~~~~~~~~
        note: did you mean 'pid'?

        """)
    }

    @Test("all errors of a script at once, in source order")
    func allErrors() {
        let d = failures(#"BEGIN { @x = 1; @x = "a"; $y = 1; $y = "s"; foo(1); print(bar); }"#)
        #expect(d.contains("t.bt:1:17: error: Type mismatch for @x: trying to assign value of type 'string[2]' when map already contains a value of type 'int64'"))
        #expect(d.contains("t.bt:1:38: error: Type mismatch for $y: trying to assign value of type 'string[2]' when variable already contains a value of type 'int64'"))
        #expect(d.contains("t.bt:1:45: error: Unknown function: foo"))
        #expect(d.contains("t.bt:1:59: error: Unknown identifier: 'bar'"))
    }

    @Test("printf formats are checked against their arguments")
    func printfChecks() {
        #expect(failures(#"BEGIN { printf("%s %d\n", 1); }"#).contains("error: printf: Not enough arguments for format string (1 supplied, 2 expected)"))
        #expect(failures(#"BEGIN { printf("%d\n", 1, 2); }"#).contains("error: printf: Too many arguments for format string (2 supplied, 1 expected)"))
        #expect(failures(#"BEGIN { printf("%d\n", "a"); }"#).contains("error: printf: %d specifier expects a value of type integer (string supplied)"))
        #expect(failures(#"BEGIN { printf("%s\n", 1); }"#).contains("error: printf: %s specifier expects a value of type string (integer supplied)"))
        #expect(failures(#"BEGIN { printf("%y\n", 1); }"#).contains("error: printf: invalid format specifier '%y'"))
        #expect(check(#"BEGIN { printf("%-10s %5d %lu %llu %ld %lld %x %X %o %c %p %% %i %u\n", comm, 1, 2, 3, 4, 5, 6, 7, 8, 65, 0, 9, 10); }"#).diagnostics == "")
    }

    @Test("wrong argument counts and kinds use bpftrace's wording")
    func arity() {
        #expect(failures("BEGIN { @x = count(1); }").contains("error: count() requires no arguments (1 provided)"))
        #expect(failures("BEGIN { @x = hist(); }").contains("error: hist() requires one argument (0 provided)"))
        #expect(failures("BEGIN { @x = lhist(1, 0, 10); }").contains("error: lhist() requires 4 arguments (3 provided)"))
        #expect(failures("BEGIN { $a = str(1, 2, 3); }").contains("error: str() takes up to 2 arguments (3 provided)"))
        #expect(failures("BEGIN { printf(1); }").contains("error: printf() expects a string literal (integer provided)"))
        #expect(failures(#"BEGIN { @x = ksym("a"); }"#).contains("error: ksym() expects an integer or pointer argument"))
        #expect(failures("BEGIN { @x = lhist(1, $y, 10, 1); }").contains("error: Undefined or undeclared variable: $y"))
    }

    @Test("division warns about negative signed operands, as bpftrace 0.17")
    func division() {
        let r = check("BEGIN { @d = -5 / 2; @e = 10 / 3; }")
        #expect(r.diagnostics.contains("warning: signed operands for '/' can lead to undefined behavior (cast to unsigned to silence warning)"))
        #expect(r.diagnostics.components(separatedBy: "warning:").count == 2)
    }

    @Test("map keys and values keep their types")
    func mapTypes() {
        #expect(failures(#"BEGIN { @m[1] = 1; @m["a"] = 2; }"#).contains("error: Argument mismatch for @m: trying to access with arguments: [string[2]] when map expects arguments: [int64]"))
        #expect(failures("BEGIN { @x = count(); @x = 1; }").contains("error: Type mismatch for @x: trying to assign value of type 'int64' when map already contains a value of type 'count'"))
        #expect(failures(#"BEGIN { printf("%d", @y); }"#) == """
        t.bt:1:22: error: Undefined map: @y
        BEGIN { printf("%d", @y); }
                             ^~

        """)
        #expect(failures("BEGIN { count(); }").contains("error: count() should be assigned to a map: @m = count(...)"))
    }

    @Test("a map read in one probe and assigned in a later one is fine")
    func mapOrder() {
        #expect(check("BEGIN { @a = @b + 1; } END { @b = 2; }").diagnostics == "")
    }

    @Test("a map read in the statement that first assigns it reads 0; one never assigned is still undefined")
    func mapSelfReference() {
        let r = check("BEGIN { @n = @n + 1; @s[comm] = @s[comm] * 2; }")
        #expect(r.plan != nil && r.diagnostics == "", "\(r.diagnostics)")
        #expect(failures("BEGIN { @a = @y + 1; }").contains("error: Undefined map: @y"))
        // Typed by its later string assignment, so the addition is the error.
        #expect(failures(#"BEGIN { @t = @t + 1; @t = "x"; }"#).contains("error: Type mismatch for '+'"))
    }

    @Test("comparisons of mismatched types and signs")
    func comparisons() {
        #expect(failures("BEGIN { if (comm == 1) {} }").contains("error: Type mismatch for '==': comparing 'string[16]' with 'int64'"))
        let r = check("BEGIN { $a = (uint32)1; $b = -1; if ($a < $b) { @ = 1; } }")
        #expect(r.diagnostics.contains("warning: comparison of integers of different signs: 'unsigned int32' and 'int64' can lead to undefined behavior"))
        #expect(r.plan != nil)
        // As bpftrace 0.17: constants warn too unless a non-negative literal; + - * / % warn as arithmetic.
        #expect(check("BEGIN { if ((uint64)1 < -1) { @ = 1; } }").diagnostics.contains("1:23: warning: comparison of integers of different signs: 'unsigned int64' and 'int64'"))
        #expect(!check("BEGIN { $u = (uint32)5; if ($u < 1) { @ = $u; } }").diagnostics.contains("warning"))
        #expect(check("BEGIN { $u = (uint32)5; @ = $u + -1; }").diagnostics.contains("warning: arithmetic on integers of different signs: 'unsigned int32' and 'int64'"))
    }

    @Test("warnings: unused variables, truncating assignments")
    func warnings() {
        let r = check("BEGIN { $x = (uint8)1; $x = 1000; }")
        #expect(r.plan != nil)
        #expect(r.diagnostics == """
        t.bt:1:9: warning: variable '$x' was assigned but never used
        BEGIN { $x = (uint8)1; $x = 1000; }
                ^~
        t.bt:1:24: warning: assignment to '$x' of type 'unsigned int8' truncates a value of type 'int64'
        BEGIN { $x = (uint8)1; $x = 1000; }
                               ^~~~~~~~~

        """)
    }

    @Test("undefined variables, with the nearest defined one")
    func undefinedVariable() {
        #expect(failures("BEGIN { $count = 1; @ = $cont; }").contains("error: Undefined or undeclared variable: $cont"))
        #expect(failures("BEGIN { $count = 1; @ = $cont; }").contains("note: did you mean '$count'?"))
    }

    @Test("positional parameters: numbers, strings, count")
    func positional() {
        let r = check(#"BEGIN { @a = $1 + 1; @b = $2; @c = $#; }"#, options: CompileOptions(positionalParameters: ["41", "text"]))
        #expect(r.diagnostics == "")
        #expect(r.plan?.maps.first { $0.name == "@b" }?.value == .value(.string(size: 5)))
        #expect(check("BEGIN { @a = $3; }").diagnostics == "", "a missing parameter is 0, as in bpftrace")
    }

    @Test("unsafe functions need --unsafe")
    func unsafe() {
        #expect(failures(#"BEGIN { system("ls"); }"#).contains("error: system() is an unsafe function; run with --unsafe to allow it"))
        #expect(check(#"BEGIN { system("ls %d", 1); }"#, options: CompileOptions(unsafe: true)).diagnostics == "")
    }

    @Test("casts, sizeof, offsetof fold to constants")
    func constants() throws {
        guard kernelHasBTF else { return }
        let r = check("BEGIN { @a = sizeof(struct task_struct) > 0; @b = offsetof(struct task_struct, pid); @c = (uint8)300; @d = sizeof(int32); }")
        #expect(r.diagnostics == "")
        #expect(failures("BEGIN { @a = sizeof(struct no_such_type); }").contains("error: Unknown struct/union: 'struct no_such_type'"))
    }

    @Test("script structs are laid out as C does and accessed like kernel ones")
    func scriptStructs() {
        let text = """
        struct S { int a; char b[16]; struct S *next; unsigned long x, *y; }
        union U { char c; long l; }
        uprobe:/bin/true:main { $s = (struct S *)arg0; @a = $s->a; @b = $s->b; @n = $s->next->a;
          @sz = sizeof(struct S); @off = offsetof(struct S, next); @u = sizeof(union U); }
        """
        let r = check(text)
        #expect(r.diagnostics == "")
        #expect(failures("struct S { int a; } BEGIN { @x = ((struct S *)0)->b; }").contains("error: 'struct S' has no member named 'b'"))
        #expect(failures("struct S { struct Nope n; } BEGIN { }").contains("error: Unknown struct/union: 'struct Nope'"))
    }

    @Test("kernel enumerators and common header macros are constants")
    func namedConstants() throws {
        guard kernelHasBTF else { return }
        let r = check("BEGIN { @a = TCP_SYN_SENT; @b = AF_INET6; @c = TASK_RUNNING; @d = bswap((uint32)1); }")
        #expect(r.diagnostics == "")
        #expect(failures("BEGIN { @a = TCP_SYN_SNET; }").contains("error: Unknown identifier: 'TCP_SYN_SNET'"))
    }

    @Test("map layouts follow the plan contract")
    func layouts() {
        let r = check(#"BEGIN { @c[1, "ab"] = count(); @s = sum(-1); @m = min(1); @h[comm] = hist(3); @l = lhist(1, 0, 10, 2); @v = (1, "x"); }"#)
        #expect(r.diagnostics == "")
        guard let maps = r.plan?.maps else { return }
        let c = maps.first { $0.name == "@c" }
        #expect(c?.keys == [Field(offset: 0, type: .integer(size: 8, signed: true)), Field(offset: 8, type: .string(size: 3))])
        #expect(c?.keySize == 16)
        #expect(c?.value == .count)
        #expect(maps.first { $0.name == "@s" }?.value == .sum(signed: true))
        #expect(maps.first { $0.name == "@m" }?.value == .min(signed: true))
        #expect(maps.first { $0.name == "@h" }?.keySize == 24)
        #expect(maps.first { $0.name == "@l" }?.value == .lhist(min: 0, max: 10, step: 2))
        #expect(maps.first { $0.name == "@l" }?.keySize == 16)
    }
}
