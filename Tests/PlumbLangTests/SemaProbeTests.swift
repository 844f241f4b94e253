import PlumbLang
import PlumbAsm
import Testing

@Suite("Checker: scratch")
struct SemaScratch {
    @Test func dump() {
        for s in [
            #"tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }"#,
            #"tracepoint:syscalls:sys_enter_openat { printf("%d\n", curtask->real_parent->pid); }"#,
        ] {
            let r = check(s)
            print("=== \(s)\n" + r.diagnostics)
            if let p = r.plan { print(Disassembler().text(p.object.programs[0].instructions)) }
        }
    }
}

extension Disassembler {
    func text(_ insns: [Instruction]) -> String { lines(insns).joined(separator: "\n") }
}
