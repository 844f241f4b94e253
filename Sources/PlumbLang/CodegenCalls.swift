// Function calls: printf and the other async actions (records on the ring buffer, see
// Plan.swift), str/buf/ksym/usym/ntop/kaddr/uaddr/reg/strncmp, and map functions used
// as statements (delete, clear, zero, print).
import PlumbAsm
import Glibc

/// One conversion of a printf-style format.
struct FormatSpecifier: Equatable {
    var conversion: Character
    var length: String
}

enum FormatParser {
    /// The conversions of `format` in order, or an error message.
    static func parse(_ format: String) -> Result<[FormatSpecifier], FormatError> {
        var out: [FormatSpecifier] = []
        let chars = Array(format)
        var i = 0
        while i < chars.count {
            guard chars[i] == "%" else { i += 1; continue }
            i += 1
            guard i < chars.count else { return .failure(FormatError("printf: the format string ends in the middle of a '%' conversion")) }
            if chars[i] == "%" { i += 1; continue }
            while i < chars.count, "-+ #0".contains(chars[i]) { i += 1 }
            while i < chars.count, chars[i].isNumber { i += 1 }
            if i < chars.count, chars[i] == "." {
                i += 1
                while i < chars.count, chars[i].isNumber { i += 1 }
            }
            var length = ""
            while i < chars.count, "hlzj".contains(chars[i]) { length.append(chars[i]); i += 1 }
            guard i < chars.count else { return .failure(FormatError("printf: the format string ends in the middle of a '%' conversion")) }
            let c = chars[i]
            guard "diuxXoscpr".contains(c) else {
                return .failure(FormatError("printf: invalid format specifier '%\(length)\(c)'"))
            }
            out.append(FormatSpecifier(conversion: c, length: length))
            i += 1
        }
        return .success(out)
    }
}

struct FormatError: Error { var message: String; init(_ m: String) { message = m } }

extension Compiler {
    /// Whether `name` got a number of arguments in `n`; an error in bpftrace's words when not.
    func checkArity(_ name: String, _ n: ClosedRange<Int>, _ args: [Expr], _ e: Expr) -> Bool {
        if n.contains(args.count) { return true }
        error("\(name)() \(arityText(n, provided: args.count)) (\(args.count) provided)", e.range)
        return false
    }

    func call(_ name: String, _ args: [Expr], _ e: Expr) -> Val {
        func arity(_ n: ClosedRange<Int>) -> Bool { checkArity(name, n, args, e) }
        if name == "var" { return userVar(args, e) }
        switch name {
        case "printf", "system", "cat":
            guard args.count >= 1 else { _ = arity(1...64); return Val(type: .none, loc: .imm(0)) }
            if name == "system" && !options.unsafe {
                error("system() is an unsafe function; run with --unsafe to allow it", e.range)
                return Val(type: .none, loc: .imm(0))
            }
            formatted(name, args, e)
            return Val(type: .none, loc: .imm(0))
        case "print":
            guard arity(1...3) else { return .poison }
            if case .map(let m, let keys) = args[0].kind, keys.isEmpty {
                guard knowledge.maps[m] != nil else {
                    if isFinalPass { error("Undefined map: @\(m)", SourceRange(e.range.start, args[0].range.end)) }
                    return Val(type: .none, loc: .imm(0))
                }
                var nums: [Int] = []
                for a in args.dropFirst() {
                    let v = expr(a)
                    guard let c = v.constant else { error("print() top and divisor must be constants", a.range); return .poison }
                    nums.append(Int(c))
                }
                emitRecord(.printMap(map: "@" + m, top: nums.first ?? 0, divisor: nums.count > 1 ? nums[1] : 0), args: [])
                return Val(type: .none, loc: .imm(0))
            }
            if case .map(_, let keys) = args[0].kind, !keys.isEmpty {
                error("The map passed to print() should not be indexed by a key", e.range)
                return .poison
            }
            guard args.count == 1 else { error("print() of a non-map value takes one argument", e.range); return .poison }
            let v = expr(args[0])
            if v.isPoison { return .poison }
            let t = recordType(v.type)
            emitRecord(.printValue(Field(offset: 8, type: printed(t))), args: [(v, t)])
            return Val(type: .none, loc: .imm(0))
        case "exit":
            guard arity(0...1) else { return .poison }
            emitRecord(.exit, args: [])
            stopUsed.insert(exitLabel!)
            b.goto(exitLabel!)
            return Val(type: .none, loc: .imm(0))
        case "time":
            guard arity(0...1) else { return .poison }
            var fmt = "%H:%M:%S\n"
            if let a = args.first {
                guard case .string(let s) = a.kind else { error("time() expects a string literal format", a.range); return .poison }
                fmt = s
            }
            emitRecord(.time(format: fmt), args: [])
            return Val(type: .none, loc: .imm(0))
        case "clear", "zero":
            guard arity(1...1) else { return .poison }
            guard case .map(let m, let keys) = args[0].kind, keys.isEmpty else {
                error("\(name)() expects a map such as @m", args[0].range)
                return .poison
            }
            guard knowledge.maps[m] != nil else {
                if isFinalPass { error("Undefined map: @\(m)", SourceRange(e.range.start, args[0].range.end)) }
                return Val(type: .none, loc: .imm(0))
            }
            emitRecord(name == "clear" ? .clear(map: "@" + m) : .zero(map: "@" + m), args: [])
            return Val(type: .none, loc: .imm(0))
        case "delete":
            guard arity(1...1) else { return .poison }
            mapDelete(args[0], call: SourceRange(e.range.start, args[0].range.end))
            return Val(type: .none, loc: .imm(0))
        case "has_key":
            guard arity(2...64), case .map(let m, let keys) = args[0].kind, keys.isEmpty else {
                error("has_key() expects a map and a key: has_key(@m, key)", e.range)
                return .poison
            }
            guard knowledge.maps[m] != nil else {
                if isFinalPass { error("Undefined map: @\(m)", args[0].range) }
                return .poison
            }
            guard let vals = evaluateKeys(Array(args.dropFirst())) else { return .poison }
            guard declareMap(m, keys: vals.map { keyType($0.type) }, value: nil, range: e.range) else { return .poison }
            let key = buildKey(m, vals, histogram: false)
            lookup(m, key: key.slot)
            b.emit(.mov64(.r1, 1))
            b.emit(.jump(.jne, .r0, imm: 0, offset: 1))
            b.emit(.mov64(.r1, 0))
            return result(.bool, from: .r1)
        case "count", "sum", "min", "max", "avg", "stats", "hist", "lhist":
            error("\(name)() should be assigned to a map: @m = \(name)(...)", e.range)
            return .poison
        case "str":
            guard arity(1...2) else { return .poison }
            return str(args, e)
        case "buf":
            guard arity(1...2) else { return .poison }
            return buf(args, e)
        case "ksym", "usym":
            guard arity(1...1) else { return .poison }
            let v = expr(args[0])
            if v.isPoison { return .poison }
            guard v.type.isInteger || v.type.isPointer || v.type == .ksym else {
                error("\(name)() expects an integer or pointer argument", e.range)
                return .poison
            }
            let r = load(v, into: .r0)
            release(v)
            if name == "usym" { return userSymbol(from: r) }
            return result(.ksym, from: r)
        case "strftime":
            guard arity(2...2) else { return .poison }
            guard case .string(let format) = args[0].kind else { error("strftime() expects a format string literal", args[0].range); return .poison }
            let v = expr(args[1])
            if v.isPoison { return .poison }
            guard v.type.isInteger else {
                error("strftime() expects an integer timestamp in nanoseconds (\(v.type) supplied)", args[1].range)
                return .poison
            }
            let r = load(v, into: .r0)
            release(v)
            return result(.timestamp(format: format), from: r)
        case "kaddr":
            guard arity(1...1) else { return .poison }
            guard case .string(let sym) = args[0].kind else { error("kaddr() expects a string literal", args[0].range); return .poison }
            guard let a = env.kernelSymbol(sym) else {
                error("kernel symbol '\(sym)' not found in /proc/kallsyms", args[0].range)
                return .poison
            }
            return Val(type: .u64, loc: .imm(Int64(bitPattern: a)))
        case "uaddr":
            guard arity(1...1) else { return .poison }
            guard case .string(let sym) = args[0].kind else { error("uaddr() expects a string literal", args[0].range); return .poison }
            guard let path = currentBinary else { error("uaddr() is only available in uprobe probes", e.range); return .poison }
            // Data symbols (globals) too, not only the functions uprobes attach to.
            guard let a = (try? env.resolveUprobe(path, sym))?.address ?? env.userSymbol(path, sym) else {
                error("symbol '\(sym)' not found in \(path)", args[0].range)
                return .poison
            }
            return Val(type: .pointer(.u64, space: .user), loc: .imm(Int64(bitPattern: a)))
        case "reg":
            guard arity(1...1) else { return .poison }
            guard case .string(let r) = args[0].kind else { error("reg() expects a register name literal", args[0].range); return .poison }
            guard case .registers = context else { error("reg() is only available in kprobe and uprobe probes", e.range); return .poison }
            let offsets: [String: Int16] = ["r15": 0, "r14": 8, "r13": 16, "r12": 24, "bp": 32, "bx": 40, "r11": 48, "r10": 56,
                                            "r9": 64, "r8": 72, "ax": 80, "cx": 88, "dx": 96, "si": 104, "di": 112,
                                            "orig_ax": 120, "ip": 128, "cs": 136, "flags": 144, "sp": 152, "ss": 160]
            guard let o = offsets[r] else {
                error("unknown register '\(r)'", args[0].range,
                      notes: nearest(r, in: Array(offsets.keys)).map { [.init("did you mean '\($0)'?")] } ?? [])
                return .poison
            }
            b.emit(.load(.r0, .r6, offset: o, size: .doubleWord))
            return result(.u64, from: .r0)
        case "ntop":
            guard arity(1...2) else { return .poison }
            return ntop(args, e)
        case "strncmp":
            guard arity(3...3) else { return .poison }
            let a = expr(args[0]), c = expr(args[1]), n = expr(args[2])
            if a.isPoison || c.isPoison || n.isPoison { return .poison }
            guard a.type.isString, c.type.isString else { error("strncmp() compares two strings", e.range); return .poison }
            guard let k = n.constant, k >= 0 else { error("strncmp() needs a constant length", args[2].range); return .poison }
            let limit = Int(min(k, Int64(min(a.type.size, c.type.size))))
            // strncmp is 0 when equal: the negated equality of the first `limit` bytes.
            let eq = stringEqual(Val(type: .string(size: limit), loc: a.loc), Val(type: .string(size: limit), loc: c.loc), negate: true)
            return Val(type: .i64, loc: eq.loc)
        case "signal":
            guard arity(1...1) else { return .poison }
            guard options.unsafe else { error("signal() is an unsafe function; run with --unsafe to allow it", e.range); return .poison }
            var sig: Int64?
            if case .string(let s) = args[0].kind {
                let names = ["SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGBUS": 7,
                             "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13,
                             "SIGALRM": 14, "SIGTERM": 15, "SIGCHLD": 17, "SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20]
                sig = names[s.hasPrefix("SIG") ? s : "SIG" + s].map(Int64.init)
                if sig == nil { error("unknown signal '\(s)'", args[0].range); return .poison }
            } else {
                let v = expr(args[0])
                sig = v.constant
                if sig == nil { load(v, into: .r1); release(v) }
            }
            if let sig { b.emit(.mov64(.r1, Int32(truncatingIfNeeded: sig))) }
            b.emit(.call(helper: H.sendSignal))
            return Val(type: .none, loc: .imm(0))
        case "join":
            guard arity(1...2) else { return .poison }
            return join(args, e)
        case "uptr", "kptr":
            // Annotate an address's space: str()/deref then use the matching read helper.
            guard arity(1...1) else { return .poison }
            let v = expr(args[0])
            if v.isPoison { return .poison }
            let space: AddressSpace = name == "uptr" ? .user : .kernel
            switch v.type {
            case .pointer(let p, _): return Val(type: .pointer(p, space: space), loc: v.loc)
            case .int: return Val(type: .pointer(.int(size: 1, signed: true), space: space), loc: v.loc)
            default:
                error("\(name)() expects an integer or pointer argument", e.range)
                release(v)
                return .poison
            }
        case "cgroupid":
            // The cgroup's id is its directory's inode number, known at compile time.
            guard arity(1...1) else { return .poison }
            guard case .string(let path) = args[0].kind else { error("cgroupid() expects a string literal path", args[0].range); return .poison }
            var st = stat()
            guard stat(path, &st) == 0 else {
                error("cgroupid(): cannot stat '\(path)'", args[0].range)
                return .poison
            }
            return Val(type: .u64, loc: .imm(Int64(bitPattern: UInt64(st.st_ino))))
        case "strcontains":
            // strcontains(haystack, "literal"): an unrolled search, stopping at the haystack's NUL.
            guard arity(2...2) else { return .poison }
            let h = expr(args[0])
            if h.isPoison { return .poison }
            guard h.type.isString else { error("strcontains() expects a string to search in", args[0].range); release(h); return .poison }
            guard case .string(let needleText) = args[1].kind else {
                error("strcontains() expects a string literal to search for", args[1].range)
                return .poison
            }
            let needle = Array(needleText.utf8)
            let size = h.type.size
            guard size * (needle.count + 3) <= 8192 else {
                error("strcontains() on a \(size)-byte string with a \(needle.count)-byte needle is too large to unroll", e.range)
                return .poison
            }
            // An empty needle is always found; one longer than the haystack's text never is.
            if needle.isEmpty || needle.count > size - 1 {
                release(h)
                return Val(type: .bool, loc: .imm(needle.isEmpty ? 1 : 0))
            }
            let hay = buffer(h, size: size)
            let found = b.newLabel(), notFound = b.newLabel(), done = b.newLabel()
            for i in 0..<size {
                b.emit(.load(.r1, .r10, offset: Int16(clamping: hay + i), size: .byte))
                b.jump(.jeq, .r1, imm: 0, to: notFound)
                if i + needle.count > size { break }
                let next = b.newLabel()
                for (k, ch) in needle.enumerated() {
                    if k > 0 { b.emit(.load(.r1, .r10, offset: Int16(clamping: hay + i + k), size: .byte)) }
                    b.jump(.jne, .r1, imm: Int32(ch), to: next)
                }
                b.goto(found)
                b.bind(next)
            }
            b.bind(notFound)
            b.emit(.mov64(.r0, 0))
            b.goto(done)
            b.bind(found)
            b.emit(.mov64(.r0, 1))
            b.bind(done)
            return result(.bool, from: .r0)
        case "bswap":
            guard arity(1...1) else { return .poison }
            let v = expr(args[0])
            if v.isPoison { return .poison }
            guard case .int(let size, let signed) = v.type else {
                error("bswap() expects an integer argument", e.range)
                release(v)
                return .poison
            }
            if size == 1 { return v }
            let r = value(v, scratch: .r0)
            release(v)
            b.emit(.bswap(r, bits: Int32(size * 8)))
            return result(.int(size: size, signed: signed), from: r)
        case "kstack", "ustack":
            // kstack([mode][, limit]): mode is bpftrace, perf or raw.
            guard arity(0...2) else { return .poison }
            var mode = StackMode.bpftrace
            var limit = options.stackDepth
            for a in args {
                if case .builtin(let m) = a.kind, let sm = StackMode(rawValue: m) { mode = sm; continue }
                if case .variable(let m) = a.kind, let sm = StackMode(rawValue: m) { mode = sm; continue }
                if case .integer(let n) = a.kind, n >= 1, n <= UInt64(options.stackDepth) { limit = Int(n); continue }
                error("\(name)() takes a mode (bpftrace, perf, raw) and a frame limit (1 to \(options.stackDepth))", a.range)
                return .poison
            }
            return stack(user: name == "ustack", mode: mode, limit: limit, e)
        case "len":
            guard arity(1...1) else { return .poison }
            guard case .map(let m, let keys) = args[0].kind, keys.isEmpty, knowledge.maps[m] != nil else {
                if isFinalPass { error("len() expects a map such as @m", args[0].range) }
                return .poison
            }
            return mapLength(m)
        default:
            if let v = moreFunction(name, args, e) { return v }   // CodegenMoreFunctions.swift
            let known = ["printf", "print", "exit", "time", "clear", "zero", "delete", "has_key", "count", "sum", "min", "max",
                         "avg", "stats", "hist", "lhist", "str", "buf", "ksym", "usym", "kaddr", "uaddr", "strftime", "reg", "ntop",
                         "strncmp", "signal", "join", "system", "cat", "strerror", "macaddr", "override", "debugf", "path"]
            error("Unknown function: \(name)", e.range, notes: nearest(name, in: known).map { [.init("did you mean '\($0)'?")] } ?? [])
            args.forEach { release(expr($0)) }
            return .poison
        }
    }

    /// bpftrace's wording: "requires no arguments", "requires one argument", "takes up to 2 arguments".
    func arityText(_ n: ClosedRange<Int>, provided: Int) -> String {
        let words = [0: "no arguments", 1: "one argument"]
        if n.lowerBound == n.upperBound { return "requires " + (words[n.lowerBound] ?? "\(n.lowerBound) arguments") }
        if provided > n.upperBound { return "takes up to \(n.upperBound) argument\(n.upperBound == 1 ? "" : "s")" }
        return "requires at least " + (words[n.lowerBound] ?? "\(n.lowerBound) arguments")
    }

    /// How a value travels in a record: scalars as 8 bytes, strings their buffer.
    func recordType(_ t: SType) -> SType {
        switch t {
        case .int(_, let s): return s ? .i64 : .u64
        default: return t
        }
    }

    /// printf/system/cat: the format checked against its arguments at compile time.
    func formatted(_ name: String, _ args: [Expr], _ e: Expr) {
        guard case .string(let format) = args[0].kind else {
            let v = expr(args[0])
            release(v)
            let provided = v.isPoison ? "none" : v.type.isInteger ? "integer" : v.type.description
            error("\(name)() expects a string literal (\(provided) provided)", e.range)
            return
        }
        // The arguments' types first, from code that is thrown away: the record is then
        // reserved before the arguments are computed, so strings land in it directly.
        let vals = dryRun { args.dropFirst().map { expr($0) } }
        // An argument already reported is not reported again as a format mismatch.
        if vals.contains(where: \.isPoison) {
            for a in args.dropFirst() { release(expr(a)) }
            return
        }
        guard let specs = checkedFormat(name, format, formatRange: args[0].range, vals, e) else { return }
        if pinnedIterator != nil && name == "printf" {
            seqPrintf(format, Array(args.dropFirst()), specs: specs, formatRange: args[0].range, at: e)   // CodegenSeqPrintf.swift
            return
        }
        var fields: [(Val, SType)] = []
        for v in vals { fields.append((v, recordType(v.type))) }
        let layout = recordLayout(fields.map(\.1))
        let typed = zip(layout.offsets, fields).map { Field(offset: $0, type: printed($1.1)) }
        let action: AsyncAction = switch name {
        case "system": .system(format: format, args: typed)
        case "cat": .cat(format: format, args: typed)
        default: .printf(format: format, args: typed)
        }
        if options.reportReadErrors {
            // -kk: the arguments first, so a failing read's report comes before the record it feeds
            // (records arrive in the order they were reserved), as bpftrace orders them.
            let real = args.dropFirst().map { expr($0) }
            if real.contains(where: \.isPoison) { real.forEach(release); return }
            emitRecord(action, args: Array(zip(real, fields.map(\.1))))
            return
        }
        emitRecordDirect(action, args: Array(args.dropFirst()), types: fields.map(\.1))
    }

    /// `format`'s conversions, checked against the arguments' values (computed already): their
    /// number, then each one's type; nil after reporting what does not match.
    func checkedFormat(_ name: String, _ format: String, formatRange: SourceRange, _ vals: [Val], _ e: Expr) -> [FormatSpecifier]? {
        let specs: [FormatSpecifier]
        switch FormatParser.parse(format) {
        case .success(let s): specs = s
        case .failure(let f): error(name + f.message.dropFirst("printf".count), formatRange); return nil
        }
        if specs.count > vals.count {
            error("\(name): Not enough arguments for format string (\(vals.count) supplied, \(specs.count) expected)", e.range)
            return nil
        }
        if specs.count < vals.count {
            error("\(name): Too many arguments for format string (\(vals.count) supplied, \(specs.count) expected)", e.range)
            return nil
        }
        var ok = true
        for (s, v) in zip(specs, vals) {
            let supplied = v.isPoison ? "none" : v.type.isString ? "string" : v.type.isInteger ? "integer" : v.type.description
            switch s.conversion {
            case "s":
                if v.isPoison || v.type.isInteger || v.type == .ctx || v.type == .args || { if case .argsRecord = v.type { return true }; return false }() {
                    error("\(name): %s specifier expects a value of type string (\(supplied) supplied)", e.range); ok = false
                }
            case "r":
                guard case .buffer = v.type else {
                    error("\(name): %r specifier expects a value of type buffer (\(supplied) supplied)", e.range); ok = false
                    continue
                }
            default:
                // strerror() is a scalar errno, but printed as its message (%s).
                if v.isPoison || !(v.type.isScalar) || v.type == .strerror {
                    error("\(name): %\(s.conversion) specifier expects a value of type integer (\(supplied) supplied)", e.range); ok = false
                }
            }
        }
        return ok ? specs : nil
    }

    /// Runs `body` against a builder that is thrown away, keeping only what it returns (types).
    func dryRun<T>(_ body: () -> T) -> T {
        let saved = (b, references, lineInfo, pendingCallbacks.count, counterStub, frame, pool, actions.count, stopUsed)
        b = ProgramBuilder()
        let out = body()
        (b, references, lineInfo, counterStub, frame, pool, stopUsed) = (saved.0, saved.1, saved.2, saved.4, saved.5, saved.6, saved.8)
        pendingCallbacks.removeLast(pendingCallbacks.count - saved.3)
        actions.removeLast(actions.count - saved.7)
        return out
    }

    /// A record reserved first, then each argument computed into it: `str()` and `comm` are
    /// read by their helpers straight into the record (no stack copy), others stored.
    func emitRecordDirect(_ action: AsyncAction, args: [Expr], types: [SType]) {
        useEvents(action.callName)
        let id = actions.count
        actions.append(action)
        let layout = recordLayout(types)
        // The record pointer lives in a callee-saved register when one is free, else in a slot.
        let recReg = pool.take()
        let rec = recReg == nil ? frame.allocate(8) : 0
        if recReg == nil { frame.commit() }
        func recordPointer(_ r: Register) -> Register {
            if let recReg { return recReg }
            b.emit(.load(r, .r10, offset: Int16(clamping: rec), size: .doubleWord))
            return r
        }
        func recordAddress(_ off: Int) {
            if let recReg { b.emit(.mov64(.r1, recReg)) } else { b.emit(.load(.r1, .r10, offset: Int16(clamping: rec), size: .doubleWord)) }
            b.emit(.add64(.r1, Int32(clamping: off)))
        }
        let failed = b.newLabel(), done = b.newLabel()
        reserveEvent(size: layout.size, action: id, orElse: failed)
        if let recReg { b.emit(.mov64(recReg, .r0)) } else { b.emit(.store(.r10, offset: Int16(clamping: rec), .r0, size: .doubleWord)) }
        for (i, a) in args.enumerated() {
            let off = layout.offsets[i], t = types[i]
            if case .builtin("comm") = a.kind, !isProcessProbe {
                recordAddress(off)
                b.emit(.mov64(.r2, 16))
                b.emit(.call(helper: H.comm))
                continue
            }
            if case .call("str", let sargs) = a.kind, case .string(let size) = t, let (ptr, space) = strSource(sargs) {
                load(ptr, into: .r3)
                release(ptr)
                recordAddress(off)
                b.emit(.mov64(.r2, Int32(clamping: size)))
                let outerSite = siteExpr
                siteExpr = a  // -kk blames the str() call
                callChecked(space == .user ? H.readUserStr : H.readKernelStr, .probeReadFailed)
                siteExpr = outerSite
                continue
            }
            let v = expr(a)
            if v.isPoison { continue }
            if t.isScalar {
                if let c = v.constant, let k = Int32(exactly: c) {
                    b.emit(.store(recordPointer(.r1), offset: Int16(clamping: off), imm: k, size: .doubleWord))
                    continue
                }
                let r = value(v, scratch: .r2)
                b.emit(.store(recordPointer(.r1), offset: Int16(clamping: off), r, size: .doubleWord))
            } else {
                let src = buffer(v, size: t.size)
                copy(from: .r10, src, to: recordPointer(.r1), off, carrier: .r2, size: (t.size + 7) / 8 * 8)
            }
            release(v)
        }
        submitEvent(recordPointer(.r1))
        if let recReg { pool.give(recReg) }
        b.goto(done)
        b.bind(failed)
        bumpCounter(.ringBufferFull)
        b.bind(done)
    }

    /// For `str(p)` / `str(p, constant)`: the pointer's value and the helper's address space;
    /// nil when the argument is already a string or the length is not constant.
    func strSource(_ args: [Expr]) -> (Val, AddressSpace)? {
        guard args.count == 1 || (args.count == 2 && { if case .integer = args[1].kind { return true }; return false }()) else { return nil }
        let probeType = dryRun { expr(args[0]) }
        guard probeType.type.isScalar else { return nil }
        let v = expr(args[0])
        var space: AddressSpace = .kernel
        switch v.type {
        case .pointer(_, let s): space = s == .user ? .user : .kernel
        default:
            switch context {
            case .registers(_, true): space = .user
            case .tracepoint(let c, _, _) where c == "syscalls": space = .user
            default: space = .kernel
            }
        }
        return (v, space)
    }

    func recordLayout(_ types: [SType]) -> (offsets: [Int], size: Int) {
        var at = 8
        var offsets: [Int] = []
        for t in types {
            offsets.append(at)
            at += t.isScalar ? 8 : (t.size + 7) / 8 * 8
        }
        return (offsets, at)
    }

    /// Reserves a record on the ring buffer, writes the action id and the arguments, submits.
    /// A full ring buffer bumps the ringBufferFull counter instead.
    func emitRecord(_ action: AsyncAction, args: [(Val, SType)], releasing: Bool = true) {
        useEvents(action.callName)
        let id = actions.count
        actions.append(action)
        let layout = recordLayout(args.map(\.1))
        // Aggregates to stack buffers first: reading them may call helpers, which clobber r0.
        var sources: [Int?] = []
        for (v, t) in args { sources.append(t.isScalar ? nil : buffer(v, size: t.size)) }
        let failed = b.newLabel(), done = b.newLabel()
        reserveEvent(size: layout.size, action: id, orElse: failed)
        for (i, (v, t)) in args.enumerated() {
            let off = layout.offsets[i]
            if let src = sources[i] {
                copy(from: .r10, src, to: .r0, off, carrier: .r1, size: (t.size + 7) / 8 * 8)
            } else if case .reg(let r) = v.loc {
                b.emit(.store(.r0, offset: Int16(clamping: off), r, size: .doubleWord))
            } else if let c = v.constant, let i = Int32(exactly: c) {
                b.emit(.store(.r0, offset: Int16(clamping: off), imm: i, size: .doubleWord))
            } else {
                let r = load(v, into: .r1)
                b.emit(.store(.r0, offset: Int16(clamping: off), r, size: .doubleWord))
            }
        }
        submitEvent(.r0)
        b.goto(done)
        b.bind(failed)
        bumpCounter(.ringBufferFull)
        b.bind(done)
        if releasing { args.forEach { release($0.0) } }
    }

    /// Reserves a `size`-byte record in the events ring buffer (r0 points at it) and jumps to
    /// `failed` when the ring is full; with `action`, stores that action id in its first 8 bytes.
    func reserveEvent(size: Int, action: Int?, orElse failed: Label) {
        references[b.pending.count] = .map(Compiler.eventsMap)
        b.emit(.loadImm64(.r1, 0))
        b.emit(.mov64(.r2, Int32(clamping: size)))
        b.emit(.mov64(.r3, 0))
        b.emit(.call(helper: H.ringbufReserve))
        b.jump(.jeq, .r0, imm: 0, to: failed)
        if let action { b.emit(.store(.r0, offset: 0, imm: Int32(clamping: action), size: .doubleWord)) }
    }

    /// Submits the reserved record `record` points at.
    func submitEvent(_ record: Register) {
        b.emit(.mov64(.r1, record))
        b.emit(.mov64(.r2, 0))
        b.emit(.call(helper: H.ringbufSubmit))
    }

    func copy(from src: Register, _ so: Int, to dst: Register, _ dOff: Int, carrier: Register, size: Int) {
        guard size <= Compiler.maxValueSize else { tooLarge(size); return }
        var i = 0
        while i < size {
            let w = chunk(so + i, dOff + i, remaining: size - i)
            let sz = Size(bytes: w) ?? .byte
            b.emit(.load(carrier, src, offset: Int16(clamping: so + i), size: sz))
            b.emit(.store(dst, offset: Int16(clamping: dOff + i), carrier, size: sz))
            i += w
        }
    }

    /// Bumps an error counter through the program's shared counting subprogram (two
    /// instructions per site; the subprogram is appended once).
    func bumpCounter(_ c: RuntimeCounter) {
        usesCounters = true
        let stub = counterStub ?? b.newLabel("count_error")
        counterStub = stub
        b.emit(.mov64(.r1, Int32(clamping: c.rawValue)))
        if options.reportHelperErrors { b.emit(.mov64(.r2, 0)) }  // no helper result (the stub saves r2 for -k)
        b.call(stub)
    }

    /// Calls a helper; with -k (-kk for reads), a negative result is reported where it happens.
    func callChecked(_ helper: Int32, _ counter: RuntimeCounter) {
        b.emit(.call(helper: helper))
        guard reportsHelperFailure(counter) else { return }
        let ok = b.newLabel()
        b.jump(.jsge, .r0, imm: 0, to: ok)
        reportHelperFailure(helper, counter)
        b.bind(ok)
    }

    /// The subprogram behind bumpCounter: counters[r1] += 1.
    func emitCounterStub(_ stub: Label, line: SourceRange) {
        b.bind(stub)
        subprogramStarts.append(b.pending.count)
        subprogramTypes.append(counterFunctionID)
        markLine(line)
        // r1: the counter, and with -k the failure's action + 1 above bit 8; r2 the helper's result.
        if options.reportHelperErrors {
            b.emit(.store(.r10, offset: -16, .r1, size: .doubleWord))
            b.emit(.store(.r10, offset: -24, .r2, size: .doubleWord))
            b.emit(.and64(.r1, 0xff))
        }
        b.emit(.store(.r10, offset: -8, .r1, size: .doubleWord))
        references[b.pending.count] = .map(Compiler.countersMap)
        b.emit(.loadImm64(.r1, 0))
        address(ofSlot: -8, into: .r2)
        b.emit(.call(helper: H.mapLookup))
        b.emit(.jump(.jeq, .r0, imm: 0, offset: 2))
        b.emit(.mov64(.r1, 1))
        b.emit(.atomic(.add, .r0, offset: 0, .r1, size: .doubleWord))
        emitHelperErrorRecord()
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
    }

    /// str(p[, n]): a NUL-terminated string read with the helper the pointer's space calls for.
    func str(_ args: [Expr], _ e: Expr) -> Val {
        let v = expr(args[0])
        if v.isPoison { return .poison }
        if v.type.isString {
            return v
        }
        var size = options.stringLength
        var dynamicLength: Val?
        if args.count == 2 {
            let n = expr(args[1])
            if let c = n.constant {
                guard c > 0 else { error("str() length must be positive", args[1].range); return .poison }
                size = c < Int64(options.stringLength) ? Int(c) + 1 : options.stringLength
            } else if n.type.isInteger {
                dynamicLength = n
            } else {
                error("str() length must be an integer", args[1].range)
                return .poison
            }
        }
        var space: AddressSpace = .kernel
        switch v.type {
        case .pointer(_, let s): space = s
        case .int:
            // A bare number: user memory in user-space probes and syscall arguments, else kernel.
            switch context {
            case .registers(_, true): space = .user
            case .tracepoint(let c, _, _) where c == "syscalls": space = .user
            default: space = .kernel
            }
        default:
            error("str() expects a pointer or an integer address, not '\(v.type)'", args[0].range)
            release(v)
            return .poison
        }
        let o = frame.allocate(size)
        // The read helpers stop at the NUL and leave the rest of the buffer as it was: zero it
        // first, so equal strings are equal keys and compare equal.
        zero(slot: o, size: (size + 7) / 8 * 8)
        load(v, into: .r3)
        release(v)
        if let n = dynamicLength {
            // Bound the length so the verifier sees 1...size.
            load(n, into: .r2)
            release(n)
            b.emit(.add64(.r2, 1))
            let ok = b.newLabel()
            b.jump(.jle, .r2, imm: Int32(clamping: size), to: ok)
            b.emit(.mov64(.r2, Int32(clamping: size)))
            b.bind(ok)
        } else {
            b.emit(.mov64(.r2, Int32(clamping: size)))
        }
        address(ofSlot: o, into: .r1)
        callChecked(space == .user ? H.readUserStr : H.readKernelStr, .probeReadFailed)
        return Val(type: .string(size: size), loc: .slot(o))
    }

    /// buf(p, n): u32 length then the bytes.
    func buf(_ args: [Expr], _ e: Expr) -> Val {
        let v = expr(args[0])
        if v.isPoison { return .poison }
        var n = options.stringLength
        var dynamicLength: Val?
        if args.count == 2 {
            let len = expr(args[1])
            if len.isPoison { release(v); return .poison }
            if let c = len.constant {
                guard c > 0 else { error("buf() length must be positive", args[1].range); return .poison }
                n = c < Int64(options.stringLength) ? Int(c) : options.stringLength
            } else if len.type.isInteger {
                // A run-time length: the buffer holds up to BPFTRACE_STRLEN bytes.
                dynamicLength = len
            } else {
                error("buf() length must be an integer", args[1].range)
                return .poison
            }
        } else if case .pointer(let p, _) = v.type, p.size > 0 {
            n = min(p.size, options.stringLength)
        } else if case .array(let el, let count) = v.type {
            n = min(el.size * count, options.stringLength)
        }
        var space: AddressSpace = .kernel
        if case .pointer(_, let s) = v.type { space = s.readable }
        if case .registers(_, true) = context { space = .user }
        let o = frame.allocate(8 + n)
        zero(slot: o, size: (8 + n + 7) / 8 * 8)
        b.emit(.store(.r10, offset: Int16(clamping: o), imm: Int32(clamping: n), size: .word))
        switch v.loc {
        case .literal(let bytes):
            // Data, not a C string: all n bytes, no NUL in place of the last.
            writeLiteral(bytes, toSlot: o + 4, size: n + 1)
        case _ where v.type.isString:
            storeAggregate(v, size: min(n, v.type.size), padded: min(n, v.type.size), toSlot: o + 4)
        case .memory(let base, let off, let s):
            read(into: o + 4, size: n, base: base, offset: off, space: s.readable)
        default:
            guard v.type.isScalar else { error("buf() expects a pointer or an array", args[0].range); return .poison }
            if let len = dynamicLength {
                // min(len, capacity) as an unsigned compare, so the verifier sees 0...n.
                load(len, into: .r2)
                release(len)
                let ok = b.newLabel()
                b.jump(.jle, .r2, imm: Int32(clamping: n), to: ok)
                b.emit(.mov64(.r2, Int32(clamping: n)))
                b.bind(ok)
                b.emit(.store(.r10, offset: Int16(clamping: o), .r2, size: .word))
                load(v, into: .r3)
                address(ofSlot: o + 4, into: .r1)
                callChecked(space == .user ? H.readUser : H.readKernel, .probeReadFailed)
            } else {
                read(into: o + 4, size: n, base: v.loc, offset: 0, space: space)
            }
            release(v)
        }
        return Val(type: .buffer(capacity: n), loc: .slot(o))
    }

    /// ntop([af,] addr): family then 16 address bytes.
    func ntop(_ args: [Expr], _ e: Expr) -> Val {
        let addrExpr = args.count == 2 ? args[1] : args[0]
        var family: Int64?
        if args.count == 2 {
            let f = expr(args[0])
            guard let c = f.constant else { error("ntop() address family must be a constant (AF_INET 2 or AF_INET6 10)", args[0].range); return .poison }
            family = c
        }
        let v = expr(addrExpr)
        if v.isPoison { return .poison }
        let o = frame.allocate(24)
        zero(slot: o, size: 24)
        if v.type.isInteger {
            b.emit(.store(.r10, offset: Int16(clamping: o), imm: Int32(clamping: family ?? 2), size: .doubleWord))
            storeScalar(v, slot: o + 8, size: .word)
            release(v)
        } else if v.type.size == 4 || v.type.size == 16, v.type.isString || { if case .array = v.type { return true }; return false }() {
            // Address bytes (u8[4], u8[16]; byte arrays type as strings).
            let n = v.type.size
            b.emit(.store(.r10, offset: Int16(clamping: o), imm: Int32(clamping: family ?? (n == 4 ? 2 : 10)), size: .doubleWord))
            storeAggregate(Val(type: .array(.int(size: 1, signed: false), count: n), loc: v.loc), size: n, padded: n, toSlot: o + 8)
        } else {
            error("ntop() expects an integer (IPv4) or a 4- or 16-byte array, not '\(v.type)'", addrExpr.range)
            return .poison
        }
        return Val(type: .inet, loc: .slot(o))
    }

    /// join(argv[, delim]): up to 16 user strings, written straight into the record.
    func join(_ args: [Expr], _ e: Expr) -> Val {
        var delim = " "
        if args.count == 2 {
            guard case .string(let d) = args[1].kind else { error("join() delimiter must be a string literal", args[1].range); return .poison }
            delim = d
        }
        let v = expr(args[0])
        if v.isPoison { return .poison }
        guard v.type.isScalar else { error("join() expects an array of string pointers (char **)", args[0].range); return .poison }
        var space: AddressSpace = .kernel
        if case .pointer(_, let s) = v.type { space = s.readable }
        if case .tracepoint(let c, _, _) = context, c == "syscalls" { space = .user }
        if case .registers(_, true) = context { space = .user }
        let count = 16, size = options.stringLength
        useEvents("join()")
        let id = actions.count
        actions.append(.join(delimiter: delim, count: count, size: size))
        let arr = frame.allocate(8), rec = frame.allocate(8), ptr = frame.allocate(8)
        storeScalar(v, slot: arr, size: .doubleWord)
        release(v)
        let failed = b.newLabel(), done = b.newLabel()
        reserveEvent(size: 8 + count * size, action: id, orElse: failed)
        b.emit(.store(.r10, offset: Int16(clamping: rec), .r0, size: .doubleWord))
        let stop = b.newLabel()
        for i in 0..<count {
            // Empty strings past the end: the runtime stops at the first one.
            b.emit(.load(.r1, .r10, offset: Int16(clamping: rec), size: .doubleWord))
            b.emit(.store(.r1, offset: Int16(clamping: 8 + i * size), imm: 0, size: .byte))
        }
        for i in 0..<count {
            b.emit(.store(.r10, offset: Int16(clamping: ptr), imm: 0, size: .doubleWord))
            address(ofSlot: ptr, into: .r1)
            b.emit(.mov64(.r2, 8))
            b.emit(.load(.r3, .r10, offset: Int16(clamping: arr), size: .doubleWord))
            b.emit(.add64(.r3, Int32(clamping: 8 * i)))
            callChecked(space == .user ? H.readUser : H.readKernel, .probeReadFailed)
            b.emit(.load(.r3, .r10, offset: Int16(clamping: ptr), size: .doubleWord))
            b.jump(.jeq, .r3, imm: 0, to: stop)
            b.emit(.load(.r1, .r10, offset: Int16(clamping: rec), size: .doubleWord))
            b.emit(.add64(.r1, Int32(clamping: 8 + i * size)))
            b.emit(.mov64(.r2, Int32(clamping: size)))
            callChecked(space == .user ? H.readUserStr : H.readKernelStr, .probeReadFailed)
        }
        b.bind(stop)
        b.emit(.load(.r1, .r10, offset: Int16(clamping: rec), size: .doubleWord))
        b.emit(.mov64(.r2, 0))
        b.emit(.call(helper: H.ringbufSubmit))
        b.goto(done)
        b.bind(failed)
        bumpCounter(.ringBufferFull)
        b.bind(done)
        return Val(type: .none, loc: .imm(0))
    }
}
