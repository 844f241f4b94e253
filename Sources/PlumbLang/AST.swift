// The tracing language's syntax tree: what the parser produces and the checker reads.
// Every node carries the source range it came from, so every diagnostic can point at it.
// Nodes are values; the checker keeps what it learns (types, resolved probes) in side
// tables keyed by `Expr.id`, so the tree itself never changes after parsing.

/// Byte offsets into the script text, `start..<end`.
public struct SourceRange: Sendable, Hashable, CustomStringConvertible {
    public var start: Int
    public var end: Int
    public init(_ start: Int, _ end: Int) { self.start = start; self.end = max(start, end) }
    /// The smallest range covering both.
    public func union(_ other: SourceRange) -> SourceRange { SourceRange(min(start, other.start), max(end, other.end)) }
    public var description: String { "\(start)..<\(end)" }
}

/// A parsed script: preamble declarations, then probe blocks in source order.
public struct Script: Sendable {
    /// `#include <...>` / `#include "..."` lines, as written between the delimiters.
    public var includes: [String]
    /// `struct name { ... }` definitions written in the script (C syntax, laid out as C would).
    public var structs: [StructDecl]
    /// `config = { NAME = value; ... }` assignments (current bpftrace), in order.
    public var config: [(name: String, value: Expr)]
    public var probes: [Probe]
    public init(includes: [String] = [], structs: [StructDecl] = [], config: [(name: String, value: Expr)] = [], probes: [Probe] = []) {
        self.includes = includes; self.structs = structs; self.config = config; self.probes = probes
    }
}

/// `struct name { type field; ... };` in the script.
public struct StructDecl: Sendable {
    public var name: String
    public var isUnion: Bool
    public var fields: [(type: TypeName, name: String, range: SourceRange)]
    public var range: SourceRange
    public init(name: String, isUnion: Bool = false, fields: [(type: TypeName, name: String, range: SourceRange)], range: SourceRange) {
        self.name = name; self.isUnion = isUnion; self.fields = fields; self.range = range
    }
}

/// One probe block: `ap1, ap2 /predicate/ { body }`.
public struct Probe: Sendable {
    public var attachPoints: [AttachPoint]
    public var predicate: Expr?
    public var body: Block
    public var range: SourceRange
    public init(attachPoints: [AttachPoint], predicate: Expr? = nil, body: Block, range: SourceRange) {
        self.attachPoints = attachPoints; self.predicate = predicate; self.body = body; self.range = range
    }
}

/// An attach point as written (`t:syscalls:sys_enter_*`, `uprobe:/bin/bash:readline`,
/// `interval:s:1`, `BEGIN`). The parser splits it and expands short provider names; the
/// checker resolves it against tracefs, BTF and symbol tables.
public struct AttachPoint: Sendable, Hashable {
    /// Exactly as written in the script.
    public var text: String
    /// The provider's canonical name: `BEGIN`, `END`, `tracepoint`, `rawtracepoint`, `kprobe`,
    /// `kretprobe`, `uprobe`, `uretprobe`, `usdt`, `interval`, `profile`, `software`,
    /// `hardware`, `watchpoint`, `asyncwatchpoint`, `kfunc`, `kretfunc`, `iter`, `process`
    /// (`begin`/`end`, `t`, `i`, `fentry`, ... already mapped to these).
    public var provider: String
    /// The `:`-separated fields after the provider, quotes removed (`["syscalls", "sys_enter_openat"]`,
    /// `["/bin/bash", "readline"]`, `["s", "1"]`). A trailing `+OFF` stays part of the last field.
    public var fields: [String]
    public var range: SourceRange
    public init(text: String, provider: String, fields: [String], range: SourceRange) {
        self.text = text; self.provider = provider; self.fields = fields; self.range = range
    }
    /// The canonical spelling, `provider:field:field` (what `probe` evaluates to and `-l` prints).
    public var canonical: String { ([provider] + fields).joined(separator: ":") }
}

/// `{ statements }`.
public struct Block: Sendable {
    public var statements: [Stmt]
    public var range: SourceRange
    public init(_ statements: [Stmt], range: SourceRange) { self.statements = statements; self.range = range }
}

public struct Stmt: Sendable {
    public indirect enum Kind: Sendable {
        /// An expression evaluated for its effect: a call (`printf(...)`, `@x[k] = count()` is an
        /// assignment, not this), `@x++`, `$i--`.
        case expression(Expr)
        /// `target = value` or `target op= value` (`op` is the binary operator of a compound
        /// assignment: `+=` gives `.add`). `target` is a map access or a `$variable`.
        case assign(target: Expr, op: BinaryOperator?, value: Expr)
        /// `if (cond) { } else if (...) { } else { }`: `otherwise` holds the else block (an
        /// `else if` is a block with one `.ifElse` statement).
        case ifElse(condition: Expr, then: Block, otherwise: Block?)
        /// `unroll (count) { }`: count must be a constant (checked later).
        case unroll(count: Expr, body: Block)
        /// `while (cond) { }`.
        case whileLoop(condition: Expr, body: Block)
        /// `for ($kv : @map) { }`.
        case forMap(variable: String, variableRange: SourceRange, map: Expr, body: Block)
        /// `for ($i : start..end) { }` (end exclusive).
        case forRange(variable: String, variableRange: SourceRange, start: Expr, end: Expr, body: Block)
        case returnStatement(Expr?)
        case breakStatement
        case continueStatement
        /// A nested `{ }` block.
        case block(Block)
    }
    public var kind: Kind
    public var range: SourceRange
    public init(_ kind: Kind, range: SourceRange) { self.kind = kind; self.range = range }
}

public enum UnaryOperator: String, Sendable, CaseIterable {
    case logicalNot = "!", bitwiseNot = "~", negate = "-", plus = "+", dereference = "*", addressOf = "&"
}

/// Binary operators, spelled as in C. Precedence (loosest first) is C's:
/// `||`, `&&`, `|`, `^`, `&`, `== !=`, `< <= > >=`, `<< >>`, `+ -`, `* / %`.
public enum BinaryOperator: String, Sendable, CaseIterable {
    case logicalOr = "||", logicalAnd = "&&"
    case bitwiseOr = "|", bitwiseXor = "^", bitwiseAnd = "&"
    case equal = "==", notEqual = "!="
    case less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case shiftLeft = "<<", shiftRight = ">>"
    case add = "+", subtract = "-"
    case multiply = "*", divide = "/", modulo = "%"
}

/// A type as written in a cast, `sizeof`, `offsetof` or struct field:
/// `struct task_struct *`, `uint32`, `unsigned long`, `char[16]`, `int8 **`.
public struct TypeName: Sendable, Hashable, CustomStringConvertible {
    /// The base name with its tag if any: `struct task_struct`, `union u`, `enum e`, `uint64`,
    /// `unsigned int`, `char`, `void`.
    public var base: String
    public var pointerDepth: Int
    /// `char[16]`: the array length, when written.
    public var arrayLength: Int?
    public var range: SourceRange
    public init(base: String, pointerDepth: Int = 0, arrayLength: Int? = nil, range: SourceRange) {
        self.base = base; self.pointerDepth = pointerDepth; self.arrayLength = arrayLength; self.range = range
    }
    public var description: String {
        base + (pointerDepth > 0 ? " " + String(repeating: "*", count: pointerDepth) : "") + (arrayLength.map { "[\($0)]" } ?? "")
    }
}

public struct Expr: Sendable {
    public indirect enum Kind: Sendable {
        /// `123`, `0x10`, `1_000`, `'a'` (a char literal is its code), `1e6`-style is not
        /// bpftrace; suffixes such as `1K`? no. The value as written, unsigned.
        case integer(UInt64)
        case boolean(Bool)
        /// `"text"` with escapes already decoded (UTF-8 bytes).
        case string(String)
        /// A builtin name: pid, tid, uid, gid, comm, nsecs, elapsed, cpu, numaid, curtask,
        /// rand, cgroup, kstack, ustack, func, probe, retval, args, arg0..argN, sarg0..sargN,
        /// username, cpid, ctx, jiffies, ...
        case builtin(String)
        /// `$1` ... `$N`.
        case positional(Int)
        /// `$#`.
        case positionalCount
        /// `$name` (without the `$`).
        case variable(String)
        /// `@name[keys]` (name without `@`; "" for the anonymous `@`). No keys: `@name`.
        case map(name: String, keys: [Expr])
        /// `name(args)`. Map functions (`count()`), `printf`, `str`, ... alike; the checker decides.
        /// For `sizeof`/`offsetof` see their own cases.
        case call(name: String, args: [Expr])
        case unary(UnaryOperator, Expr)
        case binary(BinaryOperator, Expr, Expr)
        /// `cond ? a : b`.
        case ternary(Expr, Expr, Expr)
        /// `x++`, `++x`, `x--`, `--x`.
        case increment(Expr, isDecrement: Bool, isPrefix: Bool)
        /// `(type) expr`.
        case cast(TypeName, Expr)
        /// `base.name` (`isArrow` false) or `base->name` (true). `args.f`, `args->f` alike.
        case field(Expr, name: String, isArrow: Bool)
        /// `base[index]`.
        case index(Expr, Expr)
        /// `(a, b, ...)` with at least two elements.
        case tuple([Expr])
        /// `$t.0`.
        case tupleIndex(Expr, Int)
        /// `sizeof(type)`.
        case sizeofType(TypeName)
        /// `sizeof(expr)`.
        case sizeofExpr(Expr)
        /// `offsetof(type, a.b.c)`.
        case offsetof(TypeName, [String])
    }
    public var kind: Kind
    public var range: SourceRange
    /// Unique within one parsed script: the key of the checker's side tables.
    public var id: Int
    public init(_ kind: Kind, range: SourceRange, id: Int) { self.kind = kind; self.range = range; self.id = id }
}
