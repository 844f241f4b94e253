// Issue 9's code generator pieces: `args` as a whole value, big temporaries in a per-CPU
// scratch map, iter probes' checks, and the -d listing with script lines.
import PlumbLang
import PlumbAsm
import PlumbBPF
import PlumbBTF
import Testing

@Suite("Code generator: args records, scratch frames, iter, listing")
struct CodegenCodegen9Tests {
    // MARK: args as a whole value

    @Test("print(args) sends the tracepoint's fields as one record typed by the plan's BTF")
    func printArgs() throws {
        let r = check("tracepoint:syscalls:sys_enter_openat { print(args); }")
        #expect(r.diagnostics == "")
        let plan = try #require(r.plan)
        guard case .printValue(let field)? = plan.actions.first, case .record(let id, let size, true) = field.type else {
            Issue.record("expected a printValue of a plan record, got \(plan.actions)")
            return
        }
        #expect(field.offset == 8 && size == 40)
        let btf = try #require(plan.btf)
        #expect(try btf.type(id).members.map(\.name) == ["__syscall_nr", "dfd", "filename", "flags", "mode"])
        // 257, dfd -100 (an `int` in 8 bytes, sign-extended), a pointer, flags 0, mode 0.
        var bytes = [UInt8](repeating: 0, count: 40)
        func put(_ v: UInt64, at o: Int, _ n: Int) { for i in 0..<n { bytes[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        put(257, at: 0, 4)
        put(UInt64(bitPattern: -100), at: 8, 8)
        put(0x7ffd_1234_5678, at: 16, 8)
        #expect(ValueFormatter(btf: btf).format(bytes, as: id)
                == "{ .__syscall_nr = 257, .dfd = -100, .filename = 0x7ffd12345678, .flags = 0, .mode = 0 }")
    }

    @Test("args is stored in a map and a variable; its int fields are narrowed to their C type")
    func storeArgs() throws {
        let r = check("tracepoint:syscalls:sys_enter_openat { @a = args; $v = args; @b[args] = count(); print($v); }")
        #expect(r.diagnostics == "")
        let plan = try #require(r.plan)
        let a = try #require(plan.maps.first { $0.name == "@a" })
        guard case .value(.record(_, 40, true)) = a.value else { Issue.record("@a: \(a.value)"); return }
        let b = try #require(plan.maps.first { $0.name == "@b" })
        #expect(b.keySize == 40)
        // dfd: loaded as 8 bytes, then sign-extended from 32 bits before it is stored.
        let text = Disassembler().lines(try #require(plan.object.programs.first).instructions).joined(separator: "\n")
        #expect(text.contains("r0 = (s32)r0"), "\(text)")
    }

    @Test("args is refused where it is no record: printf %s, %d, and probes without typed args")
    func argsRefused() {
        #expect(failures("tracepoint:syscalls:sys_enter_openat { printf(\"%s\\n\", args); }") == """
        t.bt:1:40: error: printf: %s specifier expects a value of type string (struct args supplied)
        tracepoint:syscalls:sys_enter_openat { printf("%s\\n", args); }
                                               ^~~~~~~~~~~~~~~~~~~~

        """)
        #expect(failures("tracepoint:syscalls:sys_enter_openat { printf(\"%d\\n\", args); }").contains("%d specifier expects a value of type integer (struct args supplied)"))
        #expect(failures("BEGIN { print(args); }").contains("the args builtin is only available in tracepoint"))
    }

    // MARK: scratch frames

    /// The instructions of the first program, and every r10 access below the 512-byte stack.
    func frame(_ text: String) throws -> (plan: TracePlan, insns: [Instruction], deep: [Instruction]) {
        let r = check(text)
        #expect(r.diagnostics == "")
        let plan = try #require(r.plan)
        let insns = try #require(plan.object.programs.first).instructions
        let deep = insns.enumerated().filter { k, i in
            let memory = (i.instructionClass == .ldx && i.src == .r10) || ((i.instructionClass == .st || i.instructionClass == .stx) && i.dst == .r10)
            let address = i.instructionClass == .alu64 && i.aluOp == .add && i.operandSource == .k && k > 0
                && insns[k - 1].instructionClass == .alu64 && insns[k - 1].aluOp == .mov && insns[k - 1].src == .r10 && insns[k - 1].dst == i.dst
            return (memory && i.offset < -512) || (address && i.imm < -512)
        }.map(\.1)
        return (plan, insns, deep)
    }

    @Test("a key of five strings overflows the stack: big slots move to a per-CPU scratch map behind r9")
    func scratchKey() throws {
        let s = "tracepoint:syscalls:sys_enter_openat { @[str(args.filename), str(args.filename), comm, str(args.filename), str(args.filename), str(args.filename)] = count(); }"
        let f = try frame(s)
        #expect(f.deep.isEmpty, "r10 accesses past the 512-byte stack: \(f.deep)")
        let scratch = try #require(f.plan.object.maps.first { $0.name == "plumb_scr0" })
        #expect(scratch.type == .percpuArray && scratch.maxEntries == 1 && scratch.keySize == 4)
        #expect(scratch.valueSize >= 5 * 64 + 16, "the key alone: \(scratch.valueSize)")
        // The prologue: lookup of key 0, NULL check, r9 = value + the frame's size.
        let text = Disassembler().lines(f.insns).map { String($0.split(separator: "\t").last ?? "") }
        #expect(Array(text.prefix(9)) == [
            "r6 = r1", "*(u32 *)(r10 - 0x4) = 0x0", "r2 = r10", "r2 += -0x4", "r1 = 0x0 ll", "call 0x1",
            text[6], "r9 = r0", "r9 += 0x\(String(scratch.valueSize, radix: 16))",
        ])
        #expect(text[6].hasPrefix("if r0 == 0x0 goto"))
        #expect(f.insns.contains { ($0.instructionClass == .stx || $0.instructionClass == .st) && $0.dst == .r9 })
    }

    @Test("BPFTRACE_STRLEN=200 with three string variables and a printf of them compiles")
    func scratchStrlen() throws {
        var options = CompileOptions()
        options.stringLength = 200
        let r = check("tracepoint:syscalls:sys_enter_openat { $a = str(args.filename); $b = str(args.filename); $c = str(args.filename); printf(\"%s %s %s\\n\", $a, $b, $c); @[$a, $b, $c] = count(); }", options: options)
        #expect(r.diagnostics == "")
        #expect(r.plan?.object.maps.contains { $0.name == "plumb_scr0" } == true)
    }

    @Test("a probe that fits the stack keeps it: no scratch map, no r9 prologue")
    func smallProbeUnchanged() throws {
        let f = try frame("tracepoint:syscalls:sys_enter_openat { @[str(args.filename)] = count(); }")
        #expect(!f.plan.object.maps.contains { $0.name.hasPrefix("plumb_scr") })
        #expect(!f.insns.contains { $0.dst == .r9 || $0.src == .r9 })
    }

    @Test("one scratch map per program that needs one, named by the program's index")
    func scratchPerProgram() throws {
        let big = "@[str(args.filename), str(args.filename), str(args.filename), str(args.filename), str(args.filename), comm] = count();"
        let r = check("BEGIN { @x = 1; } tracepoint:syscalls:sys_enter_openat { \(big) } tracepoint:syscalls:sys_enter_openat { \(big) }")
        #expect(r.diagnostics == "")
        #expect(r.plan?.object.maps.map(\.name).filter { $0.hasPrefix("plumb_scr") }.sorted() == ["plumb_scr1", "plumb_scr2"])
        #expect(r.plan?.actions.count == 0)
    }

    // MARK: iter probes

    @Test("iter probes: typed ctx, and refused beside other probes, with a pin, or unknown")
    func iter() throws {
        guard kernelHasBTF else { return }
        let ok = check("iter:task { if (ctx->task != 0) { printf(\"%d\\n\", ctx->task->pid); } }")
        #expect(ok.diagnostics == "")
        #expect(ok.plan?.probes.map(\.target) == [.iter(name: "task")])
        #expect(ok.plan?.object.programs.first?.kind.attach == .iterator)
        #expect(failures("iter:task { } END { }") == """
        t.bt:1:1: error: an iter probe cannot be mixed with other probes, not even BEGIN, END or another iter probe: the iteration runs once and the tracer exits
        iter:task { } END { }
        ^~~~~~~~~

        """)
        #expect(failures("iter:tsak { }").contains("note: did you mean 'iter:task'?"))
    }

    @Test("pinned iterators: the pin path, printf as bpf_seq_printf from read-only data, other output refused")
    func pinnedIterator() throws {
        guard kernelHasBTF else { return }
        let relative = check("iter:task:tasks { if (ctx->task != 0) { printf(\"%s %d %5u|%-3x|%p\\n\", ctx->task->comm, ctx->task->pid, 7, 10, 4096); } }")
        #expect(relative.diagnostics == "")
        #expect(relative.plan?.probes.map(\.target) == [.iter(name: "task", pin: "/sys/fs/bpf/tasks")])
        let plan = try #require(relative.plan)
        // The format, in the kernel's dialect, is the read-only map's contents; no ring buffer.
        let rodata = try #require(plan.object.maps.first { $0.name == "plumb_rodata" })
        #expect(rodata.isReadOnlyData && rodata.flags & (1 << 7) != 0)
        #expect(rodata.contents == Array("%s %lld %5llu|%-3llx|0x%llx\n".utf8) + [0])
        #expect(plan.eventsMap == "")
        let insns = try #require(plan.object.programs.first).instructions
        #expect(insns.contains { $0.opcode == 0x85 && $0.imm == 126 })   // call bpf_seq_printf
        #expect(check("iter:task:/sys/fs/bpf/dir/t { }").plan?.probes.first?.target == .iter(name: "task", pin: "/sys/fs/bpf/dir/t"))
        // Only printf writes to the pin file.
        #expect(failures("iter:task:t { print(1); }").contains("error: print() cannot be used in a pinned iterator: it reports through plumb, which exits once the iterator is pinned; only printf() writes to the pin file"))
        #expect(failures("iter:task:t { exit(); }").contains("error: exit() cannot be used in a pinned iterator"))
        // What the kernel's formatter cannot do is said at compile time.
        #expect(failures("iter:task:t { printf(\"%o\\n\", 8); }").contains("'%o' is not supported by the kernel's bpf_seq_printf"))
        #expect(failures("iter:task:t { printf(\"%.2s\\n\", \"abc\"); }").contains("a precision ('%.…') is not supported"))
        #expect(failures("iter:task:t { printf(\"%d%d%d%d%d%d%d%d%d%d%d%d%d\", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13); }")
            .contains("takes at most 12 arguments (bpf_seq_printf's limit); 13 given"))
        #expect(failures("iter:task:a.b { }").contains("bpffs file names cannot contain '.' ('a.b')"))
        // Values plumb prints in user space are no strings to the kernel's formatter.
        #expect(failures("iter:task:t { printf(\"%s\\n\", strerror(1)); }").contains("error: %s of a 'strerror' value is printed by plumb, not by the kernel, which formats a pinned iterator's printf"))
        #expect(failures("BEGIN { debugf(\"%s\\n\", macaddr(curtask)); }").contains("error: %s of a 'macaddr' value is printed by plumb, not by the kernel, which formats debugf()"))
        #expect(failures("iter:task:dir/ { }").contains("the pin is a file path on bpffs"))
    }

    // MARK: -d

    @Test("the listing puts each script line above its instructions and names maps")
    func listing() throws {
        let r = check("BEGIN {\n  @x = 1;\n  @y = 2;\n}\n")
        let text = try #require(r.plan).listing()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "BEGIN (p0_BEGIN):")
        // The probe's own line has no instruction left once the context copy is dropped.
        #expect(lines[1] == "; @x = 1; @ t.bt:2")
        let x = try #require(lines.firstIndex(of: "; @x = 1; @ t.bt:2")), y = try #require(lines.firstIndex(of: "; @y = 2; @ t.bt:3"))
        #expect(x < y)
        #expect(lines[x + 1 ..< y].contains { $0.hasSuffix("ll  # map AT_x") })
        #expect(lines.filter { $0.hasPrefix(";") }.count == 2)
    }

    // MARK: strerror, macaddr, override, debugf

    @Test("strerror/macaddr are typed for printing; override and debugf check their use and emit their helpers")
    func moreFunctions() throws {
        guard kernelHasBTF else { return }
        #expect(check("BEGIN { printf(\"%s %s\\n\", strerror(1), macaddr(curtask)); @[strerror(2)] = 1; @m = macaddr(curtask); }").diagnostics == "")
        #expect(failures("BEGIN { printf(\"%s\\n\", macaddr(\"abcdef\")); }").contains("error: macaddr() does not support literal string arguments"))
        #expect(failures("BEGIN { printf(\"%s\\n\", macaddr(curtask->comm)); }").contains("error: macaddr() argument must be 6 bytes in size (string[16] is 16)"))
        #expect(failures("BEGIN { printf(\"%s\\n\", strerror(\"x\")); }").contains("error: strerror() expects an integer errno"))
        #expect(failures("BEGIN { printf(\"%d\\n\", strerror(1)); }").contains("%d specifier expects a value of type integer (strerror supplied)"))
        // override: --unsafe, kprobes only; bpf_override_return(ctx, rc).
        #expect(failures("kprobe:vfs_read { override(-5); }").contains("error: override() is an unsafe function; run with --unsafe to allow it"))
        var unsafe = CompileOptions()
        unsafe.unsafe = true
        #expect(check("kretprobe:vfs_read { override(1); }", options: unsafe).diagnostics.contains("error: override() is only available in kprobe probes (not kretprobe)"))
        #expect(check("BEGIN { override(1); }", options: unsafe).diagnostics.contains("error: override() is only available in kprobe probes"))
        let o = check("kprobe:vfs_read { override(-5); }", options: unsafe)
        let insns = try #require(o.plan?.object.programs.first).instructions
        let call = try #require(insns.firstIndex { $0.opcode == 0x85 && $0.imm == 58 })
        #expect(insns[call - 1] == .mov64(.r1, .r6))
        // debugf: bpf_trace_printk with the format from read-only data, a warning, 3 arguments at most.
        let d = check("BEGIN { debugf(\"pid %d comm %s\\n\", pid, comm); }")
        #expect(d.diagnostics.contains("warning: The debugf() builtin is not recommended for production use. For more information see bpf_trace_printk in bpf-helpers(7)."))
        let plan = try #require(d.plan)
        #expect(plan.object.maps.first { $0.name == "plumb_rodata" }?.contents == Array("pid %lld comm %s\n".utf8) + [0])
        #expect(try #require(plan.object.programs.first).instructions.contains { $0.opcode == 0x85 && $0.imm == 6 })
        #expect(failures("BEGIN { debugf(\"%d %d %d %d\", 1, 2, 3, 4); }").contains("debugf() takes at most 3 arguments after the format (bpf_trace_printk's limit); 4 given"))
        #expect(failures("BEGIN { debugf(\"%o\", 1); }").contains("'%o' is not supported by the kernel's bpf_trace_printk, which formats debugf()"))
        #expect(failures("BEGIN { debugf(\"%d\"); }").contains("debugf: Not enough arguments for format string (0 supplied, 1 expected)"))
    }

    @Test("path(): bpf_d_path on a chain the verifier follows, NULL-checked; refused elsewhere")
    func pathOfStructPath() throws {
        guard kernelHasBTF else { return }
        let ok = check("iter:task_file { printf(\"%s\\n\", path(ctx->file->f_path)); @p = path(&ctx->file->f_path); }")
        #expect(ok.diagnostics == "")
        let insns = try #require(ok.plan?.object.programs.first).instructions
        let call = try #require(insns.firstIndex { $0.opcode == 0x85 && $0.imm == 147 })
        // r1 = ctx; r1 = ctx->file; NULL check; r1 += offsetof(struct file, f_path); r2 = buffer; r3 = size
        #expect(insns[call - 1] == .mov64(.r3, 64))
        #expect(insns[call - 7] == .mov64(.r1, .r6))
        #expect(insns[call - 5].opcode == 0x15 && insns[call - 5].dst == .r1)   // if r1 == 0 goto (the string stays empty)
        #expect(failures("BEGIN { printf(\"%s\\n\", path(0)); }").contains("error: path() is only available in iter and kfunc/kretfunc (fentry/fexit) probes"))
        #expect(failures("iter:task_file { printf(\"%s\\n\", path(ctx->task)); }").contains("error: path() expects a struct path or a pointer to one ('struct task_struct' supplied)"))
        #expect(failures("iter:task_file { printf(\"%s\\n\", path(ctx->file->f_pth)); }").contains("note: did you mean 'f_path'?"))
        #expect(failures("iter:task_file { printf(\"%s\\n\", path(1 + 2)); }").contains("error: path() takes a member chain the kernel's verifier can follow"))
    }
}
