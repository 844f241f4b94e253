// Hand-written DWARF (Tests/Fixtures/dwarf/forms.s, assembled with `as`) for the forms and
// unit shapes compilers seldom emit.
import Foundation
import Testing
import PlumbDWARF
import PlumbBTF
import PlumbELF
import TestSupport

@Suite struct FormsTests {
    static func load() throws -> DWARF {
        let src = TestEnv.fixturesSource.appendingPathComponent("dwarf/forms.s").path
        let out = Progs.dir.appendingPathComponent("forms.o").path
        let r = TestEnv.run("/usr/bin/as", ["-o", out, src])
        guard r.status == 0 else { throw Progs.BuildError(description: "as failed: \(r.stderr)") }
        return try DWARF(elf: try ELFFile(path: out), path: out)
    }

    @Test func everyFormDecodes() throws {
        let d = try Self.load()
        #expect(d.allUnits.map(\.version) == [5, 4, 2])
        #expect(d.allUnits.map(\.offsetSize) == [4, 8, 4])
        #expect(d.allUnits.map(\.name) == ["forms.c", "wide.c", "old.c"])
        #expect(d.skippedUnits.isEmpty)
        let pair = try d.typeID(named: "struct pair"), td = try d.typeID(named: "pair_t")
        let mood = try d.typeID(named: "enum mood")
        let g = try d.variable(named: "hand_global")
        let wide = try d.variable(named: "other_global@wide.c")
        let old = try d.variable(named: "old_global")
        let fn = try d.function(named: "hand_fn")
        let btf = try d.btf()
        let p = try btf.type(pair)
        #expect(p.size == 16 && p.kindFlag)
        #expect(p.members.map(\.name) == ["first", "bits", "next"])
        #expect(p.members.map(\.bitOffset) == [0, 37, 64])
        #expect(p.members.map(\.bitfieldSize) == [0, 3, 0])
        let int = try btf.type(p.members[0].type)
        #expect(int.name == "int" && int.intInfo?.encoding == .signed, "DW_FORM_indirect -> data1 encoding")
        #expect(try btf.type(p.members[2].type).type == pair, "ref2 pointer back to the struct")
        #expect(try btf.type(td).type == pair, "ref1")
        #expect(g.address == 0x1234 && g.type == pair, "ref8 type, exprloc location")
        #expect(wide.address == 0x5678 && wide.type == p.members[0].type, "64-bit unit, ref_addr into unit 0")
        #expect(old.address == 0x9abc && old.type == p.members[0].type, "DWARF 2 ref_addr with the address size")
        #expect(fn.lowPC == 0x4000 && fn.ranges == [0x4000..<0x4020])
        #expect(fn.parameters.map(\.name) == ["p"])
        #expect(fn.parameters[0].location == .expression([.fbreg(-8)]))
        #expect(try btf.type(fn.returnType).name == "int")
        let m = try btf.type(mood)
        #expect(m.isSignedEnum)
        #expect(m.enumerators.map { Int32(truncatingIfNeeded: $0.value) } == [-3, 300])
        let scope = try #require(try d.variables(at: 0x4010))
        #expect(scope.variables.first?.expression == [.fbreg(-8)])
        #expect(try d.variables(at: 0x4020) == nil)
    }

    @Test func expressionDecoding() throws {
        // Operators with operands of every shape: ULEB, SLEB, fixed, nested entry value, blocks.
        let bytes: [UInt8] = [
            0x77, 0x70,                 // breg7 -16
            0x06,                       // deref
            0x23, 0x88, 0x01,           // plus_uconst 136
            0x93, 0x04,                 // piece 4
            0x92, 0x21, 0x08,           // bregx 33 +8
            0x9d, 0x03, 0x05,           // bit_piece 3 @5
            0xa3, 0x01, 0x55,           // entry_value (reg5)
            0x9f,                       // stack_value
            0x0b, 0xfe, 0xff,           // const2s -2
            0x3f,                       // lit15
            0x9e, 0x02, 0xaa, 0xbb,     // implicit_value 2 bytes
            0x9c,                       // call_frame_cfa
            0x94, 0x04,                 // deref_size 4
            0x0e, 1, 0, 0, 0, 0, 0, 0, 0, 0xe0,  // const8u 1; GNU_push_tls_address
            0x2f, 0x01, 0x00,           // skip +1
            0x96,                       // nop
        ]
        let ops = try DWARFOp.decode(bytes, order: .little)
        #expect(ops == [.breg(7, -16), .deref, .plusUconst(136), .piece(size: 4), .breg(33, 8),
                        .bitPiece(size: 3, offset: 5), .entryValue([.reg(5)]), .stackValue, .const(-2), .const(15),
                        .implicitValue([0xaa, 0xbb]), .callFrameCFA, .derefSize(4), .const(1), .tlsAddress,
                        .skip(1), .nop])
        // Truncated operands and unresolvable indexes are typed errors.
        #expect(throws: DWARFError.self) { try DWARFOp.decode([0x03, 0x01]) }
        #expect(throws: DWARFError.self) { try DWARFOp.decode([0xa1, 0x00]) }
        #expect(throws: DWARFError.self) { try DWARFOp.decode(Array(repeating: 0xa3, count: 64) + [0x01, 0x55]) }
    }
}

@Suite struct RelocatableObjectTests {
    /// A `cc -c` object: debug sections refer to .debug_str and .text through RELA relocations.
    @Test func hostObjectFile() throws {
        let obj = Progs.dir.appendingPathComponent("prog.o").path
        let r = TestEnv.run("/usr/bin/cc", ["-g", "-O2", "-c", "-o", obj, Progs.source])
        #expect(r.status == 0, "\(r.stderr)")
        let d = try DWARF(elf: try ELFFile(path: obj), path: obj)
        let exe = try DWARF.load(binary: try Progs.build(Progs.flavours[0]))
        let a = try d.typeID(named: "struct node"), b = try exe.typeID(named: "struct node")
        let (ta, tb) = (try d.btf().type(a), try exe.btf().type(b))
        #expect(ta.members.map(\.name) == tb.members.map(\.name))
        #expect(ta.members.map(\.bitOffset) == tb.members.map(\.bitOffset))
        let f = try d.function(named: "add_points")
        #expect(f.parameters.map(\.name) == ["a", "b", "scale"])
        let sym = try ELFFile(path: obj).symbols().first { $0.name == "add_points" }
        #expect(f.lowPC == sym?.value, "low_pc relocated against .text")
        #expect(!(try d.addresses(file: "prog.c", line: ProgramTests.lineSum)).isEmpty)
    }

    /// clang's BPF objects (REL relocations, both byte orders): DWARF agrees with the object's BTF.
    @Test(arguments: ["basic.bpfel.o", "basic.bpfeb.o"])
    func bpfObjectMatchesItsBTF(_ name: String) throws {
        let path = try TestEnv.fixtures().appendingPathComponent(name).path
        let elf = try ELFFile(path: path)
        let d = try DWARF(elf: elf, path: path)
        let id = try d.typeID(named: "struct event")
        let fn = try d.function(named: "on_getpid")
        let ours = try d.btf()
        let theirs = try BTF(elf: elf, path: path)
        let want = try theirs.type(try #require(theirs.firstID(named: "event", kind: .struct)))
        let got = try ours.type(id)
        #expect(got.size == want.size)
        #expect(got.members.map(\.name) == want.members.map(\.name))
        #expect(got.members.map(\.bitOffset) == want.members.map(\.bitOffset))
        #expect(fn.parameters.map(\.name) == ["ctx"])
        #expect(try d.variable(named: "hits").address != nil)
        // btf() is a snapshot; d.type(_:) always sees every type converted so far.
        let tag = try d.variable(named: "tag")
        #expect(try d.type(tag.type).arrayInfo?.count == 8)
        #expect(try d.btf().type(tag.type).arrayInfo?.count == 8)
    }
}
