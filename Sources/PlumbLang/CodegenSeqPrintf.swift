// printf in a pinned iterator (iter:NAME:PIN). The pin outlives plumb: whoever reads the pin
// file later runs the program, and its output must be in that file, formatted by the kernel.
// So printf becomes bpf_seq_printf(seq, fmt, fmt_size, data, data_len) on the iterator's
// seq_file (`ctx->meta->seq`), as bpftrace does in iterators:
// - the format lives in a read-only array map (the helper takes constant strings only),
//   translated to the kernel's dialect (bpf_bprintf_prepare: %d %i %u %x %X %c %s %p, flags
//   and a width, no precision; integers passed as 64-bit words, so `ll` is added);
// - the arguments are u64 words on the stack: integers by value, strings by the address of
//   their buffer (the kernel copies the string from there while formatting).
// Everything else that writes output (print, time, exit, system, -k reports) would write to a
// ring buffer nobody reads once plumb has exited, and is refused in a pinned iterator.
import PlumbAsm
import PlumbBPF
import PlumbBTF

enum SeqFormat {
    /// bpf_seq_printf takes at most 12 arguments (MAX_BPRINTF_VARARGS).
    static let maxArguments = 12

    /// `format` (bpftrace's printf dialect, already checked) in the kernel's dialect.
    static func translate(_ format: String, helper: String = "bpf_seq_printf",
                          user: String = "a pinned iterator's printf") -> Result<String, FormatError> {
        let by = "the kernel's \(helper), which formats \(user)"
        var out = ""
        let chars = Array(format)
        var i = 0
        while i < chars.count {
            guard chars[i] == "%" else { out.append(chars[i]); i += 1; continue }
            i += 1
            guard i < chars.count else { break }
            if chars[i] == "%" { out += "%%"; i += 1; continue }
            var flags = ""
            while i < chars.count, "-+ #0".contains(chars[i]) { flags.append(chars[i]); i += 1 }
            if flags.contains("#") {
                return .failure(FormatError("the '#' flag is not supported by \(by)"))
            }
            var width = ""
            while i < chars.count, chars[i].isNumber { width.append(chars[i]); i += 1 }
            if i < chars.count, chars[i] == "." {
                return .failure(FormatError("a precision ('%\(flags)\(width).…') is not supported by \(by)"))
            }
            while i < chars.count, "hlzj".contains(chars[i]) { i += 1 }
            guard i < chars.count else { break }
            let c = chars[i]
            i += 1
            switch c {
            case "d", "i", "u", "x", "X": out += "%" + flags + width + "ll" + String(c)
            case "s", "c": out += "%" + flags + width + String(c)
            // The kernel's bare %p prints a hashed pointer; bpftrace's %p is the address in hex.
            case "p": out += "0x%" + flags + width + "llx"
            default:
                return .failure(FormatError("'%\(c)' is not supported by \(by) (use %d, %i, %u, %x, %X, %c, %s or %p)"))
            }
        }
        return .success(out)
    }
}

extension Compiler {
    static let rodataMap = "plumb_rodata"
    static let seqPrintfHelper: Int32 = 126

    /// Marks the program as writing records to the ring buffer, which a pinned iterator cannot.
    func useEvents(_ what: @autoclosure () -> String) {
        usesEvents = true
        if pinnedIterator != nil {
            error("\(what()) cannot be used in a pinned iterator: it reports through plumb, which exits once the iterator is pinned; only printf() writes to the pin file", currentStatement)
        }
    }

    /// The offset of `text` (NUL-terminated) in the read-only data map, added once.
    func constantString(_ text: String) -> UInt32 {
        if let at = rodataStrings[text] { return at }
        let at = UInt32(rodata.count)
        rodata += Array(text.utf8) + [0]
        rodataStrings[text] = at
        return at
    }

    /// The read-only data map of the constants `constantString` placed, if any.
    func rodataMapSpec() -> MapSpec? {
        guard !rodata.isEmpty else { return nil }
        var spec = MapSpec(name: Compiler.rodataMap, type: .array, keySize: 4, valueSize: UInt32(rodata.count), maxEntries: 1,
                           flags: 1 << 7 /* BPF_F_RDONLY_PROG */)
        spec.dataSection = ".rodata"
        spec.contents = rodata
        return spec
    }

    /// printf in a pinned iterator: bpf_seq_printf with the arguments checked by `formatted`.
    func seqPrintf(_ format: String, _ args: [Expr], specs: [FormatSpecifier], formatRange: SourceRange, at e: Expr) {
        let kernelFormat: String
        switch SeqFormat.translate(format) {
        case .success(let f): kernelFormat = f
        case .failure(let f): error("printf: " + f.message, formatRange); return
        }
        guard args.count <= SeqFormat.maxArguments else {
            error("printf: a pinned iterator's printf takes at most \(SeqFormat.maxArguments) arguments (bpf_seq_printf's limit); \(args.count) given", e.range)
            return
        }
        guard let seqPath = seqFilePath() else {
            error("printf: no seq_file in this iterator's context (struct bpf_iter__…'s meta->seq not found in BTF)", e.range)
            return
        }
        guard let data = kernelFormatWords(args, specs: specs, user: "a pinned iterator's printf") else { return }
        // r1 = ctx->meta->seq, read through the verifier-typed pointers.
        b.emit(.load(.r1, .r6, offset: Int16(clamping: seqPath.meta), size: .doubleWord))
        b.emit(.load(.r1, .r1, offset: Int16(clamping: seqPath.seq), size: .doubleWord))
        references[b.pending.count] = .mapValue(Compiler.rodataMap, offset: constantString(kernelFormat))
        b.emit(.loadMapValue(.r2, fd: 0, offset: 0))
        b.emit(.mov64(.r3, Int32(clamping: kernelFormat.utf8.count + 1)))
        if args.isEmpty {
            b.emit(.mov64(.r4, 0))
        } else {
            address(ofSlot: data, into: .r4)
        }
        b.emit(.mov64(.r5, Int32(clamping: 8 * args.count)))
        b.emit(.call(helper: Compiler.seqPrintfHelper))
    }

    /// The arguments of a format the kernel prints (bpf_seq_printf, bpf_trace_printk) as u64 words
    /// in a stack buffer, each computed and stored before the next (helpers clobber r0-r5):
    /// integers by value, strings by the address of their buffer. Returns the buffer's slot (0
    /// when there are no arguments), nil after an error. A `%s` value plumb prints in user space
    /// (strerror, macaddr, ksym, ...) is no string in the kernel's memory: refused.
    func kernelFormatWords(_ args: [Expr], specs: [FormatSpecifier], user: String) -> Int? {
        let words = args.isEmpty ? 0 : frame.allocate(8 * args.count)
        for (i, (a, s)) in zip(args, specs).enumerated() {
            let v = expr(a)
            if v.isPoison { return nil }
            defer { release(v) }
            if v.type.isString {
                address(ofSlot: buffer(v, size: v.type.size), into: .r1)
                b.emit(.store(.r10, offset: Int16(clamping: words + 8 * i), .r1, size: .doubleWord))
            } else if s.conversion == "s" || !v.type.isScalar {
                error("%\(s.conversion) of a '\(v.type)' value is printed by plumb, not by the kernel, which formats \(user): pass a string or an integer", a.range)
                return nil
            } else {
                storeScalar(v, slot: words + 8 * i)
            }
        }
        return words
    }

    /// Byte offsets of `meta` in the iterator's context and of `seq` in `struct bpf_iter_meta`.
    func seqFilePath() -> (meta: Int, seq: Int)? {
        guard let btf, let k = programKind, let ctx = btf.firstID(named: "bpf_iter__" + k.target, kind: .struct),
              let meta = try? btf.findMember("meta", in: ctx),
              let metaType = btf.firstID(named: "bpf_iter_meta", kind: .struct),
              let seq = try? btf.findMember("seq", in: metaType) else { return nil }
        return (Int(meta.bitOffset / 8), Int(seq.bitOffset / 8))
    }
}

extension AsyncAction {
    /// What the script wrote to ask for this action, for errors.
    var callName: String {
        switch self {
        case .printf: "printf()"
        case .printMap, .printValue: "print()"
        case .clear: "clear()"
        case .zero: "zero()"
        case .exit: "exit()"
        case .time: "time()"
        case .cat: "cat()"
        case .system: "system()"
        case .join: "join()"
        case .helperError: "-k/-kk (a report of each failed helper call)"
        }
    }
}
