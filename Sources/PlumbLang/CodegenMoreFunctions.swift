// bpftrace 0.17's remaining functions:
// - strerror(n): the errno, printed in user space as strerror(3)'s message;
// - macaddr(x): 6 bytes (an array, or what a pointer or address points at) printed as
//   `AA:BB:CC:DD:EE:FF`;
// - override(rc) (--unsafe, kprobes only): bpf_override_return, the probed function returns rc;
// - path(p): bpf_d_path (CodegenPath.swift);
// - debugf(fmt, ...): bpf_trace_printk to the kernel's trace buffer (trace_pipe), the format in
//   the kernel's dialect (CodegenSeqPrintf.swift) from read-only data, at most 3 arguments.
import PlumbAsm
import PlumbBPF

extension Compiler {
    static let overrideReturnHelper: Int32 = 58
    static let tracePrintkHelper: Int32 = 6

    /// One of the functions above, or nil when `name` is none of them.
    func moreFunction(_ name: String, _ args: [Expr], _ e: Expr) -> Val? {
        func arity(_ n: ClosedRange<Int>) -> Bool { checkArity(name, n, args, e) }
        switch name {
        case "strerror":
            guard arity(1...1) else { return .poison }
            let v = expr(args[0])
            if v.isPoison { return .poison }
            guard v.type.isInteger else {
                release(v)
                error("strerror() expects an integer errno (\(v.type) supplied)", args[0].range)
                return .poison
            }
            let r = load(v, into: .r0)
            release(v)
            return result(.strerror, from: r)
        case "macaddr":
            guard arity(1...1) else { return .poison }
            return macaddr(args[0])
        case "override":
            guard arity(1...1) else { return .poison }
            guard options.unsafe else { error("override() is an unsafe function; run with --unsafe to allow it", e.range); return .poison }
            guard programKind?.attach == .kprobe else {
                error("override() is only available in kprobe probes (not kretprobe): it makes the probed kernel function return the value at once", e.range)
                return .poison
            }
            let v = expr(args[0])
            if v.isPoison { return .poison }
            guard v.type.isInteger else { release(v); error("override() expects an integer return value (\(v.type) supplied)", args[0].range); return .poison }
            load(v, into: .r2)
            release(v)
            b.emit(.mov64(.r1, .r6))
            b.emit(.call(helper: Compiler.overrideReturnHelper))
            return Val(type: .none, loc: .imm(0))
        case "path":
            return path(args, e)   // CodegenPath.swift
        case "debugf":
            guard args.count >= 1 else { _ = arity(1...4); return .poison }
            debugf(args, e)
            return Val(type: .none, loc: .imm(0))
        default:
            return nil
        }
    }

    /// macaddr(x): the 6 bytes in an 8-byte slot whose last two bytes are zero (map keys compare all 8).
    func macaddr(_ arg: Expr) -> Val {
        if case .string = arg.kind { error("macaddr() does not support literal string arguments", arg.range); return .poison }
        let v = expr(arg)
        if v.isPoison { return .poison }
        defer { release(v) }
        let o = frame.allocate(8)
        b.emit(.store(.r10, offset: Int16(clamping: o), imm: 0, size: .doubleWord))
        switch v.type {
        case .array, .string:
            guard v.type.size == 6 else { error("macaddr() argument must be 6 bytes in size (\(v.type) is \(v.type.size))", arg.range); return .poison }
            switch v.loc {
            case .memory(let base, let offset, let space): read(into: o, size: 6, base: base, offset: offset, space: space.readable)
            case .slot(let s): copy(from: .r10, s, to: .r10, o, size: 6)
            default: error("macaddr() cannot read this array", arg.range); return .poison
            }
        case .pointer(_, let space):
            read(into: o, size: 6, base: v.loc, offset: 0, space: space.readable)
        case .int:
            // A bare address: kernel memory, as bpftrace reads it.
            read(into: o, size: 6, base: v.loc, offset: 0, space: .kernel)
        default:
            error("macaddr() expects a 6-byte array, or a pointer or address of one (\(v.type) supplied)", arg.range)
            return .poison
        }
        return Val(type: .macaddr, loc: .slot(o))
    }

    /// debugf(fmt, a, b, c): bpf_trace_printk(fmt, size, a, b, c); strings by address.
    func debugf(_ args: [Expr], _ e: Expr) {
        guard case .string(let format) = args[0].kind else { error("debugf() expects a format string literal", args[0].range); return }
        let values = Array(args.dropFirst())
        guard values.count <= 3 else {
            error("debugf() takes at most 3 arguments after the format (bpf_trace_printk's limit); \(values.count) given", e.range)
            return
        }
        // Checked as printf's arguments are, from code that is thrown away.
        let vals = dryRun { values.map { expr($0) } }
        if vals.contains(where: \.isPoison) { return }
        guard let specs = checkedFormat("debugf", format, formatRange: args[0].range, vals, e) else { return }
        let kernelFormat: String
        switch SeqFormat.translate(format, helper: "bpf_trace_printk", user: "debugf()") {
        case .success(let f): kernelFormat = f
        case .failure(let f): error("debugf: " + f.message, args[0].range); return
        }
        warning("The debugf() builtin is not recommended for production use. For more information see bpf_trace_printk in bpf-helpers(7).", e.range)
        guard let words = kernelFormatWords(values, specs: specs, user: "debugf()") else { return }
        references[b.pending.count] = .mapValue(Compiler.rodataMap, offset: constantString(kernelFormat))
        b.emit(.loadMapValue(.r1, fd: 0, offset: 0))
        b.emit(.mov64(.r2, Int32(clamping: kernelFormat.utf8.count + 1)))
        for i in 0..<values.count {
            b.emit(.load([Register.r3, .r4, .r5][i], .r10, offset: Int16(clamping: words + 8 * i), size: .doubleWord))
        }
        b.emit(.call(helper: Compiler.tracePrintkHelper))
    }
}
