// DWARF from programs we compile ourselves, checked against the compiler's own answers
// (the program prints offsetof/sizeof), nm, objdump's decoded line table and addr2line.
import Foundation
import Testing
import PlumbDWARF
import PlumbBTF
import PlumbELF
import TestSupport

@Suite struct ProgramTests {
    static let lineSum = 36

    @Test(arguments: Progs.flavours)
    func structLayoutMatchesCompiler(_ f: Flavour) throws {
        let path = try Progs.build(f)
        let want = Progs.layout(path)
        let d = try DWARF.load(binary: path)
        let id = try d.typeID(named: "struct node")
        let btf = try d.btf()
        let t = try btf.type(id)
        #expect(t.kind == .struct)
        #expect(Int(t.size) == want["node"])
        var byName: [String: BTFMember] = [:]
        for m in t.members { byName[m.name] = m }
        for field in ["next", "pos", "name", "big", "ratio", "u", "cb", "matrix", "cv", "color", "tail"] {
            #expect(byName[field].map { Int($0.bitOffset) / 8 } == want[field], "\(field)")
        }
        #expect(t.kindFlag, "struct node has bitfields")
        #expect(byName["flags"].map { Int($0.bitOffset) } == want["flags"])
        #expect(byName["flags"]?.bitfieldSize == 3)
        #expect(byName["mode"].map { Int($0.bitOffset) } == want["mode"])
        #expect(byName["mode"]?.bitfieldSize == 5)
        // Types of members, through the BTF model.
        let next = try btf.type(byName["next"]!.type)
        #expect(next.kind == .pointer && next.type == id, "self-reference closes on the same struct")
        let name = try btf.type(byName["name"]!.type)
        #expect(name.arrayInfo?.count == 16)
        let matrix = try btf.type(byName["matrix"]!.type)
        #expect(matrix.arrayInfo?.count == 2)
        let inner = try btf.type(matrix.arrayInfo!.elementType)
        #expect(inner.arrayInfo?.count == 3)
        #expect(try btf.resolved(inner.arrayInfo!.elementType).name == "int")
        #expect(try btf.type(byName["tail"]!.type).arrayInfo?.count == 0)
        #expect(try btf.type(byName["u"]!.type).kind == .union)
        let cb = try btf.type(try btf.type(byName["cb"]!.type).type)
        #expect(cb.kind == .functionProto)
        #expect(cb.params.count == 2 && cb.params[1].type == 0, "varargs end with a void parameter")
        var cv = try btf.type(try btf.type(byName["cv"]!.type).type)
        var quals: Set<BTFKind> = []
        while cv.kind.isModifier { quals.insert(cv.kind); cv = try btf.type(cv.type) }
        #expect(quals == [.const, .volatile] && cv.name == "int")
        let ratio = try btf.type(byName["ratio"]!.type)
        #expect(ratio.kind == .float && ratio.size == 8)
        // The whole BTF prints as C.
        let c = try btf.cDump()
        #expect(c.contains("struct node {"), "\(c)")
    }

    @Test(arguments: Progs.flavours)
    func enumsAndTypedefs(_ f: Flavour) throws {
        let d = try DWARF.load(binary: try Progs.build(f))
        // Ids first, then the BTF that holds them (btf() is a snapshot of what is converted so far).
        let colorID = try d.typeID(named: "enum color"), bigID = try d.typeID(named: "enum big")
        let tdID = try d.typeID(named: "node_t")
        let btf = try d.btf()
        let c = try btf.type(colorID)
        #expect(c.kind == .enum)
        #expect(c.enumerators.map(\.name) == ["RED", "GREEN", "BLUE"])
        #expect(c.enumerators.map { Int32(truncatingIfNeeded: $0.value) } == [0, 5, -1])
        #expect(c.isSignedEnum)
        let big = try btf.type(bigID)
        #expect(big.kind == .enum64 && big.enumerators.first?.value == 0x1_0000_0000)
        let td = try btf.type(tdID)
        #expect(td.kind == .typedef)
        #expect(try btf.type(td.type).name == "node")
        #expect(throws: DWARFError.noSuchType("struct nope")) { try d.typeID(named: "struct nope") }
        // A struct defined inside another is file-scope in C.
        let inner = try d.typeID(named: "struct inner")
        #expect(try d.btf().type(inner).members.map(\.name) == ["deep"])
    }

    @Test(arguments: Progs.flavours)
    func functionsAndParameters(_ f: Flavour) throws {
        let path = try Progs.build(f)
        let syms = Progs.symbols(path)
        let d = try DWARF.load(binary: path)
        let add = try d.function(named: "add_points")
        let acc = try d.function(named: "accumulate@prog.c")
        let main = try d.function(named: "main")
        #expect(add.lowPC == syms["add_points"])
        #expect(add.isExternal)
        #expect(add.parameters.map(\.name) == ["a", "b", "scale"])
        let btf = try d.btf()
        let a = try btf.type(add.parameters[0].type)
        let pointee = try btf.type(a.type)
        #expect(a.kind == .pointer && pointee.name == "point")
        #expect(try btf.type(add.parameters[1].type).name == "point")
        #expect(try btf.type(add.parameters[2].type).name == "int")
        #expect(try btf.type(add.returnType).name == "int")
        let fn = try btf.type(add.function)
        #expect(fn.kind == .function && fn.name == "add_points")
        #expect(try btf.type(fn.type).params.map(\.name) == ["a", "b", "scale"])
        // At the first instruction the first argument is in rdi (DWARF register 5).
        let scope = try #require(try d.variables(at: add.lowPC))
        #expect(scope.function == "add_points")
        let aAtEntry = scope.variables.first { $0.variable.name == "a" }
        if f.flags.contains("-O0") {
            #expect(aAtEntry?.expression?.first.map { op in
                if case .fbreg = op { return true }
                if case .breg = op { return true }
                return false
            } == true, "\(String(describing: aAtEntry?.expression))")
        } else {
            #expect(aAtEntry?.expression == [.reg(5)], "\(String(describing: aAtEntry?.expression))")
        }
        // The static function, chosen by file.
        #expect(!acc.isExternal)
        #expect(acc.lowPC == syms["accumulate"] || syms.keys.contains { $0.hasPrefix("accumulate") })
        #expect(acc.parameters.map(\.name) == ["n", "extra"])
        let n = try btf.type(try btf.type(acc.parameters[0].type).type)
        #expect(n.name == "node_t")
        #expect(throws: DWARFError.noSuchFunction("add_points@other.c")) { try d.function(named: "add_points@other.c") }
        #expect(try d.function(containing: add.lowPC + 1)?.name == "add_points")
        #expect(main.parameters.map(\.name) == ["argc", "argv"])
        // Types reached through parameters are in the name map too.
        #expect(d.typeIDs["struct point"] == a.type)
        #expect(d.typeIDs["int"] != nil)
    }

    @Test(arguments: Progs.flavours)
    func globalsMatchSymbolTable(_ f: Flavour) throws {
        let path = try Progs.build(f)
        let syms = Progs.symbols(path)
        let d = try DWARF.load(binary: path)
        let g = try d.variable(named: "global_counter")
        #expect(g.address == syms["global_counter"])
        #expect(try d.btf().type(g.type).name == "int")
        let s = try d.variable(named: "static_total@prog.c")
        #expect(s.address == syms["static_total"])
        let greeting = try d.variable(named: "greeting")
        #expect(greeting.address == syms["greeting"])
        #expect(try d.btf().type(greeting.type).kind == .pointer)
        // The function-scope static `calls` is named calls.0 or similar by the assembler.
        let calls = try d.variable(named: "calls")
        let callsSym = syms.first { $0.key.hasPrefix("calls.") || $0.key == "main.calls" }?.value
        #expect(calls.address == callsSym)
        // Thread-local: an offset in the TLS block, which nm shows as the symbol value.
        let tls = try d.variable(named: "tls_value")
        #expect(tls.address == nil)
        #expect(tls.tlsOffset == syms["tls_value"])
        #expect(tls.expression.contains(.tlsAddress))
        #expect(throws: DWARFError.noSuchVariable("nope")) { try d.variable(named: "nope") }
    }

    @Test(arguments: Progs.flavours)
    func lineTableMatchesObjdump(_ f: Flavour) throws {
        let path = try Progs.build(f)
        let d = try DWARF.load(binary: path)
        let ours = try d.addresses(file: "prog.c", line: Self.lineSum)
        #expect(!ours.isEmpty)
        let theirs = Progs.decodedLines(path, file: "prog.c", line: Self.lineSum)
        #expect(Set(ours).isSubset(of: theirs), "ours \(ours.map { String($0, radix: 16) }) objdump \(theirs.map { String($0, radix: 16) })")
        // Full path works too.
        #expect(try d.addresses(file: Progs.source, line: Self.lineSum) == ours)
        let add = try d.function(named: "add_points")
        for a in [add.lowPC] + ours {
            let loc = try #require(try d.sourceLocation(address: a))
            let want = try #require(Progs.addr2line(path, a))
            #expect(loc.file.hasSuffix("prog.c") && want.0.hasSuffix("prog.c"))
            #expect(loc.line == want.1, "at 0x\(String(a, radix: 16))")
        }
    }
}

@Suite struct LocationTests {
    /// Walks every instruction address of two -O2 functions: parameters keep a location at
    /// entry, location lists exist, and somewhere a variable is reported optimized out.
    @Test(arguments: Progs.flavours.filter { !$0.flags.contains("-O0") })
    func locationListsAndOptimizedOut(_ f: Flavour) throws {
        let d = try DWARF.load(binary: try Progs.build(f))
        var sawList = false, sawOptimizedOut = false, sawEntry = false
        for name in ["add_points", "accumulate", "main"] {
            let fn = try d.function(named: name)
            for r in fn.ranges {
                var a = r.lowerBound
                while a < r.upperBound {
                    let scope = try #require(try d.variables(at: a))
                    for v in scope.variables {
                        if case .list = v.variable.location { sawList = true }
                        if v.isOptimizedOut { sawOptimizedOut = true }
                        if case .entryValue? = v.expression?.first { sawEntry = true }
                    }
                    a += 1
                }
            }
            // Scalar parameters have a location at the first instruction (clang may drop a
            // by-value struct's for a few instructions: that is "optimized out", correctly).
            let atEntry = try #require(try d.variables(at: fn.lowPC))
            for p in atEntry.variables where p.variable.isParameter && p.inlinedFrom == nil && p.variable.name != "b" {
                #expect(p.expression != nil, "\(name).\(p.variable.name) at entry")
            }
        }
        #expect(sawList, "an -O2 build has location lists")
        #expect(sawOptimizedOut, "some variable is optimized out somewhere")
        _ = sawEntry
    }
}

@Suite struct DeepTypeTests {
    /// A chain of 600 structs, each pointing to the next: converting the first reaches all of
    /// them without deep recursion (pointer targets wait in a worklist). By-value nesting that
    /// deep is refused with a typed error instead of exhausting the stack.
    @Test func longPointerChainsConvert() throws {
        let n = 600
        var src = ""
        for i in 0..<n { src += "struct s\(i);\n" }
        for i in 0..<n { src += "struct s\(i) { struct s\((i + 1) % n) *next; int v\(i); };\n" }
        src += "struct w0 { int x; };\n"
        for i in 1..<300 { src += "struct w\(i) { struct w\(i - 1) in; };\n" }
        src += "struct s0 head; struct w299 wide;\nint main(void) { return head.v0 + (int)sizeof(wide); }\n"
        let c = Progs.dir.appendingPathComponent("deep.c")
        try src.write(to: c, atomically: true, encoding: .utf8)
        let out = Progs.dir.appendingPathComponent("deep").path
        let r = TestEnv.run("/usr/bin/cc", ["-g", "-O0", "-o", out, c.path])
        #expect(r.status == 0, "\(r.stderr)")
        let d = try DWARF.load(binary: out)
        let head = try d.typeID(named: "struct s0")
        let btf = try d.btf()
        var id = head
        for i in 0..<n {
            let t = try btf.type(id)
            #expect(t.name == "s\(i)" && t.members.map(\.name) == ["next", "v\(i)"])
            id = try btf.type(t.members[0].type).type
        }
        #expect(id == head, "the chain closes on the first struct")
        #expect(throws: DWARFError.tooDeep(what: "type chain", limit: 200)) { try d.typeID(named: "struct w299") }
        #expect(try d.typeID(named: "struct w150") > 0)
    }
}
