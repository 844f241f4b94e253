// Real system files: libc with Debian's libc6-dbg (DWARF 5, zlib-compressed, found by build id),
// separate debug files by build id and .gnu_debuglink, and binaries without debug info.
import Foundation
import Testing
import PlumbDWARF
import PlumbBTF
import PlumbELF
import TestSupport

@Suite struct SystemTests {
    static let libc = "/lib/x86_64-linux-gnu/libc.so.6"

    static var libcDebugAvailable: Bool {
        guard let elf = try? ELFFile(path: libc) else { return false }
        return DebugFileLocator.candidates(for: elf, binaryPath: libc).contains { FileManager.default.fileExists(atPath: $0) }
    }

    @Test func libcMallocStateAndMalloc() throws {
        guard Self.libcDebugAvailable else {
            print("SKIP: no debug file for \(Self.libc) (apt-get install libc6-dbg; scripts/setup.sh does)")
            return
        }
        let d = try DWARF.load(binary: Self.libc)
        print("libc debug info from \(d.path): \(d.timings); \(d.allUnits.count) units, \(d.functionNames.count) functions, \(d.typeNames.count) type names")
        #expect(d.path.contains("/usr/lib/debug/.build-id/"))
        #expect(d.skippedUnits.isEmpty, "\(d.skippedUnits.map { $0.error.description })")
        let ms = try d.typeID(named: "struct malloc_state")
        let malloc = try d.function(named: "malloc")
        let t0 = Date()
        let btf = try d.btf()
        let st = try btf.type(ms)
        #expect(st.kind == .struct)
        let names = st.members.map(\.name)
        for field in ["mutex", "flags", "fastbinsY", "top", "last_remainder", "bins", "binmap", "next", "system_mem"] {
            #expect(names.contains(field), "struct malloc_state has \(field): \(names)")
        }
        // glibc 2.36 on x86-64: 2200 bytes (mutex 4, flags 4, have_fastchunks 4, fastbinsY[10], ...).
        #expect(st.size == 2200)
        let bins = try #require(st.members.first { $0.name == "bins" })
        #expect(try btf.type(bins.type).arrayInfo?.count == 254)
        #expect(malloc.parameters.map(\.name) == ["bytes"])
        #expect(try btf.type(malloc.parameters[0].type).name == "size_t")
        let ret = try btf.type(malloc.returnType)
        #expect(ret.kind == .pointer && ret.type == 0)
        let syms = try ELFFile(path: Self.libc).symbols(dynamic: true)
        #expect(syms.contains { $0.name == "malloc" && $0.value == malloc.lowPC })
        _ = t0
        // A static variable: main_arena, in malloc.c.
        let arena = try d.variable(named: "main_arena@malloc.c")
        #expect(arena.address != nil)
        #expect(try d.btf().type(arena.type).name == "malloc_state")
        // Line lookups work on the big tables too.
        let m = try #require(try d.sourceLocation(address: malloc.lowPC))
        #expect(m.file.hasSuffix("malloc.c"))
        #expect(try d.addresses(file: "malloc.c", line: m.line).contains(malloc.lowPC))
    }

    /// Strips a copy of prog and puts its debug half where the locator looks.
    @Test func separateDebugFileByBuildID() throws {
        let prog = try Progs.build(Progs.flavours[0], extra: ["-Wl,--build-id"], suffix: "-bid")
        let dir = Progs.dir.appendingPathComponent("bid")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let stripped = dir.appendingPathComponent("prog").path
        let elf = try ELFFile(path: prog)
        let id = try #require(DebugFileLocator.buildID(of: elf))
        let root = dir.appendingPathComponent("root")
        let debugDir = root.appendingPathComponent(".build-id/\(id.prefix(2))")
        try FileManager.default.createDirectory(at: debugDir, withIntermediateDirectories: true)
        let debugFile = debugDir.appendingPathComponent("\(id.dropFirst(2)).debug").path
        #expect(TestEnv.run("/usr/bin/objcopy", ["--only-keep-debug", "--compress-debug-sections=zlib", prog, debugFile]).status == 0)
        #expect(TestEnv.run("/usr/bin/objcopy", ["--strip-debug", prog, stripped]).status == 0)
        // Without the root: a typed error that says where it looked.
        do {
            _ = try DWARF.load(binary: stripped, debugRoots: [dir.appendingPathComponent("empty").path])
            Issue.record("loading a stripped binary with no debug file should fail")
        } catch let e {
            guard case .noDebugInfo(let b, let searched) = e else { Issue.record("wrong error \(e)"); return }
            #expect(b == stripped)
            #expect(searched.contains { $0.contains(".build-id/\(id.prefix(2))/") })
            #expect(e.description.contains("looked in"))
        }
        let d = try DWARF.load(binary: stripped, debugRoots: [root.path])
        #expect(d.path == debugFile)
        #expect(try d.function(named: "add_points").lowPC == Progs.symbols(prog)["add_points"])
    }

    @Test func separateDebugFileByDebugLink() throws {
        let prog = try Progs.build(Progs.flavours[1], extra: ["-Wl,--build-id=none"], suffix: "-nobid")
        let dir = Progs.dir.appendingPathComponent("link")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(".debug"), withIntermediateDirectories: true)
        let debugFile = dir.appendingPathComponent(".debug/prog.debug").path
        let stripped = dir.appendingPathComponent("prog").path
        #expect(TestEnv.run("/usr/bin/objcopy", ["--only-keep-debug", prog, debugFile]).status == 0)
        #expect(TestEnv.run("/usr/bin/objcopy", ["--strip-debug", "--add-gnu-debuglink=\(debugFile)", prog, stripped]).status == 0)
        let elf = try ELFFile(path: stripped)
        #expect(DebugFileLocator.buildID(of: elf) == nil)
        #expect(DebugFileLocator.debugLink(of: elf)?.name == "prog.debug")
        let d = try DWARF.load(binary: stripped, debugRoots: [dir.appendingPathComponent("none").path])
        #expect(d.path == debugFile)
        #expect(try d.variable(named: "global_counter").address == Progs.symbols(prog)["global_counter"])
    }

    @Test func binaryWithoutDebugInfo() throws {
        let prog = try Progs.build(Flavour(name: "nodebug", compiler: "/usr/bin/cc", flags: ["-g0", "-O2", "-Wl,--build-id"]))
        do {
            _ = try DWARF.load(binary: prog, debugRoots: [Progs.dir.appendingPathComponent("none").path])
            Issue.record("expected noDebugInfo")
        } catch let e {
            guard case .noDebugInfo(_, let searched) = e else { Issue.record("wrong error \(e)"); return }
            #expect(searched.count == 1 && searched[0].hasSuffix(".debug"))
        }
    }
}

@Suite struct CanonicalTypeTests {
    /// Structs repeated by every compile unit convert to one BTF id (pahole dedups the same way).
    @Test func repeatedStructsShareOneID() throws {
        guard SystemTests.libcDebugAvailable else { return }
        let d = try DWARF.load(binary: SystemTests.libc)
        // fopen and fclose live in different units; both take FILE, i.e. struct _IO_FILE.
        let open = try d.function(named: "fclose"), flush = try d.function(named: "fflush")
        let btf = try d.btf()
        func pointee(_ f: DWARFFunction) throws -> TypeID {
            var id = try btf.type(f.parameters[0].type).type
            while try btf.type(id).kind == .typedef { id = try btf.type(id).type }
            return id
        }
        #expect(open.file != flush.file)
        // fclose is split hot/cold (DW_AT_ranges): its entry is the symbol, not the lowest range.
        let syms = try ELFFile(path: SystemTests.libc).symbols(dynamic: true)
        #expect(syms.contains { $0.name == "fclose" && $0.value == open.lowPC })
        #expect(open.parameters.map(\.name) == ["fp"])
        #expect(try pointee(open) == pointee(flush))
        #expect(try btf.type(try pointee(open)).name == "_IO_FILE")
    }
}

@Suite struct SplitDWARFTests {
    @Test func splitDWARFIsAClearError() throws {
        let prog = try Progs.build(Flavour(name: "split", compiler: "/usr/bin/cc", flags: ["-g", "-O2", "-gsplit-dwarf"]))
        do {
            _ = try DWARF.load(binary: prog)
            Issue.record("split DWARF accepted")
        } catch let e {
            guard case .splitDWARF(_, let dwo) = e else { Issue.record("wrong error \(e)"); return }
            #expect(dwo.contains { $0.hasSuffix(".dwo") })
            #expect(e.description.contains("-gsplit-dwarf"))
        }
    }
}

@Suite struct DwzTests {
    /// Debian's dbgsym packages are often run through dwz: units shared between files move to a
    /// common file named by .gnu_debugaltlink and are referenced with DW_FORM_GNU_ref_alt/strp_alt.
    @Test func dwzCommonFile() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dwz") else {
            print("SKIP: dwz is not installed (scripts/setup.sh installs it)")
            return
        }
        let dir = Progs.dir.appendingPathComponent("dwz")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let p1 = dir.appendingPathComponent("p1").path, p2 = dir.appendingPathComponent("p2").path
        for (out, extra) in [(p1, "-DONE"), (p2, "-DTWO")] {
            #expect(TestEnv.run("/usr/bin/cc", ["-g", "-O2", extra, "-o", out, Progs.source]).status == 0)
        }
        let common = dir.appendingPathComponent("common.debug").path
        let r = TestEnv.run("/usr/bin/dwz", ["-m", common, "-M", "common.debug", p1, p2])
        #expect(r.status == 0, "\(r.stderr)")
        let want = Progs.layout(p1)
        let syms = Progs.symbols(p1)
        let d = try DWARF.load(binary: p1)
        #expect(d.altPath == common)
        #expect(d.skippedUnits.isEmpty)
        let node = try d.typeID(named: "struct node")
        let add = try d.function(named: "add_points")
        let g = try d.variable(named: "global_counter")
        let t = try d.type(node)
        #expect(Int(t.size) == want["node"])
        #expect(t.members.first { $0.name == "big" }.map { Int($0.bitOffset) / 8 } == want["big"])
        #expect(add.lowPC == syms["add_points"])
        #expect(add.parameters.map(\.name) == ["a", "b", "scale"])
        #expect(try d.type(try d.type(add.parameters[0].type).type).name == "point")
        #expect(g.address == syms["global_counter"])
        #expect(try d.type(g.type).name == "int")
        #expect(!(try d.addresses(file: "prog.c", line: ProgramTests.lineSum)).isEmpty)
        d.exercise()
    }
}
