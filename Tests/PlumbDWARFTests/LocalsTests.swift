// Statement sites and locals at a pc (LocalsAtPC.swift): the symbolic evaluation of location
// expressions (no binary needed), and the answers on Tests/Fixtures/tracer-user/locals.c built
// with gcc and clang at -O0 and -O2, checked against objdump's line table.
import Testing
import PlumbDWARF
import TestSupport

@Suite struct LocationEvaluatorTests {
    let rsp = DWARFValue.register(7)
    func eval(_ ops: [DWARFOp], frameBase: [DWARFOp]? = [.callFrameCFA], cfa: CFARule? = .register(7, 8),
              types: [Int: DWARFLocationEvaluator.BaseType] = [:]) -> Result<DWARFPlace, DWARFUnavailable> {
        DWARFLocationEvaluator(frameBase: frameBase, cfa: cfa, baseTypes: types).evaluate(ops)
    }

    @Test func simpleLocations() throws {
        #expect(try eval([.reg(3)]).get() == .register(3))
        #expect(try eval([.breg(7, 16)]).get() == .memory(.binary(.plus, rsp, .constant(16))))
        #expect(try eval([.addr(0x4010)]).get() == .memory(.linkAddress(0x4010)))
        #expect(try eval([.const(5), .stackValue]).get() == .value(.constant(5)))
        #expect(try eval([.implicitValue([1, 0, 0, 0])]).get() == .implicit([1, 0, 0, 0]))
        // A loop counter already incremented: rbx - 1 is the value.
        #expect(try eval([.breg(3, -1), .stackValue]).get() == .value(.binary(.plus, .register(3), .constant(-1))))
        #expect(try eval([.breg(3, 0), .breg(3, 0), .mul, .stackValue]).get()
                == .value(.binary(.mul, .register(3), .register(3))))
    }

    @Test func frameBase() throws {
        // gcc: frame base = CFA; CFA = rsp + 48 at this pc; fbreg -88 = rsp - 40.
        #expect(try eval([.fbreg(-88)], cfa: .register(7, 48)).get() == .memory(.binary(.plus, rsp, .constant(-40))))
        // clang -O0: frame base = rbp (the register's contents).
        #expect(try eval([.fbreg(-20)], frameBase: [.reg(6)]).get() == .memory(.binary(.plus, .register(6), .constant(-20))))
        #expect(try eval([.fbreg(8)], frameBase: [.breg(7, 8)]).get() == .memory(.binary(.plus, rsp, .constant(16))))
        #expect(eval([.fbreg(-8)], frameBase: nil) == .failure(.unsupported("DW_OP_fbreg without a frame base at this address")))
        #expect(eval([.callFrameCFA], cfa: nil)
                == .failure(.unsupported("DW_OP_call_frame_cfa with no call frame information at this address")))
    }

    @Test func pieces() throws {
        // clang -O2's struct span { int lo; int hi; } = { i, i + n }: r13, then r13 + (int)*(rsp+32).
        let ops: [DWARFOp] = [.reg(13), .piece(size: 4), .breg(13, 0), .breg(7, 32), .deref, .convert(0x27), .plus, .stackValue, .piece(size: 4)]
        let place = try eval(ops, types: [0x27: .init(size: 4, signed: true)]).get()
        let hi = DWARFValue.binary(.plus, .register(13), .convert(.load(.binary(.plus, rsp, .constant(32)), size: 8), size: 4, signed: true))
        #expect(place == .pieces([(4, .register(13)), (4, .value(hi))]))
        // A missing part stays nil; all parts missing is optimized out.
        #expect(try eval([.piece(size: 4), .reg(0), .piece(size: 4)]).get() == .pieces([(4, nil), (4, .register(0))]))
        #expect(eval([.piece(size: 4), .piece(size: 4)]) == .failure(.optimizedOut(available: [])))
    }

    @Test func unavailable() {
        #expect(eval([.entryValue([.reg(5)]), .stackValue]) == .failure(.entryValue))
        #expect(eval([.implicitPointer(die: 10, offset: 0)]) == .failure(.unsupported("DW_OP_implicit_pointer (a pointer to an optimized-out object)")))
        #expect(eval([.plus]) == .failure(.unsupported("an expression that pops an empty stack")))
        #expect(eval([.const(1), .stackValue, .const(2)]) == .failure(.unsupported("operators after DW_OP_stack_value")))
        #expect(DWARFUnavailable.optimizedOut(available: []).description == "optimized out")
        #expect(DWARFUnavailable.entryValue.description.hasPrefix("optimized out (only its value at the function's entry"))
    }
}

extension LocationEvaluatorTests {
    /// Hostile expressions (random operators, huge pieces and picks, duplication bombs) give a
    /// place or a reason, never a crash.
    @Test func randomExpressionsNeverCrash() {
        let pool: [DWARFOp] = [.reg(3), .reg(40), .breg(7, -8), .fbreg(16), .callFrameCFA, .addr(0x4000), .const(-1), .deref,
                               .derefSize(9), .derefSize(4), .plusUconst(.max), .dup, .drop, .over, .pick(200), .pick(1), .swap, .rot,
                               .neg, .abs, .not, .plus, .minus, .mul, .div, .mod, .shl, .shra, .eq, .lt, .stackValue, .piece(size: 4),
                               .piece(size: .max), .bitPiece(size: 12, offset: 3), .entryValue([.reg(5)]), .implicitValue([1, 2]),
                               .implicitPointer(die: 0, offset: 0), .tlsAddress, .bra(-3), .convert(9), .constType(typeDIE: 9, bytes: [1]),
                               .regvalType(reg: 1, typeDIE: 9), .other(0xee), .nop]
        var rng = SplitMix(seed: 10)
        for _ in 0..<3000 {
            let ops = (0..<Int.random(in: 1...12, using: &rng)).map { _ in pool.randomElement(using: &rng) ?? .nop }
            _ = eval(ops, types: [9: .init(size: 2, signed: true)])
        }
        // A duplication bomb stays a shared tree (the code generator bounds what it emits).
        let bomb: [DWARFOp] = [.breg(0, 0)] + Array(repeating: [DWARFOp.dup, .plus], count: 64).flatMap { $0 } + [.stackValue]
        #expect((try? eval(bomb).get()) != nil)
    }
}

@Suite struct StatementSiteTests {
    func objdumpStatementAddresses(_ path: String, line: Int) -> Set<UInt64> { Progs.decodedLines(path, file: "locals.c", line: line) }

    @Test(arguments: LocalsFixtures.names) func sitesAndLines(_ flavour: String) throws {
        let path = try LocalsFixtures.path(flavour)
        let d = try DWARF.load(binary: path)
        let loop = try LocalsFixtures.line("loop"), inline = try LocalsFixtures.line("inline")
        let loopSites = try d.statementSites(file: "locals.c", line: loop)
        #expect(loopSites.count == 1 && loopSites.first?.function == "work", "\(loopSites)")
        // The inlined helper's line: one site per inlined copy, both in work.
        let inlineSites = try d.statementSites(file: "locals.c", line: inline)
        #expect(inlineSites.count == 2 && inlineSites.allSatisfy { $0.function == "work" && $0.inlined == "scaled" }, "\(inlineSites)")
        let rows = objdumpStatementAddresses(path, line: inline).union(objdumpStatementAddresses(path, line: loop))
        for s in loopSites + inlineSites { #expect(rows.contains(s.address), "0x\(String(s.address, radix: 16)) is no statement row of objdump's") }
        // FUNC narrows; a comment line has no code; a path suffix matches.
        #expect(try d.statementSites(file: "locals.c", line: loop, function: "main").isEmpty)
        #expect(try d.statementSites(file: "tracer-user/locals.c", line: loop) == loopSites)
        let lines = try d.linesWithCode(file: "locals.c")
        #expect(lines.contains(loop) && !lines.contains(1))
    }

    @Test(arguments: LocalsFixtures.names) func localsAtTheLoop(_ flavour: String) throws {
        let d = try DWARF.load(binary: try LocalsFixtures.path(flavour))
        let site = try #require(try d.statementSites(file: "locals.c", line: try LocalsFixtures.line("loop")).first)
        for name in ["i", "square", "total", "pt"] + (flavour == "clang-O2" ? [] : ["n"]) {
            let l = try #require(try d.local(named: name, at: site.address), "\(name)")
            #expect((try? l.place.get()) != nil, "\(flavour): \(name) is \(l.place)")
        }
        // clang -O2 keeps the parameter only as its value at entry (gdb finds it through the caller's call site).
        if flavour == "clang-O2" { #expect(try #require(try d.local(named: "n", at: site.address)).place == .failure(.entryValue)) }
        // The struct that the program takes the address of stays in memory.
        let pt = try #require(try d.local(named: "pt", at: site.address))
        if case .success(.memory) = pt.place {} else { Issue.record("pt is \(pt.place), not in memory") }
        #expect(try d.local(named: "nosuch", at: site.address) == nil)
        let names = try d.localNames(at: site.address)
        #expect(Set(["n", "who", "total", "pt", "owner", "a", "b", "i", "square", "range"]).isSubset(of: Set(names)), "\(names)")
        // `a` is assigned after the loop: optimized gcc code has no location for it yet, and says where it has one.
        if flavour.hasPrefix("gcc-O2") {
            let a = try #require(try d.local(named: "a", at: site.address))
            guard case .failure(.optimizedOut(let ranges)) = a.place else { Issue.record("a is \(a.place)"); return }
            #expect(!ranges.isEmpty && ranges.allSatisfy { !$0.contains(site.address) })
        }
    }
}
