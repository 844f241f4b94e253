// Symbol demangling for stack frames, probe listings and uprobes by source name.
// Input is untrusted (any ELF file's symbol table): every path returns nil on malformed
// input, and input length, recursion depth and output length are bounded, because
// substitutions can reference one another and expand exponentially.

/// Demangles C++ (Itanium ABI, `_Z...`) and Swift (`$s...`, `_$s...`) symbol names.
public enum Demangler {
    /// Longest symbol accepted (longer ones are left mangled).
    public static let maxInputLength = 16_384
    /// Longest demangled text produced.
    public static let maxOutputLength = 65_536

    /// The demangled form of `symbol`, or nil when it is not a mangled name this demangler reads.
    public static func demangle(_ symbol: String) -> String? {
        if symbol.hasPrefix("_Z") { return demangleItanium(symbol) }
        if symbol.hasPrefix("$s") || symbol.hasPrefix("_$s") || symbol.hasPrefix("$S") || symbol.hasPrefix("_$S") {
            return demangleSwift(symbol)
        }
        return nil
    }

    /// `demangle(symbol)` or the symbol itself.
    public static func displayName(_ symbol: String) -> String {
        // Versioned dynamic names (`_ZNSs4sizeEv@@GLIBCXX_3.4`) demangle without the version.
        if let at = symbol.firstIndex(of: "@"), symbol.hasPrefix("_Z") {
            if let d = demangle(String(symbol[..<at])) { return d + symbol[at...] }
            return symbol
        }
        return demangle(symbol) ?? symbol
    }

    /// Itanium C++ ABI names (what g++ and clang emit on Linux), printed as c++filt prints them.
    public static func demangleItanium(_ symbol: String) -> String? {
        let bytes = Array(symbol.utf8)
        guard bytes.count <= maxInputLength, bytes.count > 2 else { return nil }
        var p = ItaniumParser(bytes)
        return p.run()
    }
}

// MARK: - Itanium

/// The demangled structure; rendered once parsing has succeeded.
indirect enum CxxNode {
    case name(String)
    case nested(CxxNode, CxxNode)
    case template(CxxNode, [CxxNode])
    case qualified(CxxNode, String)
    case pointer(CxxNode)
    case lref(CxxNode)
    case rref(CxxNode)
    case function(ret: CxxNode?, params: [CxxNode], quals: String)
    case array(CxxNode, String)
    case memberPointer(CxxNode, CxxNode)
    case ctorDtor(CxxNode, dtor: Bool)
    case special(String, CxxNode)
    case encoding(name: CxxNode, ret: CxxNode?, params: [CxxNode], quals: String)
    case local(CxxNode, CxxNode)
    case pack([CxxNode])
    case abiTag(CxxNode, String)
    case vendor(CxxNode, String)
    case expansion(CxxNode)
    case text(String)

    var isFunction: Bool { if case .function = self { return true }; return false }
    var isArray: Bool { if case .array = self { return true }; return false }
}

struct ItaniumParser {
    let s: [UInt8]
    var i = 0
    var depth = 0
    var subs: [CxxNode] = []
    var templateParams: [CxxNode] = []
    var failed = false
    static let maxDepth = 256

    init(_ s: [UInt8]) { self.s = s }

    var look: UInt8 { i < s.count ? s[i] : 0 }
    func peek(_ k: Int) -> UInt8 { i + k < s.count ? s[i + k] : 0 }
    mutating func eat(_ c: Character) -> Bool {
        guard let a = c.asciiValue, look == a else { return false }
        i += 1
        return true
    }
    mutating func eat(_ str: String) -> Bool {
        let u = Array(str.utf8)
        guard i + u.count <= s.count, Array(s[i..<(i + u.count)]) == u else { return false }
        i += u.count
        return true
    }

    mutating func run() -> String? {
        guard eat("_Z") else { return nil }
        guard let enc = encoding() else { return nil }
        var out = ""
        var r = Renderer()
        out = r.render(enc)
        guard !r.failed else { return nil }
        // Clone suffixes (.constprop.0, .isra.0, .cold): printed as c++filt prints them.
        while i < s.count && look == UInt8(ascii: ".") {
            var j = i + 1
            while j < s.count && s[j] != UInt8(ascii: ".") { j += 1 }
            // A suffix is a dot, a lowercase/underscore word, then optional .number parts.
            var k = j
            while k + 1 < s.count && s[k] == UInt8(ascii: ".") && isDigit(s[k + 1]) {
                k += 1
                while k < s.count && isDigit(s[k]) { k += 1 }
            }
            out += " [clone " + String(decoding: s[i..<k], as: UTF8.self) + "]"
            i = k
        }
        guard i == s.count, out.utf8.count <= Demangler.maxOutputLength else { return nil }
        return out
    }

    func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    mutating func enter() -> Bool {
        depth += 1
        return depth <= ItaniumParser.maxDepth
    }

    // <encoding> ::= <name> <bare-function-type> | <name> | <special-name>
    mutating func encoding() -> CxxNode? {
        guard enter() else { return nil }
        defer { depth -= 1 }
        if look == UInt8(ascii: "T") || (look == UInt8(ascii: "G") && peek(1) != 0) {
            if let sp = specialName() { return sp }
            return nil
        }
        let savedParams = templateParams
        guard let (name, quals, hasTemplateArgs) = topName() else { return nil }
        // A data name ends here (or at E of a local name, or a clone suffix).
        if i >= s.count || look == UInt8(ascii: "E") || look == UInt8(ascii: ".") {
            return name
        }
        var ret: CxxNode? = nil
        if hasTemplateArgs && !isCtorDtorConversion(name) {
            guard let r = type() else { return nil }
            ret = r
        }
        var params: [CxxNode] = []
        while i < s.count && look != UInt8(ascii: "E") && look != UInt8(ascii: ".") {
            guard let t = type() else { return nil }
            params.append(t)
        }
        guard !params.isEmpty else { return nil }
        if params.count == 1, case .name("void") = params[0] { params = [] }
        _ = savedParams
        return .encoding(name: name, ret: ret, params: params, quals: quals)
    }

    func isCtorDtorConversion(_ n: CxxNode) -> Bool {
        switch n {
        case .ctorDtor: return true
        case .nested(_, let b): return isCtorDtorConversion(b)
        case .template(let b, _): return isCtorDtorConversion(b)
        case .abiTag(let b, _): return isCtorDtorConversion(b)
        case .text(let t): return t.hasPrefix("operator ") && !t.hasPrefix("operator new") && !t.hasPrefix("operator delete") && t != "operator co_await"
        case .local(_, let b): return isCtorDtorConversion(b)
        default: return false
        }
    }

    mutating func specialName() -> CxxNode? {
        if eat("TV") { return type().map { .special("vtable for ", $0) } }
        if eat("TT") { return type().map { .special("VTT for ", $0) } }
        if eat("TI") { return type().map { .special("typeinfo for ", $0) } }
        if eat("TS") { return type().map { .special("typeinfo name for ", $0) } }
        if eat("TH") { return name().map { .special("TLS init function for ", $0) } }
        if eat("TW") { return name().map { .special("TLS wrapper function for ", $0) } }
        if eat("Th") {
            guard callOffset(virtual: false) else { return nil }
            return encoding().map { .special("non-virtual thunk to ", $0) }
        }
        if eat("Tv") {
            guard callOffset(virtual: true) else { return nil }
            return encoding().map { .special("virtual thunk to ", $0) }
        }
        if eat("Tc") {
            guard callOffsetAny(), callOffsetAny() else { return nil }
            return encoding().map { .special("covariant return thunk to ", $0) }
        }
        if eat("TC") {
            guard let t1 = type() else { return nil }
            guard number() != nil, eat("_"), let t2 = type() else { return nil }
            var r = Renderer()
            let a = r.render(t1), b = r.render(t2)
            guard !r.failed else { return nil }
            return .text("construction vtable for \(b)-in-\(a)")
        }
        if eat("GV") { return name().map { .special("guard variable for ", $0) } }
        if eat("GR") {
            guard let n = name() else { return nil }
            var idx = 0
            if look != UInt8(ascii: "_") { guard let v = seqID() else { return nil }; idx = v + 1 }
            guard eat("_") else { return nil }
            var r = Renderer()
            let t = r.render(n)
            guard !r.failed else { return nil }
            return .text("reference temporary #\(idx) for \(t)")
        }
        if eat("GTt") { return encoding().map { .special("transaction clone for ", $0) } }
        if eat("GTn") { return encoding().map { .special("non-transaction clone for ", $0) } }
        return nil
    }

    mutating func callOffsetAny() -> Bool {
        if eat("h") { return callOffset(virtual: false, prefixed: true) }
        if eat("v") { return callOffset(virtual: true, prefixed: true) }
        return false
    }

    mutating func callOffset(virtual: Bool, prefixed: Bool = false) -> Bool {
        guard number() != nil, eat("_") else { return false }
        if virtual { guard number() != nil, eat("_") else { return false } }
        return true
    }

    /// A (possibly negative, n-prefixed) decimal number.
    mutating func number() -> Int? {
        let neg = eat("n")
        var v = 0, any = false
        while isDigit(look) {
            guard v < 100_000_000 else { return nil }
            v = v * 10 + Int(look - 48); i += 1; any = true
        }
        guard any else { return nil }
        return neg ? -v : v
    }

    mutating func seqID() -> Int? {
        var v = 0, any = false
        while true {
            let c = look
            let d: Int
            if isDigit(c) { d = Int(c - 48) } else if c >= 65 && c <= 90 { d = Int(c - 55) } else { break }
            guard v < 10_000_000 else { return nil }
            v = v * 36 + d; i += 1; any = true
        }
        return any ? v : nil
    }

    /// The name of an encoding, with its member-function qualifiers, and whether it ends in template args.
    mutating func topName() -> (CxxNode, String, Bool)? {
        if look == UInt8(ascii: "N") {
            guard let (n, q, t) = nestedName(tagTemplates: true) else { return nil }
            return (n, q, t)
        }
        if look == UInt8(ascii: "Z") {
            var quals = ""
            guard let n = localName(quals: &quals) else { return nil }
            var t = false
            if case .local(_, let e) = n { t = endsInTemplate(e) }
            return (n, quals, t)
        }
        guard let n = unscopedOrTemplate(tagTemplates: true) else { return nil }
        return (n, "", endsInTemplate(n))
    }

    func endsInTemplate(_ n: CxxNode) -> Bool {
        switch n {
        case .template: return true
        case .nested(_, let b): return endsInTemplate(b)
        default: return false
        }
    }

    // <name> as used inside types and special names.
    mutating func name() -> CxxNode? {
        guard enter() else { return nil }
        defer { depth -= 1 }
        if look == UInt8(ascii: "N") { return nestedName(tagTemplates: false).map { $0.0 } }
        if look == UInt8(ascii: "Z") { return localName() }
        return unscopedOrTemplate(tagTemplates: false)
    }

    mutating func unscopedOrTemplate(tagTemplates: Bool) -> CxxNode? {
        var n: CxxNode
        if look == UInt8(ascii: "S") && peek(1) != UInt8(ascii: "t") {
            // <substitution> <template-args>
            guard let sub = substitution() else { return nil }
            guard look == UInt8(ascii: "I") else { return nil }
            n = sub
        } else {
            _ = eat("L")
            let std = eat("St")
            guard let u = unqualifiedName(nil) else { return nil }
            n = std ? .nested(.name("std"), u) : u
            if look == UInt8(ascii: "I") { subs.append(n) }
        }
        if look == UInt8(ascii: "I") {
            guard let args = templateArgs(tag: tagTemplates) else { return nil }
            n = .template(n, args)
        }
        return n
    }

    // N [<CV-qualifiers>] [<ref-qualifier>] <prefix> <unqualified-name> E
    mutating func nestedName(tagTemplates: Bool) -> (CxxNode, String, Bool)? {
        guard eat("N") else { return nil }
        var quals = cvQualifiers()
        if eat("R") { quals += " &" } else if eat("O") { quals += " &&" }
        var soFar: CxxNode? = nil
        var lastWasTemplate = false
        while !eat("E") {
            guard i < s.count, enter() else { return nil }
            defer { depth -= 1 }
            _ = eat("L")
            lastWasTemplate = false
            if look == UInt8(ascii: "T") {
                guard let t = templateParam() else { return nil }
                soFar = soFar.map { .nested($0, t) } ?? t
            } else if look == UInt8(ascii: "I") {
                guard let base = soFar, let args = templateArgs(tag: tagTemplates) else { return nil }
                soFar = .template(base, args)
                lastWasTemplate = true
            } else if look == UInt8(ascii: "D") && (peek(1) == UInt8(ascii: "t") || peek(1) == UInt8(ascii: "T")) {
                guard soFar == nil, let t = type() else { return nil }
                soFar = t
                _ = subs.popLast()
            } else if look == UInt8(ascii: "S") && peek(1) != UInt8(ascii: "t") {
                guard soFar == nil, let sub = substitution() else { return nil }
                soFar = sub
                continue
            } else {
                if eat("St") { soFar = .name("std") }
                guard let u = unqualifiedName(soFar) else { return nil }
                soFar = soFar.map { .nested($0, u) } ?? u
            }
            if let n = soFar { subs.append(n) }
        }
        guard let n = soFar, !subs.isEmpty else { return nil }
        subs.removeLast()
        return (n, quals, lastWasTemplate)
    }

    mutating func cvQualifiers() -> String {
        var q = ""
        if eat("r") { q += " restrict" }
        if eat("V") { q += " volatile" }
        if eat("K") { q += " const" }
        return q
    }

    // Z <function encoding> E <entity name> [<discriminator>] | Z <encoding> E s [<discriminator>]
    mutating func localName() -> CxxNode? {
        var quals = ""
        return localName(quals: &quals)
    }

    mutating func localName(quals: inout String) -> CxxNode? {
        guard eat("Z"), let enc = encoding(), eat("E") else { return nil }
        if eat("s") {
            guard discriminator() else { return nil }
            return .local(enc, .name("string literal"))
        }
        if eat("d") {
            _ = number()
            guard eat("_"), let n = name() else { return nil }
            return .local(enc, n)
        }
        let n: CxxNode
        if look == UInt8(ascii: "N") {
            guard let (nn, q, _) = nestedName(tagTemplates: true) else { return nil }
            n = nn
            quals = q
        } else {
            guard let nn = name() else { return nil }
            n = nn
        }
        guard discriminator() else { return nil }
        return .local(enc, n)
    }

    mutating func discriminator() -> Bool {
        guard eat("_") else { return true }
        if eat("_") { return number() != nil && eat("_") }
        guard isDigit(look) else { return false }
        i += 1
        return true
    }

    mutating func sourceName() -> String? {
        guard let n = number(), n > 0, i + n <= s.count else { return nil }
        let text = String(decoding: s[i..<(i + n)], as: UTF8.self)
        i += n
        if text.hasPrefix("_GLOBAL_") && text.count > 9 {
            let c = text.utf8[text.utf8.index(text.utf8.startIndex, offsetBy: 8)]
            if (c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "$")) && text.utf8.dropFirst(9).first == UInt8(ascii: "N") {
                return "(anonymous namespace)"
            }
        }
        return text
    }

    mutating func unqualifiedName(_ scope: CxxNode?) -> CxxNode? {
        guard enter() else { return nil }
        defer { depth -= 1 }
        var n: CxxNode
        let c = look
        if isDigit(c) {
            guard let t = sourceName() else { return nil }
            n = .name(t)
        } else if c == UInt8(ascii: "C") || (c == UInt8(ascii: "D") && (isDigit(peek(1)))) {
            guard let scope else { return nil }
            let dtor = c == UInt8(ascii: "D")
            i += 1
            if !dtor && eat("I") {
                // Inheriting constructor: the base class type follows.
                guard isDigit(look) else { return nil }
                i += 1
                guard let base = type() else { return nil }
                n = .ctorDtor(base, dtor: false)
                while look == UInt8(ascii: "B") {
                    i += 1
                    guard let tag = sourceName() else { return nil }
                    n = .abiTag(n, tag)
                }
                return n
            } else {
                guard isDigit(look) else { return nil }
                i += 1
            }
            n = .ctorDtor(scope, dtor: dtor)
        } else if c == UInt8(ascii: "U") {
            if eat("Ut") {
                let num = number()
                guard eat("_") else { return nil }
                n = .name("{unnamed type#\((num ?? -1) + 2)}")
            } else if eat("Ul") {
                var params: [CxxNode] = []
                while look != UInt8(ascii: "E") {
                    guard i < s.count, let t = type() else { return nil }
                    params.append(t)
                }
                i += 1
                let num = number()
                guard eat("_") else { return nil }
                if params.count == 1, case .name("void") = params[0] { params = [] }
                var r = Renderer()
                let list = params.map { r.render($0) }.joined(separator: ", ")
                guard !r.failed else { return nil }
                n = .name("{lambda(\(list))#\((num ?? -1) + 2)}")
            } else { return nil }
        } else if c == UInt8(ascii: "D") && peek(1) == UInt8(ascii: "C") {
            i += 2
            var names: [String] = []
            while !eat("E") {
                guard i < s.count, let t = sourceName() else { return nil }
                names.append(t)
            }
            n = .name("[" + names.joined(separator: ", ") + "]")
        } else if c >= 97 && c <= 122 {
            guard let op = operatorName() else { return nil }
            n = op
        } else {
            return nil
        }
        while look == UInt8(ascii: "B") {
            i += 1
            guard let tag = sourceName() else { return nil }
            n = .abiTag(n, tag)
        }
        return n
    }

    static let operators: [String: String] = [
        "nw": "new", "na": "new[]", "dl": "delete", "da": "delete[]", "ps": "+", "ng": "-", "ad": "&",
        "de": "*", "co": "~", "pl": "+", "mi": "-", "ml": "*", "dv": "/", "rm": "%", "an": "&", "or": "|",
        "eo": "^", "aS": "=", "pL": "+=", "mI": "-=", "mL": "*=", "dV": "/=", "rM": "%=", "aN": "&=",
        "oR": "|=", "eO": "^=", "ls": "<<", "rs": ">>", "lS": "<<=", "rS": ">>=", "eq": "==", "ne": "!=",
        "lt": "<", "gt": ">", "le": "<=", "ge": ">=", "ss": "<=>", "nt": "!", "aa": "&&", "oo": "||",
        "pp": "++", "mm": "--", "cm": ",", "pm": "->*", "pt": "->", "cl": "()", "ix": "[]", "qu": "?",
        "st": "sizeof ", "sz": "sizeof ", "at": "alignof ", "az": "alignof ", "aw": "co_await",
    ]

    mutating func operatorName() -> CxxNode? {
        guard i + 2 <= s.count else { return nil }
        let code = String(decoding: s[i..<(i + 2)], as: UTF8.self)
        if code == "cv" {
            i += 2
            guard let t = type() else { return nil }
            var r = Renderer()
            let text = r.render(t)
            guard !r.failed else { return nil }
            return .text("operator " + text)
        }
        if code == "li" {
            i += 2
            guard let n = sourceName() else { return nil }
            return .name("operator\"\" " + n)
        }
        if code.hasPrefix("v"), isDigit(peek(1)) {
            i += 2
            guard let n = sourceName() else { return nil }
            return .name("operator " + n)
        }
        guard let op = ItaniumParser.operators[code] else { return nil }
        i += 2
        let first = op.utf8.first ?? 0
        let word = first >= 97 && first <= 122
        return .name(word ? "operator " + op.trimmingSpaces : "operator" + op)
    }

    // MARK: substitutions and template parameters

    mutating func substitution() -> CxxNode? {
        guard eat("S") else { return nil }
        func std(_ name: String, _ args: [String]) -> CxxNode {
            let base: CxxNode = .nested(.name("std"), .name(name))
            if args.isEmpty { return base }
            return .template(base, args.map { CxxNode.text($0) })
        }
        let traits = { (c: String) in "std::char_traits<\(c)>" }
        switch look {
        case UInt8(ascii: "a"): i += 1; return std("allocator", [])
        case UInt8(ascii: "b"): i += 1; return std("basic_string", [])
        case UInt8(ascii: "s"): i += 1; return std("basic_string", ["char", traits("char"), "std::allocator<char>"])
        case UInt8(ascii: "i"): i += 1; return std("basic_istream", ["char", traits("char")])
        case UInt8(ascii: "o"): i += 1; return std("basic_ostream", ["char", traits("char")])
        case UInt8(ascii: "d"): i += 1; return std("basic_iostream", ["char", traits("char")])
        case UInt8(ascii: "_"): i += 1; return subs.first
        default:
            guard let id = seqID(), eat("_"), id + 1 < subs.count else { return nil }
            return subs[id + 1]
        }
    }

    mutating func templateParam() -> CxxNode? {
        guard eat("T") else { return nil }
        var idx = 0
        if !eat("_") {
            guard let v = number(), v >= 0, eat("_") else { return nil }
            idx = v + 1
        }
        guard idx < templateParams.count else {
            // Conversion operators may name parameters whose arguments follow; keep the text.
            return .name(idx == 0 ? "T_" : "T\(idx - 1)_")
        }
        return templateParams[idx]
    }

    mutating func templateArgs(tag: Bool) -> [CxxNode]? {
        guard eat("I") else { return nil }
        var args: [CxxNode] = []
        while !eat("E") {
            guard i < s.count, let a = templateArg() else { return nil }
            args.append(a)
        }
        if tag { templateParams = args }
        return args
    }

    mutating func templateArg() -> CxxNode? {
        guard enter() else { return nil }
        defer { depth -= 1 }
        if eat("X") {
            guard let e = expression(), eat("E") else { return nil }
            return e
        }
        if look == UInt8(ascii: "L") { return exprPrimary() }
        if eat("J") {
            var items: [CxxNode] = []
            while !eat("E") {
                guard i < s.count, let a = templateArg() else { return nil }
                items.append(a)
            }
            return .pack(items)
        }
        return type()
    }

    // MARK: types

    static let builtins: [UInt8: String] = [
        UInt8(ascii: "v"): "void", UInt8(ascii: "w"): "wchar_t", UInt8(ascii: "b"): "bool",
        UInt8(ascii: "c"): "char", UInt8(ascii: "a"): "signed char", UInt8(ascii: "h"): "unsigned char",
        UInt8(ascii: "s"): "short", UInt8(ascii: "t"): "unsigned short", UInt8(ascii: "i"): "int",
        UInt8(ascii: "j"): "unsigned int", UInt8(ascii: "l"): "long", UInt8(ascii: "m"): "unsigned long",
        UInt8(ascii: "x"): "long long", UInt8(ascii: "y"): "unsigned long long", UInt8(ascii: "n"): "__int128",
        UInt8(ascii: "o"): "unsigned __int128", UInt8(ascii: "f"): "float", UInt8(ascii: "d"): "double",
        UInt8(ascii: "e"): "long double", UInt8(ascii: "g"): "__float128", UInt8(ascii: "z"): "...",
    ]
    static let dBuiltins: [UInt8: String] = [
        UInt8(ascii: "d"): "decimal64", UInt8(ascii: "e"): "decimal128", UInt8(ascii: "f"): "decimal32",
        UInt8(ascii: "h"): "half", UInt8(ascii: "i"): "char32_t", UInt8(ascii: "s"): "char16_t",
        UInt8(ascii: "u"): "char8_t", UInt8(ascii: "a"): "auto", UInt8(ascii: "c"): "decltype(auto)",
        UInt8(ascii: "n"): "decltype(nullptr)",
    ]

    mutating func type() -> CxxNode? {
        guard enter() else { return nil }
        defer { depth -= 1 }
        let c = look
        if let b = ItaniumParser.builtins[c] { i += 1; return .name(b) }
        var result: CxxNode
        switch c {
        case UInt8(ascii: "r"), UInt8(ascii: "V"), UInt8(ascii: "K"):
            let q = cvQualifiers()
            guard let t = type() else { return nil }
            if case .function(let r, let p, let fq) = t {
                result = .function(ret: r, params: p, quals: q + fq)
            } else {
                result = .qualified(t, String(q.dropFirst()))
            }
        case UInt8(ascii: "P"): i += 1; guard let t = type() else { return nil }; result = .pointer(t)
        case UInt8(ascii: "R"): i += 1; guard let t = type() else { return nil }; result = collapse(t, rvalue: false)
        case UInt8(ascii: "O"): i += 1; guard let t = type() else { return nil }; result = collapse(t, rvalue: true)
        case UInt8(ascii: "C"): i += 1; guard let t = type() else { return nil }; result = .vendor(t, "_Complex")
        case UInt8(ascii: "G"): i += 1; guard let t = type() else { return nil }; result = .vendor(t, "_Imaginary")
        case UInt8(ascii: "U"):
            i += 1
            guard let q = sourceName() else { return nil }
            if look == UInt8(ascii: "I") { guard templateArgs(tag: false) != nil else { return nil } }
            guard let t = type() else { return nil }
            result = .vendor(t, q)
        case UInt8(ascii: "u"):
            i += 1
            guard let n = sourceName() else { return nil }
            return .name(n)
        case UInt8(ascii: "F"):
            guard let f = functionType() else { return nil }
            result = f
        case UInt8(ascii: "A"):
            i += 1
            var dim = ""
            if isDigit(look) {
                guard let n = number() else { return nil }
                dim = String(n)
            } else if look != UInt8(ascii: "_") {
                guard let e = expression() else { return nil }
                var r = Renderer()
                dim = r.render(e)
                guard !r.failed else { return nil }
            }
            guard eat("_"), let t = type() else { return nil }
            result = .array(t, dim)
        case UInt8(ascii: "M"):
            i += 1
            guard let cls = type(), let mem = type() else { return nil }
            result = .memberPointer(cls, mem)
        case UInt8(ascii: "T"):
            guard let t = templateParam() else { return nil }
            subs.append(t)
            if look == UInt8(ascii: "I") {
                guard let args = templateArgs(tag: false) else { return nil }
                result = .template(t, args)
            } else {
                return t
            }
        case UInt8(ascii: "S"):
            if peek(1) == UInt8(ascii: "t") {
                guard let n = name() else { return nil }
                result = n
            } else {
                guard let sub = substitution() else { return nil }
                if look == UInt8(ascii: "I") {
                    guard let args = templateArgs(tag: false) else { return nil }
                    result = .template(sub, args)
                } else {
                    return sub
                }
            }
        case UInt8(ascii: "D"):
            let d = peek(1)
            if let b = ItaniumParser.dBuiltins[d] { i += 2; return .name(b) }
            if d == UInt8(ascii: "F") {
                i += 2
                guard let n = number(), eat("_") else { return nil }
                return .name("_Float\(n)")
            }
            if d == UInt8(ascii: "p") {
                i += 2
                guard let t = type() else { return nil }
                result = .expansion(t)
            } else if d == UInt8(ascii: "t") || d == UInt8(ascii: "T") {
                i += 2
                guard let e = expression(), eat("E") else { return nil }
                var r = Renderer()
                let text = r.render(e)
                guard !r.failed else { return nil }
                result = .name("decltype (\(text))")
            } else if d == UInt8(ascii: "v") {
                i += 2
                guard let n = number(), eat("_"), let t = type() else { return nil }
                result = .vendor(t, "__vector(\(n))")
            } else if d == UInt8(ascii: "o") || d == UInt8(ascii: "O") || d == UInt8(ascii: "x") || d == UInt8(ascii: "w") {
                // Exception specifications on function types: skip them, then the function type.
                i += 2
                if d == UInt8(ascii: "O") { guard expression() != nil, eat("E") else { return nil } }
                if d == UInt8(ascii: "w") { while !eat("E") { guard i < s.count, type() != nil else { return nil } } }
                guard let t = type() else { return nil }
                return t
            } else {
                return nil
            }
        case UInt8(ascii: "N"), UInt8(ascii: "Z"), 48...57:
            guard let n = name() else { return nil }
            result = n
        default:
            return nil
        }
        subs.append(result)
        return result
    }

    func collapse(_ t: CxxNode, rvalue: Bool) -> CxxNode {
        // Reference collapsing, as c++filt applies it: & + && is &.
        switch t {
        case .lref: return t
        case .rref(let inner): return rvalue ? t : .lref(inner)
        default: return rvalue ? .rref(t) : .lref(t)
        }
    }

    mutating func functionType() -> CxxNode? {
        guard eat("F") else { return nil }
        _ = eat("Y")
        guard let ret = type() else { return nil }
        var params: [CxxNode] = []
        var quals = ""
        while true {
            if eat("E") { break }
            if look == UInt8(ascii: "R") && peek(1) == UInt8(ascii: "E") { i += 2; quals = " &"; break }
            if look == UInt8(ascii: "O") && peek(1) == UInt8(ascii: "E") { i += 2; quals = " &&"; break }
            guard i < s.count, let t = type() else { return nil }
            params.append(t)
        }
        if params.count == 1, case .name("void") = params[0] { params = [] }
        return .function(ret: ret, params: params, quals: quals)
    }

    // MARK: expressions (the subset compilers emit in template arguments and decltype)

    mutating func exprPrimary() -> CxxNode? {
        guard eat("L") else { return nil }
        if eat("Z") {
            guard let e = encoding(), eat("E") else { return nil }
            return e
        }
        if eat("_Z") {
            guard let e = encoding(), eat("E") else { return nil }
            return e
        }
        guard let t = type() else { return nil }
        let neg = eat("n")
        var digits = ""
        while i < s.count && look != UInt8(ascii: "E") {
            digits.append(Character(UnicodeScalar(look)))
            i += 1
        }
        guard eat("E") else { return nil }
        var r = Renderer()
        let tn = r.render(t)
        guard !r.failed else { return nil }
        let value = (neg ? "-" : "") + digits
        switch tn {
        case "int": return .text(value)
        case "unsigned int": return .text(value + "u")
        case "long": return .text(value + "l")
        case "unsigned long": return .text(value + "ul")
        case "long long": return .text(value + "ll")
        case "unsigned long long": return .text(value + "ull")
        case "bool" where digits == "0" || digits == "1": return .text(digits == "1" ? "true" : "false")
        case "decltype(nullptr)" where digits == "0" || digits.isEmpty: return .text("nullptr")
        default:
            if digits.isEmpty { return nil }
            return .text("(\(tn))\(value)")
        }
    }

    mutating func expression() -> CxxNode? {
        guard enter() else { return nil }
        defer { depth -= 1 }
        if look == UInt8(ascii: "L") { return exprPrimary() }
        if look == UInt8(ascii: "T") { return templateParam() }
        if eat("fp") {
            _ = cvQualifiers()
            var n = 1
            if !eat("_") { guard let v = number(), eat("_") else { return nil }; n = v + 2 }
            return .text("{parm#\(n)}")
        }
        if eat("sr") {
            guard let t = type(), let u = unqualifiedName(nil) else { return nil }
            var out: CxxNode = .nested(t, u)
            if look == UInt8(ascii: "I") { guard let a = templateArgs(tag: false) else { return nil }; out = .template(out, a) }
            return out
        }
        if isDigit(look) {
            guard let u = unqualifiedName(nil) else { return nil }
            if look == UInt8(ascii: "I") { guard let a = templateArgs(tag: false) else { return nil }; return .template(u, a) }
            return u
        }
        if eat("sp") {
            guard let e = expression() else { return nil }
            return .expansion(e)
        }
        if eat("st") {
            guard let t = type() else { return nil }
            var r = Renderer()
            let tn = r.render(t)
            guard !r.failed else { return nil }
            return .text("sizeof (\(tn))")
        }
        if eat("sZ") {
            guard let e = expression() else { return nil }
            var r = Renderer()
            let tn = r.render(e)
            guard !r.failed else { return nil }
            return .text("sizeof...(\(tn))")
        }
        guard i + 2 <= s.count else { return nil }
        let code = String(decoding: s[i..<(i + 2)], as: UTF8.self)
        let unary: Set<String> = ["ps", "ng", "ad", "de", "co", "nt", "sz", "az", "pp", "mm"]
        let binary: Set<String> = ["pl", "mi", "ml", "dv", "rm", "an", "or", "eo", "aS", "ls", "rs", "eq", "ne", "lt",
                                   "gt", "le", "ge", "aa", "oo", "cm", "pL", "mI", "mL", "dV", "rM", "aN", "oR", "eO",
                                   "lS", "rS", "ss"]
        guard let op = ItaniumParser.operators[code] else { return nil }
        i += 2
        var r = Renderer()
        if unary.contains(code) {
            guard let a = expression() else { return nil }
            let t = r.render(a)
            guard !r.failed else { return nil }
            return .text("\(op.trimmingSpaces)(\(t))")
        }
        if binary.contains(code) {
            guard let a = expression(), let b = expression() else { return nil }
            let ta = r.render(a), tb = r.render(b)
            guard !r.failed else { return nil }
            let wrap = { (x: String) in code == "gt" ? "((\(x)))" : "(\(x))" }
            return .text("\(wrap(ta))\(op)\(wrap(tb))")
        }
        return nil
    }
}

extension String {
    var replacingMark: String { contains(Renderer.mark) ? replacingOccurrences(of: Renderer.mark, with: "") : self }

    func replacingOccurrences(of target: String, with replacement: String) -> String {
        // Foundation-free: PlumbELF stays pure Swift.
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }

    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Prints nodes in C++ declarator syntax, as c++filt does ("char const*", "void (*)(int)").
struct Renderer {
    var failed = false
    var depth = 0
    var budget = Demangler.maxOutputLength * 4

    static let mark = "\u{1}"

    /// A complete type's text.
    mutating func render(_ n: CxxNode) -> String {
        let s = declare(n, "")
        return s.contains(Renderer.mark) ? s.replacingOccurrences(of: Renderer.mark, with: " ") : s
    }

    mutating func declare(_ n: CxxNode, _ decl: String) -> String {
        guard !failed else { return "" }
        depth += 1
        defer { depth -= 1 }
        guard depth <= 512, budget > 0 else { failed = true; return "" }
        let out = body(n, decl)
        budget -= out.utf8.count
        if budget <= 0 { failed = true; return "" }
        return out
    }

    func spaced(_ decl: String) -> String { decl }

    /// A list's items with packs and pack expansions spread out.
    mutating func flatten(_ list: [CxxNode]) -> [String] {
        var parts: [String] = []
        for a in list {
            switch a {
            case .pack(let items): parts.append(contentsOf: flatten(items))
            case .expansion(let pattern):
                if let items = expand(pattern) { parts.append(contentsOf: items) } else { parts.append(render(a)) }
            default: parts.append(render(a))
            }
        }
        return parts
    }

    /// The pattern rendered once per element of the first pack it contains (nil: it contains none).
    mutating func expand(_ pattern: CxxNode) -> [String]? {
        guard let pack = firstPack(pattern, depth: 0) else { return nil }
        return pack.map { render(replacePack(pattern, with: $0, depth: 0)) }
    }

    func firstPack(_ n: CxxNode, depth: Int) -> [CxxNode]? {
        guard depth < 64 else { return nil }
        switch n {
        case .pack(let items): return items
        case .qualified(let t, _), .pointer(let t), .lref(let t), .rref(let t), .vendor(let t, _), .array(let t, _):
            return firstPack(t, depth: depth + 1)
        case .template(let b, let a):
            if let p = firstPack(b, depth: depth + 1) { return p }
            for x in a { if case .pack = x { continue }; if let p = firstPack(x, depth: depth + 1) { return p } }
            return nil
        case .nested(let a, let b): return firstPack(a, depth: depth + 1) ?? firstPack(b, depth: depth + 1)
        default: return nil
        }
    }

    func replacePack(_ n: CxxNode, with e: CxxNode, depth: Int) -> CxxNode {
        guard depth < 64 else { return n }
        let r = { (x: CxxNode) in self.replacePack(x, with: e, depth: depth + 1) }
        switch n {
        case .pack: return e
        case .qualified(let t, let q): return .qualified(r(t), q)
        case .pointer(let t): return .pointer(r(t))
        case .lref(let t): return .lref(unref(r(t)))
        case .rref(let t):
            let inner = r(t)
            if case .lref = inner { return inner }
            if case .rref = inner { return inner }
            return .rref(inner)
        case .vendor(let t, let q): return .vendor(r(t), q)
        case .array(let t, let d): return .array(r(t), d)
        case .template(let b, let a): return .template(r(b), a.map { if case .pack = $0 { return $0 }; return r($0) })
        case .nested(let a, let b): return .nested(r(a), r(b))
        default: return n
        }
    }

    func unref(_ n: CxxNode) -> CxxNode {
        if case .lref(let t) = n { return t }
        if case .rref(let t) = n { return t }
        return n
    }

    mutating func args(_ list: [CxxNode]) -> String {
        let inner = flatten(list).joined(separator: ", ")
        // c++filt separates ">>" except after an empty trailing pack.
        let emptyLast = list.last.map { trailingEmpty($0) } ?? false
        return "<" + inner + (inner.hasSuffix(">") && !emptyLast ? " >" : ">")
    }

    mutating func trailingEmpty(_ n: CxxNode) -> Bool {
        switch n {
        case .pack(let items): return items.last.map { trailingEmpty($0) } ?? true
        case .expansion(let p): return expand(p)?.isEmpty ?? false
        default: return false
        }
    }

    mutating func params(_ list: [CxxNode]) -> String {
        "(" + flatten(list).joined(separator: ", ") + ")"
    }

    mutating func body(_ n: CxxNode, _ decl: String) -> String {
        switch n {
        case .name(let t), .text(let t):
            return join(t, decl)
        case .nested(let a, let b):
            return join(render(a) + "::" + render(b), decl)
        case .template(let base, let list):
            let b = render(base)
            return join(b + (b.hasSuffix("<") ? " " : "") + args(list), decl)
        case .qualified(let t, let q):
            return declare(t, " " + q + decl)
        case .pointer(let t):
            if t.isFunction || t.isArray { return declare(t, "*" + decl) }
            return declare(t, "*" + decl)
        case .lref(let t):
            return declare(t, "&" + decl)
        case .rref(let t):
            return declare(t, "&&" + decl)
        case .function(let ret, let ps, let quals):
            // Inside out: the declarator goes in parentheses before the parameters, and the whole
            // is the return type's declarator ("int (*(*)())()").
            // A mark where the return type's text ends becomes the space ("void* (*)(int)"),
            // unless the return type is itself a function that wraps it in parentheses.
            let d = decl.replacingMark.trimmingSpaces
            let inner = (d.isEmpty ? "" : "(" + d + ")") + params(ps) + quals
            guard let ret else { return inner }
            return declare(ret, Renderer.mark + inner)
        case .array(let t, let dim):
            let inner = decl.isEmpty ? " " : " (" + decl.replacingMark.trimmingSpaces + ") "
            return render(t) + inner + "[" + dim + "]"
        case .memberPointer(let cls, let mem):
            let c = render(cls)
            if mem.isFunction { return declare(mem, c + "::*" + decl) }
            return declare(mem, " " + c + "::*" + decl)
        case .ctorDtor(let cls, let dtor):
            return (dtor ? "~" : "") + baseName(cls) + decl
        case .special(let prefix, let t):
            return prefix + render(t) + decl
        case .encoding(let name, let ret, let ps, let quals):
            let nm = render(name)
            let head = ret.map { render($0) + " " } ?? ""
            return head + nm + params(ps) + quals + decl
        case .local(let enc, let entity):
            // The enclosing function is printed without its return type, as c++filt does.
            var e = enc
            if case .encoding(let n, _, let ps, let q) = enc { e = .encoding(name: n, ret: nil, params: ps, quals: q) }
            return render(e) + "::" + render(entity) + decl
        case .pack(let items):
            return items.map { render($0) }.joined(separator: ", ") + decl
        case .abiTag(let t, let tag):
            return render(t) + "[abi:" + tag + "]" + decl
        case .vendor(let t, let q):
            return declare(t, " " + q + decl)
        case .expansion(let t):
            if let items = expand(t) { return items.joined(separator: ", ") + decl }
            return render(t) + "..." + decl
        }
    }

    /// A type's text and its declarator: a function declarator is set off by a space.
    func join(_ base: String, _ decl: String) -> String { base + decl }

    mutating func baseName(_ n: CxxNode) -> String {
        switch n {
        case .nested(_, let b): return baseName(b)
        case .template(let b, _): return baseName(b)
        case .abiTag(let b, _): return baseName(b)
        case .ctorDtor(let c, _): return baseName(c)
        default: return render(n)
        }
    }
}
