// The little of the C preprocessor that scripts use in their preamble: `#include` (recorded,
// and a header found on the search path read for its object-like `#define`s), object-like
// `#define NAME value` (constants and expressions), and conditionals, so that the
// common `#ifndef BPFTRACE_HAVE_BTF ... #endif` blocks (headers and hand-written structs for
// kernels without BTF) are skipped: we always have BTF, and a hand-written `struct cfs_rq`
// must not shadow the kernel's real one.

/// What `#define` and the predefined names say about one macro.
struct Macro {
    /// The substituted literal (`.integer` or `.string`), or nil when the macro only exists
    /// (`#define X`) or its body is an expression.
    var value: Token.Kind?
    /// A body that is an expression (`(1 + 2)`, `OTHER * 2`): parsed again at each use.
    var expression: String? = nil
    var range: SourceRange
}

/// One open `#if`/`#ifdef`/`#ifndef`.
struct Conditional {
    var anyTaken: Bool
    var elseSeen: Bool
    var range: SourceRange
}

extension Parser {
    /// Macros every script sees: we always run with the kernel's BTF.
    static let predefinedMacros: [String: Macro] = [
        "BPFTRACE_HAVE_BTF": Macro(value: .integer(1), range: SourceRange(0, 0)),
    ]

    /// Splits `#word rest` into the directive word and its argument text.
    static func splitDirective(_ d: String) -> (word: String, rest: Substring) {
        let body = d.dropFirst().drop(while: { $0 == " " || $0 == "\t" })
        let word = body.prefix(while: { $0.isLetter || $0 == "_" })
        return (String(word), body.dropFirst(word.count).trimmingSpaces())
    }

    /// The offset of the next line (after `offset`) whose first non-blank byte is `#` and
    /// whose directive, at nesting depth 0, is one of `stops`; nested `#if`s are skipped whole.
    /// The end of the text when there is none.
    static func skipInactive(_ bytes: [UInt8], from offset: Int, stopAtElse: Bool) -> Int {
        var i = offset
        var depth = 0
        while i < bytes.count {
            // To the start of the next line.
            while i < bytes.count, bytes[i] != 10 { i += 1 }
            if i >= bytes.count { break }
            i += 1
            let lineStart = i
            var j = i
            while j < bytes.count, bytes[j] == 32 || bytes[j] == 9 { j += 1 }
            guard j < bytes.count, bytes[j] == UInt8(ascii: "#") else { continue }
            j += 1
            while j < bytes.count, bytes[j] == 32 || bytes[j] == 9 { j += 1 }
            var k = j
            while k < bytes.count, Lexer.isIdentChar(bytes[k]) { k += 1 }
            switch String(decoding: bytes[j..<k], as: UTF8.self) {
            case "if", "ifdef", "ifndef": depth += 1
            case "endif":
                if depth == 0 { return lineStart }
                depth -= 1
            case "else", "elif", "elifdef", "elifndef":
                if depth == 0, stopAtElse { return lineStart }
            default: break
            }
        }
        return bytes.count
    }

    /// `#define NAME`, `#define NAME 16`, `#define NAME "text"`.
    static func parseDefine(_ rest: Substring, range: SourceRange) -> (name: String, macro: Macro?, problem: String?) {
        let name = String(rest.prefix(while: { $0.isLetter || $0.isNumber || $0 == "_" }))
        guard !name.isEmpty, !(name.first?.isNumber ?? true) else { return ("", nil, "#define expects a macro name") }
        let after = rest.dropFirst(name.count)
        if after.first == "(" {
            return (name, nil, "function-like macro '\(name)' is not supported; only object-like macros ('#define NAME value') are expanded")
        }
        let body = after.trimmingSpaces()
        if body.isEmpty { return (name, Macro(value: nil, range: range), nil) }
        let (tokens, diagnostics) = Lexer.tokens(SourceFile(name: "", text: String(body)))
        if diagnostics.isEmpty, tokens.count == 2 {
            switch tokens[0].kind {
            case .integer, .string: return (name, Macro(value: tokens[0].kind, range: range), nil)
            default: break
            }
        }
        // Anything else must be one expression, checked now so a bad body is reported at its #define.
        var probe = Parser(SourceFile(name: "", text: String(body)))
        if probe.parseMacroBody() != nil {
            return (name, Macro(value: nil, expression: String(body), range: range), nil)
        }
        return (name, Macro(value: nil, range: range),
                "macro '\(name)' is not expanded: its body is not an expression")
    }

    /// Evaluates a `#if` condition: integers, `defined(X)`/`defined X`, macro names (their
    /// integer value, else 0), `!`, `&&`, `||`, `==`, `!=`, `<`, `>`, `<=`, `>=`, parentheses.
    /// nil when the expression is outside that.
    static func evaluateCondition(_ text: Substring, macros: [String: Macro]) -> Bool? {
        let (tokens, diagnostics) = Lexer.tokens(SourceFile(name: "", text: String(text)))
        guard diagnostics.isEmpty else { return nil }
        var i = 0
        var depth = 0
        func value(of name: String) -> UInt64 {
            if case .integer(let v)? = macros[name]?.value { return v }
            return 0
        }
        func primary() -> UInt64? {
            guard i < tokens.count else { return nil }
            let t = tokens[i]
            i += 1
            switch t.kind {
            case .integer(let v): return v
            case .identifier("defined"):
                let paren = i < tokens.count && tokens[i].isPunct("(")
                if paren { i += 1 }
                guard i < tokens.count, let name = tokens[i].identifier else { return nil }
                i += 1
                if paren {
                    guard i < tokens.count, tokens[i].isPunct(")") else { return nil }
                    i += 1
                }
                return macros[name] != nil ? 1 : 0
            case .identifier(let name): return value(of: name)
            case .punct("!"):
                depth += 1
                defer { depth -= 1 }
                guard depth < 64, let v = primary() else { return nil }
                return v == 0 ? 1 : 0
            case .punct("("):
                depth += 1
                defer { depth -= 1 }
                guard depth < 64, let v = binary(0), i < tokens.count, tokens[i].isPunct(")") else { return nil }
                i += 1
                return v
            default: return nil
            }
        }
        let levels: [[String]] = [["||"], ["&&"], ["==", "!="], ["<", ">", "<=", ">="]]
        func binary(_ level: Int) -> UInt64? {
            guard level < levels.count else { return primary() }
            guard var lhs = binary(level + 1) else { return nil }
            while i < tokens.count, case .punct(let p) = tokens[i].kind, levels[level].contains(p) {
                i += 1
                guard let rhs = binary(level + 1) else { return nil }
                let r: Bool
                switch p {
                case "||": r = lhs != 0 || rhs != 0
                case "&&": r = lhs != 0 && rhs != 0
                case "==": r = lhs == rhs
                case "!=": r = lhs != rhs
                case "<": r = lhs < rhs
                case ">": r = lhs > rhs
                case "<=": r = lhs <= rhs
                default: r = lhs >= rhs
                }
                lhs = r ? 1 : 0
            }
            return lhs
        }
        guard let v = binary(0), i == tokens.count - 1 else { return nil }
        return v != 0
    }
}


extension Expr {
    /// This tree with fresh ids from `nextID` on and every range set to `range` (a macro's
    /// expansion points at the macro's name in the script).
    func relocated(to range: SourceRange, nextID: inout Int) -> Expr {
        func r(_ e: Expr) -> Expr { e.relocated(to: range, nextID: &nextID) }
        let k: Kind
        switch kind {
        case .integer, .boolean, .string, .builtin, .positional, .positionalCount, .variable: k = kind
        case .sizeofType(var t): t.range = range; k = .sizeofType(t)
        case .offsetof(var t, let path): t.range = range; k = .offsetof(t, path)
        case .map(let n, let keys): k = .map(name: n, keys: keys.map(r))
        case .call(let n, let args): k = .call(name: n, args: args.map(r))
        case .unary(let op, let e): k = .unary(op, r(e))
        case .binary(let op, let a, let b): k = .binary(op, r(a), r(b))
        case .ternary(let a, let b, let c): k = .ternary(r(a), r(b), r(c))
        case .increment(let e, let d, let p): k = .increment(r(e), isDecrement: d, isPrefix: p)
        case .cast(var t, let e): t.range = range; k = .cast(t, r(e))
        case .field(let e, let n, let arrow): k = .field(r(e), name: n, isArrow: arrow)
        case .index(let a, let b): k = .index(r(a), r(b))
        case .tuple(let es): k = .tuple(es.map(r))
        case .tupleIndex(let e, let i): k = .tupleIndex(r(e), i)
        case .sizeofExpr(let e): k = .sizeofExpr(r(e))
        }
        let id = nextID
        nextID += 1
        return Expr(k, range: range, id: id)
    }
}

/// How the parser reads an `#include`d header: `read(name, quoted, includer)` returns its text
/// and path, or nil when it is not on the search path. `includer` is the path of the header that
/// includes it (nil for the script itself). The CLI searches, as cpp does, the includer's
/// directory first for `"file"`, then the -I directories; headers not found are only recorded.
public struct HeaderSource: Sendable {
    public var read: @Sendable (_ name: String, _ quoted: Bool, _ includer: String?) -> (text: String, path: String)?
    public init(read: @escaping @Sendable (_ name: String, _ quoted: Bool, _ includer: String?) -> (text: String, path: String)?) {
        self.read = read
    }
}

extension Parser {
    /// Headers include headers; deeper than this is a cycle.
    static let maxIncludeDepth = 16

    /// Takes the object-like `#define`s of header `name` (and of the headers it includes) as
    /// macros of the script. Everything else is skipped: declarations (the kernel's types come
    /// from BTF), function-like macros, and conditionals, which are not evaluated (a `#define`
    /// under `#if 0` counts too).
    /// Whether the header was found.
    @discardableResult
    mutating func defineFromHeader(_ name: String, quoted: Bool, at range: SourceRange, depth: Int, includer: String? = nil) -> Bool {
        guard let headers, depth < Parser.maxIncludeDepth, let (text, path) = headers.read(name, quoted, includer) else { return false }
        for line in text.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.first == "#" else { continue }
            let (word, rest) = Parser.splitDirective(String(trimmed))
            switch word {
            case "define":
                let (macroName, macro, _) = Parser.parseDefine(rest, range: range)
                if let macro { macros[macroName] = macro }
            case "include":
                if rest.count >= 2, (rest.first == "<" && rest.last == ">") || (rest.first == "\"" && rest.last == "\"") {
                    defineFromHeader(String(rest.dropFirst().dropLast()), quoted: rest.first == "\"", at: range, depth: depth + 1, includer: path)
                }
            default: continue
            }
        }
        return true
    }

    /// `--include FILE`s, read before the script: their names, and an error for each not found.
    mutating func readPreincluded(_ names: [String]) -> ([String], [Diagnostic]) {
        var problems: [Diagnostic] = []
        for name in names {
            if !defineFromHeader(name, quoted: true, at: SourceRange(0, 0), depth: 0) {
                problems.append(.error("--include \(name): file not found (looked in the current directory and the -I directories)", at: SourceRange(0, 0)))
            }
        }
        return (names, problems)
    }
}
