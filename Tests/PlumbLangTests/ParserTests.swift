import PlumbLang
import Testing

@Suite("Parser: constructs")
struct ParserConstructTests {
    @Test func preamble() {
        #expect(tree("""
        #!/usr/bin/env bpftrace
        #include <linux/sched.h>
        #include "my.h"
        struct S { int a; char b[16]; struct T *p; unsigned long x, **y; };
        union U { uint32 w; int8 c[4]; };
        struct N { pid_t p; u64 v; };
        config = { max_map_keys = 2; stack_mode = "perf" }
        BEGIN { }
        """) == """
        #include linux/sched.h
        #include my.h
        (struct S (int a) (char[16] b) (struct T * p) (unsigned long x) (unsigned long ** y))
        (union U (uint32 w) (int8[4] c))
        (struct N (pid_t p) (u64 v))
        (config max_map_keys 2)
        (config stack_mode "perf")
        BEGIN { }
        """)
    }

    @Test func structSemicolonIsOptional() {
        // As in bpftrace's own examples: `struct MyStruct { int y[4]; } uprobe:...`.
        #expect(tree("struct MyStruct { int y[4]; } uprobe:./bin:f { @x = ((struct MyStruct *)arg0)->y[0]; }") ==
            "(struct MyStruct (int[4] y))\nuprobe:./bin:f { (= @x ([] (-> (cast struct MyStruct * arg0) y) 0)) }")
    }

    @Test func structFieldRanges() {
        let r = parseText("struct S { int a; char *b; };\nBEGIN {}")
        let s = r.script.structs[0]
        #expect(s.range == SourceRange(0, 29))
        #expect(s.fields.map(\.range) == [SourceRange(15, 16), SourceRange(24, 25)])
        #expect(s.fields.map(\.type.range) == [SourceRange(11, 14), SourceRange(18, 22)])
    }

    @Test func probesAndPredicates() {
        #expect(tree("""
        BEGIN { }
        END{}
        begin { } end { }
        kprobe:vfs_read, kretprobe:vfs_read /pid == 1/ { }
        t:syscalls:sys_enter_openat /args->flags & 1/ { }
        BEGIN/1/{ }
        i:s:1 /$1/
        {
        }
        """) == """
        BEGIN { }
        END { }
        BEGIN { }
        END { }
        kprobe:vfs_read,kretprobe:vfs_read /(== pid 1)/ { }
        tracepoint:syscalls:sys_enter_openat /(& (-> args flags) 1)/ { }
        BEGIN /1/ { }
        interval:s:1 /$1/ { }
        """)
    }

    @Test func predicateWithDivision() {
        #expect(tree("BEGIN / 10 / 2 / { }") == "BEGIN /(/ 10 2)/ { }")
        #expect(tree("BEGIN /(10 / 2)/{ }") == "BEGIN /(/ 10 2)/ { }")
    }

    @Test(arguments: [
        ("BEGIN", "BEGIN", [String]()),
        ("end", "END", []),
        ("t:syscalls:sys_enter_*", "tracepoint", ["syscalls", "sys_enter_*"]),
        ("tracepoint:sched:sched_switch", "tracepoint", ["sched", "sched_switch"]),
        ("rawtracepoint:sched_switch", "rawtracepoint", ["sched_switch"]),
        ("rt:sched_switch", "rawtracepoint", ["sched_switch"]),
        ("k:vfs_read+10", "kprobe", ["vfs_read+10"]),
        ("kr:vfs_read", "kretprobe", ["vfs_read"]),
        ("uprobe:/bin/bash:readline", "uprobe", ["/bin/bash", "readline"]),
        ("u:/bin/x:0x1234", "uprobe", ["/bin/x", "0x1234"]),
        ("uprobe:/bin/x:f+16", "uprobe", ["/bin/x", "f+16"]),
        ("uprobe:libc:malloc", "uprobe", ["libc", "malloc"]),
        (#"uprobe:"/path with:colon":f"#, "uprobe", ["/path with:colon", "f"]),
        ("ur:/bin/bash:readline", "uretprobe", ["/bin/bash", "readline"]),
        ("U:/path:provider:name", "usdt", ["/path", "provider", "name"]),
        ("usdt:/path:name", "usdt", ["/path", "name"]),
        ("i:ms:100", "interval", ["ms", "100"]),
        ("interval:s:1", "interval", ["s", "1"]),
        ("p:hz:99", "profile", ["hz", "99"]),
        ("s:cpu-clock:100000", "software", ["cpu-clock", "100000"]),
        ("h:cache-misses:1000000", "hardware", ["cache-misses", "1000000"]),
        ("w:0x1234:8:rw", "watchpoint", ["0x1234", "8", "rw"]),
        ("aw:0x1234:8:w", "asyncwatchpoint", ["0x1234", "8", "w"]),
        ("f:vfs_read", "kfunc", ["vfs_read"]),
        ("fentry:vfs_read", "kfunc", ["vfs_read"]),
        ("fexit:vfs_read", "kretfunc", ["vfs_read"]),
        ("fr:vfs_read", "kretfunc", ["vfs_read"]),
        ("kfunc:mod:f", "kfunc", ["mod", "f"]),
        ("iter:task", "iter", ["task"]),
        ("it:task_file", "iter", ["task_file"]),
        ("process:begin", "process", ["begin"]),
        ("lsm:perf_event_open", "lsm", ["perf_event_open"]),
        ("watchpoint::0x10000000:8:rw", "watchpoint", ["", "0x10000000", "8", "rw"]),
        ("software:faults:", "software", ["faults", ""]),
        ("uprobe:./testprogs/array_access:test_struct", "uprobe", ["./testprogs/array_access", "test_struct"]),
        ("uprobe:$1:main", "uprobe", ["$1", "main"]),
        ("kprobe:vfs_*read?", "kprobe", ["vfs_*read?"]),
    ])
    func attachPoints(text: String, provider: String, fields: [String]) throws {
        let source = "\(text) { }"
        let r = parseText(source)
        #expect(r.diagnostics == "")
        let ap = try #require(r.script.probes.first?.attachPoints.first)
        #expect(ap.text == text)
        #expect(ap.provider == provider)
        #expect(ap.fields == fields)
        #expect(ap.range == SourceRange(0, text.utf8.count))
    }

    @Test func statements() {
        #expect(tree("""
        BEGIN {
            $x = 1; @a = 2; @b[1, "k"] = 3; @ = 4; @[5] = 6;
            $x += 1; $x -= 1; $x *= 1; $x /= 1; $x %= 1; $x &= 1; $x |= 1; $x ^= 1; $x <<= 1; @a >>= 1;
            @x++; $i--; ++@y; --$j;
            delete(@a[1]); clear(@a); exit()
        }
        """) == "BEGIN { (= $x 1) (= @a 2) (= (@b 1 \"k\") 3) (= @ 4) (= (@ 5) 6) (+= $x 1) (-= $x 1) (*= $x 1) (/= $x 1) (%= $x 1) "
            + "(&= $x 1) (|= $x 1) (^= $x 1) (<<= $x 1) (>>= @a 1) (post++ @x) (post-- $i) (++pre @y) (--pre $j) "
            + "(call delete (@a 1)) (call clear @a) (call exit) }")
    }

    @Test func controlFlow() {
        #expect(tree("""
        BEGIN {
            if ($x) { a() } if ($x) { a() } else { b() }
            if ($x) { a(); } else if ($y) { b(); } else { c(); }
            unroll (3) { $i++ }
            while ($i < 10) { if ($i == 5) { break; } $i++; continue; }
            for ($kv : @m) { print($kv.0, $kv.1); }
            for ($i : 0..10) { }
            for ($i : $a + 1..$b * 2) { }
            { $nested = 1; }
            return;
        }
        kprobe:f { return 1 }
        """) == """
        BEGIN { (if $x { (call a) }) (if $x { (call a) } else { (call b) }) (if $x { (call a) } else { (if $y { (call b) } else { (call c) }) }) \
        (unroll 3 { (post++ $i) }) (while (< $i 10) { (if (== $i 5) { break }) (post++ $i) continue }) \
        (for $kv @m { (call print (.0 $kv) (.1 $kv)) }) (for $i 0..10 { }) (for $i (+ $a 1)..(* $b 2) { }) { (= $nested 1) } (return) }
        kprobe:f { (return 1) }
        """)
    }

    @Test func semicolonsAreOptionalAfterBlocksAndLastStatement() {
        #expect(tree("BEGIN { if (1) { } $a = 1; ; $b = 2 }") == "BEGIN { (if 1 { }) (= $a 1) (= $b 2) }")
    }

    @Test func primaries() {
        #expect(expr("123") == "123")
        #expect(expr("0x10") == "16")
        #expect(expr("'a'") == "97")
        #expect(expr(#""a\tb\"""#) == #""a\tb\"""#)
        #expect(expr("true") == "true")
        #expect(expr("false") == "false")
        #expect(expr("pid") == "pid")
        #expect(expr("arg0") == "arg0")
        #expect(expr("$1") == "$1")
        #expect(expr("$12") == "$12")
        #expect(expr("$#") == "$#")
        #expect(expr("$y") == "$y")
        #expect(expr("@") == "@")
        #expect(expr("@m") == "@m")
        #expect(expr("@m[1]") == "(@m 1)")
        #expect(expr("@[1, 2]") == "(@ 1 2)")
        #expect(expr("@m[(1, 2)]") == "(@m (tuple 1 2))")
        #expect(expr("@m[1][2]") == "([] (@m 1) 2)")
        #expect(expr("count()") == "(call count)")
        #expect(expr("printf(\"%d %s\", pid, comm)") == "(call printf \"%d %s\" pid comm)")
        #expect(expr("str(args->filename, 16)") == "(call str (-> args filename) 16)")
        #expect(expr("kstack(perf, 5)") == "(call kstack perf 5)")
        #expect(expr("(1, \"a\", (2, 3))") == "(tuple 1 \"a\" (tuple 2 3))")
        #expect(expr("$t.0") == "(.0 $t)")
        #expect(expr("$t.1.2") == "(.2 (.1 $t))")
        #expect(expr("args->f") == "(-> args f)")
        #expect(expr("args.f") == "(. args f)")
        #expect(expr("curtask->mm->owner->pid") == "(-> (-> (-> curtask mm) owner) pid)")
        #expect(expr("$s.a.b[3].c") == "(. ([] (. (. $s a) b) 3) c)")
        #expect(expr("sizeof(struct task_struct)") == "(sizeof struct task_struct)")
        #expect(expr("sizeof(uint32)") == "(sizeof uint32)")
        #expect(expr("sizeof(unsigned long long)") == "(sizeof unsigned long long)")
        #expect(expr("sizeof(char *)") == "(sizeof char *)")
        #expect(expr("sizeof($x)") == "(sizeof $x)")
        #expect(expr("sizeof(curtask->pid)") == "(sizeof (-> curtask pid))")
        #expect(expr("offsetof(struct task_struct, pid)") == "(offsetof struct task_struct pid)")
        #expect(expr("offsetof(struct task_struct, se.vruntime)") == "(offsetof struct task_struct se.vruntime)")
        #expect(expr("offsetof(my_t, a)") == "(offsetof my_t a)")
    }

    @Test func casts() {
        #expect(expr("(struct task_struct *)curtask") == "(cast struct task_struct * curtask)")
        #expect(expr("(struct sock **)arg0") == "(cast struct sock ** arg0)")
        #expect(expr("(union u *)arg0") == "(cast union u * arg0)")
        #expect(expr("(uint32)$x") == "(cast uint32 $x)")
        #expect(expr("(int8)-1") == "(cast int8 (- 1))")
        #expect(expr("(unsigned int)1") == "(cast unsigned int 1)")
        #expect(expr("(uint8[4])$x") == "(cast uint8[4] $x)")
        #expect(expr("(my_t *)arg1") == "(cast my_t * arg1)")
        #expect(expr("(struct task_struct *)curtask->parent") == "(cast struct task_struct * (-> curtask parent))")
        #expect(expr("((struct task_struct *)curtask)->pid") == "(-> (cast struct task_struct * curtask) pid)")
        #expect(expr("(uint64)1 + 2") == "(+ (cast uint64 1) 2)")
        // Not casts: a parenthesised expression.
        #expect(expr("(pid) + 1") == "(+ pid 1)")
        #expect(expr("(pid * 2)") == "(* pid 2)")
    }

    @Test func keywordsAsFieldNames() {
        #expect(expr("args->if + $s.for") == "(+ (-> args if) (. $s for))")
    }

    @Test func expressionIdsAreUniqueAndRangesPrecise() {
        let text = "BEGIN /pid/ { @a[1] = (uint32)$x + f(2, 3) ? -1 : $t.0; }"
        let r = parseText(text)
        #expect(r.diagnostics == "")
        var ids: [Int] = []
        var ranges: [String: SourceRange] = [:]
        func visit(_ e: Expr) {
            ids.append(e.id)
            ranges[e.sexpr] = e.range
            e.kind.forEachChild(visit)
        }
        let p = r.script.probes[0]
        visit(p.predicate!)
        guard case .assign(let t, nil, let v) = p.body.statements[0].kind else { Issue.record("not an assignment"); return }
        visit(t); visit(v)
        #expect(Set(ids).count == ids.count)
        let file = SourceFile(name: "t.bt", text: text)
        #expect(ranges.mapValues { file.text(in: $0) } == [
            "pid": "pid", "(@a 1)": "@a[1]", "1": "1", "(cast uint32 $x)": "(uint32)$x", "$x": "$x",
            "(+ (cast uint32 $x) (call f 2 3))": "(uint32)$x + f(2, 3)", "(call f 2 3)": "f(2, 3)", "2": "2", "3": "3",
            "(? (+ (cast uint32 $x) (call f 2 3)) (- 1) (.0 $t))": "(uint32)$x + f(2, 3) ? -1 : $t.0",
            "(- 1)": "-1", "(.0 $t)": "$t.0", "$t": "$t",
        ])
        #expect(file.text(in: p.body.statements[0].range) == "@a[1] = (uint32)$x + f(2, 3) ? -1 : $t.0")
        #expect(file.text(in: p.body.range) == "{ @a[1] = (uint32)$x + f(2, 3) ? -1 : $t.0; }")
        #expect(file.text(in: p.range) == text)
    }

    @Test func commentsAnywhere() {
        #expect(tree("""
        // leading
        /* block
           comment */ BEGIN /* a */ /pid/ /* b */ { // c
            $x = /* inline */ 1; // trailing
        } /* end */
        """) == "BEGIN /pid/ { (= $x 1) }")
    }
}

@Suite("Parser: precedence and associativity")
struct ParserPrecedenceTests {
    @Test(arguments: [
        ("1 + 2 * 3", "(+ 1 (* 2 3))"),
        ("1 * 2 + 3", "(+ (* 1 2) 3)"),
        ("1 - 2 - 3", "(- (- 1 2) 3)"),
        ("1 / 2 / 3", "(/ (/ 1 2) 3)"),
        ("1 % 2 * 3", "(* (% 1 2) 3)"),
        ("1 << 2 + 3", "(<< 1 (+ 2 3))"),
        ("1 < 2 << 3", "(< 1 (<< 2 3))"),
        ("1 == 2 < 3", "(== 1 (< 2 3))"),
        ("1 & 2 == 3", "(& 1 (== 2 3))"),
        ("1 ^ 2 & 3", "(^ 1 (& 2 3))"),
        ("1 | 2 ^ 3", "(| 1 (^ 2 3))"),
        ("1 && 2 | 3", "(&& 1 (| 2 3))"),
        ("1 || 2 && 3", "(|| 1 (&& 2 3))"),
        ("1 || 2 || 3", "(|| (|| 1 2) 3)"),
        ("1 != 2 >= 3", "(!= 1 (>= 2 3))"),
        ("1 > 2 <= 3", "(<= (> 1 2) 3)"),
        ("1 >> 2 >> 3", "(>> (>> 1 2) 3)"),
        ("1 ? 2 : 3 ? 4 : 5", "(? 1 2 (? 3 4 5))"),
        ("1 ? 2 ? 3 : 4 : 5", "(? 1 (? 2 3 4) 5)"),
        ("1 || 2 ? 3 + 4 : 5 & 6", "(? (|| 1 2) (+ 3 4) (& 5 6))"),
        ("-1 + 2", "(+ (- 1) 2)"),
        ("- -1", "(- (- 1))"),
        ("!~1", "(! (~ 1))"),
        ("-$x * 2", "(* (- $x) 2)"),
        ("*$p + 1", "(+ (* $p) 1)"),
        ("&$s->f", "(& (-> $s f))"),
        ("*$p->q", "(* (-> $p q))"),
        ("-$a[1]", "(- ([] $a 1))"),
        ("!@m[1]", "(! (@m 1))"),
        ("++$x + 1", "(+ (++pre $x) 1)"),
        ("$x++ + 1", "(+ (post++ $x) 1)"),
        ("$x-- - --$y", "(- (post-- $x) (--pre $y))"),
        ("(1 + 2) * 3", "(* (+ 1 2) 3)"),
        ("(uint8)$x * 2", "(* (cast uint8 $x) 2)"),
        ("-(int32)$x", "(- (cast int32 $x))"),
        ("+1", "(+ 1)"),
        ("1 - -1", "(- 1 (- 1))"),
        ("1---1", "(- (post-- 1) 1)"),
        ("1+++1", "(+ (post++ 1) 1)"),
    ])
    func precedence(source: String, expected: String) {
        #expect(expr(source) == expected)
    }
}
