// The tracing language's lexer. It is a cursor over the script's bytes that the parser
// drives: most of the script lexes as C-like tokens, but attach points (`uprobe:/bin/bash:readline`,
// `t:syscalls:sys_enter_*`) are raw text up to whitespace, `{` or `,`, so the parser asks for
// them explicitly (`attachPoint(at:)`) where the grammar expects one. Lexing is restartable
// at any offset, which makes the parser's lookahead and backtracking a matter of saving an Int.

public struct Token: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A word: keyword, builtin, function or type name (the parser tells them apart).
        case identifier(String)
        /// Integer or char literal, value already computed (0 after a lexing error).
        case integer(UInt64)
        /// String literal with escapes decoded.
        case string(String)
        /// `$name` without the `$`.
        case variable(String)
        /// `$1`...
        case positional(Int)
        /// `$#`
        case positionalCount
        /// `@name` without the `@` ("" for `@`).
        case map(String)
        /// An operator or punctuation, spelled as written: `+=`, `->`, `..`, `{`.
        case punct(String)
        /// A `#...` preprocessor line (the whole logical line).
        case directive(String)
        /// Characters that form no token (already diagnosed).
        case invalid(String)
        case eof
    }
    public var kind: Kind
    public var range: SourceRange
    public init(_ kind: Kind, _ range: SourceRange) { self.kind = kind; self.range = range }

    public var description: String {
        switch kind {
        case .identifier(let s): return "identifier '\(s)'"
        case .integer(let v): return "integer \(v)"
        case .string(let s): return "string \"\(s.count > 20 ? String(s.prefix(20)) + "..." : s)\""
        case .variable(let s): return "variable '$\(s)'"
        case .positional(let n): return "positional parameter '$\(n)'"
        case .positionalCount: return "'$#'"
        case .map(let s): return "map '@\(s)'"
        case .punct(let s): return "'\(s)'"
        case .directive: return "preprocessor directive"
        case .invalid(let s): return "'\(s)'"
        case .eof: return "end of file"
        }
    }

    func isPunct(_ p: String) -> Bool { if case .punct(let q) = kind { return q == p }; return false }
    var identifier: String? { if case .identifier(let s) = kind { return s }; return nil }
}

public struct Lexer: Sendable {
    public let bytes: [UInt8]
    /// Problems found while lexing (unterminated strings, invalid characters, bad literals).
    /// The parser may lex one offset more than once; a diagnostic is recorded only once.
    public private(set) var diagnostics: [Diagnostic] = []
    private struct Reported: Hashable { var start: Int; var message: String }
    private var reported: Set<Reported> = []

    public init(_ file: SourceFile) { bytes = file.bytes }
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Every token of `file` in order, ending with `.eof` (C-like mode throughout; handy for tests).
    public static func tokens(_ file: SourceFile) -> ([Token], [Diagnostic]) {
        var lexer = Lexer(file)
        var out: [Token] = []
        var pos = 0
        while true {
            let t = lexer.token(at: pos)
            out.append(t)
            if t.kind == .eof { break }
            pos = t.range.end
        }
        return (out, lexer.diagnostics)
    }

    mutating func report(_ message: String, _ range: SourceRange) {
        if reported.insert(Reported(start: range.start, message: message)).inserted { diagnostics.append(.error(message, at: range)) }
    }

    private func byte(_ i: Int) -> UInt8 { i < bytes.count ? bytes[i] : 0 }

    static func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 || c == 10 || c == 13 || c == 11 || c == 12 }
    static func isIdentStart(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 }
    static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    static func isIdentChar(_ c: UInt8) -> Bool { isIdentStart(c) || isDigit(c) }

    /// The offset of the first byte at or after `pos` that is not whitespace or a comment.
    public mutating func skipTrivia(from start: Int) -> Int {
        var i = start
        while i < bytes.count {
            let c = bytes[i]
            if Lexer.isSpace(c) { i += 1; continue }
            if c == UInt8(ascii: "/"), byte(i + 1) == UInt8(ascii: "/") {
                while i < bytes.count, bytes[i] != 10 { i += 1 }
                continue
            }
            if c == UInt8(ascii: "/"), byte(i + 1) == UInt8(ascii: "*") {
                var j = i + 2
                var closed = false
                while j + 1 < bytes.count {
                    if bytes[j] == UInt8(ascii: "*"), bytes[j + 1] == UInt8(ascii: "/") { closed = true; break }
                    j += 1
                }
                if !closed {
                    report("unterminated comment", SourceRange(i, i + 2))
                    return bytes.count
                }
                i = j + 2
                continue
            }
            break
        }
        return i
    }

    private static let punctuators: [[UInt8]] = [
        "<<=", ">>=",
        "->", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "==", "!=", "<=", ">=", "&&", "||", "<<", ">>", "..",
        "+", "-", "*", "/", "%", "&", "|", "^", "!", "~", "<", ">", "=", "?", ":", ";", ",", ".", "(", ")", "[", "]", "{", "}",
    ].map { Array($0.utf8) }

    /// The C-like token starting at the first non-trivia byte at or after `pos`.
    public mutating func token(at pos: Int) -> Token {
        let start = skipTrivia(from: pos)
        guard start < bytes.count else { return Token(.eof, SourceRange(bytes.count, bytes.count)) }
        let c = bytes[start]
        if Lexer.isIdentStart(c) {
            var i = start + 1
            while i < bytes.count, Lexer.isIdentChar(bytes[i]) { i += 1 }
            return Token(.identifier(text(start, i)), SourceRange(start, i))
        }
        if Lexer.isDigit(c) { return number(start) }
        switch c {
        case UInt8(ascii: "\""): return string(start)
        case UInt8(ascii: "'"): return char(start)
        case UInt8(ascii: "$"):
            let n = byte(start + 1)
            if n == UInt8(ascii: "#") { return Token(.positionalCount, SourceRange(start, start + 2)) }
            if Lexer.isDigit(n) {
                var i = start + 1, v = 0
                while i < bytes.count, Lexer.isDigit(bytes[i]) {
                    // Saturate: an absurd position is diagnosed by whoever binds it.
                    v = min(v &* 10 &+ Int(bytes[i] - 48), 1 << 30)
                    i += 1
                }
                return Token(.positional(v), SourceRange(start, i))
            }
            if Lexer.isIdentStart(n) {
                var i = start + 2
                while i < bytes.count, Lexer.isIdentChar(bytes[i]) { i += 1 }
                return Token(.variable(text(start + 1, i)), SourceRange(start, i))
            }
            report("expected a variable name after '$'", SourceRange(start, start + 1))
            return Token(.invalid("$"), SourceRange(start, start + 1))
        case UInt8(ascii: "@"):
            var i = start + 1
            while i < bytes.count, Lexer.isIdentChar(bytes[i]) { i += 1 }
            return Token(.map(text(start + 1, i)), SourceRange(start, i))
        case UInt8(ascii: "#") where atLineStart(start):
            // A preprocessor line, with backslash-newline continuations.
            var i = start
            while i < bytes.count, bytes[i] != 10 {
                if bytes[i] == UInt8(ascii: "\\"), byte(i + 1) == 10 { i += 2; continue }
                i += 1
            }
            var end = i
            while end > start, Lexer.isSpace(bytes[end - 1]) { end -= 1 }
            return Token(.directive(text(start, end)), SourceRange(start, end))
        default: break
        }
        for p in Lexer.punctuators where p[0] == c {
            if p.count == 1 || (p.count == 2 && byte(start + 1) == p[1])
                || (p.count == 3 && byte(start + 1) == p[1] && byte(start + 2) == p[2]) {
                return Token(.punct(String(decoding: p, as: UTF8.self)), SourceRange(start, start + p.count))
            }
        }
        // One whole UTF-8 scalar, so the message shows the character the user typed.
        var end = start + 1
        if c >= 0xC0 { while end < bytes.count, end - start < 4, bytes[end] & 0xC0 == 0x80 { end += 1 } }
        let s = text(start, end)
        report("invalid character '\(s)'", SourceRange(start, end))
        return Token(.invalid(s), SourceRange(start, end))
    }

    /// Only blanks before `offset` on its line (where a preprocessor directive may begin).
    private func atLineStart(_ offset: Int) -> Bool {
        var i = offset - 1
        while i >= 0, bytes[i] == 32 || bytes[i] == 9 { i -= 1 }
        return i < 0 || bytes[i] == 10
    }

    private func text(_ s: Int, _ e: Int) -> String { String(decoding: bytes[s..<e], as: UTF8.self) }

    /// `123`, `1_000`, `0x1f`, `010` (octal), `1e6`: bpftrace's integer forms.
    private mutating func number(_ start: Int) -> Token {
        var i = start
        while i < bytes.count, Lexer.isIdentChar(bytes[i]) { i += 1 }
        let range = SourceRange(start, i)
        let spelled = Array(bytes[start..<i])
        if let v = Lexer.integerValue(spelled) { return Token(.integer(v), range) }
        let s = text(start, i)
        if Lexer.integerValue(spelled, ignoringOverflow: true) != nil {
            report("integer literal '\(s)' does not fit in 64 bits", range)
        } else {
            report("invalid integer literal '\(s)'", range)
        }
        return Token(.integer(0), range)
    }

    static func integerValue(_ s: [UInt8], ignoringOverflow: Bool = false) -> UInt64? {
        guard let first = s.first, isDigit(first), s.last != UInt8(ascii: "_") else { return nil }
        var digits = s[...]
        var radix: UInt64 = 10
        var exponent: [UInt8] = []
        if s.count > 2, first == 48, s[1] | 0x20 == UInt8(ascii: "x") {
            radix = 16; digits = s[2...]
        } else if s.count > 1, first == 48 {
            radix = 8; digits = s[1...]
        } else if let e = s.firstIndex(where: { $0 | 0x20 == UInt8(ascii: "e") }) {
            digits = s[..<e]; exponent = Array(s[(e + 1)...])
            guard !exponent.isEmpty, exponent.allSatisfy(isDigit) else { return nil }
        }
        var value: UInt64 = 0, overflow = false
        for d in digits {
            if d == UInt8(ascii: "_") { continue }
            let v: UInt64
            switch d {
            case 48...57: v = UInt64(d - 48)
            case 97...102: v = UInt64(d - 87)
            case 65...70: v = UInt64(d - 55)
            default: return nil
            }
            guard v < radix else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: radix)
            let (a, o2) = m.addingReportingOverflow(v)
            overflow = overflow || o1 || o2
            value = a
        }
        for _ in 0..<(exponent.isEmpty ? 0 : min(Int(String(decoding: exponent, as: UTF8.self)) ?? 100, 100)) {
            let (m, o) = value.multipliedReportingOverflow(by: 10)
            overflow = overflow || (o && value != 0)
            value = m
        }
        return overflow && !ignoringOverflow ? nil : value
    }

    /// Decodes one escape after a backslash at `i`; returns the bytes and the offset after it.
    private mutating func escape(_ i: Int) -> ([UInt8], Int) {
        let c = byte(i + 1)
        switch c {
        case UInt8(ascii: "n"): return ([10], i + 2)
        case UInt8(ascii: "t"): return ([9], i + 2)
        case UInt8(ascii: "r"): return ([13], i + 2)
        case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"): return ([c], i + 2)
        case UInt8(ascii: "x"):
            var j = i + 2, v: UInt8 = 0
            while j < i + 4, j < bytes.count, let h = Lexer.hexValue(bytes[j]) { v = v &* 16 &+ h; j += 1 }
            if j == i + 2 {
                report("invalid escape character '\\x': expected hex digits", SourceRange(i, i + 2))
                return ([], i + 2)
            }
            return ([v], j)
        case 48...55:
            var j = i + 1, v = 0
            while j < i + 4, j < bytes.count, bytes[j] >= 48, bytes[j] <= 55 { v = v * 8 + Int(bytes[j] - 48); j += 1 }
            if v > 255 { report("octal escape out of range", SourceRange(i, j)); v = 255 }
            return ([UInt8(v)], j)
        default:
            var end = i + 2
            if c >= 0xC0 { while end < bytes.count, end - i < 5, bytes[end] & 0xC0 == 0x80 { end += 1 } }
            let shown = c == 10 || c == 0 ? "\\" : "\\" + text(i + 1, min(end, bytes.count))
            report("invalid escape character '\(shown)'", SourceRange(i, min(end, bytes.count)))
            return ([], min(end, bytes.count))
        }
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }

    private mutating func string(_ start: Int) -> Token {
        var out: [UInt8] = []
        var i = start + 1
        while true {
            guard i < bytes.count, bytes[i] != 10 else {
                report("unterminated string", SourceRange(start, i))
                return Token(.string(String(decoding: out, as: UTF8.self)), SourceRange(start, i))
            }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") {
                let (b, next) = escape(i)
                out += b; i = next
                continue
            }
            out.append(c); i += 1
        }
        let range = SourceRange(start, i + 1)
        guard let text = String(validating: out, as: UTF8.self) else {
            // The tree holds text; a byte such as \xff would silently become U+FFFD.
            report("escapes make this string invalid UTF-8; escapes above \\x7f must form UTF-8 sequences", range)
            return Token(.string(String(decoding: out, as: UTF8.self)), range)
        }
        return Token(.string(text), range)
    }

    /// `'a'`, `'\n'`: the character's code as an integer.
    private mutating func char(_ start: Int) -> Token {
        var i = start + 1
        var value: [UInt8] = []
        while true {
            guard i < bytes.count, bytes[i] != 10 else {
                report("unterminated character literal", SourceRange(start, i))
                return Token(.integer(0), SourceRange(start, i))
            }
            if bytes[i] == UInt8(ascii: "'") { break }
            if bytes[i] == UInt8(ascii: "\\") {
                let (b, next) = escape(i)
                value += b; i = next
            } else {
                value.append(bytes[i]); i += 1
            }
        }
        let range = SourceRange(start, i + 1)
        guard value.count == 1 else {
            if value.isEmpty, bytes[start + 1] == UInt8(ascii: "\\") { return Token(.integer(0), range) }  // bad escape, reported
            report("a character literal holds exactly one byte", range)
            return Token(.integer(0), range)
        }
        return Token(.integer(UInt64(value[0])), range)
    }

    /// Raw attach point text at the first non-trivia byte at or after `pos`: it runs to whitespace,
    /// `{`, `,` (outside double quotes), or `/` when no `:` has been seen yet (`BEGIN/pid == 1/`).
    /// `nil` at end of input or when the first byte cannot start one. `parts` holds the
    /// `:`-separated fields with quotes removed.
    public mutating func attachPoint(at pos: Int) -> (text: String, parts: [String], range: SourceRange)? {
        let start = skipTrivia(from: pos)
        guard start < bytes.count else { return nil }
        var i = start
        var parts: [String] = []
        var current: [UInt8] = []
        var sawColon = false
        var inQuote = false
        var quoteStart = 0
        while i < bytes.count {
            let c = bytes[i]
            if inQuote {
                if c == UInt8(ascii: "\"") { inQuote = false } else if c == 10 { break } else { current.append(c) }
                i += 1
                continue
            }
            if Lexer.isSpace(c) || c == UInt8(ascii: "{") || c == UInt8(ascii: ",") || c == UInt8(ascii: "}") || c == UInt8(ascii: ";") { break }
            if c == UInt8(ascii: "/"), !sawColon || byte(i + 1) == UInt8(ascii: "/") || byte(i + 1) == UInt8(ascii: "*") { break }
            if c == UInt8(ascii: "\"") { inQuote = true; quoteStart = i; i += 1; continue }
            if c == UInt8(ascii: ":") {
                sawColon = true
                parts.append(String(decoding: current, as: UTF8.self)); current = []
                i += 1
                continue
            }
            current.append(c); i += 1
        }
        if inQuote { report("unterminated string", SourceRange(quoteStart, i)) }
        guard i > start else { return nil }
        parts.append(String(decoding: current, as: UTF8.self))
        return (text(start, i), parts, SourceRange(start, i))
    }
}
