// Swift symbol names (mangling "5", `$s`), printed as `swift demangle --simplified` prints
// them: no module names, argument labels instead of types ("BTF.kernel()", "closure #1 in
// Store.add(_:)"), which is what a stack frame or a probe listing needs. The grammar is a
// postfix one: operators pop what earlier operators pushed. Unknown operators give nil.

extension Demangler {
    /// A Swift symbol in the simplified form (`$s4main3fooyyF` → `foo()`), or nil.
    public static func demangleSwift(_ symbol: String) -> String? {
        var bytes = Array(symbol.utf8)
        guard bytes.count <= maxInputLength else { return nil }
        if bytes.first == UInt8(ascii: "_") { bytes.removeFirst() }
        guard bytes.count > 2, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "s") || bytes[1] == UInt8(ascii: "S") else { return nil }
        // Suffixes after a dot (".resume.0", ".cold") are not part of the mangling.
        var end = bytes.count
        if let dot = bytes.firstIndex(of: UInt8(ascii: ".")) { end = dot }
        var p = SwiftParser(Array(bytes[2..<end]))
        guard let root = p.parse() else { return nil }
        var printer = SwiftPrinter()
        let text = printer.print(root)
        guard !printer.failed, !text.isEmpty, text.utf8.count <= maxOutputLength else { return nil }
        return text
    }
}

final class SNode {
    enum Kind: Equatable {
        case identifier, module, firstElementMarker, emptyList, privateName, localName
        case nominal(String) // C V O P a: class, struct, enum, protocol, type alias
        case boundGeneric, tuple, tupleElement, function, genericParam, protocolList, metatype, existentialMetatype
        case inoutType, variadic, owned, shared, sending, isolated, noDerivative
        case entity(String)  // function, variable, subscript, constructor, allocator, destructor, deallocator, closure...
        case accessor(String)
        case staticEntity
        case extension_
        case genericSignature, requirement
        case prefix(String)  // "partial apply for " ...
        case conformance
        case labelList
        case index
        case async, throwsMark, sendable, noEscape, autoclosure, escaping
        case typeList
        case dependentMember
        case other(String)
    }
    var kind: Kind
    var text: String
    var children: [SNode]
    var number: Int = 0
    init(_ kind: Kind, _ text: String = "", _ children: [SNode] = []) {
        self.kind = kind; self.text = text; self.children = children
    }
    var isType: Bool {
        switch kind {
        case .nominal, .boundGeneric, .tuple, .function, .genericParam, .protocolList, .metatype,
             .existentialMetatype, .dependentMember, .inoutType, .owned, .shared: return true
        case .other(let k): return k == "type"
        default: return false
        }
    }
}

struct SwiftParser {
    let s: [UInt8]
    var i = 0
    var stack: [SNode] = []
    var subs: [SNode] = []
    var words: [String] = []
    var steps = 0

    init(_ s: [UInt8]) { self.s = s }

    var look: UInt8 { i < s.count ? s[i] : 0 }
    mutating func next() -> UInt8 { guard i < s.count else { return 0 }; i += 1; return s[i - 1] }
    mutating func eat(_ c: Character) -> Bool {
        guard let a = c.asciiValue, look == a else { return false }
        i += 1
        return true
    }
    func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    func isLower(_ c: UInt8) -> Bool { c >= 97 && c <= 122 }
    func isUpper(_ c: UInt8) -> Bool { c >= 65 && c <= 90 }

    mutating func natural() -> Int? {
        guard isDigit(look) else { return nil }
        var v = 0
        while isDigit(look) {
            guard v < 10_000_000 else { return nil }
            v = v * 10 + Int(next() - 48)
        }
        return v
    }

    mutating func index() -> Int? {
        if eat("_") { return 0 }
        guard let n = natural(), eat("_") else { return nil }
        return n + 1
    }

    mutating func pop() -> SNode? { stack.popLast() }
    mutating func pop(_ pred: (SNode) -> Bool) -> SNode? {
        guard let top = stack.last, pred(top) else { return nil }
        return stack.popLast()
    }
    mutating func popType() -> SNode? { pop { $0.isType } }

    mutating func parse() -> SNode? {
        while i < s.count {
            steps += 1
            guard steps < 100_000, stack.count < 4096 else { return nil }
            guard let n = op() else { return nil }
            stack.append(n)
        }
        // A symbol's entity is what is left; a type-only mangling (metadata) leaves a type.
        guard let top = stack.last else { return nil }
        return top
    }

    mutating func identifier() -> SNode? {
        var hasWords = false, punycode = false
        if eat("0") {
            if eat("0") { punycode = true } else { hasWords = true }
        }
        var out = ""
        repeat {
            while hasWords && (isLower(look) || isUpper(look)) {
                let c = next()
                let idx: Int
                if isLower(c) { idx = Int(c - 97) } else { idx = Int(c - 65); hasWords = false }
                guard idx < words.count else { return nil }
                out += words[idx]
            }
            if eat("0") { break }
            guard let n = natural(), n > 0 else { return nil }
            if punycode { _ = eat("_") }
            guard i + n <= s.count else { return nil }
            let slice = Array(s[i..<(i + n)])
            i += n
            out += String(decoding: slice, as: UTF8.self)
            if !punycode {
                var start = -1
                for k in 0...slice.count {
                    let c: UInt8 = k < slice.count ? slice[k] : 0
                    if start >= 0 {
                        let prev = slice[k - 1]
                        if c == UInt8(ascii: "_") || c == 0 || (!isUpper(prev) && isUpper(c)) {
                            if k - start >= 2 && words.count < 26 {
                                words.append(String(decoding: slice[start..<k], as: UTF8.self))
                            }
                            start = -1
                        }
                    }
                    if start < 0 && c != 0 && c != UInt8(ascii: "_") && !isDigit(c) { start = k }
                }
            }
        } while hasWords
        let node = SNode(.identifier, out)
        subs.append(node)
        return node
    }

    static let stdTypes: [UInt8: (String, String)] = {
        var m: [UInt8: (String, String)] = [:]
        let structs = "AAutoreleasingUnsafeMutablePointer aArray bBool DDictionary dDouble fFloat hSet IDefaultIndices iInt JCharacter NClosedRange nRange OObjectIdentifier PUnsafePointer pUnsafeMutablePointer RUnsafeBufferPointer rUnsafeMutableBufferPointer SString sSubstring uUInt VUnsafeRawPointer vUnsafeMutableRawPointer WUnsafeRawBufferPointer wUnsafeMutableRawBufferPointer"
        for w in structs.split(separator: " ") { m[w.utf8.first!] = ("V", String(w.dropFirst())) }
        m[UInt8(ascii: "q")] = ("O", "Optional")
        let protos = "BBinaryFloatingPoint EEncodable eDecodable FFloatingPoint GRandomNumberGenerator HHashable jNumeric KBidirectionalCollection kRandomAccessCollection LComparable lCollection MMutableCollection mRangeReplaceableCollection QEquatable TSequence tIteratorProtocol UUnsignedInteger XRangeExpression xStrideable YRawRepresentable yStringProtocol ZSignedInteger zBinaryInteger"
        for w in protos.split(separator: " ") { m[w.utf8.first!] = ("P", String(w.dropFirst())) }
        return m
    }()

    static let concurrencyTypes: [UInt8: (String, String)] = [
        UInt8(ascii: "A"): ("P", "Actor"), UInt8(ascii: "C"): ("V", "CheckedContinuation"),
        UInt8(ascii: "c"): ("V", "UnsafeContinuation"), UInt8(ascii: "E"): ("V", "CancellationError"),
        UInt8(ascii: "e"): ("V", "UnownedSerialExecutor"), UInt8(ascii: "F"): ("O", "Executor"),
        UInt8(ascii: "f"): ("P", "SerialExecutor"), UInt8(ascii: "G"): ("V", "TaskGroup"),
        UInt8(ascii: "g"): ("V", "ThrowingTaskGroup"), UInt8(ascii: "I"): ("P", "AsyncIteratorProtocol"),
        UInt8(ascii: "i"): ("P", "AsyncSequence"), UInt8(ascii: "J"): ("V", "UnownedJob"),
        UInt8(ascii: "M"): ("C", "MainActor"), UInt8(ascii: "P"): ("V", "TaskPriority"),
        UInt8(ascii: "S"): ("V", "AsyncStream"), UInt8(ascii: "s"): ("V", "AsyncThrowingStream"),
        UInt8(ascii: "T"): ("V", "Task"), UInt8(ascii: "t"): ("V", "UnsafeCurrentTask"),
    ]

    func swiftModule() -> SNode { SNode(.module, "Swift") }

    mutating func standardSubstitution() -> SNode? {
        switch look {
        case UInt8(ascii: "o"): i += 1; return SNode(.module, "__C")
        case UInt8(ascii: "C"): i += 1; return SNode(.module, "__C_Synthesized")
        case UInt8(ascii: "g"):
            i += 1
            guard let t = popType() else { return nil }
            let n = SNode(.boundGeneric, "", [SNode(.nominal("O"), "Optional", [swiftModule()]), SNode(.typeList, "", [t])])
            subs.append(n)
            return n
        default:
            let repeatCount = natural() ?? 1
            let second = eat("c")
            let c = next()
            guard let (k, name) = second ? SwiftParser.concurrencyTypes[c] : SwiftParser.stdTypes[c] else { return nil }
            let n = SNode(.nominal(k), name, [swiftModule()])
            if repeatCount > 1 {
                guard repeatCount < 64 else { return nil }
                for _ in 1..<repeatCount { stack.append(n) }
            }
            return n
        }
    }

    mutating func multiSubstitution() -> SNode? {
        var repeatCount = -1
        while true {
            let c = next()
            if c == 0 { return nil }
            if isLower(c) || isUpper(c) {
                let idx = Int(isLower(c) ? c - 97 : c - 65)
                guard idx < subs.count, repeatCount < 64 else { return nil }
                let n = subs[idx]
                if repeatCount > 1 { for _ in 1..<repeatCount { stack.append(n) } }
                if isUpper(c) { return n }
                stack.append(n)
                repeatCount = -1
                continue
            }
            if c == UInt8(ascii: "_") {
                let idx = repeatCount + 27
                guard idx >= 0, idx < subs.count else { return nil }
                return subs[idx]
            }
            i -= 1
            guard let n = natural() else { return nil }
            repeatCount = n
        }
    }

    mutating func popContext() -> SNode? {
        guard let n = pop() else { return nil }
        if n.kind == .identifier { return SNode(.module, n.text) }
        return n
    }

    /// Param count of a function type (for printing `_:` labels).
    func paramCount(_ fn: SNode?) -> Int {
        guard let fn, fn.kind == .function, let params = fn.children.first else { return 0 }
        if params.kind == .tuple { return params.children.count }
        return 1
    }

    mutating func popFunctionType() -> SNode? {
        var flags: [SNode] = []
        while let f = pop({ [.async, .throwsMark, .sendable, .isolated].contains($0.kind) || $0.kind == .other("globalActor") }) { flags.append(f) }
        guard let params = popParams(), let result = popParams() else { return nil }
        return SNode(.function, "", [params, result] + flags)
    }

    mutating func popParams() -> SNode? {
        if pop({ $0.kind == .emptyList }) != nil { return SNode(.tuple) }
        return popType()
    }

    mutating func popLabels(_ type: SNode?) -> SNode? {
        if pop({ $0.kind == .emptyList }) != nil { return SNode(.labelList) }
        let n = paramCount(type)
        guard n > 0 else { return nil }
        // Labels sit below the type: identifiers or `_` for each parameter.
        var labels: [SNode] = []
        var saved: [SNode] = []
        var any = false
        for _ in 0..<n {
            guard let l = pop({ $0.kind == .identifier || $0.kind == .firstElementMarker }) else {
                stack.append(contentsOf: saved.reversed())
                return nil
            }
            saved.append(l)
            if l.kind == .identifier { any = true }
            labels.append(l)
        }
        guard any else { stack.append(contentsOf: saved.reversed()); return nil }
        return SNode(.labelList, "", labels.reversed())
    }

    mutating func popDeclName() -> SNode? {
        pop { $0.kind == .identifier || $0.kind == .privateName || $0.kind == .localName || $0.kind == .other("operator") }
    }

    mutating func entity(_ kind: String) -> SNode? {
        let sig = pop { $0.kind == .genericSignature }
        // A plain function's parameter and result types are on the stack; a variable's type is one node.
        guard let type = kind == "function" ? popFunctionType() : popType() else { return nil }
        let labels = popLabels(type)
        guard let name = popDeclName(), let ctx = popContext() else { return nil }
        var children = [ctx, name, type]
        if let labels { children.append(labels) }
        let n = SNode(.entity(kind), "", children)
        if let sig { n.children.append(sig) }
        return n
    }

    mutating func op() -> SNode? {
        let c = look
        if isDigit(c) { return identifier() }
        i += 1
        switch c {
        case UInt8(ascii: "_"): return SNode(.firstElementMarker)
        case UInt8(ascii: "y"):
            if eat("p") { return SNode(.protocolList) }
            return SNode(.emptyList)
        case UInt8(ascii: "s"): return SNode(.module, "Swift")
        case UInt8(ascii: "S"): return standardSubstitution()
        case UInt8(ascii: "A"): return multiSubstitution()
        case UInt8(ascii: "C"), UInt8(ascii: "V"), UInt8(ascii: "O"), UInt8(ascii: "P"), UInt8(ascii: "a"):
            guard let name = popDeclName(), let ctx = popContext() else { return nil }
            let n = SNode(.nominal(String(UnicodeScalar(c))), name.kind == .identifier ? name.text : (name.children.last?.text ?? ""), [ctx])
            // Local types print as "Rank #1 in f()".
            if name.kind == .localName { n.text = name.children.first?.text ?? ""; n.number = name.number + 1 }
            subs.append(n)
            return n
        case UInt8(ascii: "G"):
            var args: [SNode] = []
            guard let list = popTypeList() else { return nil }
            args = list
            guard let base = popType() else { return nil }
            let n = SNode(.boundGeneric, "", [base, SNode(.typeList, "", args)])
            subs.append(n)
            return n
        case UInt8(ascii: "t"):
            var elems: [SNode] = []
            if pop({ $0.kind == .emptyList }) == nil {
                var first = false
                repeat {
                    first = pop { $0.kind == .firstElementMarker } != nil
                    let variadic = pop { $0.kind == .variadic } != nil
                    let label = pop { $0.kind == .identifier }
                    guard let t = popType() else { return nil }
                    let e = SNode(.tupleElement, label?.text ?? "", [t])
                    e.number = variadic ? 1 : 0
                    elems.append(e)
                } while !first
                elems.reverse()
            }
            let n = SNode(.tuple, "", elems)
            return n
        case UInt8(ascii: "c"): return popFunctionType()
        case UInt8(ascii: "X"): return specialType()
        case UInt8(ascii: "Y"):
            let k = next()
            switch k {
            case UInt8(ascii: "a"): return SNode(.async)
            case UInt8(ascii: "b"): return SNode(.sendable)
            case UInt8(ascii: "K"): _ = popType(); return SNode(.throwsMark)
            case UInt8(ascii: "i"): return SNode(.isolated)
            case UInt8(ascii: "u"): guard let t = popType() else { return nil }; return t
            case UInt8(ascii: "T"): guard let t = popType() else { return nil }; return t
            case UInt8(ascii: "c"): _ = popType(); return SNode(.other("globalActor"))
            case UInt8(ascii: "A"): return SNode(.isolated)
            default: return nil
            }
        case UInt8(ascii: "K"): return SNode(.throwsMark)
        case UInt8(ascii: "u"):
            // A generic signature applied to a (function) type: kept with the type for `<A>`.
            guard let sig = pop({ $0.kind == .genericSignature }), let ty = popType() else { return nil }
            let copy = SNode(ty.kind, ty.text, ty.children + [sig])
            copy.number = ty.number
            return copy
        case UInt8(ascii: "o"):
            let k = next()
            let fixity = [UInt8(ascii: "i"): "infix", UInt8(ascii: "p"): "prefix", UInt8(ascii: "P"): "postfix"]
            guard let f = fixity[k], let ident = pop({ $0.kind == .identifier }) else { return nil }
            let map: [Character: Character] = ["a": "&", "c": "@", "d": "/", "e": "=", "g": ">", "l": "<", "m": "*", "n": "!",
                                               "o": "|", "p": "+", "q": "?", "r": "%", "s": "-", "t": "~", "x": "^", "z": "."]
            let text = String(ident.text.map { map[$0] ?? $0 })
            return SNode(.identifier, text + " " + f)
        case UInt8(ascii: "x"): return SNode(.genericParam, "A")
        case UInt8(ascii: "q"):
            return genericParamIndex()
        case UInt8(ascii: "z"): guard let t = popType() else { return nil }; return SNode(.inoutType, "", [t])
        case UInt8(ascii: "n"): guard let t = popType() else { return nil }; return SNode(.owned, "", [t])
        case UInt8(ascii: "h"): guard let t = popType() else { return nil }; return SNode(.shared, "", [t])
        case UInt8(ascii: "d"): return SNode(.variadic)
        case UInt8(ascii: "p"):
            // `protocol '_' protocol* 'p'`, or `y p` for Any.
            if pop({ $0.kind == .emptyList }) != nil { return SNode(.protocolList) }
            var protos: [SNode] = []
            var first = false
            repeat {
                first = pop { $0.kind == .firstElementMarker } != nil
                guard let p = popProtocol(), protos.count < 64 else { return nil }
                protos.append(p)
            } while !first
            return SNode(.protocolList, "", protos.reversed())
        case UInt8(ascii: "m"):
            guard let t = popType() else { return nil }
            return SNode(.metatype, "", [t])
        case UInt8(ascii: "l"): return genericSignature(counts: false)
        case UInt8(ascii: "r"): return genericSignature(counts: true)
        case UInt8(ascii: "R"): return requirement()
        case UInt8(ascii: "F"): return entity("function")
        case UInt8(ascii: "f"): return functionEntity()
        case UInt8(ascii: "v"):
            guard let v = entity("variable") else { return nil }
            return accessor(v)
        case UInt8(ascii: "i"):
            let priv = pop { $0.kind == .privateName }
            _ = priv
            let sig = pop { $0.kind == .genericSignature }
            guard let type = popType() else { return nil }
            let labels = popLabels(type)
            guard let ctx = popContext() else { return nil }
            var ch = [ctx, SNode(.identifier, "subscript"), type]
            if let labels { ch.append(labels) }
            if let sig { ch.append(sig) }
            return accessor(SNode(.entity("subscript"), "", ch))
        case UInt8(ascii: "Z"):
            guard let e = pop() else { return nil }
            return SNode(.staticEntity, "", [e])
        case UInt8(ascii: "E"):
            let sig = pop { $0.kind == .genericSignature }
            guard let module = popContext(), let type = popType() ?? pop() else { return nil }
            var ch = [module, type]
            if let sig { ch.append(sig) }
            return SNode(.extension_, "", ch)
        case UInt8(ascii: "L"): return localIdentifier()
        case UInt8(ascii: "M"): return metatypeOp()
        case UInt8(ascii: "W"): return witness()
        case UInt8(ascii: "T"): return thunk()
        case UInt8(ascii: "Q"):
            // Opaque/associated archetypes: `Qz` etc.; only the plain dependent member forms.
            let k = next()
            if k == UInt8(ascii: "z") || k == UInt8(ascii: "y") {
                if k == UInt8(ascii: "y") { _ = genericParamIndex() }
                guard let assoc = pop() else { return nil }
                let name = assoc.kind == .identifier ? assoc.text : assoc.text
                let base = k == UInt8(ascii: "z") ? SNode(.genericParam, "A") : (stack.last.map { _ in SNode(.genericParam, "A") } ?? SNode(.genericParam, "A"))
                let n = SNode(.dependentMember, name, [base])
                subs.append(n)
                return n
            }
            if k == UInt8(ascii: "x") || k == UInt8(ascii: "X") {
                guard let assoc = pop(), let base = popType() else { return nil }
                let n = SNode(.dependentMember, assoc.text, [base])
                subs.append(n)
                return n
            }
            if k == UInt8(ascii: "o") || k == UInt8(ascii: "O") || k == UInt8(ascii: "r") || k == UInt8(ascii: "R") || k == UInt8(ascii: "u") {
                return nil
            }
            return nil
        case UInt8(ascii: "D"):
            // Type mangling wrapper.
            guard let t = popType() else { return nil }
            return t
        case UInt8(ascii: "w"):
            guard i + 2 <= s.count else { return nil }
            let code = String(decoding: s[i..<(i + 2)], as: UTF8.self)
            i += 2
            let names = ["al": "allocateBuffer", "ca": "assignWithCopy", "ta": "assignWithTake", "de": "deallocateBuffer",
                         "xx": "destroy", "XX": "destroyBuffer", "Xx": "destroyArray", "CP": "initializeBufferWithCopyOfBuffer",
                         "Cp": "initializeBufferWithCopy", "cp": "initializeWithCopy", "Tk": "initializeBufferWithTakeOfBuffer",
                         "tk": "initializeWithTake", "pr": "projectBuffer", "xs": "storeExtraInhabitant",
                         "xg": "getExtraInhabitantIndex", "ug": "getEnumTag", "up": "destructiveProjectEnumData",
                         "ui": "destructiveInjectEnumTag", "et": "getEnumTagSinglePayload", "st": "storeEnumTagSinglePayload"]
            guard let name = names[code], let t = popType() else { return nil }
            return SNode(.prefix(name + " for "), "", [t])
        case UInt8(ascii: "N"):
            guard let t = popType() else { return nil }
            return SNode(.prefix("type metadata for "), "", [t])
        default:
            return nil
        }
    }

    mutating func popTypeList() -> [SNode]? {
        // `type 'y' (type* '_')* type* 'G'`: the innermost level's arguments are the last list.
        var levels: [[SNode]] = []
        while true {
            var list: [SNode] = []
            while let t = popType() { list.append(t) }
            levels.append(list.reversed())
            if pop({ $0.kind == .emptyList }) != nil { break }
            guard pop({ $0.kind == .firstElementMarker }) != nil, levels.count < 64 else { return nil }
        }
        return levels.flatMap { $0 + [SNode(.firstElementMarker)] }
    }

    mutating func genericParamIndex() -> SNode? {
        if eat("d") {
            guard let d = index(), let idx = index() else { return nil }
            return SNode(.genericParam, SwiftParser.paramName(depth: d + 1, index: idx))
        }
        if eat("z") { return SNode(.genericParam, "A") }
        guard let idx = index() else { return nil }
        return SNode(.genericParam, SwiftParser.paramName(depth: 0, index: idx + 1))
    }

    static func paramName(depth: Int, index: Int) -> String {
        var name = ""
        var idx = index
        repeat {
            name.append(Character(UnicodeScalar(UInt8(65 + idx % 26))))
            idx /= 26
        } while idx > 0
        return depth == 0 ? name : name + String(depth)
    }

    mutating func genericSignature(counts: Bool) -> SNode? {
        var params: [Int] = []
        if counts {
            while !eat("l") {
                guard i < s.count else { return nil }
                if eat("z") { params.append(0) } else { guard let n = index() else { return nil }; params.append(n + 1) }
                guard params.count < 64 else { return nil }
            }
        } else {
            params = [1]
        }
        var reqs: [SNode] = []
        while let r = pop({ $0.kind == .requirement }) { reqs.append(r) }
        let n = SNode(.genericSignature, "", reqs)
        n.number = params.first ?? 1
        return n
    }

    mutating func requirement() -> SNode? {
        // Consumed, not printed: simplified output has no where clauses. Letter: constraint and subject kind.
        enum Subject { case generic, assoc, compound, substitution }
        enum Constraint { case proto, type, layout }
        let c = next()
        let table: [UInt8: (Constraint, Subject)] = [
            UInt8(ascii: "c"): (.type, .assoc), UInt8(ascii: "C"): (.type, .compound), UInt8(ascii: "b"): (.type, .generic),
            UInt8(ascii: "B"): (.type, .substitution), UInt8(ascii: "t"): (.type, .assoc), UInt8(ascii: "T"): (.type, .compound),
            UInt8(ascii: "s"): (.type, .generic), UInt8(ascii: "S"): (.type, .substitution), UInt8(ascii: "m"): (.layout, .assoc),
            UInt8(ascii: "M"): (.layout, .compound), UInt8(ascii: "l"): (.layout, .generic), UInt8(ascii: "L"): (.layout, .substitution),
            UInt8(ascii: "p"): (.proto, .assoc), UInt8(ascii: "P"): (.proto, .compound), UInt8(ascii: "Q"): (.proto, .substitution),
        ]
        let (constraint, subject): (Constraint, Subject)
        if let k = table[c] { (constraint, subject) = k } else { i -= 1; (constraint, subject) = (.proto, .generic) }
        switch subject {
        case .generic: guard genericParamIndex() != nil else { return nil }
        case .assoc: guard genericParamIndex() != nil, pop({ $0.kind == .identifier }) != nil else { return nil }
        case .compound:
            guard genericParamIndex() != nil else { return nil }
            var first = false
            repeat {
                first = pop { $0.kind == .firstElementMarker } != nil
                guard pop({ $0.kind == .identifier }) != nil else { return nil }
            } while !first
        case .substitution: guard popType() != nil else { return nil }
        }
        switch constraint {
        case .proto: guard popProtocol() != nil else { return nil }
        case .type: guard popType() != nil else { return nil }
        case .layout:
            let k = next()
            if [UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "M"), UInt8(ascii: "m")].contains(k) {
                guard natural() != nil else { return nil }
                if eat("_") { guard natural() != nil else { return nil } }
            }
        }
        return SNode(.requirement)
    }

    mutating func localIdentifier() -> SNode? {
        if eat("L") {
            guard let disc = pop({ $0.kind == .identifier }), let name = popDeclName() else { return nil }
            return SNode(.privateName, "", [disc, name])
        }
        if eat("l") {
            guard let disc = pop({ $0.kind == .identifier }) else { return nil }
            return SNode(.privateName, "", [disc])
        }
        if (look >= 97 && look <= 106) || (look >= 65 && look <= 74) {
            i += 1
            guard let name = pop({ $0.kind == .identifier }) else { return nil }
            return SNode(.identifier, name.text)
        }
        guard let idx = index(), let name = popDeclName() else { return nil }
        let n = SNode(.localName, "", [name])
        n.number = idx
        return n
    }

    mutating func accessor(_ child: SNode) -> SNode? {
        let c = next()
        let names: [UInt8: String] = [
            UInt8(ascii: "m"): "materializeForSet", UInt8(ascii: "s"): "setter", UInt8(ascii: "g"): "getter",
            UInt8(ascii: "G"): "getter", UInt8(ascii: "w"): "willset", UInt8(ascii: "W"): "didset",
            UInt8(ascii: "r"): "read", UInt8(ascii: "M"): "modify", UInt8(ascii: "i"): "init",
            UInt8(ascii: "x"): "modify2", UInt8(ascii: "y"): "read2",
        ]
        if c == UInt8(ascii: "p") { return child }
        if c == UInt8(ascii: "a") || c == UInt8(ascii: "l") {
            let k = next()
            guard [UInt8(ascii: "O"), UInt8(ascii: "o"), UInt8(ascii: "p"), UInt8(ascii: "u")].contains(k) else { return nil }
            let base = c == UInt8(ascii: "a") ? "mutableAddressor" : "addressor"
            let prefix = k == UInt8(ascii: "u") ? "unsafe" : (k == UInt8(ascii: "O") ? "owning" : (k == UInt8(ascii: "o") ? "nativeOwning" : "nativePinning"))
            return SNode(.accessor(prefix + base.prefix(1).uppercased() + base.dropFirst()), "", [child])
        }
        guard let name = names[c] else { return nil }
        return SNode(.accessor(name), "", [child])
    }

    mutating func functionEntity() -> SNode? {
        let c = next()
        switch c {
        case UInt8(ascii: "D"), UInt8(ascii: "d"):
            guard let ctx = popContext() else { return nil }
            return SNode(.entity(c == UInt8(ascii: "D") ? "deallocator" : "destructor"), "", [ctx])
        case UInt8(ascii: "E"), UInt8(ascii: "e"):
            guard let ctx = popContext() else { return nil }
            return SNode(.entity(c == UInt8(ascii: "E") ? "ivar destroyer" : "ivar initializer"), "", [ctx])
        case UInt8(ascii: "i"):
            guard let ctx = popContext() else { return nil }
            return SNode(.entity("variable initialization expression"), "", [ctx])
        case UInt8(ascii: "C"), UInt8(ascii: "c"):
            _ = pop { $0.kind == .privateName }
            let sig = pop { $0.kind == .genericSignature }
            guard let type = popType() else { return nil }
            let labels = popLabels(type)
            guard let ctx = popContext() else { return nil }
            // Allocating initializers of classes print as __allocating_init.
            var isClass = false
            if case .nominal("C") = ctx.kind { isClass = true }
            var ch = [ctx, SNode(.identifier, c == UInt8(ascii: "C") && isClass ? "__allocating_init" : "init"), type]
            if let labels { ch.append(labels) }
            if let sig { ch.append(sig) }
            return SNode(.entity("constructor"), "", ch)
        case UInt8(ascii: "U"), UInt8(ascii: "u"):
            guard let idx = index() else { return nil }
            _ = popType()
            guard let ctx = popContext() else { return nil }
            let n = SNode(.entity(c == UInt8(ascii: "U") ? "closure" : "implicit closure"), "", [ctx])
            n.number = idx
            return n
        case UInt8(ascii: "A"):
            guard let idx = index(), let ctx = popContext() else { return nil }
            let n = SNode(.entity("default argument"), "", [ctx])
            n.number = idx
            return n
        case UInt8(ascii: "P"):
            guard let ctx = popContext() else { return nil }
            return SNode(.entity("property wrapper backing initializer"), "", [ctx])
        case UInt8(ascii: "W"):
            guard let ctx = popContext() else { return nil }
            return SNode(.entity("property wrapper init from projected value"), "", [ctx])
        default:
            return nil
        }
    }

    mutating func specialType() -> SNode? {
        let c = next()
        switch c {
        case UInt8(ascii: "E"), UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "K"), UInt8(ascii: "B"), UInt8(ascii: "C"), UInt8(ascii: "L"):
            // Function type flavours (noescape, thin, @convention(c), block, ...): the type itself.
            guard let f = popFunctionType() else { return nil }
            return f
        case UInt8(ascii: "p"):
            guard let t = popType() else { return nil }
            return SNode(.existentialMetatype, "", [t])
        case UInt8(ascii: "M"):
            _ = pop()
            guard let t = popType() else { return nil }
            return SNode(.metatype, "", [t])
        case UInt8(ascii: "l"): return SNode(.nominal("P"), "AnyObject", [])
        case UInt8(ascii: "o"), UInt8(ascii: "u"), UInt8(ascii: "w"):
            guard let t = popType() else { return nil }
            return t
        default:
            return nil
        }
    }

    mutating func metatypeOp() -> SNode? {
        let c = next()
        let simple: [UInt8: String] = [
            UInt8(ascii: "a"): "type metadata accessor for ", UInt8(ascii: "f"): "full type metadata for ",
            UInt8(ascii: "n"): "nominal type descriptor for ", UInt8(ascii: "m"): "metaclass for ",
            UInt8(ascii: "i"): "type metadata instantiation function for ", UInt8(ascii: "r"): "type metadata completion function for ",
            UInt8(ascii: "I"): "type metadata instantiation cache for ", UInt8(ascii: "l"): "type metadata lazy cache variable for ",
            UInt8(ascii: "L"): "type metadata lazy cache variable for ", UInt8(ascii: "D"): "demangling cache variable for type metadata for ",
            UInt8(ascii: "p"): "protocol descriptor for ", UInt8(ascii: "V"): "property descriptor for ",
            UInt8(ascii: "c"): "protocol conformance descriptor for ", UInt8(ascii: "u"): "method lookup function for ",
            UInt8(ascii: "o"): "class metadata base offset for ", UInt8(ascii: "P"): "generic type metadata pattern for ",
            UInt8(ascii: "z"): "", UInt8(ascii: "U"): "objective-c class stub for ",
        ]
        if c == UInt8(ascii: "X") {
            let k = next()
            if k == UInt8(ascii: "M") { _ = pop(); return SNode(.prefix("module descriptor "), "", [SNode(.module, "")]) }
            if k == UInt8(ascii: "E") || k == UInt8(ascii: "X") || k == UInt8(ascii: "Y") || k == UInt8(ascii: "A") { return nil }
            return nil
        }
        if c == UInt8(ascii: "F") { guard let t = pop() else { return nil }; return SNode(.prefix("reflection metadata field descriptor "), "", [t]) }
        if c == UInt8(ascii: "A") { guard let t = conformance() else { return nil }; return SNode(.prefix("reflection metadata associated type descriptor "), "", [t]) }
        if c == UInt8(ascii: "B") { guard let t = pop() else { return nil }; return SNode(.prefix("reflection metadata builtin descriptor "), "", [t]) }
        if c == UInt8(ascii: "c") {
            guard let conf = conformance() else { return nil }
            return SNode(.prefix("protocol conformance descriptor for "), "", [conf])
        }
        guard let prefix = simple[c], let t = pop() else { return nil }
        return SNode(.prefix(prefix), "", [t])
    }

    /// `type protocol module`: a protocol conformance.
    mutating func conformance() -> SNode? {
        guard pop() != nil, let proto = popProtocol(), let type = pop() else { return nil }
        return SNode(.conformance, "", [type, proto])
    }

    /// A protocol: a `P` type, a standard one, or an identifier with its context.
    mutating func popProtocol() -> SNode? {
        guard let top = pop() else { return nil }
        if top.kind == .identifier {
            guard let ctx = popContext() else { return nil }
            return SNode(.nominal("P"), top.text, [ctx])
        }
        return top
    }

    mutating func witness() -> SNode? {
        let c = next()
        switch c {
        case UInt8(ascii: "V"): guard let t = pop() else { return nil }; return SNode(.prefix("value witness table for "), "", [t])
        case UInt8(ascii: "z"), UInt8(ascii: "Z"):
            // A list of globals ended by `_`: the first names it.
            var names: [SNode] = []
            if pop({ $0.kind == .firstElementMarker }) != nil {
                while let n = pop({ $0.kind == .identifier || $0.kind == .privateName }) { names.append(n) }
            }
            guard let name = names.last ?? pop() else { return nil }
            return SNode(.prefix(c == UInt8(ascii: "z") ? "one-time initialization token for " : "one-time initialization function for "), "", [name])
        case UInt8(ascii: "O"):
            let k = next()
            let names: [UInt8: String] = [
                UInt8(ascii: "y"): "outlined copy of ", UInt8(ascii: "e"): "outlined consume of ",
                UInt8(ascii: "r"): "outlined retain of ", UInt8(ascii: "s"): "outlined release of ",
                UInt8(ascii: "b"): "outlined initializeWithTake of ", UInt8(ascii: "c"): "outlined initializeWithCopy of ",
                UInt8(ascii: "d"): "outlined assignWithTake of ", UInt8(ascii: "f"): "outlined assignWithCopy of ",
                UInt8(ascii: "h"): "outlined destroy of ",
            ]
            guard let name = names[k] else { return nil }
            _ = pop { $0.kind == .genericSignature }
            guard let t = popType() else { return nil }
            let text = k == UInt8(ascii: "c") ? "outlined init with copy of " : (k == UInt8(ascii: "b") ? "outlined init with take of " : (k == UInt8(ascii: "f") ? "outlined assign with copy of " : (k == UInt8(ascii: "d") ? "outlined assign with take of " : name)))
            return SNode(.prefix(text), "", [t])
        case UInt8(ascii: "P"):
            guard let conf = conformance() else { return nil }
            return SNode(.prefix("protocol witness table for "), "", [conf])
        case UInt8(ascii: "I"):
            guard let conf = conformance() else { return nil }
            return SNode(.prefix("instantiation function for generic protocol witness table for "), "", [conf])
        case UInt8(ascii: "b"):
            guard let base = popProtocol(), let conf = conformance() else { return nil }
            return SNode(.prefix("base witness table accessor for "), "", [base, SNode(.prefix(" in "), "", [conf])])
        case UInt8(ascii: "a"):
            guard let conf = conformance() else { return nil }
            return SNode(.prefix("protocol witness table accessor for "), "", [conf])
        case UInt8(ascii: "l"), UInt8(ascii: "L"):
            guard let conf = conformance(), let t = popType() else { return nil }
            let prefix = c == UInt8(ascii: "l") ? "lazy protocol witness table accessor for type " : "lazy protocol witness table cache variable for type "
            return SNode(.prefix(prefix), "", [t, SNode(.prefix(" and conformance "), "", [conf])])
        case UInt8(ascii: "v"):
            let k = next()
            guard let t = pop() else { return nil }
            return SNode(.prefix(k == UInt8(ascii: "d") ? "direct field offset for " : "indirect field offset for "), "", [t])
        default:
            i -= 1
            // Value witnesses ("wet", "wst", ...) come as a lowercase `w` in the outer op.
            return nil
        }
    }

    mutating func thunk() -> SNode? {
        let c = next()
        switch c {
        case UInt8(ascii: "A"): guard let e = pop() else { return nil }; return SNode(.prefix("partial apply for "), "", [e])
        case UInt8(ascii: "m"): guard let e = pop() else { return nil }; return SNode(.prefix("merged "), "", [e])
        case UInt8(ascii: "j"): guard let e = pop() else { return nil }; return SNode(.prefix("dispatch thunk of "), "", [e])
        case UInt8(ascii: "q"): guard let e = pop() else { return nil }; return SNode(.prefix("method descriptor for "), "", [e])
        case UInt8(ascii: "o"): guard let e = pop() else { return nil }; return SNode(.prefix("@objc "), "", [e])
        case UInt8(ascii: "O"): guard let e = pop() else { return nil }; return SNode(.prefix("@nonobjc "), "", [e])
        case UInt8(ascii: "D"): guard let e = pop() else { return nil }; return SNode(.prefix("dynamic "), "", [e])
        case UInt8(ascii: "d"): guard let e = pop() else { return nil }; return SNode(.prefix("direct "), "", [e])
        case UInt8(ascii: "W"):
            guard let e = pop(), let conf = conformance() else { return nil }
            return SNode(.prefix("protocol witness for "), "", [e, SNode(.prefix(" in conformance "), "", [conf])])
        case UInt8(ascii: "Q"), UInt8(ascii: "Y"):
            // Async resume/suspend partial functions: simplified output names the function.
            guard index() != nil, let e = pop() else { return nil }
            return e
        default:
            return nil
        }
    }
}

/// Prints parsed Swift symbols in swift-demangle's simplified style.
struct SwiftPrinter {
    var failed = false
    var depth = 0

    mutating func print(_ n: SNode) -> String {
        depth += 1
        defer { depth -= 1 }
        guard depth < 256, !failed else { failed = true; return "" }
        switch n.kind {
        case .identifier: return n.text
        case .module: return ""
        case .privateName: return n.children.last?.text ?? ""
        case .localName: return (n.children.first.map { print($0) } ?? "") + " #\(n.number + 1)"
        case .nominal:
            return qualified(n.children.first, n.text + (n.number > 0 ? " #\(n.number)" : ""), local: n.number > 0)
        case .boundGeneric:
            guard n.children.count == 2 else { failed = true; return "" }
            let base = n.children[0]
            // Argument levels, innermost first, separated by markers.
            var levels: [[SNode]] = [[]]
            for a in n.children[1].children {
                if a.kind == .firstElementMarker { levels.append([]) } else { levels[levels.count - 1].append(a) }
            }
            if levels.last?.isEmpty ?? false { levels.removeLast() }
            if levels.count > 1 || levels.first?.isEmpty ?? true { return bound(base, levels[...]) }
            let args = levels[0]
            if case .nominal = base.kind, base.children.first?.kind == .module, base.children.first?.text == "Swift" {
                switch base.text {
                case "Array" where args.count == 1: return "[" + print(args[0]) + "]"
                case "Optional" where args.count == 1: return optionalText(args[0])
                case "Dictionary" where args.count == 2: return "[" + print(args[0]) + " : " + print(args[1]) + "]"
                default: break
                }
            }
            return print(base) + "<" + args.map { print($0) }.joined(separator: ", ") + ">"
        case .tuple:
            let items = n.children.map { e -> String in
                let t = e.children.first.map { print($0) } ?? ""
                return (e.text.isEmpty ? "" : e.text + ": ") + t + (e.number == 1 ? "..." : "")
            }
            return "(" + items.joined(separator: ", ") + ")"
        case .function:
            guard n.children.count >= 2 else { failed = true; return "" }
            var params = print(n.children[0])
            if n.children[0].kind != .tuple { params = "(" + params + ")" }
            var flags = ""
            if n.children.dropFirst(2).contains(where: { $0.kind == .async }) { flags += " async" }
            if n.children.dropFirst(2).contains(where: { $0.kind == .throwsMark }) { flags += " throws" }
            return params + flags + " -> " + print(n.children[1])
        case .genericParam: return n.text
        case .protocolList:
            if n.children.isEmpty { return "Any" }
            return n.children.map { print($0) }.joined(separator: " & ")
        case .metatype: return print(n.children[0]) + ".Type"
        case .existentialMetatype: return print(n.children[0]) + ".Type"
        case .dependentMember: return print(n.children[0]) + "." + n.text
        case .inoutType: return "inout " + print(n.children[0])
        case .owned: return "__owned " + print(n.children[0])
        case .shared: return "__shared " + print(n.children[0])
        case .staticEntity: return "static " + print(n.children[0])
        case .extension_:
            guard n.children.count >= 2 else { failed = true; return "" }
            var t = print(n.children[1])
            if n.children.count > 2, n.children[2].kind == .genericSignature, !t.hasSuffix(">") {
                t += "<" + (0..<max(1, n.children[2].number)).map { SwiftParser.paramName(depth: 0, index: $0) }.joined(separator: ", ") + ">"
            }
            return t
        case .accessor(let name):
            return print(n.children[0]) + "." + name
        case .entity(let kind):
            return entity(kind, n)
        case .prefix(let p):
            return p + n.children.map { print($0) }.joined()
        case .conformance:
            // Simplified output names the conforming type only.
            return print(n.children[0])
        default:
            failed = true
            return ""
        }
    }

    mutating func bound(_ n: SNode, _ levels: ArraySlice<[SNode]>) -> String {
        guard let args = levels.first else { return print(n) }
        guard case .nominal = n.kind else { return print(n) }
        var ctx = ""
        if let c = n.children.first {
            if case .nominal = c.kind { ctx = bound(c, levels.dropFirst()) } else { ctx = print(c) }
        }
        let own = args.isEmpty ? "" : "<" + args.map { print($0) }.joined(separator: ", ") + ">"
        return (ctx.isEmpty ? "" : ctx + ".") + n.text + own
    }

    mutating func optionalText(_ t: SNode) -> String {
        let inner = print(t)
        if t.kind == .function || t.kind == .protocolList && t.children.count > 1 { return "(" + inner + ")?" }
        return inner + "?"
    }

    mutating func qualified(_ ctx: SNode?, _ name: String, local: Bool = false) -> String {
        guard let ctx else { return name }
        if local { return name + " in " + print(ctx) }
        let c = print(ctx)
        return c.isEmpty ? name : c + "." + name
    }

    mutating func entity(_ kind: String, _ n: SNode) -> String {
        let ctx = n.children.first
        switch kind {
        case "closure", "implicit closure":
            return "\(kind) #\(n.number + 1) in " + (ctx.map { print($0) } ?? "")
        case "default argument":
            return "default argument \(n.number) of " + (ctx.map { print($0) } ?? "")
        case "deallocator": return qualified(ctx, "__deallocating_deinit")
        case "destructor": return qualified(ctx, "deinit")
        case "ivar destroyer", "ivar initializer", "variable initialization expression",
             "property wrapper backing initializer", "property wrapper init from projected value":
            return kind + " of " + (ctx.map { print($0) } ?? "")
        default:
            break
        }
        guard n.children.count >= 3 else { failed = true; return "" }
        let nameNode = n.children[1]
        let local = nameNode.kind == .localName
        let name = print(nameNode)
        var text = local ? name : qualified(ctx, name)
        if kind == "variable" || kind == "subscript" { return local ? text + " in " + (ctx.map { print($0) } ?? "") : text }
        if let sig = n.children.first(where: { $0.kind == .genericSignature }) ?? n.children[2].children.first(where: { $0.kind == .genericSignature }) {
            text += "<" + (0..<max(1, sig.number)).map { SwiftParser.paramName(depth: 0, index: $0) }.joined(separator: ", ") + ">"
        }
        let type = n.children[2]
        var count = 0
        if type.kind == .function, let p = type.children.first { count = p.kind == .tuple ? p.children.count : 1 }
        else if kind == "variable" { return text }
        let labels = n.children.first(where: { $0.kind == .labelList })?.children ?? []
        var parts: [String] = []
        for k in 0..<count {
            if k < labels.count, labels[k].kind == .identifier { parts.append(labels[k].text + ":") } else { parts.append("_:") }
        }
        if local { return text + " (" + parts.joined() + ") in " + (ctx.map { print($0) } ?? "") }
        return text + "(" + parts.joined() + ")"
    }
}
