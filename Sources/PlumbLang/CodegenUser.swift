// USDT arguments: `argN` at a USDT probe reads the N-th argument as the site's note describes
// it (register, memory, constant or SYM(%rip)), typed by its size and signedness. Sites of one
// probe name may place an argument differently (inlined copies, other compilers' choices):
// the runtime gives site i the attach cookie i (Program.attachUSDT's default, same site order
// as USDTResolver.matching), and the program dispatches on bpf_get_attach_cookie to that
// site's load sequence. Symbol operands are relocated by pt_regs->ip minus the site's address,
// which is right in every process that maps the binary, PIE or not.
import PlumbAsm
import PlumbBPF
import PlumbELF

extension Compiler {
    static let getAttachCookieHelper: Int32 = 174

    func usdtArg(_ n: Int, sites: [USDTProbe], _ e: Expr) -> Val {
        var args: [USDTArgument] = []
        for s in sites {
            guard let a = s.arguments else {
                error("the arguments of usdt probe \(s.qualifiedName) cannot be read: its note's spec '\(s.argumentText)' is not understood", e.range)
                return .poison
            }
            guard n >= 0, n < a.count else {
                error(a.isEmpty ? "usdt probe \(s.qualifiedName) has no arguments; arg\(n) is out of range"
                      : "usdt probe \(s.qualifiedName) has \(a.count) argument\(a.count == 1 ? "" : "s") (arg0..arg\(a.count - 1)); arg\(n) is out of range", e.range)
                return .poison
            }
            args.append(a[n])
        }
        guard let first = args.first else { return .poison }
        let size = args.allSatisfy({ $0.size == first.size }) ? first.size : 8
        let signed = args.contains(where: \.isSigned)
        let type = SType.int(size: [1, 2, 4, 8].contains(size) ? size : 8, signed: signed)
        let slot = frame.allocate(8)

        // Sites whose loads are identical share one sequence (symbol operands depend on the site address).
        var groups: [(arg: USDTArgument, address: UInt64, cookies: [Int])] = []
        for (i, a) in args.enumerated() {
            let address = a.location.symbol != nil ? sites[i].address : 0
            if let g = groups.firstIndex(where: { $0.arg == a && $0.address == address }) { groups[g].cookies.append(i) }
            else { groups.append((a, address, [i])) }
        }
        func load(_ g: (arg: USDTArgument, address: UInt64, cookies: [Int]), site: USDTProbe) -> Bool {
            do {
                try g.arg.emitLoad(into: &b, context: .r6, destination: .r0,
                                   loadBias: .instructionPointer(siteAddress: site.address), stackOffset: Int16(clamping: slot))
                return true
            } catch {
                self.error("cannot read arg\(n) of usdt probe \(site.qualifiedName): \(error)", e.range)
                return false
            }
        }
        if groups.count == 1 {
            guard load(groups[0], site: sites[groups[0].cookies[0]]) else { return .poison }
        } else {
            let done = b.newLabel()
            b.emit(.mov64(.r1, .r6))
            b.emit(.call(helper: Compiler.getAttachCookieHelper))
            b.emit(.mov64(.r1, .r0))
            var labels: [Label] = []
            for g in groups.dropLast() {
                let l = b.newLabel()
                labels.append(l)
                for c in g.cookies { b.jump(.jeq, .r1, imm: Int32(clamping: c), to: l) }
            }
            // The last group is the fall-through (an unknown cookie reads the last site's way).
            guard let lastGroup = groups.last, load(lastGroup, site: sites[lastGroup.cookies[0]]) else { return .poison }
            b.goto(done)
            for (g, l) in zip(groups.dropLast(), labels) {
                b.bind(l)
                guard load(g, site: sites[g.cookies[0]]) else { return .poison }
                b.goto(done)
            }
            b.bind(done)
        }
        return result(type, from: .r0)
    }
}
