// Recursive descent parser for the tracing language (bpftrace's grammar: preamble, probes,
// C-precedence expressions). It collects every syntax error it can: a broken statement is
// skipped to its `;` or `}`, a broken probe header to its `{`, and parsing goes on, so one
// run shows the user all their typos. Nesting is capped so hostile input cannot exhaust the
// stack (here, or in the recursive passes that walk the tree after us).

/// Parses `file` into a script and the syntax errors (and warnings) found. The script holds
/// everything that parsed; when the diagnostics contain an error it must not be compiled.
public func parse(_ file: SourceFile) -> (Script, [Diagnostic]) {
    var parser = Parser(file)
    return parser.parseScript()
}

/// As `parse(_:)`, with the headers the script includes read through `headers` (the caller's
/// file access and search path), and `preincluded` headers (`--include FILE`) read first.
public func parse(_ file: SourceFile, headers: HeaderSource, preincluded: [String] = []) -> (Script, [Diagnostic]) {
    var parser = Parser(file)
    parser.headers = headers
    let (pre, problems) = parser.readPreincluded(preincluded)
    var (script, diagnostics) = parser.parseScript()
    script.includes = pre + script.includes
    diagnostics = problems + diagnostics
    return (script, diagnostics)
}

public struct Parser {
    /// Deepest expression or block nesting accepted.
    public static let maxNesting = 128
    /// Most expression nodes macro expansion may produce in one script.
    public static let maxMacroNodes = 10_000

    /// Canonical provider for every spelling bpftrace accepts.
    public static let providerAliases: [String: String] = [
        "BEGIN": "BEGIN", "begin": "BEGIN", "END": "END", "end": "END",
        "tracepoint": "tracepoint", "t": "tracepoint",
        "rawtracepoint": "rawtracepoint", "rt": "rawtracepoint",
        "kprobe": "kprobe", "k": "kprobe", "kretprobe": "kretprobe", "kr": "kretprobe",
        "uprobe": "uprobe", "u": "uprobe", "uretprobe": "uretprobe", "ur": "uretprobe",
        "usdt": "usdt", "U": "usdt",
        "interval": "interval", "i": "interval", "profile": "profile", "p": "profile",
        "software": "software", "s": "software", "hardware": "hardware", "h": "hardware",
        "watchpoint": "watchpoint", "w": "watchpoint", "asyncwatchpoint": "asyncwatchpoint", "aw": "asyncwatchpoint",
        "kfunc": "kfunc", "f": "kfunc", "fentry": "kfunc", "kretfunc": "kretfunc", "fr": "kretfunc", "fexit": "kretfunc",
        "iter": "iter", "it": "iter", "lsm": "lsm", "process": "process",
    ]

    /// Words that begin a type in a cast, `sizeof` or `offsetof`.
    static let typeWords: Set<String> = [
        "struct", "union", "enum", "void", "bool", "char", "short", "int", "long", "unsigned", "signed",
        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    ]
    static let cIntegerWords: Set<String> = ["char", "short", "int", "long", "unsigned", "signed"]

    private let file: SourceFile
    private var lexer: Lexer
    private var diagnostics: [Diagnostic] = []
    /// The current token and the end of the one before it.
    private var tok: Token
    private var lastEnd = 0
    private var nextID = 0
    /// Tree depth of each expression, by id, so every node can be checked against the limit.
    private var depths: [Int] = []
    private var nesting = 0
    /// Inside `/predicate/`: a `/` followed by `{` ends the predicate instead of dividing.
    private var inPredicate = false
    /// Expression nodes made by macro expansion so far (see `maxMacroNodes`).
    private var macroNodes = 0
    /// `#define`d constants (and the predefined ones), and the open conditionals.
    var macros = Parser.predefinedMacros
    /// Where `#include`d headers are read from (nil: includes are only recorded).
    var headers: HeaderSource?
    private var conditionals: [Conditional] = []
    /// Set when the nesting limit was hit: parsing stops there (the rest would only cascade).
    private var tooDeep = false
    /// The probe start or end of file (offset) whose error is already out, so the other blocks
    /// it ends say nothing more.
    private var boundaryReported = -1

    /// Thrown to abandon the current statement or probe header after its diagnostic is recorded.
    struct Abandon: Error {}

    public init(_ file: SourceFile) {
        self.file = file
        lexer = Lexer(file)
        tok = Token(.eof, SourceRange(0, 0))
        tok = lexer.token(at: 0)
    }

    // MARK: Token cursor

    private mutating func advance() {
        lastEnd = tok.range.end
        tok = lexer.token(at: tok.range.end)
    }

    /// The token after the current one, without moving.
    private mutating func peek() -> Token { lexer.token(at: tok.range.end) }

    /// Re-lexes from `pos` (after lexing something in another mode).
    private mutating func reset(to pos: Int) {
        tok = lexer.token(at: pos)
    }

    private func isPunct(_ p: String) -> Bool { tok.isPunct(p) }
    private func isWord(_ w: String) -> Bool { tok.identifier == w }

    private mutating func accept(_ p: String) -> Bool {
        if isPunct(p) { advance(); return true }
        return false
    }

    private mutating func error(_ message: String, _ range: SourceRange, notes: [Diagnostic.Note] = []) {
        diagnostics.append(.error(message, at: range, notes: notes))
    }

    /// "syntax error, unexpected X, expecting Y" at the current token, then abandon.
    private mutating func unexpected(expecting: String?, notes: [Diagnostic.Note] = []) -> Abandon {
        if atProbeStart() { boundaryReported = tok.range.start }
        if case .invalid = tok.kind { return Abandon() }  // the lexer already said what is wrong
        var m = "syntax error, unexpected \(tok)"
        if let e = expecting { m += ", expecting \(e)" }
        error(m, here, notes: notes)
        return Abandon()
    }

    /// Where an error about the current token points: the token, or for the end of the file
    /// the end of the last token (not a blank line after it).
    private var here: SourceRange { tok.kind == .eof ? SourceRange(lastEnd, lastEnd) : tok.range }

    private mutating func expect(_ p: String, notes: [Diagnostic.Note] = []) throws {
        guard accept(p) else { throw unexpected(expecting: "'\(p)'", notes: notes) }
    }

    // MARK: Script

    public mutating func parseScript() -> (Script, [Diagnostic]) {
        var script = Script()
        var sawProbe = false
        // `#!/usr/bin/env bpftrace` on the first line.
        if lexer.bytes.starts(with: [35, 33]) {
            reset(to: lexer.bytes.firstIndex(of: 10) ?? lexer.bytes.count)
        }
        while tok.kind != .eof, !tooDeep {
            switch tok.kind {
            case .directive(let d):
                let range = tok.range
                advance()
                directive(d, range: range, into: &script, afterProbe: sawProbe)
            case .punct(";"), .invalid:  // an invalid character is already diagnosed
                advance()
            case .punct("}"):
                error("syntax error, unexpected '}', expecting attach point", tok.range)
                advance()
            case .identifier(let w) where (w == "struct" || w == "union" || w == "enum") && isDefinitionAhead():
                if sawProbe { error("type definitions must come before the first probe", tok.range) }
                if let s = structDecl() { script.structs.append(s) }
            case .identifier("config") where peek().isPunct("="):
                config(into: &script, afterProbe: sawProbe)
            default:
                sawProbe = true
                if let p = probe() { script.probes.append(p) }
            }
        }
        if let open = conditionals.last {
            error("'#if' without '#endif'", open.range)
        }
        // Source order; at one offset, the order they were found in (lexer first).
        let all = (lexer.diagnostics + diagnostics).enumerated()
            .sorted { ($0.element.range.start, $0.offset) < ($1.element.range.start, $1.offset) }
            .map(\.element)
        return (script, all)
    }

    /// `struct name {` (a definition) rather than `struct name` starting something else.
    private mutating func isDefinitionAhead() -> Bool {
        let name = peek()
        guard name.identifier != nil else { return false }
        return lexer.token(at: name.range.end).isPunct("{")
    }

    private mutating func directive(_ d: String, range: SourceRange, into script: inout Script, afterProbe: Bool) {
        let (word, rest) = Parser.splitDirective(d)
        switch word {
        case "include":
            if rest.count >= 2, (rest.first == "<" && rest.last == ">") || (rest.first == "\"" && rest.last == "\"") {
                let name = String(rest.dropFirst().dropLast())
                script.includes.append(name)
                defineFromHeader(name, quoted: rest.first == "\"", at: range, depth: 0)   // Preprocessor.swift
            } else {
                error("#include expects <file> or \"file\"", range)
            }
            if afterProbe { error("#include must come before the first probe", range) }
        case "define":
            let (name, macro, problem) = Parser.parseDefine(rest, range: range)
            if let problem { diagnostics.append(name.isEmpty ? .error(problem, at: range) : .warning(problem, at: range)) }
            if let macro { macros[name] = macro }
        case "undef":
            macros[String(rest.prefix(while: { $0.isLetter || $0.isNumber || $0 == "_" }))] = nil
        case "if", "ifdef", "ifndef":
            let taken: Bool
            if word == "if" {
                taken = condition(rest, range: range)
            } else {
                let name = String(rest.prefix(while: { $0.isLetter || $0.isNumber || $0 == "_" }))
                if name.isEmpty { error("#\(word) expects a macro name", range) }
                taken = (macros[name] != nil) == (word == "ifdef")
            }
            conditionals.append(Conditional(anyTaken: taken, elseSeen: false, range: range))
            if !taken { skipInactive(after: range, stopAtElse: true) }
        case "elif", "else":
            guard var top = conditionals.popLast(), !top.elseSeen else {
                error("#\(word) without #if", range)
                return
            }
            if top.anyTaken {
                // The branch before this one was compiled: skip the rest of the chain.
                top.elseSeen = top.elseSeen || word == "else"
                conditionals.append(top)
                skipInactive(after: range, stopAtElse: false)
                return
            }
            let taken = word == "else" || condition(rest, range: range)
            top.anyTaken = taken
            top.elseSeen = word == "else"
            conditionals.append(top)
            if !taken { skipInactive(after: range, stopAtElse: true) }
        case "endif":
            if conditionals.popLast() == nil { error("#endif without #if", range) }
        case "error":
            error("#error \(rest)", range)
        default:
            diagnostics.append(.warning("'#\(word)' is ignored: only #include, #define and conditionals are understood", at: range))
        }
    }

    /// A `#if`/`#elif` condition; false (with an error) when it cannot be evaluated.
    private mutating func condition(_ text: Substring, range: SourceRange) -> Bool {
        guard let v = Parser.evaluateCondition(text, macros: macros) else {
            error("cannot evaluate '#if \(text)': use integers, defined(NAME), !, &&, || and comparisons", range)
            return false
        }
        return v
    }

    /// Skips the lines of a branch not taken, up to the `#else`/`#elif`/`#endif` that ends it.
    private mutating func skipInactive(after range: SourceRange, stopAtElse: Bool) {
        reset(to: Parser.skipInactive(lexer.bytes, from: range.end, stopAtElse: stopAtElse))
    }

    private mutating func config(into script: inout Script, afterProbe: Bool) {
        if afterProbe { error("the config block must come before the first probe", tok.range) }
        advance(); advance()  // config =
        let open = tok.range
        guard accept("{") else {
            _ = unexpected(expecting: "'{'")
            return
        }
        while !isPunct("}"), tok.kind != .eof {
            if accept(";") { continue }
            do {
                guard let name = tok.identifier else { throw unexpected(expecting: "config variable name") }
                advance()
                try expect("=")
                let value = try expression()
                script.config.append((name, value))
                if !isPunct("}"), tok.kind != .eof { try expect(";") }
            } catch {
                synchronize()
            }
        }
        if !accept("}") {
            _ = unexpected(expecting: "'}'", notes: [.init("to match this '{'", range: open)])
        }
    }

    // MARK: C definitions

    private mutating func structDecl() -> StructDecl? {
        let start = tok.range.start
        let tag = tok.identifier ?? "struct"
        advance()
        let name = tok.identifier ?? ""
        advance()
        let open = tok.range
        advance()  // {
        var fields: [(type: TypeName, name: String, range: SourceRange)] = []
        if tag == "enum" {
            error("enum definitions are not supported in scripts; use the values directly", SourceRange(start, open.start))
        }
        while !isPunct("}"), tok.kind != .eof {
            if accept(";") { continue }
            if tag == "enum" { advance(); continue }
            do {
                try fieldDeclaration(into: &fields)
            } catch {
                synchronize(blockEndsStatement: false)
            }
        }
        guard accept("}") else {
            _ = unexpected(expecting: "'}'", notes: [.init("to match this '{'", range: open)])
            return nil
        }
        _ = accept(";")  // optional, as in bpftrace (`struct S { int y[4]; } uprobe:...`)
        if tag == "enum" { return nil }
        return StructDecl(name: name, isUnion: tag == "union", fields: fields, range: SourceRange(start, lastEnd))
    }

    /// `int a, *b, c[4];`
    private mutating func fieldDeclaration(into fields: inout [(type: TypeName, name: String, range: SourceRange)]) throws {
        guard let base = try typeBase(allowTypedef: true) else { throw unexpected(expecting: "a field type") }
        if isPunct("{") {
            error("nested type definitions are not supported; define the inner type separately", tok.range)
            throw Abandon()
        }
        while true {
            var depth = 0
            while accept("*") { depth += 1 }
            if isPunct("(") {
                error("function pointer fields are not supported; use a pointer such as 'void *'", tok.range)
                throw Abandon()
            }
            guard let name = tok.identifier else { throw unexpected(expecting: "a field name") }
            let nameRange = tok.range
            advance()
            var length: Int? = nil
            if isPunct("[") {
                length = try arrayLength()
                if isPunct("[") {
                    error("multi-dimensional arrays are not supported", tok.range)
                    throw Abandon()
                }
            }
            if isPunct(":") {
                error("bit-fields are not supported", tok.range)
                throw Abandon()
            }
            var type = base
            type.pointerDepth = depth
            type.arrayLength = length
            // The base's range: where an unknown type name would be pointed at.
            type.range = base.range
            fields.append((type, name, nameRange))
            if accept(",") { continue }
            if isPunct("}") { throw unexpected(expecting: "';'") }
            try expect(";")
            return
        }
    }

    /// `[N]` with a literal N.
    private mutating func arrayLength() throws -> Int {
        try expect("[")
        var length: UInt64? = nil
        if case .integer(let v) = tok.kind { length = v }
        if let name = tok.identifier, case .integer(let v)? = macros[name]?.value { length = v }
        guard let v = length else { throw unexpected(expecting: "an array length") }
        guard v <= 1 << 24 else {
            error("array length \(v) is too large", tok.range)
            throw Abandon()
        }
        advance()
        try expect("]")
        return Int(v)
    }

    // MARK: Types

    /// A type's base name: `struct x`, `unsigned long`, `uint32`, or (when allowed) a typedef name.
    /// `nil` (nothing consumed) when the current token does not begin one.
    private mutating func typeBase(allowTypedef: Bool) throws -> TypeName? {
        guard let w = tok.identifier else { return nil }
        let start = tok.range.start
        if w == "struct" || w == "union" || w == "enum" {
            advance()
            if isPunct("{") {
                error("anonymous \(w) definitions are not supported; define the type separately and name it", SourceRange(start, tok.range.end))
                throw Abandon()
            }
            guard let name = tok.identifier else { throw unexpected(expecting: "a \(w) name") }
            advance()
            return TypeName(base: "\(w) \(name)", range: SourceRange(start, lastEnd))
        }
        if Parser.cIntegerWords.contains(w) {
            var words: [String] = []
            while let x = tok.identifier, Parser.cIntegerWords.contains(x) { words.append(x); advance() }
            return TypeName(base: words.joined(separator: " "), range: SourceRange(start, lastEnd))
        }
        if Parser.typeWords.contains(w) || allowTypedef {
            advance()
            return TypeName(base: w, range: SourceRange(start, lastEnd))
        }
        return nil
    }

    /// A full type: base, `*`s, optional `[N]`.
    private mutating func typeName(allowTypedef: Bool) throws -> TypeName {
        guard var t = try typeBase(allowTypedef: allowTypedef) else { throw unexpected(expecting: "a type") }
        while accept("*") { t.pointerDepth += 1 }
        if isPunct("[") { t.arrayLength = try arrayLength() }
        t.range = SourceRange(t.range.start, lastEnd)
        return t
    }

    /// After `(`: does a cast's type follow? A type keyword, or `name *...)` (a typedef'd pointer).
    private mutating func castAhead() -> Bool {
        let next = peek()
        guard let w = next.identifier else { return false }
        if Parser.typeWords.contains(w) { return true }
        var t = lexer.token(at: next.range.end)
        guard t.isPunct("*") else { return false }
        while t.isPunct("*") { t = lexer.token(at: t.range.end) }
        return t.isPunct(")")
    }

    // MARK: Probes

    private mutating func probe() -> Probe? {
        let start = lexer.skipTrivia(from: tok.range.start)
        var points: [AttachPoint] = []
        var headerOK = true
        var pos = start
        while true {
            guard let ap = lexer.attachPoint(at: pos) else {
                reset(to: pos)
                _ = unexpected(expecting: "attach point")
                headerOK = false
                break
            }
            if let p = attachPoint(ap) { points.append(p) } else { headerOK = false }
            pos = ap.range.end
            lastEnd = pos
            reset(to: pos)
            if isPunct(",") { pos = tok.range.end; continue }
            break
        }
        var predicate: Expr? = nil
        if headerOK, isPunct("/") {
            let slash = tok.range
            advance()
            inPredicate = true
            do {
                predicate = try expression()
                inPredicate = false
                try expect("/", notes: [.init("the predicate began here", range: slash)])
            } catch {
                inPredicate = false
                headerOK = false
            }
        }
        if headerOK, !isPunct("{") {
            _ = unexpected(expecting: points.isEmpty ? "attach point" : isPunct("/") ? "'{'" : "'{' or a predicate")
            headerOK = false
        }
        if tooDeep { return nil }
        if !headerOK {
            // Skip to this probe's body so its statements are still checked.
            var depth = 0
            while tok.kind != .eof, !(isPunct("{") && depth == 0) {
                if tok.range.start > start, atProbeStart() { return nil }
                if isPunct("(") || isPunct("[") { depth += 1 }
                if isPunct(")") || isPunct("]") { depth = max(0, depth - 1) }
                advance()
            }
            if tok.kind == .eof { return nil }
        }
        guard let body = try? block(), !points.isEmpty else { return nil }
        return Probe(attachPoints: points, predicate: predicate, body: body, range: SourceRange(start, lastEnd))
    }

    private mutating func attachPoint(_ ap: (text: String, parts: [String], range: SourceRange)) -> AttachPoint? {
        let name = ap.parts[0]
        if name.isEmpty || !name.utf8.allSatisfy({ Lexer.isIdentChar($0) || $0 == UInt8(ascii: "-") }) {
            error("invalid attach point '\(ap.text)'", ap.range)
            return nil
        }
        if name == "fn" || name == "macro" || name == "import" {
            error("'\(name)' is not supported: scripts are probes and their preamble", SourceRange(ap.range.start, ap.range.start + name.utf8.count))
            return nil
        }
        guard let provider = Parser.providerAliases[name] else {
            var notes: [Diagnostic.Note] = []
            if name.utf8.count <= 32 {
                let scored = Parser.providerAliases.keys.filter { $0.count > 2 }.sorted().map { ($0, editDistance($0, name)) }
                if let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(1, name.count / 3) {
                    notes.append(.init("did you mean '\(best.0)'?"))
                }
            }
            let nameRange = SourceRange(ap.range.start, ap.range.start + name.utf8.count)
            error("unknown probe type '\(name)'", nameRange, notes: notes)
            return nil
        }
        return AttachPoint(text: ap.text, provider: provider, fields: Array(ap.parts.dropFirst()), range: ap.range)
    }

    // MARK: Statements

    /// Skips to the end of the broken statement: past its `;`, past a `{ }` block it contains,
    /// or up to the `}` closing the enclosing block.
    private mutating func synchronize(blockEndsStatement: Bool = true) {
        // Only braces count: a stray `(` in broken code must not swallow the block's `}`.
        var depth = 0
        while tok.kind != .eof, !atProbeStart() {
            if depth == 0, isPunct(";") { advance(); return }
            if isPunct("}") {
                if depth == 0 { return }
                depth -= 1
                // A block closed during the skip ended the broken statement (`if`, `for` ...).
                if depth == 0, blockEndsStatement { advance(); return }
            }
            if isPunct("{") { depth += 1 }
            advance()
        }
    }

    private mutating func enter(_ range: SourceRange) throws {
        nesting += 1
        if nesting > Parser.maxNesting {
            error("nesting is too deep (more than \(Parser.maxNesting) levels)", range)
            tooDeep = true
            throw Abandon()
        }
    }

    private mutating func block() throws -> Block {
        let open = tok.range
        try expect("{")
        try enter(open)
        defer { nesting -= 1 }
        var statements: [Stmt] = []
        while !isPunct("}") {
            if tok.kind == .eof {
                // Said once, by the innermost block: the enclosing ones are open for the same reason.
                if boundaryReported != tok.range.start {
                    error("syntax error, unexpected end of file, expecting '}'", here, notes: [.init("to match this '{'", range: open)])
                    boundaryReported = tok.range.start
                }
                throw Abandon()
            }
            if atProbeStart() {
                // A probe header at the start of a line: this block's '}' is missing (or an
                // unterminated string ate it); end the probe here and parse the next one.
                if boundaryReported != tok.range.start {
                    error("syntax error, unexpected \(tok), expecting '}'", tok.range, notes: [.init("to match this '{'", range: open)])
                    boundaryReported = tok.range.start
                }
                throw Abandon()
            }
            if accept(";") { continue }
            do {
                let s = try statement()
                statements.append(s)
                if endsWithBlock(s) || isPunct("}") || tok.kind == .eof { continue }
                if !accept(";") {
                    throw unexpected(expecting: "';' or '}'")
                }
            } catch {
                if tooDeep { throw error }
                synchronize()
                if atProbeStart() { continue }
            }
        }
        advance()
        return Block(statements, range: SourceRange(open.start, lastEnd))
    }

    /// Is the current token, at the start of a line, something that can only begin a probe
    /// (`kprobe:...`, `BEGIN`)? Recovery stops there, so one broken probe does not hide the next.
    private func atProbeStart() -> Bool {
        guard let w = tok.identifier, Parser.providerAliases[w] != nil else { return false }
        let s = tok.range.start
        guard s == 0 || lexer.bytes[s - 1] == 10 else { return false }
        if tok.range.end < lexer.bytes.count, lexer.bytes[tok.range.end] == UInt8(ascii: ":") { return true }
        return w == "BEGIN" || w == "END"
    }

    private func endsWithBlock(_ s: Stmt) -> Bool {
        switch s.kind {
        case .ifElse, .unroll, .whileLoop, .forMap, .forRange, .block: return true
        default: return false
        }
    }

    private mutating func parenthesized() throws -> Expr {
        try expect("(")
        let e = try expression()
        try expect(")")
        return e
    }

    private mutating func statement() throws -> Stmt {
        let start = tok.range.start
        if isPunct("{") {
            let b = try block()
            return Stmt(.block(b), range: b.range)
        }
        if let w = tok.identifier {
            switch w {
            case "if":
                advance()
                let cond = try parenthesized()
                let then = try block()
                var otherwise: Block? = nil
                if isWord("else") {
                    advance()
                    if isWord("if") {
                        try enter(tok.range)
                        defer { nesting -= 1 }
                        let nested = try statement()
                        otherwise = Block([nested], range: nested.range)
                    } else {
                        otherwise = try block()
                    }
                }
                return Stmt(.ifElse(condition: cond, then: then, otherwise: otherwise), range: SourceRange(start, lastEnd))
            case "unroll":
                advance()
                let count = try parenthesized()
                let body = try block()
                return Stmt(.unroll(count: count, body: body), range: SourceRange(start, lastEnd))
            case "while":
                advance()
                let cond = try parenthesized()
                let body = try block()
                return Stmt(.whileLoop(condition: cond, body: body), range: SourceRange(start, lastEnd))
            case "for":
                advance()
                try expect("(")
                guard case .variable(let name) = tok.kind else { throw unexpected(expecting: "a variable") }
                let varRange = tok.range
                advance()
                try expect(":")
                let first = try expression()
                if accept("..") {
                    let end = try expression()
                    try expect(")")
                    let body = try block()
                    return Stmt(.forRange(variable: name, variableRange: varRange, start: first, end: end, body: body),
                                range: SourceRange(start, lastEnd))
                }
                guard case .map = first.kind else {
                    error("a for loop iterates over a map ('for ($kv : @m)') or a range ('for ($i : 0..10)')", first.range)
                    throw Abandon()
                }
                try expect(")")
                let body = try block()
                return Stmt(.forMap(variable: name, variableRange: varRange, map: first, body: body), range: SourceRange(start, lastEnd))
            case "return":
                advance()
                var value: Expr? = nil
                if !isPunct(";"), !isPunct("}") { value = try expression() }
                return Stmt(.returnStatement(value), range: SourceRange(start, lastEnd))
            case "break":
                advance()
                return Stmt(.breakStatement, range: SourceRange(start, lastEnd))
            case "continue":
                advance()
                return Stmt(.continueStatement, range: SourceRange(start, lastEnd))
            case "else":
                error("'else' without a matching 'if'", tok.range)
                throw Abandon()
            case "let":
                // Current bpftrace's declarations (`let $x: uint8 = 1;`): not in the tree yet.
                let next = peek()
                if case .variable = next.kind {
                    error("'let' declarations are not supported; assign the variable directly ('$x = ...')", tok.range.union(next.range))
                    throw Abandon()
                }
                if case .map = next.kind {
                    error("map declarations ('let @m = ...') are not supported; maps are created by assigning to them", tok.range.union(next.range))
                    throw Abandon()
                }
            default: break
            }
        }
        let e = try expression()
        if case .punct(let p) = tok.kind, let op = Parser.assignmentOperators[p] {
            let opRange = tok.range
            switch e.kind {
            case .map, .variable: break
            default:
                error("cannot assign to this expression: only maps ('@m', '@m[k]') and variables ('$x') can be assigned", e.range.union(opRange))
                throw Abandon()
            }
            advance()
            let value = try expression()
            return Stmt(.assign(target: e, op: op, value: value), range: SourceRange(start, lastEnd))
        }
        return Stmt(.expression(e), range: SourceRange(start, lastEnd))
    }

    /// `=` maps to nil; `+=` to `.add`, ...
    static let assignmentOperators: [String: BinaryOperator?] = {
        var d: [String: BinaryOperator?] = [:]
        d["="] = .some(nil)
        for op in [BinaryOperator.add, .subtract, .multiply, .divide, .modulo, .bitwiseAnd, .bitwiseOr, .bitwiseXor, .shiftLeft, .shiftRight] {
            d[op.rawValue + "="] = .some(op)
        }
        return d
    }()

    // MARK: Expressions

    private mutating func make(_ kind: Expr.Kind, _ range: SourceRange) throws -> Expr {
        var depth = 0
        kind.forEachChild { depth = max(depth, depths[$0.id]) }
        depth += 1
        let id = nextID
        nextID += 1
        depths.append(depth)
        if depth > Parser.maxNesting {
            error("nesting is too deep (more than \(Parser.maxNesting) levels)", range)
            tooDeep = true
            throw Abandon()
        }
        return Expr(kind, range: range, id: id)
    }

    public mutating func expression() throws -> Expr {
        try enter(tok.range)
        defer { nesting -= 1 }
        let cond = try binary(0)
        guard isPunct("?") else { return cond }
        advance()
        let a = try expression()
        try expect(":")
        let b = try expression()
        return try make(.ternary(cond, a, b), cond.range.union(b.range))
    }

    private static let precedence: [String: (Int, BinaryOperator)] = {
        let levels: [[BinaryOperator]] = [
            [.logicalOr], [.logicalAnd], [.bitwiseOr], [.bitwiseXor], [.bitwiseAnd], [.equal, .notEqual],
            [.less, .lessEqual, .greater, .greaterEqual], [.shiftLeft, .shiftRight], [.add, .subtract],
            [.multiply, .divide, .modulo],
        ]
        var d: [String: (Int, BinaryOperator)] = [:]
        for (i, ops) in levels.enumerated() { for op in ops { d[op.rawValue] = (i, op) } }
        return d
    }()

    /// Precedence climbing: left-associative binary operators binding at least as tight as `minLevel`.
    private mutating func binary(_ minLevel: Int) throws -> Expr {
        var lhs = try unary()
        while case .punct(let p) = tok.kind, let (level, op) = Parser.precedence[p], level >= minLevel {
            if inPredicate, p == "/" {
                let next = peek()
                if next.isPunct("{") || next.kind == .eof { break }
            }
            advance()
            let rhs = try binary(level + 1)
            lhs = try make(.binary(op, lhs, rhs), lhs.range.union(rhs.range))
        }
        return lhs
    }

    private static let unaryOperators: [String: UnaryOperator] = {
        var d: [String: UnaryOperator] = [:]
        for op in UnaryOperator.allCases { d[op.rawValue] = op }
        return d
    }()

    private mutating func unary() throws -> Expr {
        let start = tok.range
        if case .punct(let p) = tok.kind {
            if let op = Parser.unaryOperators[p] {
                advance()
                try enter(start)
                defer { nesting -= 1 }
                let operand = try unary()
                return try make(.unary(op, operand), start.union(operand.range))
            }
            if p == "++" || p == "--" {
                advance()
                try enter(start)
                defer { nesting -= 1 }
                let operand = try unary()
                return try make(.increment(operand, isDecrement: p == "--", isPrefix: true), start.union(operand.range))
            }
            if p == "(", castAhead() {
                advance()
                let type = try typeName(allowTypedef: true)
                try expect(")")
                try enter(start)
                defer { nesting -= 1 }
                let operand = try unary()
                return try make(.cast(type, operand), start.union(operand.range))
            }
        }
        return try postfix()
    }

    private mutating func postfix() throws -> Expr {
        var e = try primary()
        while case .punct(let p) = tok.kind {
            switch p {
            case ".", "->":
                advance()
                if p == ".", case .integer(let v) = tok.kind {
                    guard v <= UInt64(Int32.max) else { throw unexpected(expecting: "a tuple index") }
                    advance()
                    e = try make(.tupleIndex(e, Int(v)), e.range.union(SourceRange(lastEnd, lastEnd)))
                    continue
                }
                guard let name = tok.identifier else { throw unexpected(expecting: "a field name") }
                advance()
                e = try make(.field(e, name: name, isArrow: p == "->"), SourceRange(e.range.start, lastEnd))
            case "[":
                advance()
                let i = try expression()
                try expect("]")
                e = try make(.index(e, i), SourceRange(e.range.start, lastEnd))
            case "++", "--":
                advance()
                e = try make(.increment(e, isDecrement: p == "--", isPrefix: false), SourceRange(e.range.start, lastEnd))
            default:
                return e
            }
        }
        return e
    }

    /// A macro whose body is an expression: parsed on its own (without itself, so a recursive
    /// definition stops), with ids from ours and every range on the macro's name.
    private mutating func expand(_ name: String, body: String, at range: SourceRange) throws -> Expr {
        var sub = Parser(SourceFile(name: name, text: body))
        sub.macros = macros
        sub.macros[name] = nil
        sub.nesting = nesting
        sub.macroNodes = macroNodes
        let parsed = sub.parseMacroBody()
        // Bounded, so macros doubling each other (`#define B (A+A)`, `#define C (B+B)`, ...) cannot explode.
        macroNodes = sub.macroNodes + sub.nextID
        if macroNodes > Parser.maxMacroNodes || sub.tooDeep {
            // The sub-parser's own limit message (nesting, or a nested expansion's size), at the name here.
            error(sub.tooDeep ? sub.diagnostics.last?.message ?? "" : "macro expansion is too large (more than \(Parser.maxMacroNodes) nodes)", range)
            tooDeep = true
            throw Abandon()
        }
        guard let e = parsed else {
            error("macro '\(name)' does not expand to an expression here", range)
            throw Abandon()
        }
        let expanded = e.relocated(to: range, nextID: &nextID)
        // Keep the depth table in step with the ids just handed out (the sub-parser already
        // held its tree to the limit; its deepest level stands for every node, conservatively).
        let depth = sub.depths.max() ?? 1
        while depths.count < nextID { depths.append(depth) }
        return expanded
    }

    /// The whole text as one expression, or nil (for macro bodies).
    mutating func parseMacroBody() -> Expr? {
        guard let e = try? expression(), tok.kind == .eof, diagnostics.isEmpty, lexer.diagnostics.isEmpty else { return nil }
        return e
    }

    private mutating func arguments(close: String) throws -> [Expr] {
        var args: [Expr] = []
        if accept(close) { return args }
        while true {
            args.append(try expression())
            if accept(close) { return args }
            guard accept(",") else { throw unexpected(expecting: "'\(close)' or ','") }
        }
    }

    private mutating func primary() throws -> Expr {
        let t = tok
        switch t.kind {
        case .integer(let v):
            advance(); return try make(.integer(v), t.range)
        case .string(let s):
            advance(); return try make(.string(s), t.range)
        case .variable(let v):
            advance(); return try make(.variable(v), t.range)
        case .positional(let n):
            advance(); return try make(.positional(n), t.range)
        case .positionalCount:
            advance(); return try make(.positionalCount, t.range)
        case .map(let name):
            advance()
            var keys: [Expr] = []
            if isPunct("[") {
                advance()
                if isPunct("]") {
                    error("a map key is missing between '[' and ']'", SourceRange(lastEnd - 1, tok.range.end))
                    throw Abandon()
                }
                keys = try arguments(close: "]")
            }
            return try make(.map(name: name, keys: keys), SourceRange(t.range.start, lastEnd))
        case .identifier(let w):
            switch w {
            case "true", "false":
                advance(); return try make(.boolean(w == "true"), t.range)
            case "sizeof":
                advance()
                try expect("(")
                if let n = tok.identifier, Parser.typeWords.contains(n) {
                    let type = try typeName(allowTypedef: false)
                    try expect(")")
                    return try make(.sizeofType(type), SourceRange(t.range.start, lastEnd))
                }
                let e = try expression()
                try expect(")")
                return try make(.sizeofExpr(e), SourceRange(t.range.start, lastEnd))
            case "offsetof":
                advance()
                try expect("(")
                let type = try typeName(allowTypedef: true)
                try expect(",")
                var path: [String] = []
                repeat {
                    guard let f = tok.identifier else { throw unexpected(expecting: "a field name") }
                    path.append(f)
                    advance()
                } while accept(".")
                try expect(")")
                return try make(.offsetof(type, path), SourceRange(t.range.start, lastEnd))
            case "if", "else", "while", "for", "unroll", "return", "break", "continue":
                throw unexpected(expecting: "an expression")
            default:
                advance()
                if isPunct("(") {
                    advance()
                    let args = try arguments(close: ")")
                    return try make(.call(name: w, args: args), SourceRange(t.range.start, lastEnd))
                }
                // A `#define`d constant stands for its value.
                if let macro = macros[w] {
                    switch macro.value {
                    case .integer(let v)?: return try make(.integer(v), t.range)
                    case .string(let v)?: return try make(.string(v), t.range)
                    default: break
                    }
                    if let body = macro.expression { return try expand(w, body: body, at: t.range) }
                }
                return try make(.builtin(w), t.range)
            }
        case .punct("("):
            advance()
            let first = try expression()
            if accept(")") { return first }
            guard isPunct(",") else { throw unexpected(expecting: "')' or ','") }
            var elements = [first]
            while accept(",") { elements.append(try expression()) }
            try expect(")")
            return try make(.tuple(elements), SourceRange(t.range.start, lastEnd))
        default:
            throw unexpected(expecting: nil)
        }
    }
}

extension Expr.Kind {
    /// Calls `body` with each direct subexpression, in source order.
    public func forEachChild(_ body: (Expr) throws -> Void) rethrows {
        switch self {
        case .integer, .boolean, .string, .builtin, .positional, .positionalCount, .variable, .sizeofType, .offsetof: break
        case .map(_, let keys): for k in keys { try body(k) }
        case .call(_, let args): for a in args { try body(a) }
        case .unary(_, let e), .increment(let e, _, _), .cast(_, let e), .field(let e, _, _), .tupleIndex(let e, _), .sizeofExpr(let e):
            try body(e)
        case .binary(_, let a, let b), .index(let a, let b): try body(a); try body(b)
        case .ternary(let a, let b, let c): try body(a); try body(b); try body(c)
        case .tuple(let es): for e in es { try body(e) }
        }
    }
}

extension Stmt.Kind {
    /// Calls `expression` with each expression written directly in this statement and `block`
    /// with each block it holds, in source order (not recursive: blocks are the caller's to walk).
    public func forEachChild(expression: (Expr) throws -> Void, block: (Block) throws -> Void) rethrows {
        switch self {
        case .expression(let e): try expression(e)
        case .assign(let t, _, let v): try expression(t); try expression(v)
        case .ifElse(let c, let t, let o): try expression(c); try block(t); if let o { try block(o) }
        case .unroll(let c, let b), .whileLoop(let c, let b): try expression(c); try block(b)
        case .forMap(_, _, let m, let b): try expression(m); try block(b)
        case .forRange(_, _, let s, let e, let b): try expression(s); try expression(e); try block(b)
        case .returnStatement(let e): if let e { try expression(e) }
        case .breakStatement, .continueStatement: break
        case .block(let b): try block(b)
        }
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}

/// Levenshtein distance, for "did you mean" notes on short names.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.utf8), y = Array(b.utf8)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count), cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[y.count]
}
