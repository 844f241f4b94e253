// path(p): the full path of a `struct path` (or of what a `struct path *` points at), from the
// kernel's bpf_d_path helper into a string. The kernel allows that helper in iterators and in
// fentry/fexit programs of some functions, and only on a pointer its verifier types (a BTF
// pointer, not a number read with a helper). So the argument is compiled apart from other
// expressions, as a chain the verifier can follow:
//   ctx, args.P (fentry)          the context, or a parameter loaded from it;
//   X->p, X.p (p a pointer)       loaded directly from X's object, then checked against NULL;
//   X->s, X.s, &X->s (s a struct) the member's address, X's plus its offset.
// A NULL pointer on the way leaves the string empty, as bpftrace's does.
import PlumbAsm
import PlumbBTF

extension Compiler {
    static let dPathHelper: Int32 = 147

    func path(_ args: [Expr], _ e: Expr) -> Val {
        guard checkArity("path", 1...1, args, e) else { return .poison }
        guard let kind = programKind, kind.attach == .iterator || kind.attach == .tracing else {
            error("path() is only available in iter and kfunc/kretfunc (fentry/fexit) probes: the kernel allows bpf_d_path only there", e.range)
            return .poison
        }
        guard let btf, let pathType = btf.firstID(named: "path", kind: .struct) else {
            error("path() needs the kernel's BTF (struct path)", e.range)
            return .poison
        }
        let size = options.stringLength
        let o = frame.allocate(size)
        zero(slot: o, size: (size + 7) / 8 * 8)
        let null = b.newLabel()
        guard let object = trustedObject(args[0], null: null) else {
            b.bind(null)   // jumps may have been emitted before the chain broke off
            if !diagnostics.contains(where: { $0.severity == .error && $0.range == args[0].range }) {
                error("path() takes a member chain the kernel's verifier can follow, such as path(ctx->file->f_path) or path(args.file->f_path)", args[0].range)
            }
            return .poison
        }
        guard (try? btf.resolve(object)) == pathType else {
            b.bind(null)
            error("path() expects a struct path or a pointer to one ('\(btf.cTypeName(object))' supplied)", args[0].range)
            return .poison
        }
        address(ofSlot: o, into: .r2)
        b.emit(.mov64(.r3, Int32(clamping: size)))
        b.emit(.call(helper: Compiler.dPathHelper))
        b.bind(null)
        return Val(type: .string(size: size), loc: .slot(o))
    }

    /// Compiles `e` to the address of a kernel object in r1, typed for the verifier, and returns
    /// the object's BTF type; jumps to `null` when a pointer on the way is NULL. Nil (with an
    /// error when something specific is wrong) when `e` is not such a chain.
    func trustedObject(_ e: Expr, null: Label) -> TypeID? {
        guard let btf else { return nil }
        switch e.kind {
        case .builtin("ctx"):
            guard let k = programKind, k.attach == .iterator,
                  let id = btf.firstID(named: "bpf_iter__" + k.target, kind: .struct) else { return nil }
            b.emit(.mov64(.r1, .r6))
            return id
        case .field(let base, let name, _):
            // fentry/fexit: args.P is parameter P, a u64 in the context array.
            if case .builtin("args") = base.kind, case .btf(let params, _) = context {
                guard let i = params.firstIndex(where: { $0.name == name }) else { return nil }
                guard case .pointer(.record(let id, _, _), _) = params[i].type else {
                    error("path() needs a pointer to a kernel struct here, and parameter '\(name)' is '\(params[i].type)'", e.range)
                    return nil
                }
                b.emit(.load(.r1, .r6, offset: Int16(clamping: 8 * i), size: .doubleWord))
                b.jump(.jeq, .r1, imm: 0, to: null)
                return id
            }
            guard let owner = trustedObject(base, null: null), let record = try? btf.resolve(owner) else { return nil }
            guard let m = try? btf.findMember(name, in: record) else {
                memberError(name, in: record, range: e.range)
                return nil
            }
            let offset = Int32(m.bitOffset / 8)
            guard let member = try? btf.resolve(m.type) else { return nil }
            switch btf.kind(of: member) {
            case .pointer:
                guard let pointee = try? btf.resolve(btf.type(member).type), btf.kind(of: pointee).isComposite else {
                    error("'\(name)' does not point at a struct or union", e.range)
                    return nil
                }
                b.emit(.load(.r1, .r1, offset: Int16(clamping: offset), size: .doubleWord))
                b.jump(.jeq, .r1, imm: 0, to: null)
                return pointee
            case let k where k.isComposite:
                if offset != 0 { b.emit(.add64(.r1, offset)) }
                return member
            default:
                error("'\(name)' is neither a struct nor a pointer to one", e.range)
                return nil
            }
        case .unary(.addressOf, let x):
            return trustedObject(x, null: null)
        default:
            return nil
        }
    }
}
