// bpftrace 0.17's warnings for mixing signed and unsigned integers: in a comparison
// ("comparison of integers of different signs") and in + - * / % ("arithmetic on integers of
// different signs"). A non-negative integer literal fits either sign and silences it, as
// there; a negative one (`-1`, `0x8000000000000000`), a cast or a folded expression does not.
extension Compiler {
    /// Warns (final pass only) when `a` and `c`, the values of `l` and `r`, differ in sign.
    func warnMixedSigns(_ op: BinaryOperator, _ a: Val, _ c: Val, _ l: Expr, _ r: Expr, _ e: Expr) {
        guard isFinalPass, a.type.isInteger, c.type.isInteger, a.type != .bool, c.type != .bool,
              a.type.isSigned != c.type.isSigned else { return }
        func fitsEither(_ x: Expr) -> Bool {
            if case .integer(let n) = x.kind { return Int64(exactly: n) != nil }
            return false
        }
        if fitsEither(l) || fitsEither(r) { return }
        let what: String
        switch op {
        case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual: what = "comparison of"
        case .add, .subtract, .multiply, .divide, .modulo: what = "arithmetic on"
        default: return
        }
        warning("\(what) integers of different signs: '\(a.type)' and '\(c.type)' can lead to undefined behavior",
                operatorRange(op, l, r, e))
    }

    /// The operator's own range between its operands (bpftrace points there), else the expression's.
    func operatorRange(_ op: BinaryOperator, _ l: Expr, _ r: Expr, _ e: Expr) -> SourceRange {
        let bytes = Array(file.text.utf8)
        let symbol = Array(op.rawValue.utf8)
        guard !symbol.isEmpty, l.range.end <= r.range.start, r.range.start <= bytes.count else { return e.range }
        var i = l.range.end
        // Between the operands only closing parentheses, blanks and the operator can appear.
        while i + symbol.count <= r.range.start {
            if Array(bytes[i..<(i + symbol.count)]) == symbol {
                // A compound assignment (`@x /= 2`): bpftrace underlines the whole `/=`.
                let compound = i + symbol.count < r.range.start && bytes[i + symbol.count] == UInt8(ascii: "=")
                return SourceRange(i, i + symbol.count + (compound ? 1 : 0))
            }
            i += 1
        }
        return e.range
    }

    /// The `=` between an assignment's target and its value (the last one: `+=` gives its `=`).
    func assignmentSign(_ target: Expr, _ value: Expr) -> SourceRange? {
        let bytes = Array(file.text.utf8)
        guard target.range.end <= value.range.start, value.range.start <= bytes.count else { return nil }
        var i = value.range.start - 1
        while i >= target.range.end {
            if bytes[i] == UInt8(ascii: "=") { return SourceRange(i, i + 1) }
            i -= 1
        }
        return nil
    }
}
