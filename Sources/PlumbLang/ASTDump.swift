// A compact S-expression rendering of the syntax tree: what the parser tests compare and
// what a `--dump-ast` style debug flag can print. One line per script, no ranges or ids.

extension Expr {
    /// `(+ 1 (* 2 3))`, `(call printf "%d\n" pid)`, `(-> (cast struct task_struct * curtask) pid)`.
    public var sexpr: String {
        switch kind {
        case .integer(let v): return String(v)
        case .boolean(let b): return b ? "true" : "false"
        case .string(let s): return quoted(s)
        case .builtin(let n): return n
        case .positional(let n): return "$\(n)"
        case .positionalCount: return "$#"
        case .variable(let n): return "$\(n)"
        case .map(let n, let keys): return keys.isEmpty ? "@\(n)" : "(@\(n)" + keys.map { " " + $0.sexpr }.joined() + ")"
        case .call(let n, let args): return "(call \(n)" + args.map { " " + $0.sexpr }.joined() + ")"
        case .unary(let op, let e): return "(\(op.rawValue) \(e.sexpr))"
        case .binary(let op, let a, let b): return "(\(op.rawValue) \(a.sexpr) \(b.sexpr))"
        case .ternary(let c, let a, let b): return "(? \(c.sexpr) \(a.sexpr) \(b.sexpr))"
        case .increment(let e, let dec, let pre):
            let op = dec ? "--" : "++"
            return pre ? "(\(op)pre \(e.sexpr))" : "(post\(op) \(e.sexpr))"
        case .cast(let t, let e): return "(cast \(t) \(e.sexpr))"
        case .field(let e, let name, let arrow): return "(\(arrow ? "->" : ".") \(e.sexpr) \(name))"
        case .index(let a, let b): return "([] \(a.sexpr) \(b.sexpr))"
        case .tuple(let es): return "(tuple" + es.map { " " + $0.sexpr }.joined() + ")"
        case .tupleIndex(let e, let i): return "(.\(i) \(e.sexpr))"
        case .sizeofType(let t): return "(sizeof \(t))"
        case .sizeofExpr(let e): return "(sizeof \(e.sexpr))"
        case .offsetof(let t, let path): return "(offsetof \(t) \(path.joined(separator: ".")))"
        }
    }
}

private func quoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        default:
            if u.value < 32 || u.value == 127 {
                out += "\\x" + (u.value < 16 ? "0" : "") + String(u.value, radix: 16)
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

extension Block {
    public var sexpr: String { "{" + statements.map { " " + $0.sexpr }.joined() + " }" }
}

extension Stmt {
    public var sexpr: String {
        switch kind {
        case .expression(let e): return e.sexpr
        case .assign(let t, let op, let v): return "(\(op?.rawValue ?? "")= \(t.sexpr) \(v.sexpr))"
        case .ifElse(let c, let a, let b): return "(if \(c.sexpr) \(a.sexpr)" + (b.map { " else " + $0.sexpr } ?? "") + ")"
        case .unroll(let n, let b): return "(unroll \(n.sexpr) \(b.sexpr))"
        case .whileLoop(let c, let b): return "(while \(c.sexpr) \(b.sexpr))"
        case .forMap(let v, _, let m, let b): return "(for $\(v) \(m.sexpr) \(b.sexpr))"
        case .forRange(let v, _, let s, let e, let b): return "(for $\(v) \(s.sexpr)..\(e.sexpr) \(b.sexpr))"
        case .returnStatement(let e): return e.map { "(return \($0.sexpr))" } ?? "(return)"
        case .breakStatement: return "break"
        case .continueStatement: return "continue"
        case .block(let b): return b.sexpr
        }
    }
}

extension Probe {
    /// `kprobe:f,BEGIN /pred/ { ... }` with canonical attach points.
    public var sexpr: String {
        attachPoints.map(\.canonical).joined(separator: ",") + (predicate.map { " /\($0.sexpr)/" } ?? "") + " " + body.sexpr
    }
}

extension Script {
    /// Every part of the script, one per line: includes, types, config, probes.
    public var sexpr: String {
        var lines: [String] = includes.map { "#include \($0)" }
        for s in structs {
            lines.append("(\(s.isUnion ? "union" : "struct") \(s.name)" + s.fields.map { " (\($0.type) \($0.name))" }.joined() + ")")
        }
        for c in config { lines.append("(config \(c.name) \(c.value.sexpr))") }
        lines += probes.map(\.sexpr)
        return lines.joined(separator: "\n")
    }
}
