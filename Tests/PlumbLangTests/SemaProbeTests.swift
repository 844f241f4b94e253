import PlumbLang
import Testing

@Suite("Checker: scratch")
struct SemaScratch {
    @Test func dump() {
        for s in [
            #"rawtracepoint:sched_switch { printf("%d\n", args.nxt->pid); }"#,
            #"BEGIN { printf("%d\n", curtask->pdi); }"#,
            #"BEGIN { @x = 1; @x = "a"; $y = 1; $y = "s"; foo(1); print(bar); }"#,
            #"t:syscalls:sys_enter_opnat { }"#,
            #"BEGIN { printf("%s %d\n", 1); printf("%d\n", "a"); }"#,
            #"BEGIN { if (comm == 1) {} @m[1] = 1; @m["a"] = 2; $u = 1; }"#,
            #"BEGIN { printf("%d", @y); }"#,
            #"BEGIN { $x = (uint8)1; $x = 1000; @a = (uint32)1 < -1; }"#,
        ] {
            print("=== \(s)\n" + check(s).diagnostics)
        }
    }
}
