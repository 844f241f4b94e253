import PlumbLang
import Testing

@Suite("Lexer")
struct LexerTests {
    func kinds(_ text: String) -> [Token.Kind] {
        Lexer.tokens(SourceFile(name: "t.bt", text: text)).0.map(\.kind)
    }

    @Test func tokensWithRanges() {
        let (tokens, diags) = Lexer.tokens(SourceFile(name: "t.bt", text: "@x[pid] += $1; // c\n/* d */ $y->z"))
        #expect(diags.isEmpty)
        #expect(tokens.map(\.kind) == [
            .map("x"), .punct("["), .identifier("pid"), .punct("]"), .punct("+="), .positional(1), .punct(";"),
            .variable("y"), .punct("->"), .identifier("z"), .eof,
        ])
        #expect(tokens.map(\.range.description) == [
            "0..<2", "2..<3", "3..<6", "6..<7", "8..<10", "11..<13", "13..<14", "28..<30", "30..<32", "32..<33", "33..<33",
        ])
    }

    @Test func operatorsLongestFirst() {
        #expect(kinds("<<= >>= << >> <= >= < > .. . -> -- - ++ += == = != ! && & || |") == [
            "<<=", ">>=", "<<", ">>", "<=", ">=", "<", ">", "..", ".", "->", "--", "-", "++", "+=", "==", "=", "!=", "!",
            "&&", "&", "||", "|",
        ].map { .punct($0) } + [.eof])
        #expect(kinds("0..10") == [.integer(0), .punct(".."), .integer(10), .eof])
        #expect(kinds("$t.1") == [.variable("t"), .punct("."), .integer(1), .eof])
    }

    @Test func integers() {
        #expect(kinds("0 123 1_000 0x1F 0XfF 010 1e6 2e0 18446744073709551615") == [
            .integer(0), .integer(123), .integer(1000), .integer(31), .integer(255), .integer(8), .integer(1_000_000),
            .integer(2), .integer(UInt64.max), .eof,
        ])
    }

    @Test func badIntegers() {
        let (tokens, diags) = Lexer.tokens(SourceFile(name: "t.bt", text: "0x 1_ 08 12ab 18446744073709551616 1e30"))
        #expect(tokens.count == 7)
        #expect(diags.map(\.message) == [
            "invalid integer literal '0x'", "invalid integer literal '1_'", "invalid integer literal '08'",
            "invalid integer literal '12ab'", "integer literal '18446744073709551616' does not fit in 64 bits",
            "integer literal '1e30' does not fit in 64 bits",
        ])
    }

    @Test func stringsAndChars() {
        #expect(kinds(#""a\n\t\r\\\"\x41\101\0z" 'a' '\n' '\'' '\x7f'"#) == [
            .string("a\n\t\r\\\"AA\0z"), .integer(97), .integer(10), .integer(39), .integer(127), .eof,
        ])
    }

    @Test func escapesMustFormUTF8() {
        #expect(kinds(#""\xc3\xa9 \303\251""#) == [.string("\u{e9} \u{e9}"), .eof])
        let (_, diags) = Lexer.tokens(SourceFile(name: "t.bt", text: #"x "\xff""#))
        #expect(diags.map(\.message) == ["escapes make this string invalid UTF-8; escapes above \\x7f must form UTF-8 sequences"])
        #expect(diags.map(\.range) == [SourceRange(2, 8)])
    }

    @Test func lexicalErrors() {
        let file = SourceFile(name: "t.bt", text: "\"ab\\q\" 'xy' '' ` \u{e9} $ \"open\n/* never closed")
        let (_, diags) = Lexer.tokens(file)
        #expect(diags.map(\.message) == [
            "invalid escape character '\\q'", "a character literal holds exactly one byte", "a character literal holds exactly one byte",
            "invalid character '`'", "invalid character '\u{e9}'", "expected a variable name after '$'", "unterminated string",
            "unterminated comment",
        ])
        #expect(diags.map(\.range.description) == ["3..<5", "7..<11", "12..<14", "15..<16", "17..<19", "20..<21", "22..<27", "28..<30"])
    }

    @Test func directiveIsOneLogicalLine() {
        #expect(kinds("#define X \\\n  1\nBEGIN") == [.directive("#define X \\\n  1"), .identifier("BEGIN"), .eof])
    }

    @Test func attachPointText() {
        var lexer = Lexer(SourceFile(name: "t.bt", text: #"  uprobe:"/a b:c":f+16,t:x:y_*/1/ BEGIN/pid/ k:f//c"#))
        let a = lexer.attachPoint(at: 0)
        #expect(a?.text == #"uprobe:"/a b:c":f+16"#)
        #expect(a?.parts == ["uprobe", "/a b:c", "f+16"])
        #expect(a?.range == SourceRange(2, 22))
        // A `/` after a `:` belongs to the attach point (paths), as in bpftrace.
        let b = lexer.attachPoint(at: 23)
        #expect(b?.parts == ["t", "x", "y_*/1/"])
        // Before any `:`, `/` starts the predicate.
        let c = lexer.attachPoint(at: 34)
        #expect(c?.text == "BEGIN")
        let d = lexer.attachPoint(at: 45)
        #expect(d?.text == "k:f")
        #expect(lexer.attachPoint(at: 48) == nil)
    }
}
