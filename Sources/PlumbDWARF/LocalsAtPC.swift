// Statement probes (`uprobe:PATH@FILE:LINE`) and the locals visible there, as SystemTap has
// them: the probed addresses from the line table (the first statement address of the line in
// each function or inlined copy), a `$name` found in the scopes covering that pc, and its
// location expression evaluated symbolically into a `DWARFPlace` the code generator compiles
// to BPF loads (registers from pt_regs, memory read from the process, computed values).
import PlumbELF

/// One probed address of a source line.
public struct DWARFStatementSite: Sendable, Equatable {
    public var address: UInt64
    /// The function whose code holds the address (the out-of-line function, not the inlined one).
    public var function: String
    /// The inlined function whose copy holds the line, when the line is in an inlined body.
    public var inlined: String?
}

/// A value computed from the probe's registers and memory (what a DWARF expression pushes).
public indirect enum DWARFValue: Sendable, Equatable {
    case constant(Int64)
    /// A register's contents (x86-64 DWARF numbering: 0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp, 8-15 r8-r15).
    case register(Int)
    /// A link-time address (DW_OP_addr): add the module's load bias.
    case linkAddress(UInt64)
    /// `size` bytes of process memory at the address, zero-extended.
    case load(DWARFValue, size: Int)
    case binary(DWARFBinaryOperator, DWARFValue, DWARFValue)
    case unary(DWARFUnaryOperator, DWARFValue)
    /// The value as an integer of `size` bytes (1, 2 or 4), widened again by its signedness (DW_OP_convert).
    case convert(DWARFValue, size: Int, signed: Bool)

    /// `v + c`, folded where both are known.
    static func plus(_ v: DWARFValue, _ c: Int64) -> DWARFValue {
        if c == 0 { return v }
        if case .constant(let a) = v { return .constant(a &+ c) }
        if case .binary(.plus, let x, .constant(let a)) = v { return plus(x, a &+ c) }
        return .binary(.plus, v, .constant(c))
    }
}

public enum DWARFBinaryOperator: String, Sendable {
    case plus, minus, mul, div, mod, and, or, xor, shl, shr, shra, eq, ne, lt, le, gt, ge
}

public enum DWARFUnaryOperator: String, Sendable { case neg, not, abs }

/// Where a variable's value is at one pc.
public indirect enum DWARFPlace: Sendable, Equatable {
    /// In process memory at this address (the variable is addressable: structs, arrays, stack slots).
    case memory(DWARFValue)
    /// In a register.
    case register(Int)
    /// Not stored anywhere: this is the value (DW_OP_stack_value).
    case value(DWARFValue)
    /// A constant's bytes (DW_OP_implicit_value).
    case implicit([UInt8])
    /// Assembled from parts (DW_OP_piece): each part's size in bytes and place; nil = that part is optimized out.
    case pieces([(size: Int, place: DWARFPlace?)])

    public static func == (a: DWARFPlace, b: DWARFPlace) -> Bool {
        switch (a, b) {
        case (.memory(let x), .memory(let y)), (.value(let x), .value(let y)): return x == y
        case (.register(let x), .register(let y)): return x == y
        case (.implicit(let x), .implicit(let y)): return x == y
        case (.pieces(let x), .pieces(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.size == $1.size && $0.place == $1.place }
        default: return false
        }
    }
}

/// Why a variable's value cannot be had at a pc: not a failure to read DWARF (that is
/// `DWARFError`) but an answer about the variable, which the tracer reports as a type error.
public enum DWARFUnavailable: Error, Sendable, Equatable, CustomStringConvertible {
    /// No location covers the pc; `available` lists where it has one.
    case optimizedOut(available: [Range<UInt64>])
    /// Only the value it had at the function's entry is described (DW_OP_entry_value), which a probe here cannot know.
    case entryValue
    /// An operator the evaluator does not compile (named).
    case unsupported(String)

    public var description: String {
        switch self {
        case .optimizedOut: return "optimized out"
        case .entryValue: return "optimized out (only its value at the function's entry is described, DW_OP_entry_value)"
        case .unsupported(let what): return "at a location this tracer cannot read (\(what))"
        }
    }
}

/// A `$name` at a pc: its variable and where its value is.
public struct DWARFLocal: Sendable {
    public var variable: DWARFVariableLocation
    /// The function holding the pc, and the inlined function the variable belongs to (if any).
    public var function: String
    public var inlinedFrom: String?
    public var place: Result<DWARFPlace, DWARFUnavailable>
}

extension DWARF {
    // MARK: Lines

    /// The addresses to probe for `file:line`: the lowest statement address of the line in each
    /// function and each inlined copy (as gdb's `break file:line`), optionally only in the
    /// function (or inlined function) named `function`. Empty when the line has no code.
    public func statementSites(file: String, line: Int, function: String? = nil) throws(DWARFError) -> [DWARFStatementSite] {
        struct Key: Hashable { var function: Int; var inlinedEntry: UInt64? }
        var best: [Key: DWARFStatementSite] = [:]
        for a in try addresses(file: file, line: line) {
            guard let f = try self.function(containing: a) else { continue }
            let inner = try inlinedFrames(at: a).first
            if let function, f.name != function, inner?.function != function { continue }
            let key = Key(function: f.die, inlinedEntry: inner?.entry)
            if let b = best[key], b.address <= a { continue }
            best[key] = DWARFStatementSite(address: a, function: f.name, inlined: inner?.function)
        }
        return best.values.sorted { $0.address < $1.address }
    }

    /// Lines of `file` (matched as a path suffix) that have statement code, sorted.
    public func linesWithCode(file: String) throws(DWARFError) -> [Int] {
        var lines = Set<Int>()
        try forEachLineTable(of: file) { t, matching in
            for r in t.rows where !r.endSequence && r.isStatement && matching.contains(r.file) { lines.insert(r.line) }
        }
        return lines.sorted()
    }

    /// The full names of the line tables' files that `file` matches (every file for "").
    public func sourceFiles(matching file: String) throws(DWARFError) -> [String] {
        var out = Set<String>()
        var seenTables = Set<UInt64>()
        for ui in units.indices {
            guard !units[ui].inAlt, let off = units[ui].stmtList, seenTables.insert(off).inserted else { continue }
            guard let t = try usableLineTable(unit: ui) else { continue }
            for f in t.files where file.isEmpty || Self.fileMatches(f, file) { out.insert(f) }
        }
        return out.sorted()
    }

    // MARK: Locals

    /// The parameter or local `name` visible at `pc` (the innermost scope's when names repeat),
    /// with where its value is there; nil when no scope at `pc` declares it.
    public func local(named name: String, at pc: UInt64) throws(DWARFError) -> DWARFLocal? {
        guard let scope = try variables(at: pc),
              let entry = scope.variables.last(where: { $0.variable.name == name }) else { return nil }
        let place: Result<DWARFPlace, DWARFUnavailable>
        if let ops = entry.expression {
            let frameBase = scope.frameBase.expression(at: pc)
            place = DWARFLocationEvaluator(frameBase: frameBase, cfa: try cfa(at: pc),
                                           baseTypes: try baseTypes(in: ops + (frameBase ?? []))).evaluate(ops)
        } else {
            place = .failure(.optimizedOut(available: Self.availableRanges(entry.variable.location)))
        }
        return DWARFLocal(variable: entry.variable, function: scope.function, inlinedFrom: entry.inlinedFrom, place: place)
    }

    /// Names of the parameters and locals visible at `pc` (for "did you mean" and listings).
    public func localNames(at pc: UInt64) throws(DWARFError) -> [String] {
        guard let scope = try variables(at: pc) else { return [] }
        var seen = Set<String>()
        return scope.variables.map(\.variable.name).filter { seen.insert($0).inserted }
    }

    /// Where a location list has a location, adjacent ranges joined.
    static func availableRanges(_ l: DWARFLocation) -> [Range<UInt64>] {
        guard case .list(let entries) = l else { return [] }
        var out: [Range<UInt64>] = []
        for r in entries.compactMap({ e in e.expression.isEmpty ? nil : e.range }).filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, last.upperBound >= r.lowerBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// Size and signedness of the base types typed operators name (DW_OP_convert, const_type, regval_type).
    func baseTypes(in ops: [DWARFOp]) throws(DWARFError) -> [Int: DWARFLocationEvaluator.BaseType] {
        var out: [Int: DWARFLocationEvaluator.BaseType] = [:]
        for op in ops {
            let die: Int
            switch op {
            case .convert(let d), .constType(let d, _), .regvalType(_, let d): die = d
            default: continue
            }
            // Offset 0 (the unit's own offset once decoded) is the generic type: no DIE.
            guard out[die] == nil, let d = try? self.die(at: die), d.tag == DW.TAG.baseType,
                  let size = constant(d.value(DW.AT.byteSize)), let enc = constant(d.value(DW.AT.encoding)) else { continue }
            // DW_ATE_signed 0x05, signed_char 0x06.
            out[die] = .init(size: Int(clamping: size), signed: enc == 0x05 || enc == 0x06)
        }
        return out
    }
}

/// Evaluates a location expression symbolically: the DWARF stack holds `DWARFValue` trees,
/// so registers and memory are read at run time by the code they compile to.
public struct DWARFLocationEvaluator: Sendable {
    /// The function's DW_AT_frame_base expression at the pc (nil: none).
    public var frameBase: [DWARFOp]?
    /// The CFA rule at the pc (nil: no call frame information).
    public var cfa: CFARule?
    /// Base types typed operators name, by DIE offset (others are the generic 8-byte type).
    public var baseTypes: [Int: BaseType]

    public struct BaseType: Sendable, Equatable {
        public var size: Int
        public var signed: Bool
        public init(size: Int, signed: Bool) { self.size = size; self.signed = signed }
    }

    public init(frameBase: [DWARFOp]?, cfa: CFARule?, baseTypes: [Int: BaseType] = [:]) {
        self.frameBase = frameBase
        self.cfa = cfa
        self.baseTypes = baseTypes
    }

    /// `v` as the base type `die` (generic, unchanged, when unknown or 8 bytes).
    func converted(_ v: DWARFValue, _ die: Int) -> DWARFValue {
        guard let t = baseTypes[die], [1, 2, 4].contains(t.size) else { return v }
        if case .constant(let c) = v {
            let bits = Int64(t.size * 8)
            let low = c & ((1 << bits) - 1)
            return .constant(t.signed && low >> (bits - 1) != 0 ? low - (1 << bits) : low)
        }
        return .convert(v, size: t.size, signed: t.signed)
    }

    public func evaluate(_ ops: [DWARFOp]) -> Result<DWARFPlace, DWARFUnavailable> {
        do throws(DWARFUnavailable) {
            var parts: [(size: Int, place: DWARFPlace?)] = []
            var current: [DWARFOp] = []
            for op in ops {
                switch op {
                case .piece(let size):
                    guard let n = Int(exactly: size), n > 0, n <= 4096 else { throw .unsupported("DW_OP_piece of \(size) bytes") }
                    parts.append((n, current.isEmpty ? nil : try single(current)))
                    current = []
                case .bitPiece(let size, let offset):
                    guard size % 8 == 0, offset == 0, let n = Int(exactly: size / 8), n > 0, n <= 4096 else {
                        throw .unsupported("DW_OP_bit_piece of \(size) bits at bit \(offset)")
                    }
                    parts.append((n, current.isEmpty ? nil : try single(current)))
                    current = []
                default:
                    current.append(op)
                }
            }
            if parts.isEmpty { return .success(try single(current)) }
            if !current.isEmpty { throw .unsupported("operators after the last DW_OP_piece") }
            if parts.allSatisfy({ $0.place == nil }) { return .failure(.optimizedOut(available: [])) }
            return .success(.pieces(parts))
        } catch {
            return .failure(error)
        }
    }

    /// One piece (or a whole simple location).
    func single(_ ops: [DWARFOp]) throws(DWARFUnavailable) -> DWARFPlace {
        if ops.contains(where: { if case .entryValue = $0 { return true }; return false }) { throw .entryValue }
        if ops.count == 1, case .reg(let r) = ops[0] { return .register(r) }
        if ops.count == 1, case .implicitValue(let bytes) = ops[0] { return .implicit(bytes) }
        var stack: [DWARFValue] = []
        var isValue = false
        func pop() throws(DWARFUnavailable) -> DWARFValue {
            guard let v = stack.popLast() else { throw .unsupported("an expression that pops an empty stack") }
            return v
        }
        for (i, op) in ops.enumerated() {
            guard !isValue else { throw .unsupported("operators after DW_OP_stack_value") }
            switch op {
            case .addr(let a): stack.append(.linkAddress(a))
            case .const(let c): stack.append(.constant(c))
            case .breg(let r, let off): stack.append(.plus(.register(r), off))
            case .fbreg(let off): stack.append(.plus(try frameBaseValue(), off))
            case .callFrameCFA: stack.append(try cfaValue())
            case .reg(let r):
                // A register location inside a longer expression is malformed (it must stand alone or before a piece).
                throw .unsupported("DW_OP_reg\(r) followed by other operators (op \(i))")
            case .deref: stack.append(.load(try pop(), size: 8))
            case .derefSize(let n):
                guard (1...8).contains(n) else { throw .unsupported("DW_OP_deref_size \(n)") }
                stack.append(.load(try pop(), size: n))
            case .plusUconst(let c): stack.append(.plus(try pop(), Int64(bitPattern: c)))
            case .dup: let v = try pop(); stack += [v, v]
            case .drop: _ = try pop()
            case .over:
                guard stack.count >= 2 else { throw .unsupported("DW_OP_over on a short stack") }
                stack.append(stack[stack.count - 2])
            case .pick(let n):
                guard n < stack.count else { throw .unsupported("DW_OP_pick \(n) on a stack of \(stack.count)") }
                stack.append(stack[stack.count - 1 - n])
            case .swap:
                let a = try pop(), b = try pop()
                stack += [a, b]
            case .rot:
                let a = try pop(), b = try pop(), c = try pop()
                stack += [a, c, b]
            case .neg, .not, .abs:
                let v = try pop()
                let u: DWARFUnaryOperator = op == .neg ? .neg : op == .not ? .not : .abs
                if case .constant(let c) = v {
                    stack.append(.constant(u == .neg ? 0 &- c : u == .not ? ~c : (c < 0 ? 0 &- c : c)))
                } else {
                    stack.append(.unary(u, v))
                }
            case .plus, .minus, .mul, .div, .mod, .and, .or, .xor, .shl, .shr, .shra, .eq, .ne, .lt, .le, .gt, .ge:
                let b = try pop(), a = try pop()
                let o = Self.binaryOperator(op)
                if o == .plus, case .constant(let c) = b { stack.append(.plus(a, c)) }
                else if o == .minus, case .constant(let c) = b { stack.append(.plus(a, 0 &- c)) }
                else { stack.append(.binary(o, a, b)) }
            case .stackValue: isValue = true
            case .nop: break
            case .implicitValue: throw .unsupported("DW_OP_implicit_value inside an expression")
            case .implicitPointer: throw .unsupported("DW_OP_implicit_pointer (a pointer to an optimized-out object)")
            case .tlsAddress: throw .unsupported("a thread-local address (DW_OP_form_tls_address)")
            case .skip, .bra: throw .unsupported("branches (DW_OP_skip/bra)")
            case .convert(let die): stack.append(converted(try pop(), die))
            case .regvalType(let r, let die): stack.append(converted(.register(r), die))
            case .constType(let die, let bytes):
                guard bytes.count <= 8 else { throw .unsupported("DW_OP_const_type of \(bytes.count) bytes") }
                var c: UInt64 = 0
                for (i, byte) in bytes.enumerated() { c |= UInt64(byte) << (8 * UInt64(i)) }
                stack.append(converted(.constant(Int64(bitPattern: c)), die))
            case .parameterRef: throw .unsupported("DW_OP_GNU_parameter_ref")
            case .entryValue: throw .entryValue
            case .piece, .bitPiece: break   // split off by evaluate
            case .other(let code): throw .unsupported("operator 0x\(String(code, radix: 16))")
            }
        }
        guard let top = stack.last else { throw .unsupported("an empty expression") }
        return isValue ? .value(top) : .memory(top)
    }

    func frameBaseValue() throws(DWARFUnavailable) -> DWARFValue {
        guard let fb = frameBase, !fb.isEmpty else { throw .unsupported("DW_OP_fbreg without a frame base at this address") }
        // The frame base names a register (its contents are the base) or computes an address.
        if fb.count == 1, case .reg(let r) = fb[0] { return .register(r) }
        if fb.contains(.fbreg(0)) || fb.contains(where: { if case .fbreg = $0 { return true }; return false }) {
            throw .unsupported("a frame base defined through itself")
        }
        switch DWARFLocationEvaluator(frameBase: nil, cfa: cfa, baseTypes: baseTypes).evaluate(fb) {
        case .success(.memory(let v)), .success(.value(let v)): return v
        case .success(.register(let r)): return .register(r)
        case .success: throw .unsupported("a composite frame base")
        case .failure(let e): throw e
        }
    }

    func cfaValue() throws(DWARFUnavailable) -> DWARFValue {
        switch cfa {
        case .register(let r, let off)?: return .plus(.register(r), off)
        case .expression?: throw .unsupported("a CFA given by a DWARF expression")
        case nil: throw .unsupported("DW_OP_call_frame_cfa with no call frame information at this address")
        }
    }

    static func binaryOperator(_ op: DWARFOp) -> DWARFBinaryOperator {
        switch op {
        case .minus: return .minus
        case .mul: return .mul
        case .div: return .div
        case .mod: return .mod
        case .and: return .and
        case .or: return .or
        case .xor: return .xor
        case .shl: return .shl
        case .shr: return .shr
        case .shra: return .shra
        case .eq: return .eq
        case .ne: return .ne
        case .lt: return .lt
        case .le: return .le
        case .gt: return .gt
        case .ge: return .ge
        default: return .plus
        }
    }
}
