// Builtins (pid, comm, curtask, args, arg0, retval, kstack, ...) and probe arguments.
import PlumbAsm
import PlumbBTF

/// x86-64 pt_regs offsets of the argument registers, return value, ip and sp.
enum PtRegs {
    static let args: [Int16] = [112, 104, 96, 88, 72, 64] // di si dx cx r8 r9
    static let ax: Int16 = 80
    static let ip: Int16 = 128
    static let sp: Int16 = 152
}

extension Compiler {
    func helperResult(_ id: Int32, _ type: SType) -> Val {
        b.emit(.call(helper: id))
        return result(type, from: .r0)
    }

    func builtin(_ name: String, _ e: Expr) -> Val {
        if let v = processBuiltin(name, e) { return v }
        switch name {
        case "pid":
            b.emit(.call(helper: H.pidTgid)); b.emit(.rsh64(.r0, 32))
            return result(.u32, from: .r0)
        case "tid":
            b.emit(.call(helper: H.pidTgid)); b.emit(.mov32(.r0, .r0))
            return result(.u32, from: .r0)
        case "uid", "username":
            b.emit(.call(helper: H.uidGid)); b.emit(.mov32(.r0, .r0))
            return result(name == "uid" ? .u32 : .username, from: .r0)
        case "gid":
            b.emit(.call(helper: H.uidGid)); b.emit(.rsh64(.r0, 32))
            return result(.u32, from: .r0)
        case "nsecs":
            return helperResult(H.ktimeGetNs, .u64)
        case "elapsed":
            b.emit(.call(helper: H.ktimeGetNs))
            b.emit(.loadImm64(.r1, Int64(bitPattern: Compiler.startTime)))
            b.emit(.sub64(.r0, .r1))
            return result(.u64, from: .r0)
        case "cpu":
            b.emit(.call(helper: H.smpProcessorID)); b.emit(.mov32(.r0, .r0))
            return result(.u32, from: .r0)
        case "numaid":
            b.emit(.call(helper: H.numaNode)); b.emit(.mov32(.r0, .r0))
            return result(.u32, from: .r0)
        case "rand":
            b.emit(.call(helper: H.prandom)); b.emit(.mov32(.r0, .r0))
            return result(.u32, from: .r0)
        case "cgroup":
            return helperResult(H.cgroupID, .u64)
        case "curtask":
            var t = SType.u64
            if let btf, let id = btf.firstID(named: "task_struct", kind: .struct) {
                t = .pointer(.record(id: id, name: "struct task_struct", size: (try? btf.size(of: id)) ?? 0), space: .kernel)
            }
            return helperResult(H.currentTask, t)
        case "comm":
            let o = frame.allocate(16)
            address(ofSlot: o, into: .r1)
            b.emit(.mov64(.r2, 16))
            b.emit(.call(helper: H.comm))
            return Val(type: .string(size: 16), loc: .slot(o))
        case "probe":
            return Val(type: .string(size: probeName.utf8.count + 1), loc: .literal(Array(probeName.utf8)))
        case "cpid":
            guard let c = options.childPID else {
                error("cpid is only available when a command is run with -c", e.range)
                return .poison
            }
            return Val(type: .u32, loc: .imm(Int64(c)))
        case "kstack", "ustack":
            return stack(user: name == "ustack", mode: .bpftrace, limit: options.stackDepth, e)
        case "func":
            switch context {
            case .registers(_, let user):
                b.emit(.load(.r0, .r6, offset: PtRegs.ip, size: .doubleWord))
                if user { return userSymbol(from: .r0) }
                return result(.ksym, from: .r0)
            case .btf where programKind?.expectedAttachType == .traceFentry || programKind?.expectedAttachType == .traceFexit:
                // fentry/fexit: the traced function's address from bpf_get_func_ip.
                b.emit(.mov64(.r1, .r6))
                b.emit(.call(helper: 173))
                return result(.ksym, from: .r0)
            default:
                error("the func builtin is only available in kprobe, uprobe and kfunc probes", e.range)
                return .poison
            }
        case "retval":
            if let v = userRetval() { return v }
            switch context {
            case .registers(true, _):
                b.emit(.load(.r0, .r6, offset: PtRegs.ax, size: .doubleWord))
                return result(.i64, from: .r0)
            case .btf(let params, .some(let ret)):
                b.emit(.load(.r0, .r6, offset: Int16(clamping: 8 * params.count), size: .doubleWord))
                convert(.r0, to: ret)
                return result(ret, from: .r0)
            default:
                error("the retval builtin is only available in kretprobe, uretprobe and kretfunc probes", e.range)
                return .poison
            }
        case "args":
            // A field access (`args.x`) never gets here; `args` alone is the whole record.
            if userArgs(e) != nil { return argsRecord(e) }
            switch context {
            case .tracepoint(let c, let n, _) where reportUnknownTracepointArgs(category: c, name: n, e.range): return .poison
            case .tracepoint, .btf: return argsRecord(e)
            default:
                error("the args builtin is only available in tracepoint, rawtracepoint and kfunc probes", e.range)
                return .poison
            }
        case "ctx" where programKind?.attach == .iterator:
            // Iterators: ctx is `struct bpf_iter__<name>` (meta, then the object, maybe NULL).
            if let btf, let k = programKind, let id = btf.firstID(named: "bpf_iter__" + k.target, kind: .struct) {
                let t = SType.pointer(.record(id: id, name: "struct bpf_iter__" + k.target, size: (try? btf.size(of: id)) ?? 0), space: .context)
                return result(t, from: .r6)
            }
            return result(.ctx, from: .r6)
        case "ctx":
            // A copy: r6 must never be changed by an operator working in place.
            return result(.ctx, from: .r6)
        default:
            if name.hasPrefix("arg"), let n = Int(name.dropFirst(3)) { return argN(n, e) }
            if name.hasPrefix("sarg"), let n = Int(name.dropFirst(4)) { return stackArg(n, e) }
            if let c = constant(named: name) { return Val(type: .i64, loc: .imm(c)) }
            let known = ["pid", "tid", "uid", "gid", "comm", "nsecs", "elapsed", "cpu", "numaid", "curtask", "rand", "cgroup",
                         "func", "probe", "retval", "args", "kstack", "ustack", "username", "cpid", "ctx"]
            error("Unknown identifier: '\(name)'", e.range, notes: nearest(name, in: known).map { [.init("did you mean '\($0)'?")] } ?? [])
            return .poison
        }
    }

    /// A named constant: an enumerator of the kernel's BTF (TCP_SYN_SENT, SKB_DROP_REASON_...),
    /// else one of the macros tools take from C headers (AF_INET, TASK_RUNNING, ...).
    func constant(named name: String) -> Int64? {
        if let v = Compiler.headerMacros[name] { return v }
        guard let btf else { return nil }
        if enumerators == nil {
            var table: [String: Int64] = [:]
            for id in btf.ids where btf.kind(of: id).isEnum {
                guard let t = try? btf.type(id) else { continue }
                for en in t.enumerators where table[en.name] == nil {
                    table[en.name] = t.isSignedEnum || t.kind == .enum && t.size < 8 && !t.isSignedEnum && en.value > UInt64(UInt32.max)
                        ? Int64(Int32(truncatingIfNeeded: en.value)) : Int64(bitPattern: en.value)
                }
            }
            enumerators = table
        }
        return enumerators?[name]
    }

    /// Macros from UAPI headers that bpftrace's tools use without BTF having them.
    static let headerMacros: [String: Int64] = [
        "AF_UNSPEC": 0, "AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17,
        "TASK_RUNNING": 0, "TASK_INTERRUPTIBLE": 1, "TASK_UNINTERRUPTIBLE": 2, "__TASK_STOPPED": 4, "__TASK_TRACED": 8,
        "EXIT_DEAD": 16, "EXIT_ZOMBIE": 32, "TASK_PARKED": 64, "TASK_DEAD": 128, "TASK_WAKEKILL": 256, "TASK_NOLOAD": 1024,
        "TASK_NEW": 2048, "TASK_KILLABLE": 258, "TASK_IDLE": 1026,
        "O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2, "O_CREAT": 0o100, "O_EXCL": 0o200, "O_TRUNC": 0o1000, "O_APPEND": 0o2000,
        "O_NONBLOCK": 0o4000, "O_DIRECTORY": 0o200000, "O_CLOEXEC": 0o2000000,
        "PAGE_SIZE": 4096, "PAGE_SHIFT": 12, "NSEC_PER_SEC": 1_000_000_000, "NSEC_PER_MSEC": 1_000_000, "NSEC_PER_USEC": 1000,
        "SIGKILL": 9, "SIGTERM": 15, "SIGINT": 2, "SIGHUP": 1, "SIGSTOP": 19, "SIGCONT": 18, "SIGUSR1": 10, "SIGUSR2": 12,
    ]

    /// usym: the address, then the pid that owns it.
    func userSymbol(from r: Register) -> Val {
        let o = frame.allocate(16)
        b.emit(.store(.r10, offset: Int16(clamping: o), r, size: .doubleWord))
        b.emit(.call(helper: H.pidTgid))
        b.emit(.rsh64(.r0, 32))
        b.emit(.store(.r10, offset: Int16(clamping: o + 8), .r0, size: .doubleWord))
        return Val(type: .usym, loc: .slot(o))
    }

    func stack(user: Bool, mode: StackMode, limit: Int, _ e: Expr) -> Val {
        if user { usesUstack = true } else { usesKstack = true }
        b.emit(.mov64(.r1, .r6))
        let map = user ? Compiler.ustackMap : Compiler.kstackMap
        references[b.pending.count] = .map(map)
        b.emit(.loadImm64(.r2, 0))
        b.emit(.mov64(.r3, user ? Int32(clamping: 1 << 8) : 0))
        b.emit(.call(helper: H.stackID))
        if !user { return result(.kstack(mode: mode, limit: limit), from: .r0) }
        let o = frame.allocate(16)
        b.emit(.store(.r10, offset: Int16(clamping: o), .r0, size: .doubleWord))
        b.emit(.call(helper: H.pidTgid))
        b.emit(.rsh64(.r0, 32))
        b.emit(.store(.r10, offset: Int16(clamping: o + 8), .r0, size: .doubleWord))
        return Val(type: .ustack(mode: mode, limit: limit), loc: .slot(o))
    }

    func argN(_ n: Int, _ e: Expr) -> Val {
        switch context {
        case .registers(let isReturn, _):
            if let sites = usdtSites[probeName] { return usdtArg(n, sites: sites, e) }
            if isReturn {
                error("arg\(n) is not available in return probes; use retval", e.range)
                return .poison
            }
            guard n >= 0, n < PtRegs.args.count else {
                error("arg\(n) is out of range: the first \(PtRegs.args.count) arguments are in registers (arg0..arg5); use sarg for stack arguments", e.range)
                return .poison
            }
            b.emit(.load(.r0, .r6, offset: PtRegs.args[n], size: .doubleWord))
            return result(.u64, from: .r0)
        case .rawTracepoint:
            guard n >= 0, n < 12 else { error("arg\(n) is out of range for a raw tracepoint", e.range); return .poison }
            b.emit(.load(.r0, .r6, offset: Int16(clamping: 8 * n), size: .doubleWord))
            return result(.u64, from: .r0)
        case .btf(let params, _):
            guard n >= 0, n < params.count else {
                error("arg\(n) is out of range: the probe has \(params.count) arguments", e.range)
                return .poison
            }
            return btfArg(n, params[n].type)
        default:
            error("the arg\(n) builtin is not available in this probe type; use args for tracepoints", e.range)
            return .poison
        }
    }

    func btfArg(_ n: Int, _ t: SType) -> Val {
        b.emit(.load(.r0, .r6, offset: Int16(clamping: 8 * n), size: .doubleWord))
        convert(.r0, to: t)
        if !t.isScalar { return result(.u64, from: .r0) }
        return result(t, from: .r0)
    }

    func stackArg(_ n: Int, _ e: Expr) -> Val {
        guard case .registers(false, let user) = context, n >= 0, n < 64 else {
            error("the sarg\(n) builtin is only available in kprobe and uprobe probes", e.range)
            return .poison
        }
        b.emit(.load(.r0, .r6, offset: PtRegs.sp, size: .doubleWord))
        let sp = result(.u64, from: .r0)
        return readScalar(.u64, base: sp.loc, offset: 8 * (n + 1), space: user ? .user : .kernel)
    }

    /// `args.NAME`: a tracepoint field (from its format file) or a BTF-typed argument.
    func argsField(_ name: String, _ e: Expr) -> Val {
        if isProcessProbe, let v = processBuiltin("args", e) { return v }
        if let v = userArgsField(name, e) { return v }
        switch context {
        case .tracepoint(let category, let tpName, let fields):
            guard let f = fields.first(where: { $0.name == name }) else {
                if reportUnknownTracepointArgs(category: category, name: tpName, field: name, e.range) { return .poison }
                error("tracepoint '\(category):\(tpName)' has no field named '\(name)'", e.range,
                      notes: nearest(name, in: fields.map(\.name)).map { [.init("did you mean '\($0)'?")] } ?? [])
                return .poison
            }
            return tracepointField(f, category: category)
        case .btf(let params, _):
            guard let i = params.firstIndex(where: { $0.name == name }) else {
                error("no argument named '\(name)'", e.range,
                      notes: nearest(name, in: params.map(\.name)).map { [.init("did you mean '\($0)'?")] } ?? [])
                return .poison
            }
            return btfArg(i, params[i].type)
        default:
            error("the args builtin is only available in tracepoint, rawtracepoint and kfunc probes", e.range)
            return .poison
        }
    }

    /// The checker's type of a tracepoint field, from the format file's C text.
    func fieldType(_ f: TracefsField, category: String) -> SType {
        if f.isDataLoc { return .string(size: options.stringLength) }
        let type = f.type.replacingConst
        if f.isPointer {
            let space: AddressSpace = category == "syscalls" ? .user : .kernel
            let pointee = String(type.dropLast()).trimmingSpaces
            if pointee == "char" || pointee == "unsigned char" { return .pointer(.int(size: 1, signed: pointee == "char"), space: space) }
            if pointee.hasPrefix("struct "), let btf, let id = btf.firstID(named: String(pointee.dropFirst(7)), kind: .struct) {
                return .pointer(.record(id: id, name: pointee, size: (try? btf.size(of: id)) ?? 0), space: space)
            }
            if pointee == "void" { return .pointer(.none, space: space) }
            return .pointer(.u64, space: space)
        }
        if let n = f.arrayLength {
            let elemSize = n > 0 ? f.size / n : f.size
            if type.hasPrefix("char") {
                return .string(size: f.size)
            }
            guard let sz = Size(bytes: elemSize), sz.bytes > 0 else { return .array(.int(size: 1, signed: false), count: f.size) }
            return .array(.int(size: sz.bytes, signed: f.signed), count: n)
        }
        if Size(bytes: f.size) != nil { return .int(size: f.size, signed: f.signed) }
        return .array(.int(size: 1, signed: false), count: f.size)
    }

    func tracepointField(_ f: TracefsField, category: String) -> Val {
        let t = fieldType(f, category: category)
        switch t {
        case .string(let n) where f.isDataLoc:
            // __data_loc: u32 at the field, low 16 bits the offset in the record.
            b.emit(.load(.r3, .r6, offset: Int16(clamping: f.offset), size: .word))
            b.emit(.and64(.r3, 0xffff))
            b.emit(.add64(.r3, .r6))
            let o = frame.allocate(n)
            // Zeroed first: the helper leaves bytes after the NUL untouched (keys must match).
            zero(slot: o, size: (n + 7) / 8 * 8)
            address(ofSlot: o, into: .r1)
            b.emit(.mov64(.r2, Int32(clamping: n)))
            callChecked(H.readKernelStr, .probeReadFailed)
            return Val(type: t, loc: .slot(o))
        case .string(let n):
            let o = frame.allocate(n)
            read(into: o, size: n, base: .reg(.r6), offset: f.offset, space: .kernel)
            return Val(type: t, loc: .slot(o))
        case .array:
            return Val(type: t, loc: .memory(.reg(.r6), offset: f.offset, space: .kernel))
        default:
            let size = Size(bytes: max(1, min(8, f.size))) ?? .doubleWord
            b.emit(.load(.r0, .r6, offset: Int16(clamping: f.offset), size: size))
            if case .int = t { extend(.r0, t) }
            return result(t, from: .r0)
        }
    }
}

extension String {
    var replacingConst: String {
        let words = split(separator: " ").filter { $0 != "const" && $0 != "volatile" }
        return words.joined(separator: " ").trimmingSpaces
    }
}
