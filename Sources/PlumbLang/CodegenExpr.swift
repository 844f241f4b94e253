// Expressions: typed and lowered in one visit. Scalars live in callee-saved registers
// (r7–r9, so helper calls keep them) or spill to 8-byte stack slots; strings, tuples and
// other aggregates live in stack buffers; struct values in foreign memory stay addresses
// (with a static offset) until a scalar member is read.
import PlumbAsm
import PlumbBTF

indirect enum Loc: Sendable {
    case reg(Register)
    /// A stack slot (negative offset from r10): 8 bytes for scalars, the whole buffer for aggregates.
    case slot(Int)
    case imm(Int64)
    /// A string literal's bytes (no NUL), written out where needed.
    case literal([UInt8])
    /// Foreign memory at (scalar address) + offset, not read yet (records, arrays).
    case memory(Loc, offset: Int, space: AddressSpace)
}

struct Val: Sendable {
    var type: SType
    var loc: Loc
    static let poison = Val(type: .none, loc: .imm(0))
    var isPoison: Bool { type == .none }
    var constant: Int64? { if case .imm(let v) = loc { return v }; return nil }
}

enum H {
    static let mapLookup: Int32 = 1, mapUpdate: Int32 = 2, mapDelete: Int32 = 3
    static let ktimeGetNs: Int32 = 5, prandom: Int32 = 7, smpProcessorID: Int32 = 8
    static let pidTgid: Int32 = 14, uidGid: Int32 = 15, comm: Int32 = 16, stackID: Int32 = 27
    static let currentTask: Int32 = 35, numaNode: Int32 = 42, cgroupID: Int32 = 80
    static let sendSignal: Int32 = 109, readUser: Int32 = 112, readKernel: Int32 = 113
    static let readUserStr: Int32 = 114, readKernelStr: Int32 = 115
    static let ringbufReserve: Int32 = 131, ringbufSubmit: Int32 = 132, forEachMapElem: Int32 = 164
}

extension Compiler {
    // MARK: Registers and slots

    /// Moves `v` (a scalar) into `r`.
    @discardableResult
    func load(_ v: Val, into r: Register) -> Register {
        switch v.loc {
        case .reg(let s): if s != r { b.emit(.mov64(r, s)) }
        case .slot(let o): b.emit(.load(r, .r10, offset: Int16(clamping: o), size: .doubleWord))
        case .imm(let x):
            if let i = Int32(exactly: x) { b.emit(.mov64(r, i)) } else { b.emit(.loadImm64(r, x)) }
        case .literal, .memory:
            b.emit(.mov64(r, 0))
        }
        return r
    }

    /// A new value holding what is in scratch register `r` (moved to a pool register or a slot).
    func result(_ type: SType, from r: Register) -> Val {
        if let p = pool.take(preferring: r) {
            if p != r { b.emit(.mov64(p, r)) }
            return Val(type: type, loc: .reg(p))
        }
        let s = frame.allocate(8)
        b.emit(.store(.r10, offset: Int16(clamping: s), r, size: .doubleWord))
        return Val(type: type, loc: .slot(s))
    }

    /// The register holding scalar `v`: its own when it has one (the caller may then change it
    /// only if `v` is consumed), else `scratch` loaded with it.
    func value(_ v: Val, scratch: Register) -> Register {
        if case .reg(let r) = v.loc { return r }
        return load(v, into: scratch)
    }

    /// *(u64/size *)(r10 + slot) = v, with an immediate store for small constants.
    func storeScalar(_ v: Val, slot: Int, size: Size = .doubleWord) {
        if let c = v.constant, let i = Int32(exactly: c) {
            b.emit(.store(.r10, offset: Int16(clamping: slot), imm: i, size: size))
        } else {
            b.emit(.store(.r10, offset: Int16(clamping: slot), value(v, scratch: .r0), size: size))
        }
    }

    func release(_ v: Val) {
        switch v.loc {
        case .reg(let r): pool.give(r)
        case .memory(let base, _, _): release(Val(type: .u64, loc: base))
        default: break
        }
    }

    /// r = fp + offset.
    func address(ofSlot o: Int, into r: Register) {
        b.emit(.mov64(r, .r10))
        b.emit(.add64(r, Int32(clamping: o)))
    }

    /// Zeroes `size` bytes (multiple of 8) at slot `o`.
    func zero(slot o: Int, size: Int) {
        guard size <= Compiler.maxValueSize else { tooLarge(size); return }
        var i = 0
        while i < size {
            b.emit(.store(.r10, offset: Int16(clamping: o + i), imm: 0, size: .doubleWord))
            i += 8
        }
    }

    /// Copies `size` bytes between stack/map memory: from (src + so) to (dst + do), 8 bytes at a time
    /// then smaller, through r1... r0 used as the carrier; src/dst must not be r0.
    func copy(from src: Register, _ so: Int, to dst: Register, _ dOff: Int, size: Int) {
        copy(from: src, so, to: dst, dOff, carrier: .r0, size: size)
    }

    /// The widest access (8, 4, 2, 1) that keeps both offsets aligned and fits `remaining`:
    /// the verifier rejects misaligned stack accesses.
    func chunk(_ a: Int, _ c: Int, remaining: Int) -> Int {
        for w in [8, 4, 2] where remaining >= w && a % w == 0 && c % w == 0 { return w }
        return 1
    }

    /// The aggregate `v` in a stack buffer of exactly `size` bytes (padded with zeros or cut).
    func buffer(_ v: Val, size: Int) -> Int {
        let padded = (size + 7) / 8 * 8
        switch v.loc {
        case .slot(let o) where v.type.size == size || (v.type.size >= size && !v.type.isString):
            return o
        case .literal(let bytes):
            let o = frame.allocate(padded)
            writeLiteral(bytes, toSlot: o, size: padded)
            return o
        case .slot(let o):
            let n = frame.allocate(padded)
            zero(slot: n, size: padded)
            copy(from: .r10, o, to: .r10, n, size: min(size, v.type.size))
            if v.type.isString, size < v.type.size {
                b.emit(.store(.r10, offset: Int16(clamping: n + size - 1), imm: 0, size: .byte))
            }
            return n
        case .memory(let base, let off, let space):
            let n = frame.allocate(padded)
            read(into: n, size: size, base: base, offset: off, space: space)
            return n
        default:
            let n = frame.allocate(padded)
            zero(slot: n, size: padded)
            if v.type.isScalar { storeScalar(v, slot: n, size: .doubleWord) }
            return n
        }
    }

    /// Writes the literal's bytes (a NUL at `size - 1` at the latest) and zeros up to `size`
    /// rounded to the access width, at any (even misaligned) slot offset.
    func writeLiteral(_ bytes: [UInt8], toSlot o: Int, size: Int) {
        var i = 0
        let end = o % 8 == 0 ? (size + 7) / 8 * 8 : size
        while i < end {
            let w = chunk(o + i, 0, remaining: end - i)
            var word: UInt64 = 0
            for k in 0..<w where i + k < bytes.count && i + k < size - 1 { word |= UInt64(bytes[i + k]) << (8 * k) }
            let value = w == 8 ? Int64(bitPattern: word) : Int64(word)
            if let small = Int32(exactly: value), w == 8 || small >= 0 {
                b.emit(.store(.r10, offset: Int16(clamping: o + i), imm: w == 4 ? Int32(bitPattern: UInt32(clamping: word)) : small, size: Size(bytes: w) ?? .byte))
            } else if w == 4 {
                b.emit(.store(.r10, offset: Int16(clamping: o + i), imm: Int32(bitPattern: UInt32(clamping: word)), size: .word))
            } else {
                b.emit(.loadImm64(.r0, value))
                b.emit(.store(.r10, offset: Int16(clamping: o + i), .r0, size: Size(bytes: w) ?? .byte))
            }
            i += w
        }
    }

    /// probe_read(_kernel|_user) of `size` bytes from base+offset into slot `o`; a BTF pointer is
    /// read through the kernel helper too (no direct loads into buffers).
    func read(into o: Int, size: Int, base: Loc, offset: Int, space: AddressSpace) {
        load(Val(type: .u64, loc: base), into: .r3)
        if offset != 0 { b.emit(.add64(.r3, Int32(clamping: offset))) }
        address(ofSlot: o, into: .r1)
        b.emit(.mov64(.r2, Int32(clamping: size)))
        callChecked(space == .user ? H.readUser : H.readKernel, .probeReadFailed)
    }

    /// Reads a scalar of `type` at base+offset; a BTF pointer is loaded directly.
    func readScalar(_ type: SType, base: Loc, offset: Int, space: AddressSpace, bitfield: (offset: Int, bits: Int)? = nil) -> Val {
        let size = max(1, min(8, type.size))
        let sz = Size(bytes: size) ?? .doubleWord
        // Pointers in an iterator's context may be NULL: the verifier forbids arithmetic on
        // them, so they are read as plain numbers with the helper.
        if space == .btf || (space == .context && !type.isPointer) {
            let r = value(Val(type: .u64, loc: base), scratch: .r1)
            b.emit(.load(.r0, r, offset: Int16(clamping: offset), size: sz))
        } else {
            // The read helper writes the whole buffer (zeros on failure): no initialization needed.
            let s = frame.allocate(8)
            read(into: s, size: size, base: base, offset: offset, space: space.readable)
            b.emit(.load(.r0, .r10, offset: Int16(clamping: s), size: sz))
        }
        if let bf = bitfield {
            if bf.offset > 0 { b.emit(.rsh64(.r0, Int32(clamping: bf.offset))) }
            if bf.bits < 64 { b.emit(.loadImm64(.r1, Int64(bitPattern: (UInt64(1) << UInt64(bf.bits)) - 1))); b.emit(.alu64(.and, .r0, .r1)) }
        } else {
            extend(.r0, type)
        }
        return result(type, from: .r0)
    }

    /// Sign-extends a freshly loaded narrow signed value (loads zero-extend).
    func extend(_ r: Register, _ type: SType) {
        if case .int(let s, true) = type, s < 8 { b.emit(.movsx64(r, r, bits: Int16(clamping: s * 8))) }
    }

    /// Truncates/extends register `r` holding a value of any type to `type`.
    func convert(_ r: Register, to type: SType) {
        switch type {
        case .int(let s, let signed) where s < 8:
            if signed { b.emit(.movsx64(r, r, bits: Int16(clamping: s * 8))) }
            else if s == 4 { b.emit(.mov32(r, r)) }
            else { b.emit(.and64(r, Int32(clamping: s == 1 ? 0xff : 0xffff))) }
        case .bool:
            b.emit(.jump(.jeq, r, imm: 0, offset: 1))
            b.emit(.mov64(r, 1))
        default: break
        }
    }

    // MARK: Expressions

    func expr(_ e: Expr) -> Val {
        let outerSite = siteExpr
        siteExpr = e
        defer { siteExpr = outerSite }
        switch e.kind {
        case .integer(let v):
            if v > UInt64(Int64.max) { return Val(type: .u64, loc: .imm(Int64(bitPattern: v))) }
            return Val(type: .i64, loc: .imm(Int64(v)))
        case .boolean(let v):
            return Val(type: .bool, loc: .imm(v ? 1 : 0))
        case .string(let s):
            let bytes = Array(s.utf8)
            return Val(type: .string(size: bytes.count + 1), loc: .literal(bytes))
        case .positional(let n):
            // As bpftrace: a parameter not given is 0 (and an empty string to str()).
            guard n >= 1, n <= options.positionalParameters.count else { return Val(type: .i64, loc: .imm(0)) }
            let text = options.positionalParameters[n - 1]
            if let v = Int64(text) { return Val(type: .i64, loc: .imm(v)) }
            if let v = parseInteger(text) { return Val(type: .u64, loc: .imm(Int64(bitPattern: v))) }
            return Val(type: .string(size: text.utf8.count + 1), loc: .literal(Array(text.utf8)))
        case .positionalCount:
            return Val(type: .i64, loc: .imm(Int64(options.positionalParameters.count)))
        case .variable(let name):
            usedVariables.insert(name)
            if poisonedVariables.contains(name) { return .poison }
            guard let v = variables[name], definedVariables.contains(name) else {
                if variables[name] == nil, let local = statementLocal(name, e) { return local }
                error("Undefined or undeclared variable: $\(name)", e.range,
                      notes: nearest(name, in: Array(definedVariables)).map { [.init("did you mean '$\($0)'?")] } ?? [])
                return .poison
            }
            if v.type.isScalar {
                b.emit(.load(.r0, .r10, offset: Int16(clamping: v.slot), size: .doubleWord))
                return result(v.type, from: .r0)
            }
            return Val(type: v.type, loc: .slot(v.slot))
        case .builtin(let name):
            return builtin(name, e)
        case .map(let name, let keys):
            return mapRead(name, keys: keys, e)
        case .call(let name, let args):
            return call(name, args, e)
        case .unary(let op, let x):
            return unary(op, x, e)
        case .binary(let op, let l, let r):
            return binary(op, l, r, e)
        case .ternary(let c, let t, let f):
            return ternary(c, t, f, e)
        case .increment(let target, let isDecrement, let isPrefix):
            return increment(target, isDecrement: isDecrement, isPrefix: isPrefix, e)
        case .cast(let tn, let x):
            return cast(tn, x, e)
        case .field(let base, let name, let isArrow):
            return field(base, name, isArrow: isArrow, e)
        case .index(let base, let i):
            return index(base, i, e)
        case .tuple(let elems):
            let vals = elems.map { expr($0) }
            if vals.contains(where: \.isPoison) { vals.forEach(release); return .poison }
            let types = vals.map { t -> SType in t.type.isString ? .string(size: max(t.type.size, options.stringLength)) : (t.type.isScalar && !t.type.isPointer ? widen(t.type) : t.type) }
            let tuple = SType.tuple(types)
            let layout = tuple.tupleLayout
            let o = frame.allocate(layout.size)
            zero(slot: o, size: layout.size)
            for (i, v) in vals.enumerated() { store(v, as: types[i], toSlot: o + layout.offsets[i]) }
            vals.forEach(release)
            return Val(type: tuple, loc: .slot(o))
        case .tupleIndex(let base, let i):
            let v = expr(base)
            if v.isPoison { return .poison }
            guard case .tuple(let elems) = v.type else {
                error("cannot index a value of type '\(v.type)' with .\(i); only tuples have numbered fields", e.range)
                release(v)
                return .poison
            }
            guard i >= 0, i < elems.count else {
                error("tuple index \(i) is out of range; the tuple has \(elems.count) elements", e.range)
                return .poison
            }
            guard case .slot(let o) = v.loc else { return .poison }
            let off = o + v.type.tupleLayout.offsets[i]
            let t = elems[i]
            if t.isScalar {
                b.emit(.load(.r0, .r10, offset: Int16(clamping: off), size: Size(bytes: t.size) ?? .doubleWord))
                extend(.r0, t)
                return result(t, from: .r0)
            }
            return Val(type: t, loc: .slot(off))
        case .sizeofType(let tn):
            guard let t = resolveType(tn) else { return .poison }
            return Val(type: .u64, loc: .imm(Int64(t.size)))
        case .sizeofExpr(let x):
            // The size is known from the type: the expression is checked, its code thrown away.
            let v = dryRun { expr(x) }
            if v.isPoison { return .poison }
            return Val(type: .u64, loc: .imm(Int64(v.type.size)))
        case .offsetof(let tn, let path):
            guard let t = resolveType(tn) else { return .poison }
            guard case .record(let id, _, _) = t, let btf else {
                error("offsetof needs a struct or union type, not '\(tn)'", tn.range)
                return .poison
            }
            var cur = id
            var total: UInt32 = 0
            for name in path {
                guard let m = try? btf.findMember(name, in: cur) else {
                    memberError(name, in: cur, range: e.range)
                    return .poison
                }
                total += m.bitOffset / 8
                cur = (try? btf.resolve(m.type)) ?? 0
            }
            return Val(type: .u64, loc: .imm(Int64(total)))
        }
    }

    /// Integers widen to 64 bits when stored in variables, keys and records (as bpftrace does).
    func widen(_ t: SType) -> SType {
        if case .int(_, let s) = t { return s ? .i64 : .u64 }
        if t == .bool { return .bool }
        return t
    }

    /// Writes `v` as `type` at stack slot `o` (scalars 8 bytes; aggregates their size).
    func store(_ v: Val, as type: SType, toSlot o: Int) {
        if type.isScalar {
            if let c = v.constant, let i = Int32(exactly: c) {
                b.emit(.store(.r10, offset: Int16(clamping: o), imm: i, size: Size(bytes: min(8, max(1, type.size))) ?? .doubleWord))
            } else {
                b.emit(.store(.r10, offset: Int16(clamping: o), value(v, scratch: .r0), size: Size(bytes: min(8, max(1, type.size))) ?? .doubleWord))
            }
        } else {
            storeAggregate(v, size: type.size, padded: type.size, toSlot: o)
        }
    }

    /// Writes an aggregate straight to slot `o`: `size` bytes of it (strings cut keep their NUL),
    /// zeros up to `padded`. Every byte of the destination is written once.
    func storeAggregate(_ v: Val, size: Int, padded: Int, toSlot o: Int) {
        guard padded <= Compiler.maxValueSize else { tooLarge(padded); return }
        switch v.loc {
        case .literal(let bytes):
            writeLiteral(bytes, toSlot: o, size: padded)
            return
        case .slot(let src):
            let n = min(size, v.type.size)
            if src != o { copy(from: .r10, src, to: .r10, o, size: n) }
            if v.type.isString, n == size, v.type.size > size {
                b.emit(.store(.r10, offset: Int16(clamping: o + size - 1), imm: 0, size: .byte))
            }
            zeroBytes(slot: o, from: n, to: padded)
        case .memory(let base, let off, let space):
            let n = min(size, v.type.size)
            read(into: o, size: n, base: base, offset: off, space: space.readable)
            zeroBytes(slot: o, from: n, to: padded)
        default:
            zeroBytes(slot: o, from: 0, to: padded)
            if v.type.isScalar { storeScalar(v, slot: o, size: .doubleWord) }
        }
    }

    /// Values larger than this never fit the 512-byte stack; refusing them early keeps the
    /// generated code (unrolled copies) small.
    static let maxValueSize = 4096

    func tooLarge(_ size: Int) {
        if !reportedTooLarge {
            error("a value of \(size) bytes is too large to copy in a BPF program (the stack holds 512)", currentStatement)
            reportedTooLarge = true
        }
    }

    /// Zeroes bytes [from, to) of slot `o` with the widest stores that fit.
    func zeroBytes(slot o: Int, from: Int, to: Int) {
        var i = from
        while i < to {
            let chunk = (i % 8 == 0 && to - i >= 8) ? 8 : (i % 4 == 0 && to - i >= 4) ? 4 : (i % 2 == 0 && to - i >= 2) ? 2 : 1
            b.emit(.store(.r10, offset: Int16(clamping: o + i), imm: 0, size: Size(bytes: chunk) ?? .byte))
            i += chunk
        }
    }

    func memberError(_ name: String, in id: TypeID, range: SourceRange) {
        guard let btf else { return }
        let names = (try? btf.memberNames(id)) ?? []
        error("'\(btf.cTypeName(id))' has no member named '\(name)'", range,
              notes: nearest(name, in: names).map { [.init("did you mean '\($0)'?")] } ?? [])
    }

    // MARK: Types written in the script

    func resolveType(_ tn: TypeName) -> SType? {
        var base: SType
        let n = tn.base.split(separator: " ").joined(separator: " ")
        let ints: [String: SType] = [
            "int8": .int(size: 1, signed: true), "uint8": .int(size: 1, signed: false),
            "int16": .int(size: 2, signed: true), "uint16": .int(size: 2, signed: false),
            "int32": .i32, "uint32": .u32, "int64": .i64, "uint64": .u64,
            "char": .int(size: 1, signed: true), "unsigned char": .int(size: 1, signed: false), "signed char": .int(size: 1, signed: true),
            "short": .int(size: 2, signed: true), "unsigned short": .int(size: 2, signed: false),
            "int": .i32, "unsigned int": .u32, "unsigned": .u32, "signed int": .i32,
            "long": .i64, "unsigned long": .u64, "long long": .i64, "unsigned long long": .u64,
            "bool": .bool, "void": .none,
            "u8": .int(size: 1, signed: false), "s8": .int(size: 1, signed: true), "u16": .int(size: 2, signed: false),
            "s16": .int(size: 2, signed: true), "u32": .u32, "s32": .i32, "u64": .u64, "s64": .i64,
        ]
        if let t = ints[n] {
            base = t
        } else if let u = userCastType(n) {
            base = u
        } else {
            guard let btf else {
                error("unknown type '\(tn.base)': the kernel has no BTF to look it up in", tn.range)
                return nil
            }
            var id: TypeID?
            for (prefix, kind) in [("struct ", BTFKind.struct), ("union ", .union), ("enum ", .enum)] where n.hasPrefix(prefix) {
                let name = String(n.dropFirst(prefix.count))
                id = scriptStructIDs[name] ?? btf.firstID(named: name, kind: kind) ?? (kind == .enum ? btf.firstID(named: name, kind: .enum64) : nil)
                if id == nil {
                    let candidates = btf.ids(named: name).isEmpty ? [] : [name]
                    // bpftrace's wording for structs and unions.
                    let message = kind == .enum ? "unknown type '\(n)'" : "Unknown struct/union: '\(n)'"
                    error(message, tn.range, notes: candidates.map { .init("'\($0)' exists but is not a \(prefix.dropLast())") })
                    return nil
                }
            }
            if id == nil { id = btf.firstID(named: n, kind: .typedef) ?? btf.firstID(named: n, kind: .int) }
            guard let id else {
                error("unknown type '\(n)'", tn.range)
                return nil
            }
            base = stype(fromBTF: id, btf: btf, space: .kernel)
        }
        for _ in 0..<tn.pointerDepth { base = .pointer(base, space: .kernel) }
        if let len = tn.arrayLength {
            if case .int(1, _) = base { return .string(size: len) }
            base = .array(base, count: len)
        }
        if tn.pointerDepth == 0, base == .none, n != "void" { return nil }
        return base
    }

    // MARK: Operators

    func unary(_ op: UnaryOperator, _ x: Expr, _ e: Expr) -> Val {
        if op == .addressOf {
            error("the address-of operator '&' is not supported", e.range)
            return .poison
        }
        let v = expr(x)
        if v.isPoison { return .poison }
        switch op {
        case .dereference:
            if v.type.isInteger && v.type != .bool {
                // An integer address reads 8 bytes, as bpftrace does (user memory in uprobes).
                var space = AddressSpace.kernel
                if case .registers(_, true) = context { space = .user }
                return access(.i64, base: v.loc, offset: 0, space: space, e)
            }
            guard case .pointer(let pointee, let space) = v.type else {
                error("cannot dereference a value of type '\(v.type)'; only pointers can be dereferenced", e.range)
                release(v)
                return .poison
            }
            return access(pointee, base: v.loc, offset: 0, space: space, e)
        case .logicalNot:
            guard v.type.isScalar else { return typeError(op.rawValue, v, e) }
            if let c = v.constant { return Val(type: .bool, loc: .imm(c == 0 ? 1 : 0)) }
            let rv = value(v, scratch: .r0); release(v)
            b.emit(.mov64(.r1, 1))
            b.emit(.jump(.jeq, rv, imm: 0, offset: 1))
            b.emit(.mov64(.r1, 0))
            return result(.bool, from: .r1)
        case .bitwiseNot, .negate, .plus:
            guard v.type.isInteger else { return typeError(op.rawValue, v, e) }
            let t: SType = op == .plus ? v.type : (v.type == .bool ? .i64 : widen(v.type))
            if let c = v.constant { return Val(type: t, loc: .imm(op == .negate ? 0 &- c : op == .bitwiseNot ? ~c : c)) }
            if op == .plus { return v }
            let rv = value(v, scratch: .r0); release(v)
            if op == .negate { b.emit(.neg64(rv)) } else { b.emit(.alu64(.xor, rv, -1)) }
            return result(t, from: rv)
        case .addressOf:
            return .poison
        }
    }

    func typeError(_ op: String, _ v: Val, _ e: Expr) -> Val {
        error("The \(op) operator can not be used on expressions of type '\(v.type)'", e.range)
        release(v)
        return .poison
    }

    func binary(_ op: BinaryOperator, _ l: Expr, _ r: Expr, _ e: Expr) -> Val {
        if op == .logicalAnd || op == .logicalOr { return logical(op, l, r, e) }
        let a = expr(l)
        let c = expr(r)
        if a.isPoison || c.isPoison { release(a); release(c); return .poison }
        // Strings compare by content.
        if a.type.isString || c.type.isString {
            guard a.type.isString, c.type.isString, op == .equal || op == .notEqual else {
                if a.type.isString != c.type.isString {
                    error("Type mismatch for '\(op.rawValue)': comparing '\(a.type)' with '\(c.type)'", e.range)
                } else {
                    error("invalid operator '\(op.rawValue)' for strings; strings compare with == and !=", e.range)
                }
                release(a); release(c)
                return .poison
            }
            return stringEqual(a, c, negate: op == .notEqual)
        }
        guard a.type.isScalar, c.type.isScalar else {
            error("invalid operands to binary expression ('\(a.type)' and '\(c.type)')", e.range)
            release(a); release(c)
            return .poison
        }
        let comparison: Set<BinaryOperator> = [.equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual]
        var type = promote(a.type, c.type)
        var scaleRight: Int64 = 1
        if case .pointer(let p, let s) = a.type, op == .add || op == .subtract, c.type.isInteger {
            // Pointer arithmetic scales by the pointee's size; the result is no BTF pointer.
            type = .pointer(p, space: s.readable)
            scaleRight = Int64(max(1, p.size))
        } else if a.type.isPointer || c.type.isPointer, !comparison.contains(op) {
            if !(a.type.isPointer && c.type.isPointer && op == .subtract) {
                error("invalid operands to binary expression ('\(a.type)' and '\(c.type)')", e.range)
                release(a); release(c)
                return .poison
            }
            type = .i64
        }
        var signed = a.type.isSigned && c.type.isSigned || (type.isSigned && !comparison.contains(op))
        warnMixedSigns(op, a, c, l, r, e)
        if op == .divide || op == .modulo {
            // bpftrace divides unsigned (BPF had no signed division), warning about signed operands.
            func risky(_ v: Val) -> Bool { v.type.isSigned && (v.constant.map { $0 < 0 } ?? true) }
            if isFinalPass, risky(a) || risky(c) {
                warning("signed operands for '\(op.rawValue)' can lead to undefined behavior (cast to unsigned to silence warning)", operatorRange(op, l, r, e))
            }
            signed = false
        }
        // Constant folding.
        if let x = a.constant, let y = c.constant, let v = fold(op, x, y &* scaleRight, signed: signed) {
            return Val(type: comparison.contains(op) ? .bool : type, loc: .imm(v))
        }
        if (op == .divide || op == .modulo), c.constant == 0 {
            error("division by zero", r.range)
            return .poison
        }
        let ra = value(a, scratch: .r0)
        var imm: Int32?
        if let y = c.constant, let i = Int32(exactly: y &* scaleRight) { imm = i }
        // The right operand: an immediate, its own register (when not scaled), or r1.
        var rc = Register.r1
        if imm == nil {
            if scaleRight == 1 { rc = value(c, scratch: .r1) } else {
                load(c, into: .r1)
                b.emit(.mul64(.r1, Int32(clamping: scaleRight)))
            }
        }
        release(a); release(c)
        if comparison.contains(op) {
            let jop: JumpOp
            let isSigned = a.type.isSigned && c.type.isSigned || (a.type.isSigned && c.constant != nil) || (c.type.isSigned && a.constant != nil)
            switch op {
            case .equal: jop = .jeq
            case .notEqual: jop = .jne
            case .less: jop = isSigned ? .jslt : .jlt
            case .lessEqual: jop = isSigned ? .jsle : .jle
            case .greater: jop = isSigned ? .jsgt : .jgt
            default: jop = isSigned ? .jsge : .jge
            }
            b.emit(.mov64(.r2, 1))
            if let imm { b.emit(.jump(jop, ra, imm: imm, offset: 1)) } else { b.emit(.jump(jop, ra, rc, offset: 1)) }
            b.emit(.mov64(.r2, 0))
            return result(.bool, from: .r2)
        }
        let alu: ALUOp
        switch op {
        case .add: alu = .add
        case .subtract: alu = .sub
        case .multiply: alu = .mul
        case .divide: alu = .div
        case .modulo: alu = .mod
        case .bitwiseAnd: alu = .and
        case .bitwiseOr: alu = .or
        case .bitwiseXor: alu = .xor
        case .shiftLeft: alu = .lsh
        default: alu = type.isSigned ? .arsh : .rsh
        }
        // Division is unsigned (see above); by zero the kernel gives 0 (div) or the dividend (mod).
        if let imm { b.emit(.alu64(alu, ra, imm)) } else { b.emit(.alu64(alu, ra, rc)) }
        if a.type.isPointer, c.type.isPointer, op == .subtract, case .pointer(let p, _) = a.type, p.size > 1 {
            b.emit(.sdiv64(ra, Int32(clamping: p.size)))
        }
        return result(type, from: ra)
    }

    func fold(_ op: BinaryOperator, _ x: Int64, _ y: Int64, signed: Bool) -> Int64? {
        let ux = UInt64(bitPattern: x), uy = UInt64(bitPattern: y)
        switch op {
        case .add: return x &+ y
        case .subtract: return x &- y
        case .multiply: return x &* y
        case .divide: return y == 0 ? nil : signed ? (x == .min && y == -1 ? x : x / y) : Int64(bitPattern: ux / uy)
        case .modulo: return y == 0 ? nil : signed ? (y == -1 ? 0 : x % y) : Int64(bitPattern: ux % uy)
        case .bitwiseAnd: return x & y
        case .bitwiseOr: return x | y
        case .bitwiseXor: return x ^ y
        case .shiftLeft: return y >= 0 && y < 64 ? Int64(bitPattern: ux << uy) : 0
        case .shiftRight: return y >= 0 && y < 64 ? (signed ? x >> y : Int64(bitPattern: ux >> uy)) : 0
        case .equal: return x == y ? 1 : 0
        case .notEqual: return x != y ? 1 : 0
        case .less: return (signed ? x < y : ux < uy) ? 1 : 0
        case .lessEqual: return (signed ? x <= y : ux <= uy) ? 1 : 0
        case .greater: return (signed ? x > y : ux > uy) ? 1 : 0
        case .greaterEqual: return (signed ? x >= y : ux >= uy) ? 1 : 0
        case .logicalAnd, .logicalOr: return nil
        }
    }

    /// `a && b`, `a || b` with short-circuit evaluation.
    func logical(_ op: BinaryOperator, _ l: Expr, _ r: Expr, _ e: Expr) -> Val {
        let out = frame.allocate(8)
        let done = b.newLabel()
        let a = expr(l)
        guard a.isPoison || a.type.isScalar else { return typeError(op.rawValue, a, e) }
        let isAnd = op == .logicalAnd
        b.emit(.store(.r10, offset: Int16(clamping: out), imm: isAnd ? 0 : 1, size: .doubleWord))
        if !a.isPoison {
            let ra = value(a, scratch: .r0)
            b.jump(isAnd ? .jeq : .jne, ra, imm: 0, to: done)
        }
        release(a)
        let c = expr(r)
        guard c.isPoison || c.type.isScalar else { return typeError(op.rawValue, c, e) }
        if !c.isPoison {
            let rc = value(c, scratch: .r0)
            b.jump(isAnd ? .jeq : .jne, rc, imm: 0, to: done)
        }
        release(c)
        b.emit(.store(.r10, offset: Int16(clamping: out), imm: isAnd ? 1 : 0, size: .doubleWord))
        b.bind(done)
        if a.isPoison || c.isPoison { return .poison }
        b.emit(.load(.r0, .r10, offset: Int16(clamping: out), size: .doubleWord))
        return result(.bool, from: .r0)
    }

    /// Byte-wise string equality up to the first NUL (literals compare against immediates).
    func stringEqual(_ a: Val, _ c: Val, negate: Bool) -> Val {
        var x = a, y = c
        if case .literal = x.loc { swap(&x, &y) }
        let n = min(x.type.size, y.type.size)
        let sx = buffer(x, size: x.type.size)
        let differ = b.newLabel(), same = b.newLabel(), done = b.newLabel()
        if case .literal(let bytes) = y.loc {
            for i in 0..<n {
                let ch = i < bytes.count ? Int32(clamping: bytes[i]) : 0
                b.emit(.load(.r1, .r10, offset: Int16(clamping: sx + i), size: .byte))
                b.jump(.jne, .r1, imm: ch, to: differ)
                if ch == 0 { break }
            }
        } else {
            let sy = buffer(y, size: y.type.size)
            for i in 0..<n {
                b.emit(.load(.r1, .r10, offset: Int16(clamping: sx + i), size: .byte))
                b.emit(.load(.r2, .r10, offset: Int16(clamping: sy + i), size: .byte))
                b.jump(.jne, .r1, .r2, to: differ)
                b.jump(.jeq, .r1, imm: 0, to: same)
            }
        }
        b.bind(same)
        b.emit(.mov64(.r0, negate ? 0 : 1))
        b.goto(done)
        b.bind(differ)
        b.emit(.mov64(.r0, negate ? 1 : 0))
        b.bind(done)
        return result(.bool, from: .r0)
    }

    func ternary(_ cond: Expr, _ t: Expr, _ f: Expr, _ e: Expr) -> Val {
        let c = expr(cond)
        if c.isPoison { _ = expr(t); _ = expr(f); return .poison }
        guard c.type.isScalar else { return typeError("?:", c, e) }
        if let k = c.constant {
            // Only the arm taken is generated; the other is still checked.
            _ = dryRun { expr(k != 0 ? f : t) }
            return expr(k != 0 ? t : f)
        }
        let elseLabel = b.newLabel(), done = b.newLabel()
        let rc = value(c, scratch: .r0)
        release(c)
        b.jump(.jeq, rc, imm: 0, to: elseLabel)
        // Both arms write the same place: a slot sized for the larger value.
        let out = frame.allocate(max(8, options.stringLength))
        let a = expr(t)
        var type = a.type
        if a.type.isString { type = .string(size: max(a.type.size, options.stringLength)) }
        if type.size > max(8, options.stringLength) { error("ternary operands this large are not supported", e.range); return .poison }
        // Scalars take the whole 8-byte slot (it is read back as 8 bytes).
        if !a.isPoison { if type.isScalar { storeScalar(a, slot: out) } else { store(a, as: type, toSlot: out) } }
        release(a)
        b.goto(done)
        b.bind(elseLabel)
        let z = expr(f)
        if !z.isPoison, !a.isPoison {
            let compatible = (a.type.isScalar && z.type.isScalar) || (a.type.isString && z.type.isString) || a.type == z.type
            if !compatible {
                error("ternary operands have different types ('\(a.type)' and '\(z.type)')", e.range)
            } else {
                if a.type.isInteger, z.type.isInteger { type = promote(a.type, z.type) }
                if type.isScalar { storeScalar(z, slot: out) } else { store(z, as: type, toSlot: out) }
            }
        }
        release(z)
        b.bind(done)
        if a.isPoison || z.isPoison { return .poison }
        if type.isScalar {
            b.emit(.load(.r0, .r10, offset: Int16(clamping: out), size: .doubleWord))
            return result(type, from: .r0)
        }
        return Val(type: type, loc: .slot(out))
    }

    func cast(_ tn: TypeName, _ x: Expr, _ e: Expr) -> Val {
        let v = expr(x)
        guard let t = resolveType(tn) else { release(v); return .poison }
        if v.isPoison { return .poison }
        if case .array(let elem, let count) = t, v.type.isInteger {
            // (int8[8])$x: the integer's bytes as an array.
            let o = frame.allocate(8)
            storeScalar(v, slot: o, size: .doubleWord)
            release(v)
            return Val(type: .array(elem, count: count), loc: .slot(o))
        }
        guard t.isScalar, v.type.isScalar else {
            error("cannot cast '\(v.type)' to '\(tn)'", e.range)
            release(v)
            return .poison
        }
        var target = t
        if case .pointer(let p, _) = t {
            // A cast pointer is read with the kernel helper unless it came from user space.
            var space = AddressSpace.kernel
            if case .pointer(_, .user) = v.type { space = .user }
            if case .registers(_, true) = context { space = .user }
            if case .tracepoint(let cat, _, _) = context, cat == "syscalls", !v.type.isPointer { space = .user }
            target = .pointer(p, space: space)
        }
        if let c = v.constant {
            var value = c
            if case .int(let s, let signed) = target, s < 8 {
                let bits = Int64(s * 8)
                value = signed ? (c << (64 - bits)) >> (64 - bits) : Int64(bitPattern: UInt64(bitPattern: c) & ((1 << UInt64(bits)) - 1))
            }
            return Val(type: target, loc: .imm(value))
        }
        let r = value(v, scratch: .r0)
        release(v)
        convert(r, to: target)
        return result(target, from: r)
    }

    // MARK: Memory access

    /// The value of `type` at base+offset: scalars are read, aggregates stay addresses (strings are read).
    func access(_ type: SType, base: Loc, offset: Int, space: AddressSpace, _ e: Expr, bitfield: (Int, Int)? = nil) -> Val {
        switch type {
        case .int, .bool, .pointer:
            let v = readScalar(type, base: base, offset: offset, space: space, bitfield: bitfield)
            release(Val(type: .u64, loc: base))
            return v
        case .string(let n):
            let o = frame.allocate(n)
            read(into: o, size: n, base: base, offset: offset, space: space == .user ? .user : .kernel)
            release(Val(type: .u64, loc: base))
            return Val(type: type, loc: .slot(o))
        case .record, .array:
            return Val(type: type, loc: .memory(base, offset: offset, space: space))
        case .none:
            error("cannot dereference a 'void *'; cast it to a typed pointer first", e.range)
            return .poison
        default:
            error("cannot read a value of type '\(type)' from memory", e.range)
            return .poison
        }
    }

    func field(_ baseExpr: Expr, _ name: String, isArrow: Bool, _ e: Expr) -> Val {
        if case .builtin("args") = baseExpr.kind { return argsField(name, e) }
        let base = expr(baseExpr)
        if base.isPoison { return .poison }
        switch base.type {
        case .pointer(.record(let id, let tname, _), let space):
            if !isArrow {
                error("'\(base.type)' is a pointer; use '->' to access its member '\(name)'", e.range)
            }
            return member(name, of: id, typeName: tname, base: base.loc, offset: 0, space: space, e)
        case .record(let id, let tname, _):
            if isArrow {
                error("'\(tname)' is not a pointer; use '.' to access its member '\(name)'", e.range)
            }
            guard case .memory(let addr, let off, let space) = base.loc else {
                error("cannot access members of this '\(tname)' value", e.range)
                return .poison
            }
            return member(name, of: id, typeName: tname, base: addr, offset: off, space: space, e)
        case .args:
            return argsField(name, e)
        case .argsRecord(let members, _):
            return argsRecordMember(name, of: members, base, e)   // CodegenArgs.swift
        default:
            error("cannot access field '\(name)' on a value of type '\(base.type)'", e.range)
            release(base)
            return .poison
        }
    }

    func member(_ name: String, of id: TypeID, typeName: String, base: Loc, offset: Int, space: AddressSpace, _ e: Expr) -> Val {
        if let u = userMember(name, of: id, base: base, offset: offset, space: space, e) { return u }
        guard let btf, let m = try? btf.findMember(name, in: id) else {
            memberError(name, in: id, range: e.range)
            release(Val(type: .u64, loc: base))
            return .poison
        }
        let t = stype(fromBTF: m.type, btf: btf, space: space == .context ? .kernel : space)
        let byte = Int(m.bitOffset / 8)
        if m.bitfieldSize > 0 {
            let startByte = Int(m.bitOffset / 8) & ~7
            return access(.u64, base: base, offset: offset + startByte, space: space, e,
                          bitfield: (Int(m.bitOffset) - startByte * 8, Int(m.bitfieldSize)))
        }
        return access(t, base: base, offset: offset + byte, space: space, e)
    }

    func index(_ baseExpr: Expr, _ i: Expr, _ e: Expr) -> Val {
        let base = expr(baseExpr)
        let idx = expr(i)
        if base.isPoison || idx.isPoison { release(base); release(idx); return .poison }
        guard idx.type.isInteger else {
            error("an index must be an integer, not '\(idx.type)'", i.range)
            release(base); release(idx)
            return .poison
        }
        switch base.type {
        case .array(let elem, let count):
            if let k = idx.constant, k < 0 || k >= Int64(count) {
                error("index \(k) is out of bounds for an array of \(count) elements", i.range)
                return .poison
            }
            switch base.loc {
            case .memory(let addr, let off, let space):
                if let k = idx.constant { return access(elem, base: addr, offset: off &+ Int(k) &* elem.size, space: space, e) }
                load(Val(type: .u64, loc: addr), into: .r0)
                load(idx, into: .r1)
                release(idx); release(Val(type: .u64, loc: addr))
                b.emit(.mul64(.r1, Int32(clamping: elem.size)))
                b.emit(.add64(.r0, .r1))
                let a = result(.u64, from: .r0)
                return access(elem, base: a.loc, offset: off, space: space.readable, e)
            case .slot(let o):
                guard let k = idx.constant else {
                    error("arrays on the stack can only be indexed with constants", i.range)
                    return .poison
                }
                b.emit(.load(.r0, .r10, offset: Int16(clamping: o + Int(k) * elem.size), size: Size(bytes: elem.size) ?? .doubleWord))
                extend(.r0, elem)
                return result(elem, from: .r0)
            default:
                return .poison
            }
        case .pointer(let pointee, let space):
            if let k = idx.constant, abs(k) < 1 << 20 { return access(pointee, base: base.loc, offset: Int(k) * max(1, pointee.size), space: space, e) }
            load(base, into: .r0)
            load(idx, into: .r1)
            release(base); release(idx)
            b.emit(.mul64(.r1, Int32(clamping: max(1, pointee.size))))
            b.emit(.add64(.r0, .r1))
            let a = result(.u64, from: .r0)
            return access(pointee, base: a.loc, offset: 0, space: space.readable, e)
        case .string(let n):
            guard let k = idx.constant, case .slot(let o) = base.loc else {
                error("strings can only be indexed with constants", i.range)
                return .poison
            }
            guard k >= 0, k < Int64(n) else { error("index \(k) is out of bounds for a string of \(n) bytes", i.range); return .poison }
            b.emit(.load(.r0, .r10, offset: Int16(clamping: o + Int(k)), size: .byte))
            b.emit(.movsx64(.r0, .r0, bits: 8))
            return result(.int(size: 1, signed: true), from: .r0)
        default:
            error("cannot index a value of type '\(base.type)'", e.range)
            release(base); release(idx)
            return .poison
        }
    }
}

// MARK: Conditions

extension Compiler {
    /// The jump for `a op c` (signed when both sides are, or one is and the other a constant).
    func jumpOp(_ op: BinaryOperator, _ a: Val, _ c: Val) -> JumpOp {
        let isSigned = a.type.isSigned && c.type.isSigned || (a.type.isSigned && c.constant != nil) || (c.type.isSigned && a.constant != nil)
        switch op {
        case .equal: return .jeq
        case .notEqual: return .jne
        case .less: return isSigned ? .jslt : .jlt
        case .lessEqual: return isSigned ? .jsle : .jle
        case .greater: return isSigned ? .jsgt : .jgt
        default: return isSigned ? .jsge : .jge
        }
    }

    func inverse(_ j: JumpOp) -> JumpOp {
        switch j {
        case .jeq: return .jne
        case .jne: return .jeq
        case .jlt: return .jge
        case .jge: return .jlt
        case .jle: return .jgt
        case .jgt: return .jle
        case .jslt: return .jsge
        case .jsge: return .jslt
        case .jsle: return .jsgt
        case .jsgt: return .jsle
        default: return j
        }
    }

    /// Jumps to `target` when `e` is false. Integer comparisons become one conditional jump
    /// and `&&`, `||`, `!` chains of them, instead of materializing booleans.
    func branchIfFalse(_ e: Expr, to target: Label, what: String) {
        branch(e, to: target, when: false, what: what)
    }

    /// Jumps to `target` when `e`'s truth is `wanted`; falls through otherwise.
    func branch(_ e: Expr, to target: Label, when wanted: Bool, what: String) {
        let comparisons: Set<BinaryOperator> = [.equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual]
        switch e.kind {
        case .binary(let op, let l, let r) where op == .logicalAnd || op == .logicalOr:
            // a && b jumps on false when either is false; a || b on true when either is true.
            if (op == .logicalAnd) != wanted {
                branch(l, to: target, when: wanted, what: what)
                branch(r, to: target, when: wanted, what: what)
            } else {
                let skip = b.newLabel()
                branch(l, to: skip, when: !wanted, what: what)
                branch(r, to: target, when: wanted, what: what)
                b.bind(skip)
            }
            return
        case .unary(.logicalNot, let x):
            branch(x, to: target, when: !wanted, what: what)
            return
        case .binary(let op, let l, let r) where comparisons.contains(op):
            let a = expr(l), c = expr(r)
            if a.isPoison || c.isPoison { release(a); release(c); return }
            if a.type.isString, c.type.isString, op == .equal || op == .notEqual {
                let v = stringEqual(a, c, negate: op == .notEqual)
                b.jump(wanted ? .jne : .jeq, value(v, scratch: .r0), imm: 0, to: target)
                release(v)
                return
            }
            guard a.type.isScalar, c.type.isScalar else {
                if a.type.isString != c.type.isString {
                    error("Type mismatch for '\(op.rawValue)': comparing '\(a.type)' with '\(c.type)'", e.range)
                } else {
                    error("invalid operands to binary expression ('\(a.type)' and '\(c.type)')", e.range)
                }
                release(a); release(c)
                return
            }
            warnMixedSigns(op, a, c, l, r, e)
            if let x = a.constant, let y = c.constant {
                // Still a conditional jump: the kernel rejects code no edge reaches, and a
                // constant condition's other branch would be such code.
                let k = fold(op, x, y, signed: a.type.isSigned || c.type.isSigned) ?? 0
                b.emit(.mov64(.r0, Int32(clamping: k)))
                b.jump(wanted ? .jne : .jeq, .r0, imm: 0, to: target)
                return
            }
            var x = a, y = c, o = op
            if x.constant != nil {
                // Constant on the left: swap the sides and mirror the operator.
                swap(&x, &y)
                switch op {
                case .less: o = .greater
                case .lessEqual: o = .greaterEqual
                case .greater: o = .less
                case .greaterEqual: o = .lessEqual
                default: o = op
                }
            }
            let j = wanted ? jumpOp(o, x, y) : inverse(jumpOp(o, x, y))
            let rx = value(x, scratch: .r0)
            if let k = y.constant, let i = Int32(exactly: k) {
                b.jump(j, rx, imm: i, to: target)
            } else {
                b.jump(j, rx, value(y, scratch: .r1), to: target)
            }
            release(a); release(c)
            return
        default:
            break
        }
        let v = expr(e)
        if v.isPoison { return }
        guard v.type.isScalar else {
            error("\(what) must be an integer, bool or pointer, not '\(v.type)'", e.range)
            release(v)
            return
        }
        b.jump(wanted ? .jne : .jeq, value(v, scratch: .r0), imm: 0, to: target)
        release(v)
    }
}
