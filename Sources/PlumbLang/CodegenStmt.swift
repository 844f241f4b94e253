// Statements: assignments to $variables and @maps, control flow (if, unroll, while,
// for over a range or a map), return/break/continue. Temporaries are released after
// each statement; each statement starts a line_info record.
import PlumbAsm

extension Compiler {
    func block(_ blk: Block) {
        var dead = false
        for s in blk.statements {
            if dead {
                // After return/break/continue/exit nothing runs; the kernel rejects unreachable
                // code, so it is only checked, into a builder that is thrown away.
                let saved = (b, references, lineInfo, pendingCallbacks.count, counterStub, stopUsed)
                b = ProgramBuilder()
                statement(s)
                (b, references, lineInfo, stopUsed) = (saved.0, saved.1, saved.2, saved.5)
                pendingCallbacks.removeLast(pendingCallbacks.count - saved.3)
                counterStub = saved.4
                continue
            }
            statement(s)
            dead = terminates(s)
        }
    }

    /// Whether control never falls through `s`.
    func terminates(_ s: Stmt) -> Bool {
        switch s.kind {
        case .returnStatement, .breakStatement, .continueStatement: return true
        case .expression(let e):
            if case .call("exit", _) = e.kind { return true }
            return false
        case .block(let blk), .unroll(_, let blk): return blk.statements.contains { terminates($0) }
        case .ifElse(_, let t, let o):
            guard let o else { return false }
            return t.statements.contains { terminates($0) } && o.statements.contains { terminates($0) }
        default: return false
        }
    }

    func statement(_ s: Stmt) {
        markLine(s.range)
        currentStatement = s.range
        defer { frame.reset() }
        switch s.kind {
        case .expression(let e):
            if case .call(let name, _) = e.kind, ["count", "sum", "min", "max", "avg", "stats", "hist", "lhist"].contains(name) {
                error("\(name)() should be assigned to a map: @m = \(name)(...)", e.range)
                return
            }
            let v = expr(e)
            release(v)
        case .assign(let target, let op, let value):
            assign(target, op: op, value: value, range: s.range)
        case .ifElse(let cond, let then, let otherwise):
            let elseLabel = b.newLabel(), done = b.newLabel()
            branchIfFalse(cond, to: elseLabel, what: "an if condition")
            frame.commit()
            block(then)
            if let o = otherwise {
                if !then.statements.contains(where: terminates) { b.goto(done) }
                b.bind(elseLabel)
                block(o)
                b.bind(done)
            } else {
                b.bind(elseLabel)
                b.bind(done)
            }
        case .unroll(let count, let body):
            let c = expr(count)
            guard let n = c.constant else {
                if !c.isPoison { error("unroll needs a constant count", count.range) }
                return
            }
            guard n >= 1, n <= 100 else {
                error("unroll count must be between 1 and 100 (\(n) given)", count.range)
                return
            }
            frame.commit()
            // A body that always leaves runs once: copies after it could never be reached.
            let copies = body.statements.contains(where: terminates) ? 1 : n
            for _ in 0..<copies { block(body) }
        case .whileLoop(let cond, let body):
            let top = b.here(), done = b.newLabel()
            branchIfFalse(cond, to: done, what: "a while condition")
            frame.commit()
            loops.append((done, top))
            block(body)
            loops.removeLast()
            // A body that always leaves (return, exit, break) has no way back to the top.
            if !body.statements.contains(where: terminates) { b.goto(top) }
            b.bind(done)
        case .forRange(let name, let vr, let start, let end, let body):
            let a = expr(start), z = expr(end)
            guard (a.isPoison || a.type.isInteger), (z.isPoison || z.type.isInteger) else {
                error("for range bounds must be integers", start.range.union(end.range))
                return
            }
            if a.isPoison || z.isPoison { return }
            let slot = variableSlot(name, type: .i64, range: vr)
            definedVariables.insert(name)
            let endSlot = frame.allocate(8)
            storeScalar(z, slot: endSlot, size: .doubleWord)
            storeScalar(a, slot: slot, size: .doubleWord)
            release(a); release(z)
            frame.commit()
            let top = b.here(), next = b.newLabel(), done = b.newLabel()
            b.emit(.load(.r0, .r10, offset: Int16(clamping: slot), size: .doubleWord))
            b.emit(.load(.r1, .r10, offset: Int16(clamping: endSlot), size: .doubleWord))
            b.jump(.jsge, .r0, .r1, to: done)
            loops.append((done, next))
            usedVariables.insert(name)
            block(body)
            loops.removeLast()
            b.bind(next)
            // The increment is reached by falling through or by continue; otherwise it is dead.
            if !body.statements.contains(where: terminates) || stopUsed.contains(next) {
                b.emit(.load(.r0, .r10, offset: Int16(clamping: slot), size: .doubleWord))
                b.emit(.add64(.r0, 1))
                b.emit(.store(.r10, offset: Int16(clamping: slot), .r0, size: .doubleWord))
                b.goto(top)
            }
            b.bind(done)
        case .forMap(let name, let vr, let map, let body):
            forMap(name, variableRange: vr, map: map, body: body, range: s.range)
        case .returnStatement(let v):
            if let v { release(expr(v)) }
            stopUsed.insert(exitLabel!)
            b.goto(exitLabel!)
        case .breakStatement:
            guard let l = loops.last else { error("'break' outside of a loop", s.range); return }
            stopUsed.insert(l.breakLabel)
            b.goto(l.breakLabel)
        case .continueStatement:
            guard let l = loops.last else { error("'continue' outside of a loop", s.range); return }
            stopUsed.insert(l.continueLabel)
            b.goto(l.continueLabel)
        case .block(let blk):
            frame.commit()
            block(blk)
        }
    }

    /// `for ($kv : @map) { }`: bpf_for_each_map_elem with the body as a callback subprogram.
    /// `$kv` is the tuple (key, value); `break` stops the walk. The callback has its own frame:
    /// the probe's variables are not visible inside it.
    func forMap(_ name: String, variableRange vr: SourceRange, map: Expr, body: Block, range: SourceRange) {
        guard case .map(let mapName, let keys) = map.kind, keys.isEmpty else {
            error("for loops iterate over a whole map such as @m", map.range)
            return
        }
        guard let m = knowledge.maps[mapName] else {
            if isFinalPass { error("Undefined map: @\(mapName)", map.range) }
            return
        }
        if case .hist = m.value { error("cannot iterate over the histogram @\(mapName)", map.range); return }
        if case .lhist = m.value { error("cannot iterate over the histogram @\(mapName)", map.range); return }
        let keyType: SType = m.keys.isEmpty ? .u64 : m.keys.count == 1 ? m.keys[0] : .tuple(m.keys)
        let valueType = m.value.readType
        let kv = SType.tuple([keyType, valueType])
        let ctxSlot = frame.allocate(8)
        b.emit(.store(.r10, offset: Int16(clamping: ctxSlot), .r6, size: .doubleWord))
        let callback = b.newLabel("map_loop")
        mapPointer(mapName, into: .r1)
        b.loadFunction(.r2, callback)
        address(ofSlot: ctxSlot, into: .r3)
        b.emit(.mov64(.r4, 0))
        b.emit(.call(helper: H.forEachMapElem))
        let keyLayout = keyLayout(m.keys, histogram: false)
        pendingCallbacks.append((callback, { [self] in
            let saved = (variables, definedVariables, frame, pool, loops, exitLabel)
            variables = [:]; definedVariables = []; frame = Frame(); pool = RegisterPool(); loops = []
            subprogramStarts.append(b.pending.count)
            subprogramTypes.append(callbackFunctionID)
            markLine(range)
            let stop = b.newLabel(), next = b.newLabel()
            exitLabel = stop
            b.emit(.load(.r6, .r4, offset: 0, size: .doubleWord))
            let layout = kv.tupleLayout
            let slot = variableSlot(name, type: kv, range: vr)
            definedVariables.insert(name)
            usedVariables.insert(name)
            zero(slot: slot, size: layout.size)
            // Key: one element is the key's bytes; several are laid out as in the map key.
            if m.keys.count <= 1 {
                copy(from: .r2, 0, to: .r10, slot + layout.offsets[0], carrier: .r0, size: min(keyType.size, 8 * max(1, keyLayout.size / 8)))
            } else {
                let t = keyType.tupleLayout
                for (i, k) in m.keys.enumerated() {
                    copy(from: .r2, keyLayout.offsets[i], to: .r10, slot + layout.offsets[0] + t.offsets[i], carrier: .r0, size: k.size)
                }
            }
            if case .avg(let signed) = m.value {
                b.emit(.load(.r0, .r3, offset: 0, size: .doubleWord))
                b.emit(.load(.r1, .r3, offset: 8, size: .doubleWord))
                let zeroCount = b.newLabel()
                b.jump(.jeq, .r1, imm: 0, to: zeroCount)
                b.emit(signed ? .sdiv64(.r0, .r1) : .alu64(.div, .r0, .r1))
                b.bind(zeroCount)
                b.emit(.store(.r10, offset: Int16(clamping: slot + layout.offsets[1]), .r0, size: .doubleWord))
            } else {
                copy(from: .r3, 0, to: .r10, slot + layout.offsets[1], carrier: .r0, size: valueType.isScalar ? 8 : valueType.size)
            }
            frame.commit()
            loops.append((stop, next))
            block(body)
            loops.removeLast()
            b.bind(next)
            if !body.statements.contains(where: terminates) || stopUsed.contains(next) {
                b.emit(.mov64(.r0, 0))
                b.emit(.exit())
            }
            b.bind(stop)
            if stopUsed.contains(stop) {
                b.emit(.mov64(.r0, 1))
                b.emit(.exit())
            } else {
                // Never jumped to: point the label at the last exit instead of unreachable code.
            }
            if frame.maxDepth > 512 {
                error("the loop body needs \(frame.maxDepth) bytes of BPF stack, more than the 512 the kernel allows", range)
            }
            (variables, definedVariables, frame, pool, loops, exitLabel) = saved
        }))
    }

    /// The slot of `$name`, declared with `type` if new; nil after a type mismatch.
    @discardableResult
    func variableSlot(_ name: String, type: SType, range: SourceRange) -> Int {
        if let v = variables[name] { return v.slot }
        let slot = frame.allocate(max(8, type.size))
        frame.commit()
        variables[name] = (type, slot)
        return slot
    }

    func assign(_ target: Expr, op: BinaryOperator?, value: Expr, range: SourceRange) {
        // Compound assignment is `target = target op value`.
        let valueExpr: Expr
        if let op { valueExpr = Expr(.binary(op, target, value), range: range, id: -1) } else { valueExpr = value }
        switch target.kind {
        case .variable(let name):
            let v = expr(valueExpr)
            if v.isPoison {
                if !definedVariables.contains(name) { poisonedVariables.insert(name) }
                return
            }
            var t = v.type
            if t == .none || t == .args {
                error("cannot assign a value of type '\(t)' to a variable", value.range)
                release(v)
                return
            }
            if case .record = t {
                error("cannot assign a struct to a variable; assign a pointer to it or one of its members", value.range)
                release(v)
                return
            }
            if let existing = variables[name], definedVariables.contains(name) || existing.type != t && !(existing.type.isString && t.isString) && !(existing.type.isInteger && t.isInteger) {
                let compatible = existing.type == t || existing.type.isInteger && t.isInteger || existing.type.isPointer && t.isPointer
                    || existing.type.isString && t.isString && t.size <= existing.type.size
                if !compatible {
                    // bpftrace underlines a variable assignment's `=`.
                    error("Type mismatch for $\(name): trying to assign value of type '\(t)' when variable already contains a value of type '\(existing.type)'",
                          assignmentSign(target, value) ?? target.range)
                    release(v)
                    return
                }
                if isFinalPass, case .int(let es, _) = existing.type, case .int(let ns, _) = v.type, ns > es,
                   !(v.constant.map { fits($0, existing.type) } ?? false) {
                    warning("assignment to '$\(name)' of type '\(existing.type)' truncates a value of type '\(v.type)'", range)
                }
                storeVariable(v, as: existing.type, slot: existing.slot)
            } else {
                if t.isString { t = .string(size: max(t.size, options.stringLength)) }
                let slot = variableSlot(name, type: t, range: target.range)
                definedVariables.insert(name)
                variableRanges[name] = target.range
                storeVariable(v, as: variables[name]?.type ?? t, slot: slot)
            }
            release(v)
        case .map(let name, let keys):
            if op == nil, case .call(let fn, let args) = value.kind,
               ["count", "sum", "min", "max", "avg", "stats", "hist", "lhist"].contains(fn) {
                aggregate(name, keys: keys, function: fn, args: args, value, range: target.range)
                return
            }
            let v = expr(valueExpr)
            if v.isPoison { return }
            mapAssign(name, keys: keys, value: v, range: target.range)
        default:
            error("only $variables and @maps can be assigned to", target.range)
        }
    }

    /// Scalars fill the whole 8-byte slot, converted to the variable's type.
    func storeVariable(_ v: Val, as type: SType, slot: Int) {
        if type.isScalar {
            if v.constant != nil && fits(v.constant!, type) || v.type == type {
                storeScalar(v, slot: slot)
                return
            }
            let r = value(v, scratch: .r0)
            convert(r, to: type)
            b.emit(.store(.r10, offset: Int16(clamping: slot), r, size: .doubleWord))
        } else {
            store(v, as: type, toSlot: slot)
        }
    }

    func fits(_ c: Int64, _ t: SType) -> Bool {
        guard case .int(let s, let signed) = t, s < 8 else { return true }
        let bits = Int64(s * 8)
        return signed ? c >= -(1 << (bits - 1)) && c < (1 << (bits - 1)) : c >= 0 && c < (1 << bits)
    }

    /// `x++`, `++x`, `x--`, `--x` on a variable or a map element.
    func increment(_ target: Expr, isDecrement: Bool, isPrefix: Bool, _ e: Expr) -> Val {
        switch target.kind {
        case .variable(let name):
            usedVariables.insert(name)
            guard let v = variables[name], definedVariables.contains(name) else {
                error("Undefined or undeclared variable: $\(name)", target.range)
                return .poison
            }
            guard v.type.isInteger || v.type.isPointer else {
                error("cannot increment a value of type '\(v.type)'", e.range)
                return .poison
            }
            b.emit(.load(.r0, .r10, offset: Int16(clamping: v.slot), size: .doubleWord))
            b.emit(.mov64(.r1, .r0))
            b.emit(.add64(.r1, isDecrement ? -1 : 1))
            b.emit(.store(.r10, offset: Int16(clamping: v.slot), .r1, size: .doubleWord))
            return result(v.type, from: isPrefix ? .r1 : .r0)
        case .map(let name, let keys):
            let old = mapRead(name, keys: keys, target)
            if old.isPoison && knowledge.maps[name] != nil { return .poison }
            let oldSlot = frame.allocate(8)
            if !old.isPoison { storeScalar(old, slot: oldSlot, size: .doubleWord); release(old) }
            else { b.emit(.store(.r10, offset: Int16(clamping: oldSlot), imm: 0, size: .doubleWord)) }
            b.emit(.load(.r0, .r10, offset: Int16(clamping: oldSlot), size: .doubleWord))
            b.emit(.add64(.r0, isDecrement ? -1 : 1))
            let newValue = result(.i64, from: .r0)
            let newSlot = frame.allocate(8)
            storeScalar(newValue, slot: newSlot, size: .doubleWord)
            mapAssign(name, keys: keys, value: newValue, range: target.range)
            b.emit(.load(.r0, .r10, offset: Int16(clamping: isPrefix ? newSlot : oldSlot), size: .doubleWord))
            return result(.i64, from: .r0)
        default:
            error("only $variables and @map elements can be incremented", target.range)
            return .poison
        }
    }
}
