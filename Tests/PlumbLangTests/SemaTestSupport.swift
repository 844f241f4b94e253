import PlumbLang
import PlumbBTF
import Testing

/// A fixed world for checker tests: the running kernel's BTF (when there is one) and two
/// tracepoints with known format files, so results do not depend on tracefs.
let openatFormat = """
name: sys_enter_openat
ID: 782
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:int __syscall_nr;	offset:8;	size:4;	signed:1;
	field:int dfd;	offset:16;	size:8;	signed:0;
	field:const char * filename;	offset:24;	size:8;	signed:0;
	field:int flags;	offset:32;	size:8;	signed:0;
	field:umode_t mode;	offset:40;	size:8;	signed:0;

print fmt: "dfd: 0x%08lx"
"""

let execFormat = """
name: sched_process_exec
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:__data_loc char[] filename;	offset:8;	size:4;	signed:0;
	field:pid_t pid;	offset:12;	size:4;	signed:1;
	field:pid_t old_pid;	offset:16;	size:4;	signed:1;
	field:char comm[16];	offset:20;	size:16;	signed:0;
"""

func testEnvironment() -> ProbeEnvironment {
    let btf = try? BTF.kernel()
    return ProbeEnvironment(
        kernelBTF: { btf },
        tracepointFormat: { c, n in
            switch (c, n) {
            case ("syscalls", "sys_enter_openat"): openatFormat
            case ("sched", "sched_process_exec"): execFormat
            default: nil
            }
        },
        tracepoints: { [("syscalls", "sys_enter_openat"), ("syscalls", "sys_enter_open"), ("sched", "sched_process_exec")] },
        resolveUprobe: { b, s in
            guard b == "/bin/true" || b == "libc" else { throw CompileFailure("binary '\(b)' not found") }
            guard s == "main" || s == "malloc" else { throw CompileFailure("no function symbol named '\(s)'") }
            return (b == "libc" ? "/usr/lib/x86_64-linux-gnu/libc.so.6" : b, 0x1000)
        },
        resolveBinary: { $0 == "/bin/true" ? $0 : nil },
        kernelSymbol: { $0 == "vfs_read" ? 0xffffffff81234560 : nil })
}

/// Compiles `text` in the test world; returns the plan and the rendered diagnostics.
func check(_ text: String, options: CompileOptions = CompileOptions()) -> (plan: TracePlan?, diagnostics: String) {
    let file = SourceFile(name: "t.bt", text: text)
    let (script, parseDiags) = parse(file)
    let printer = DiagnosticPrinter(file: file)
    if parseDiags.contains(where: { $0.severity == .error }) { return (nil, printer.render(parseDiags)) }
    let (plan, diags) = compile(script, file: file, environment: testEnvironment(), options: options)
    return (plan, printer.render(diags))
}

/// The diagnostics of a script that must fail.
func failures(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let r = check(text)
    #expect(r.plan == nil, sourceLocation: sourceLocation)
    return r.diagnostics
}

var kernelHasBTF: Bool { (try? BTF.kernel()) != nil }
