// @maps: declaration (types fixed at first use, checked after), keys, reads, plain
// assignment, and the aggregation functions with the value layouts of Plan.swift.
import PlumbAsm

extension Compiler {
    /// Registers or checks a map's key and value types; false after reporting a mismatch.
    @discardableResult
    func declareMap(_ name: String, keys: [SType], value: MapValueKind?, range: SourceRange) -> Bool {
        if var m = knowledge.maps[name] {
            if m.keys.count != keys.count || zip(m.keys, keys).contains(where: { !compatibleKey($0, $1) }) {
                if !m.keys.isEmpty || !keys.isEmpty {
                    error("Argument mismatch for @\(name): trying to access with arguments: [\(keys.map(\.description).joined(separator: ", "))] when map expects arguments: [\(m.keys.map(\.description).joined(separator: ", "))]", range)
                    return false
                }
            }
            // String keys grow to the longest seen.
            for i in m.keys.indices where i < keys.count {
                if case .string(let a) = m.keys[i], case .string(let c) = keys[i], c > a { m.keys[i] = keys[i] }
            }
            if let value {
                switch (m.value, value) {
                case (.value(let a), .value(let c)):
                    if a.isInteger && c.isInteger || a.isPointer && c.isPointer || a == c { break }
                    if case .string(let x) = a, case .string(let y) = c { m.value = .value(.string(size: max(x, y))); break }
                    error("Type mismatch for @\(name): trying to assign value of type '\(c)' when map already contains a value of type '\(a)'", range)
                    return false
                default:
                    if m.value != value {
                        let have = m.value.isAggregation ? m.value.functionName : m.value.readType.description
                        let want = value.isAggregation ? value.functionName : value.readType.description
                        error("Type mismatch for @\(name): trying to assign value of type '\(want)' when map already contains a value of type '\(have)'", range)
                        return false
                    }
                }
            }
            knowledge.maps[name] = m
            return true
        }
        guard let value else { return false }
        var m = MapState(name: name, keys: keys, value: value, range: range)
        let base = "AT_" + (name.isEmpty ? "" : name)
        var k = String(base.prefix(15))
        var n = 1
        while knowledge.maps.values.contains(where: { $0.kernelName == k }) {
            let suffix = "_\(n)"
            k = String(base.prefix(15 - suffix.count)) + suffix
            n += 1
        }
        m.kernelName = k
        knowledge.maps[name] = m
        return true
    }

    func compatibleKey(_ a: SType, _ b: SType) -> Bool {
        if a.isInteger && b.isInteger { return true }
        if a.isPointer && b.isPointer { return true }
        if a.isString && b.isString { return true }
        if case .tuple(let x) = a, case .tuple(let y) = b { return x.count == y.count && zip(x, y).allSatisfy { compatibleKey($0, $1) } }
        return a == b
    }

    /// Key types as stored: integers widen to 64 bits, strings to the string length.
    func keyType(_ t: SType) -> SType {
        if t.isString { return t }
        if case .int = t { return widen(t) }
        return t
    }

    /// Evaluates keys (before anything that clobbers r0-r5).
    func evaluateKeys(_ keys: [Expr]) -> [Val]? {
        let vals = keys.map { expr($0) }
        if vals.contains(where: \.isPoison) { vals.forEach(release); return nil }
        for (v, k) in zip(vals, keys) where v.type == .none || v.type == .args || v.type == .ctx {
            error("a value of type '\(v.type)' cannot be a map key", k.range)
            return nil
        }
        return vals
    }

    /// The map's key written to a fresh stack buffer; returns its slot and size.
    func buildKey(_ name: String, _ vals: [Val], histogram: Bool) -> (slot: Int, size: Int) {
        let types = knowledge.maps[name]?.keys ?? vals.map { keyType($0.type) }
        let layout = keyLayout(types, histogram: histogram)
        // One aggregate key already on the stack at its exact size is the key itself.
        if !histogram, vals.count == 1, !types[0].isScalar, case .slot(let s) = vals[0].loc,
           vals[0].type.size == layout.size, types[0].size == layout.size {
            return (s, layout.size)
        }
        let o = frame.allocate(layout.size)
        // Every key byte must be written (the verifier rejects uninitialized stack reads).
        if vals.isEmpty { zero(slot: o, size: 8) }
        for (i, v) in vals.enumerated() where i < types.count {
            let t = types[i]
            if t.isScalar {
                storeScalar(v, slot: o + layout.offsets[i], size: .doubleWord)
            } else {
                storeAggregate(v, size: t.size, padded: keyElementSize(t), toSlot: o + layout.offsets[i])
            }
            release(v)
        }
        return (o, layout.size)
    }

    func mapPointer(_ name: String, into r: Register) {
        guard let m = knowledge.maps[name] else { b.emit(.loadImm64(r, 0)); return }
        references[b.pending.count] = .map(m.kernelName)
        b.emit(.loadImm64(r, 0))
    }

    func lookup(_ name: String, key: Int) {
        mapPointer(name, into: .r1)
        address(ofSlot: key, into: .r2)
        b.emit(.call(helper: H.mapLookup))
    }

    func update(_ name: String, key: Int, value: Int) {
        mapPointer(name, into: .r1)
        address(ofSlot: key, into: .r2)
        address(ofSlot: value, into: .r3)
        b.emit(.mov64(.r4, 0))
        callChecked(H.mapUpdate, .mapUpdateFailed)
    }

    // MARK: Reads

    func mapRead(_ name: String, keys: [Expr], _ e: Expr) -> Val {
        knowledge.mapReads.insert(name)
        guard let vals = evaluateKeys(keys) else { return .poison }
        guard let m = knowledge.maps[name] else {
            if isFinalPass { error("Undefined map: @\(name)", e.range) }
            vals.forEach(release)
            readUnknownMap = true
            if unknownMapsReadAsZero {
                b.emit(.mov64(.r0, 0))
                return result(.i64, from: .r0)
            }
            return .poison
        }
        guard declareMap(name, keys: vals.map { keyType($0.type) }, value: nil, range: e.range) else { return .poison }
        let isHist: Bool = { if case .hist = m.value { return true }; if case .lhist = m.value { return true }; return false }()
        if isHist {
            error("cannot read a value of the histogram @\(name) in an expression", e.range)
            return .poison
        }
        let key = buildKey(name, vals, histogram: false)
        let t = m.value.readType
        checkedLookup(name, key: key.slot, site: e)
        let isAvg: Bool = { if case .avg = m.value { return true }; return false }()
        if t.isScalar, !isAvg {
            // A missing element reads as 0, and on that branch r0 (the null pointer) is 0 already.
            let done = b.newLabel()
            b.jump(.jeq, .r0, imm: 0, to: done)
            b.emit(.load(.r0, .r0, offset: 0, size: .doubleWord))
            b.bind(done)
            return result(t, from: .r0)
        }
        if t.isScalar {
            let missing = b.newLabel(), done = b.newLabel()
            b.jump(.jeq, .r0, imm: 0, to: missing)
            switch m.value {
            case .avg(let s):
                b.emit(.load(.r1, .r0, offset: 0, size: .doubleWord))
                b.emit(.load(.r2, .r0, offset: 8, size: .doubleWord))
                b.emit(.mov64(.r0, .r1))
                b.jump(.jeq, .r2, imm: 0, to: done)
                b.emit(s ? .sdiv64(.r0, .r2) : .alu64(.div, .r0, .r2))
            default:
                b.emit(.load(.r0, .r0, offset: 0, size: .doubleWord))
            }
            b.goto(done)
            b.bind(missing)
            b.emit(.mov64(.r0, 0))
            b.bind(done)
            return result(t, from: .r0)
        }
        let size = (t.size + 7) / 8 * 8
        let o = frame.allocate(size)
        zero(slot: o, size: size)
        let missing = b.newLabel()
        b.jump(.jeq, .r0, imm: 0, to: missing)
        b.emit(.mov64(.r1, .r0))
        copy(from: .r1, 0, to: .r10, o, size: t.size)
        b.bind(missing)
        return Val(type: t, loc: .slot(o))
    }

    // MARK: Writes

    /// `@m[keys] = value` with a plain value.
    func mapAssign(_ name: String, keys: [Expr], value: Val, range: SourceRange) {
        knowledge.mapWrites.insert(name)
        guard let vals = evaluateKeys(keys) else { release(value); return }
        var vt = value.type
        if case .int = vt { vt = widen(vt) }
        guard vt != .none, vt != .args, vt != .ctx else {
            error("a value of type '\(value.type)' cannot be stored in a map", range)
            vals.forEach(release)
            return
        }
        guard declareMap(name, keys: vals.map { keyType($0.type) }, value: .value(vt), range: range),
              let m = knowledge.maps[name], case .value(let stored) = m.value else {
            vals.forEach(release); release(value)
            return
        }
        let size = max(8, (stored.size + 7) / 8 * 8)
        let valueSlot = frame.allocate(size)
        if !stored.isScalar { zero(slot: valueSlot, size: size) }
        // Scalars fill the whole 8-byte value (a bool's upper bytes too).
        if stored.isScalar { storeScalar(value, slot: valueSlot) } else { store(value, as: stored, toSlot: valueSlot) }
        release(value)
        let key = buildKey(name, vals, histogram: false)
        update(name, key: key.slot, value: valueSlot)
    }

    /// `@m[keys] = count()` and the other aggregation functions.
    func aggregate(_ name: String, keys: [Expr], function fn: String, args: [Expr], _ call: Expr, range: SourceRange) {
        knowledge.mapWrites.insert(name)
        let arity: [String: ClosedRange<Int>] = ["count": 0...0, "sum": 1...1, "min": 1...1, "max": 1...1, "avg": 1...1,
                                                 "stats": 1...1, "hist": 1...1, "lhist": 4...4]
        guard let allowed = arity[fn] else { return }
        guard allowed.contains(args.count) else {
            error("\(fn)() \(arityText(allowed, provided: args.count)) (\(args.count) provided)", call.range)
            return
        }
        var x: Val?
        if let first = args.first {
            let v = expr(first)
            if v.isPoison { return }
            guard v.type.isInteger || v.type.isPointer else {
                error("\(fn)() expects an integer argument, not '\(v.type)'", first.range)
                release(v)
                return
            }
            x = v
        }
        var kind: MapValueKind
        let signed = x?.type.isSigned ?? false
        switch fn {
        case "count": kind = .count
        case "sum": kind = .sum(signed)
        case "min": kind = .min(signed)
        case "max": kind = .max(signed)
        case "avg": kind = .avg(signed)
        case "stats": kind = .stats(signed)
        case "hist": kind = .hist
        default:
            var consts: [Int64] = []
            for a in args.dropFirst() {
                let v = expr(a)
                guard let c = v.constant else {
                    error("lhist() min, max and step must be constants", a.range)
                    release(v)
                    return
                }
                consts.append(c)
            }
            guard consts[2] > 0, consts[1] > consts[0] else {
                error("lhist() needs max > min and step > 0", call.range)
                return
            }
            kind = .lhist(consts[0], consts[1], consts[2])
        }
        guard let vals = evaluateKeys(keys) else { return }
        guard declareMap(name, keys: vals.map { keyType($0.type) }, value: kind, range: range) else { return }
        let isHist: Bool = { if case .hist = kind { return true }; if case .lhist = kind { return true }; return false }()
        let key = buildKey(name, vals, histogram: isHist)
        // The argument must survive the lookup call: one already in a callee-saved pool
        // register (r7-r9) stays there; anything else goes to a stack slot. Count and hist add 1.
        var xs = 0
        var xReg: Register?
        if let v = x {
            if case .reg(let r) = v.loc { xReg = r } else {
                xs = frame.allocate(8)
                storeScalar(v, slot: xs, size: .doubleWord)
                release(v)
            }
        }
        if isHist {
            if let xReg { b.emit(.mov64(.r0, xReg)) } else { b.emit(.load(.r0, .r10, offset: Int16(clamping: xs), size: .doubleWord)) }
            bucket(kind, signed: signed)
            b.emit(.store(.r10, offset: Int16(clamping: key.slot + key.size - 8), .r0, size: .doubleWord))
        }
        let addsOne = kind == .count || isHist
        /// The register holding the value to add: `r` loaded, or x's own register.
        func loadX(_ r: Register) -> Register {
            if addsOne { b.emit(.mov64(r, 1)); return r }
            if let xReg { return xReg }
            b.emit(.load(r, .r10, offset: Int16(clamping: xs), size: .doubleWord))
            return r
        }
        defer { if let v = x, xReg != nil { release(v) } }
        let initLabel = b.newLabel(), done = b.newLabel()
        checkedLookup(name, key: key.slot, site: call)
        b.jump(.jeq, .r0, imm: 0, to: initLabel)
        let xr = loadX(.r1)
        switch kind {
        case .count, .sum, .hist, .lhist:
            b.emit(.atomic(.add, .r0, offset: 0, xr, size: .doubleWord))
        case .avg, .stats:
            b.emit(.atomic(.add, .r0, offset: 0, xr, size: .doubleWord))
            b.emit(.mov64(.r1, 1))
            b.emit(.atomic(.add, .r0, offset: 8, .r1, size: .doubleWord))
        case .min(let s), .max(let s):
            let set = b.newLabel()
            b.emit(.load(.r2, .r0, offset: 8, size: .doubleWord))
            b.jump(.jeq, .r2, imm: 0, to: set)
            b.emit(.load(.r2, .r0, offset: 0, size: .doubleWord))
            let isMin: Bool = { if case .min = kind { return true }; return false }()
            // Keep the stored value unless the new one is smaller (min) / larger (max).
            let keep: JumpOp = isMin ? (s ? .jsge : .jge) : (s ? .jsle : .jle)
            b.jump(keep, xr, .r2, to: done)
            b.bind(set)
            b.emit(.store(.r0, offset: 0, xr, size: .doubleWord))
            b.emit(.store(.r0, offset: 8, imm: 1, size: .doubleWord))
        case .value:
            break
        }
        b.goto(done)
        b.bind(initLabel)
        let vs = frame.allocate(kind.valueSize)
        if addsOne {
            b.emit(.store(.r10, offset: Int16(clamping: vs), imm: 1, size: .doubleWord))
        } else {
            b.emit(.store(.r10, offset: Int16(clamping: vs), loadX(.r1), size: .doubleWord))
        }
        if kind.valueSize > 8 { b.emit(.store(.r10, offset: Int16(clamping: vs + 8), imm: 1, size: .doubleWord)) }
        update(name, key: key.slot, value: vs)
        b.bind(done)
    }

    /// r0 = the histogram bucket of r0 (Plan.swift's numbering); uses r1.
    func bucket(_ kind: MapValueKind, signed: Bool) {
        let done = b.newLabel()
        switch kind {
        case .lhist(let lo, let hi, let step):
            let inside = b.newLabel(), above = b.newLabel()
            b.emit(.loadImm64(.r1, lo))
            b.jump(.jsge, .r0, .r1, to: inside)
            b.emit(.mov64(.r0, 0))
            b.goto(done)
            b.bind(inside)
            b.emit(.loadImm64(.r1, hi))
            b.jump(.jsge, .r0, .r1, to: above)
            b.emit(.loadImm64(.r1, lo))
            b.emit(.sub64(.r0, .r1))
            b.emit(.loadImm64(.r1, step))
            b.emit(.alu64(.div, .r0, .r1))
            b.emit(.add64(.r0, 1))
            b.goto(done)
            b.bind(above)
            b.emit(.loadImm64(.r0, 1 &+ (hi &- lo) / step))
        default:
            let positive = b.newLabel()
            if signed {
                let notNegative = b.newLabel()
                b.jump(.jsge, .r0, imm: 0, to: notNegative)
                b.emit(.mov64(.r0, 0))
                b.goto(done)
                b.bind(notNegative)
            }
            b.jump(.jne, .r0, imm: 0, to: positive)
            b.emit(.mov64(.r0, 1))
            b.goto(done)
            b.bind(positive)
            // floor(log2(v)) by halving: 32, 16, 8, 4, 2, 1.
            b.emit(.mov64(.r1, 0))
            for shift in [32, 16, 8, 4, 2, 1] {
                let skip = b.newLabel()
                // Bounds below 2^31 compare with an immediate; 2^32 needs a register.
                if shift < 31 {
                    b.jump(.jlt, .r0, imm: Int32(1) << Int32(shift), to: skip)
                } else {
                    b.emit(.loadImm64(.r2, Int64(bitPattern: UInt64(1) << UInt64(shift))))
                    b.jump(.jlt, .r0, .r2, to: skip)
                }
                b.emit(.rsh64(.r0, Int32(clamping: shift)))
                b.emit(.add64(.r1, Int32(clamping: shift)))
                b.bind(skip)
            }
            b.emit(.mov64(.r0, .r1))
            b.emit(.add64(.r0, 2))
        }
        b.bind(done)
    }

    /// `delete(@m[k])`.
    func mapDelete(_ target: Expr, call: SourceRange? = nil) {
        guard case .map(let name, let keys) = target.kind else {
            error("delete() expects a map element such as @m[key]", target.range)
            return
        }
        guard knowledge.maps[name] != nil else {
            if isFinalPass { error("Undefined map: @\(name)", call ?? target.range) }
            return
        }
        guard let vals = evaluateKeys(keys) else { return }
        let isHist: Bool = { if case .hist = knowledge.maps[name]?.value { return true }; if case .lhist = knowledge.maps[name]?.value { return true }; return false }()
        let key = buildKey(name, vals, histogram: isHist)
        mapPointer(name, into: .r1)
        address(ofSlot: key.slot, into: .r2)
        callChecked(H.mapDelete, .helperFailed)
    }
}

extension Loc {
    var register: Register? { if case .reg(let r) = self { return r }; return nil }
}

extension Compiler {
    /// len(@m): bpf_for_each_map_elem returns how many elements its (empty) callback saw.
    func mapLength(_ name: String) -> Val {
        let callback = b.newLabel("len")
        mapPointer(name, into: .r1)
        b.loadFunction(.r2, callback)
        b.emit(.mov64(.r3, 0))
        b.emit(.mov64(.r4, 0))
        b.emit(.call(helper: H.forEachMapElem))
        let line = lineInfo.last
        pendingCallbacks.append((callback, { [self] in
            subprogramStarts.append(b.pending.count)
            subprogramTypes.append(callbackFunctionID)
            if var l = line { l.slot = b.pending.count; lineInfo.append(l) }
            b.emit(.mov64(.r0, 0))
            b.emit(.exit())
        }))
        return result(.i64, from: .r0)
    }
}
