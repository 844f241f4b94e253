// The C dumper against bpftool (`btf dump file F format c`), byte for byte, on the running
// kernel's BTF and on our own clang-built fixtures; the output compiles as a vmlinux.h;
// `btf show` annotations agree with the field offsets BTF gives.
import Foundation
import Testing
import PlumbBTF
import PlumbELF
import TestSupport

private let bpftool = "/usr/sbin/bpftool"
private let vmlinuxPath = "/sys/kernel/btf/vmlinux"

private func haveBpftool() -> Bool {
    if FileManager.default.isExecutableFile(atPath: bpftool) { return true }
    print("SKIP: \(bpftool) is not installed (apt-get install bpftool)")
    return false
}

private func haveVmlinux() -> Bool {
    if FileManager.default.fileExists(atPath: vmlinuxPath) { return true }
    print("SKIP: \(vmlinuxPath) is absent (kernel built without CONFIG_DEBUG_INFO_BTF)")
    return false
}

/// bpftool's C dump of `path`, or nil when bpftool refuses it.
private func bpftoolDump(_ path: String) -> String? {
    let r = TestEnv.run(bpftool, ["btf", "dump", "file", path, "format", "c"])
    return r.status == 0 ? r.stdout : nil
}

/// The first differing line, for a readable failure instead of two megabyte strings.
private func firstDifference(_ a: String, _ b: String) -> String? {
    if a == b { return nil }
    let la = a.split(separator: "\n", omittingEmptySubsequences: false)
    let lb = b.split(separator: "\n", omittingEmptySubsequences: false)
    for i in 0..<max(la.count, lb.count) {
        let x = i < la.count ? String(la[i]) : "<end>"
        let y = i < lb.count ? String(lb[i]) : "<end>"
        if x != y { return "line \(i + 1):\n  bpftool: \(x)\n  plumb:   \(y)" }
    }
    return "same lines, different bytes"
}

private func fixtureObjects() throws -> [URL] {
    let dir = try TestEnv.fixtures()
    let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
    return names.filter { $0.hasPrefix("btf_") && $0.hasSuffix(".o") }.sorted().map { dir.appendingPathComponent($0) }
}

private func tempDir() throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-cdump-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
}

/// Compiles `source` (which includes "vmlinux.h") against `header` for the BPF target.
private func compiles(header: String, source: String) throws -> TestEnv.Result {
    let dir = try tempDir()
    defer { try? FileManager.default.removeItem(at: dir) }
    try header.write(to: dir.appendingPathComponent("vmlinux.h"), atomically: true, encoding: .utf8)
    try source.write(to: dir.appendingPathComponent("prog.bpf.c"), atomically: true, encoding: .utf8)
    return TestEnv.run(TestEnv.clang, ["-target", "bpf", "-g", "-O2", "-Wall", "-Werror", "-Wno-visibility", "-c", "prog.bpf.c", "-o", "prog.o"], cwd: dir)
}

@Suite("C dump")
struct CDumpTests {
    @Test("vmlinux: identical to bpftool")
    func vmlinuxMatchesBpftool() throws {
        guard haveVmlinux(), haveBpftool() else { return }
        let expected = try #require(bpftoolDump(vmlinuxPath), "bpftool failed on \(vmlinuxPath)")
        let ours = try BTF(path: vmlinuxPath).cDump()
        #expect(ours.utf8.count == expected.utf8.count)
        if let d = firstDifference(expected, ours) { Issue.record("C dump of vmlinuxPath differs from bpftool at \(d)") }
    }

    @Test("fixture objects (LE and BE): identical to bpftool")
    func fixturesMatchBpftool() throws {
        guard haveBpftool() else { return }
        let objects = try fixtureObjects()
        #expect(objects.count >= 6, "expected btf_*.bpfel.o and .bpfeb.o fixtures, found \(objects.map(\.lastPathComponent))")
        for obj in objects {
            let ours = try BTF(path: obj.path).cDump()
            var expected = bpftoolDump(obj.path)
            if expected == nil, obj.lastPathComponent.hasSuffix(".bpfeb.o") {
                // bpftool may refuse foreign-endian objects: the types are the same as LE's.
                let le = obj.deletingLastPathComponent().appendingPathComponent(
                    obj.lastPathComponent.replacingOccurrences(of: ".bpfeb.o", with: ".bpfel.o"))
                expected = bpftoolDump(le.path)
            }
            let want = try #require(expected, "bpftool failed on \(obj.lastPathComponent)")
            if let d = firstDifference(want, ours) { Issue.record("\(obj.lastPathComponent): differs from bpftool at \(d)") }
        }
    }

    @Test("fixtures: big-endian BTF dumps the same C as little-endian")
    func endiannessDoesNotMatter() throws {
        for obj in try fixtureObjects() where obj.lastPathComponent.hasSuffix(".bpfel.o") {
            let be = obj.deletingLastPathComponent().appendingPathComponent(
                obj.lastPathComponent.replacingOccurrences(of: ".bpfel.o", with: ".bpfeb.o"))
            #expect(try BTF(path: obj.path).cDump() == BTF(path: be.path).cDump(), "\(obj.lastPathComponent)")
        }
    }

    @Test("the vmlinuxPath dump compiles as vmlinux.h")
    func vmlinuxCompiles() throws {
        guard haveVmlinux() else { return }
        let header = try BTF(path: vmlinuxPath).cDump()
        let r = try compiles(header: header, source: """
            #include "vmlinux.h"
            __attribute__((section("tp/sched/sched_process_exec"), used))
            int on_exec(struct trace_event_raw_sched_process_exec *ctx)
            {
                struct task_struct *t = (struct task_struct *)ctx;
                return t->pid + (int)sizeof(struct sk_buff);
            }
            char _license[] __attribute__((section("license"), used)) = "GPL";
            """)
        #expect(r.status == 0, "clang rejected the dumped vmlinux.h:\n\(r.stderr.prefix(4000))")
    }

    @Test("fixture dumps compile, with the same layouts")
    func fixtureDumpsCompile() throws {
        // Each struct keeps its size and member offsets: the dumped header is checked
        // against what BTF says. libbpf 1.1 (so bpftool 7.1, and we, byte for byte) cannot
        // say everything: enums of 1, 2 or 8 bytes come out as plain 4-byte enums (later
        // libbpf adds mode(byte)/mode(word)), and unions never get `packed`. The fixture
        // types hit by that are left out here; alignment beyond 8 (__int128) is not in BTF.
        let unfaithful: Set<String> = ["enums", "packed_union"]
        for obj in try fixtureObjects() where obj.lastPathComponent.hasSuffix(".bpfel.o") {
            let btf = try BTF(path: obj.path)
            var asserts = ""
            for id in btf.ownIDs where btf.kind(of: id).isComposite && !btf.name(of: id).isEmpty {
                let kw = btf.kind(of: id) == .struct ? "struct" : "union"
                let name = btf.name(of: id)
                // Duplicate names get ___N in the dump; check only the unique ones.
                if btf.ids(named: name).filter({ btf.kind(of: $0).isComposite }).count > 1 { continue }
                if unfaithful.contains(name) { continue }
                asserts += "_Static_assert(sizeof(\(kw) \(name)) == \(try btf.size(of: id)), \"size of \(name)\");\n"
                for m in try btf.type(id).members where !m.name.isEmpty && m.bitfieldSize == 0 {
                    asserts += "_Static_assert(__builtin_offsetof(\(kw) \(name), \(m.name)) == \(m.bitOffset / 8), \"\(name).\(m.name)\");\n"
                }
            }
            let r = try compiles(header: try btf.cDump(), source: "#include \"vmlinux.h\"\n" + asserts)
            #expect(r.status == 0, "\(obj.lastPathComponent): dumped C does not compile or has other layouts:\n\(r.stderr.prefix(4000))")
        }
    }

    @Test("cyclic and malformed BTF give a BTFError, not a crash")
    func cyclesAreErrors() throws {
        let int = BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32)))
        var cases: [(String, BTFBuilder)] = []

        var selfTypedef = BTFBuilder()
        selfTypedef.add(BTFType(kind: .typedef, name: "loop_t", sizeOrType: 1))
        cases.append(("typedef of itself", selfTypedef))

        var pointerLoop = BTFBuilder()
        pointerLoop.add(BTFType(kind: .pointer, sizeOrType: 2))
        pointerLoop.add(BTFType(kind: .pointer, sizeOrType: 1))
        cases.append(("pointer loop", pointerLoop))

        var embedsItself = BTFBuilder()
        embedsItself.add(int)
        embedsItself.add(BTFType(kind: .struct, name: "s", sizeOrType: 8,
                                 payload: .members([BTFMember(name: "a", type: 1, bitOffset: 0),
                                                    BTFMember(name: "self", type: 2, bitOffset: 32)])))
        cases.append(("struct embedding itself", embedsItself))

        var constLoop = BTFBuilder()
        constLoop.add(BTFType(kind: .const, sizeOrType: 2))
        constLoop.add(BTFType(kind: .volatile, sizeOrType: 1))
        constLoop.add(BTFType(kind: .struct, name: "q", sizeOrType: 8,
                              payload: .members([BTFMember(name: "m", type: 1, bitOffset: 0)])))
        cases.append(("modifier loop", constLoop))

        var anonLoop = BTFBuilder()
        anonLoop.add(BTFType(kind: .struct, sizeOrType: 8, payload: .members([BTFMember(name: "p", type: 2, bitOffset: 0)])))
        anonLoop.add(BTFType(kind: .pointer, sizeOrType: 1))
        anonLoop.add(BTFType(kind: .typedef, name: "anon_loop_t", sizeOrType: 1))
        cases.append(("anonymous struct pointing to itself", anonLoop))

        for (what, var b) in cases {
            let bytes = b.encode()
            let btf = try BTF(bytes: Bytes(bytes))
            var threw = false
            do { _ = try btf.cDump() } catch { threw = true }
            // The anonymous loop is legal C only through a typedef name; either outcome is
            // fine as long as nothing crashes. The others must be errors.
            if what != "anonymous struct pointing to itself" { #expect(threw, "\(what) should be a BTFError") }
            _ = try? btf.cShow(1)
        }
    }

    @Test("a deep but acyclic chain is fine")
    func deepChains() throws {
        var b = BTFBuilder()
        b.add(BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32))))
        var last: TypeID = 1
        for i in 0..<40 { last = b.add(BTFType(kind: .typedef, name: "t\(i)", sizeOrType: last)) }
        let out = try BTF(bytes: Bytes(b.encode())).cDump()
        #expect(out.contains("typedef t38 t39;\n"))
    }
}

@Suite("btf show")
struct CShowTests {
    /// `name -> (byte offset, size)` from the annotated lines of the top-level `struct root`.
    private func annotations(_ text: String, root: String) -> [String: (Int, Int)] {
        var result: [String: (Int, Int)] = [:]
        var inside = false
        for line in text.split(separator: "\n") {
            if line == "struct \(root) {" { inside = true; continue }
            if inside && line.hasPrefix("}") { break }
            // Only direct members: one tab, then the declaration.
            guard inside, line.hasPrefix("\t"), !line.hasPrefix("\t\t"),
                  let open = line.range(of: "/*"), let semi = line.range(of: ";") else { continue }
            let decl = line[..<semi.lowerBound]
            guard let nameToken = decl.split(whereSeparator: { " *\t".contains($0) }).last else { continue }
            let name = String(nameToken.split(separator: "[").first ?? nameToken)
            let nums = line[open.upperBound...].split(whereSeparator: { " :*/".contains($0) }).compactMap { Int($0) }
            guard nums.count >= 2 else { continue }
            result[name] = nums.count == 3 ? (nums[0], nums[2]) : (nums[0], nums[1])
        }
        return result
    }

    @Test("task_struct: offsets and sizes agree with BTF field paths")
    func taskStructOffsets() throws {
        guard haveVmlinux() else { return }
        let btf = try BTF(path: vmlinuxPath)
        let id = try btf.lookup(cName: "task_struct")
        let text = try btf.cShow(id)
        let ann = annotations(text, root: "task_struct")
        #expect(ann.count > 50)
        for field in ["pid", "tgid", "comm", "real_parent", "mm", "flags", "cred", "se", "__state"] {
            guard let (off, size) = ann[field] else { Issue.record("no annotation for task_struct.\(field)"); continue }
            let step = try #require(try btf.fieldPath("task_struct.\(field)").last)
            #expect(off == Int(step.byteOffset), "task_struct.\(field) offset")
            #expect(size == (try btf.size(of: step.type)), "task_struct.\(field) size")
        }
        #expect(text.contains("/* size: \(try btf.size(of: id)), cachelines: \((try btf.size(of: id) + 63) / 64)"))
        // Same C names, whichever spelling was asked for.
        #expect(try btf.cShow(try btf.lookup(cName: "struct task_struct")) == text)
    }

    @Test("the shown C compiles on its own, with the annotated layout")
    func showCompiles() throws {
        guard haveVmlinux() else { return }
        let btf = try BTF(path: vmlinuxPath)
        for name in ["task_struct", "struct sk_buff", "union bpf_attr", "enum bpf_cmd", "pid_t"] {
            let text = try btf.cShow(try btf.lookup(cName: name))
            var asserts = ""
            if name == "task_struct" {
                for field in ["pid", "tgid", "mm", "comm"] {
                    let off = try #require(try btf.fieldPath("task_struct.\(field)").last).byteOffset
                    asserts += "_Static_assert(__builtin_offsetof(struct task_struct, \(field)) == \(off), \"\(field)\");\n"
                }
            }
            let r = try compiles(header: text, source: "#include \"vmlinux.h\"\n" + asserts)
            #expect(r.status == 0, "btf show \(name) does not compile:\n\(r.stderr.prefix(3000))")
        }
    }

    @Test("bitfields are annotated byte:bit, holes and trailing padding are marked")
    func bitfieldsAndHoles() throws {
        let obj = try TestEnv.fixtures().appendingPathComponent("btf_layout.bpfel.o")
        let btf = try BTF(path: obj.path)
        let text = try btf.cShow(try btf.lookup(cName: "struct bits"))
        #expect(text.contains("unsigned int b: 3;"))
        #expect(text.contains("/*     0: 1  4 */"))      // b: byte 0, bit 1 of a 4-byte unit
        #expect(text.contains("/*     0:11  8 */"))      // d: 33 bits from bit 11 of an 8-byte unit
        #expect(text.contains("/* XXX 18 bits hole */"))
        #expect(text.contains("/* size: 32, cachelines: 1, members: 10 */"))
        let gaps = try btf.cShow(try btf.lookup(cName: "struct gaps"))
        #expect(gaps.contains("/* XXX 7 bytes hole */"))
    }

    @Test("functions show as prototypes, variables as extern declarations")
    func functionsAndVariables() throws {
        let obj = try TestEnv.fixtures().appendingPathComponent("btf_decls.bpfel.o")
        let btf = try BTF(path: obj.path)
        let fn = try btf.cShow(try btf.lookup(cName: "global_fn"))
        #expect(fn.hasSuffix("extern int global_fn(struct callbacks *cb, int x);\n"))
        #expect(fn.contains("struct callbacks {"))
        let v = try btf.cShow(try btf.lookup(cName: "g_kinds"))
        #expect(v.contains("extern struct kinds g_kinds;"))
    }
}

@Suite("C dump of split BTF")
struct CDumpSplitTests {
    @Test("split BTF on vmlinuxPath: identical to bpftool -B vmlinux")
    func splitMatchesBpftool() throws {
        guard haveVmlinux(), haveBpftool() else { return }
        let base = try BTF(path: vmlinuxPath)
        let listHead = try base.lookup("list_head", kind: .struct)
        let task = try base.lookup("task_struct", kind: .struct)
        let u32 = try base.lookup("u32", kind: .typedef)
        var b = BTFBuilder(base: base)
        let taskPtr = b.add(BTFType(kind: .pointer, sizeOrType: task))
        // A module struct embedding a base struct, pointing to another, and reusing a
        // base name (so it becomes list_head___2).
        let mod = b.add(BTFType(kind: .struct, name: "plumb_mod_state", sizeOrType: 32, payload: .members([
            BTFMember(name: "node", type: listHead, bitOffset: 0),
            BTFMember(name: "owner", type: taskPtr, bitOffset: 128),
            BTFMember(name: "count", type: u32, bitOffset: 192),
        ])))
        b.add(BTFType(kind: .struct, name: "list_head", sizeOrType: 8, payload: .members([
            BTFMember(name: "only", type: taskPtr, bitOffset: 0),
        ])))
        b.add(BTFType(kind: .typedef, name: "plumb_mod_state_t", sizeOrType: mod))
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("split.btf")
        try Data(b.encode()).write(to: file)
        let r = TestEnv.run(bpftool, ["-B", vmlinuxPath, "btf", "dump", "file", file.path, "format", "c"])
        try #require(r.status == 0, "bpftool -B failed: \(r.stderr)")
        let ours = try BTF(path: file.path, base: base).cDump()
        if let d = firstDifference(r.stdout, ours) { Issue.record("split BTF differs from bpftool at \(d)") }
        #expect(ours.contains("struct list_head___2 {"))
    }
}
