import Foundation
import Testing
@testable import PlumbBTF
import PlumbELF
import TestSupport

/// The live kernel's BTF, when present.
func vmlinux() -> BTF? {
    guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else {
        print("SKIP: /sys/kernel/btf/vmlinux is absent (kernel built without CONFIG_DEBUG_INFO_BTF)")
        return nil
    }
    return try? BTF.kernel()
}

/// bpftool's raw listing of a file (the oracle).
func bpftoolRaw(_ path: String) -> String? {
    let r = TestEnv.run("/usr/sbin/bpftool", ["btf", "dump", "file", path])
    return r.status == 0 ? r.stdout : nil
}

@Suite struct BTFParseTests {
    @Test func parsesVmlinuxAndFindsTaskStruct() throws {
        guard let btf = vmlinux() else { return }
        #expect(btf.count > 1000)
        let id = try #require(btf.firstID(named: "task_struct", kind: .struct))
        let t = try btf.type(id)
        #expect(t.kind == .struct)
        #expect(t.name == "task_struct")
        #expect(t.size > 1000)
        #expect(btf.ids(named: "task_struct", kind: .struct) == [id])
        #expect(btf.pointerSize == 8)
    }

    @Test func rawDumpOfVmlinuxIsIdenticalToBpftool() throws {
        guard let btf = vmlinux() else { return }
        let expected = try #require(bpftoolRaw("/sys/kernel/btf/vmlinux"), "bpftool must be installed (apt-get install bpftool)")
        var out = ""
        try btf.rawDump(into: &out)
        #expect(out == expected)
    }

    @Test func rawDumpOfFixturesIsIdenticalToBpftool() throws {
        let dir = try TestEnv.fixtures()
        let objects = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".bpfel.o") }.sorted()
        #expect(!objects.isEmpty)
        for o in objects {
            let path = dir.appendingPathComponent(o).path
            guard let expected = bpftoolRaw(path) else { Issue.record("bpftool failed on \(o)"); continue }
            var out = ""
            try BTF(path: path).rawDump(into: &out)
            #expect(out == expected, "raw dump differs for \(o)")
        }
    }

    @Test func bigEndianObjectsDecodeLikeLittleEndian() throws {
        let dir = try TestEnv.fixtures()
        let objects = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".bpfel.o") }.sorted()
        for o in objects {
            let le = try BTF(path: dir.appendingPathComponent(o).path)
            let be = try BTF(path: dir.appendingPathComponent(o.replacingOccurrences(of: ".bpfel.o", with: ".bpfeb.o")).path)
            #expect(le.order == .little && be.order == .big)
            #expect(try le.allTypes() == be.allTypes(), "\(o): types differ between byte orders")
        }
    }

    @Test(arguments: [ByteOrder.little, .big])
    func encodeRoundTripsVmlinux(order: ByteOrder) throws {
        guard let btf = vmlinux() else { return }
        let bytes = try btf.encode(order: order)
        let again = try BTF(bytes: Bytes(bytes))
        #expect(again.order == order)
        #expect(again.count == btf.count)
        #expect(try again.allTypes() == btf.allTypes())
        // Encoding is deterministic: the same types give the same bytes.
        #expect(try again.encode(order: order) == bytes)
    }

    @Test func encodeRoundTripsFixtures() throws {
        let dir = try TestEnv.fixtures()
        for o in try FileManager.default.contentsOfDirectory(atPath: dir.path).filter({ $0.hasSuffix(".o") }) {
            let btf = try BTF(path: dir.appendingPathComponent(o).path)
            for order in [ByteOrder.little, .big] {
                let again = try BTF(bytes: Bytes(try btf.encode(order: order)))
                #expect(try again.allTypes() == btf.allTypes(), "\(o) round trip (\(order))")
            }
        }
    }

    @Test func splitBTFContinuesIdsAndStrings() throws {
        var b = BTFBuilder()
        let intID = b.add(BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32))))
        let base = try BTF(bytes: Bytes(b.encode()))
        var s = BTFBuilder(base: base)
        let ptr = s.add(BTFType(kind: .pointer, sizeOrType: intID))
        let st = s.add(BTFType(kind: .struct, name: "module_thing", sizeOrType: 16,
                               payload: .members([BTFMember(name: "p", type: ptr, bitOffset: 0),
                                                  BTFMember(name: "x", type: intID, bitOffset: 64)])))
        let split = try BTF(bytes: Bytes(s.encode()), base: base)
        #expect(ptr == 2 && st == 3)
        #expect(split.firstID == 2 && split.count == 4)
        #expect(split.firstID(named: "int", kind: .int) == intID)
        #expect(split.firstID(named: "module_thing") == st)
        #expect(try split.type(st).members.map(\.name) == ["p", "x"])
        #expect(try split.size(of: st) == 16)
        #expect(try split.fieldPath(from: st, fields: ["x"]).first?.byteOffset == 8)
        var raw = ""
        try split.rawDump(into: &raw)
        #expect(raw == "[2] PTR '(anon)' type_id=1\n[3] STRUCT 'module_thing' size=16 vlen=2\n\t'p' type_id=2 bits_offset=0\n\t'x' type_id=1 bits_offset=64\n")
    }
}

@Suite struct BTFQueryTests {
    /// Member offsets as bpftool lists them: an oracle independent of our parser.
    func bpftoolMembers(_ structName: String) throws -> [String: (type: Int, bits: Int)] {
        let raw = try #require(bpftoolRaw("/sys/kernel/btf/vmlinux"))
        var out: [String: (Int, Int)] = [:]
        var inside = false
        for line in raw.split(separator: "\n") {
            if line.hasPrefix("[") { inside = line.contains("] STRUCT '\(structName)' "); continue }
            guard inside else { continue }
            let parts = line.split(separator: " ")
            let name = parts[0].trimmingCharacters(in: CharacterSet(charactersIn: "\t'"))
            let type = Int(parts[1].dropFirst("type_id=".count))!
            let bits = Int(parts[2].dropFirst("bits_offset=".count))!
            out[name] = (type, bits)
        }
        return out
    }

    @Test func fieldPathMatchesBpftoolOffsets() throws {
        guard let btf = vmlinux() else { return }
        let task = try bpftoolMembers("task_struct")
        let mm = try bpftoolMembers("mm_struct")
        let steps = try btf.fieldPath("task_struct.mm.arg_start")
        #expect(steps.count == 2)
        #expect(Int(steps[0].bitOffset) == task["mm"]!.bits)
        #expect(!steps[0].throughPointer && steps[1].throughPointer)
        // arg_start lives in an anonymous struct inside mm_struct: the offset includes it.
        if let direct = mm["arg_start"] {
            #expect(Int(steps[1].bitOffset) == direct.bits)
        } else {
            #expect(steps[1].bitOffset > 0)
        }
        #expect(try btf.size(of: steps[1].type) == 8)
        for field in ["pid", "tgid", "comm"] {
            let s = try btf.fieldPath("task_struct.\(field)")
            #expect(Int(s[0].bitOffset) == task[field]!.bits, "task_struct.\(field)")
        }
        let comm = try btf.fieldPath("struct task_struct.comm[3]")
        #expect(Int(comm[0].bitOffset) == task["comm"]!.bits + 24)
    }

    @Test func fieldPathErrorsNameTheProblem() throws {
        guard let btf = vmlinux() else { return }
        #expect(throws: BTFError.self) { try btf.fieldPath("task_struct") }
        do {
            _ = try btf.fieldPath("task_struct.nosuchfield")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("has no field 'nosuchfield'"))
            #expect(error.description.contains("it has: thread_info"))
        }
        do {
            _ = try btf.fieldPath("task_struct.pidd")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("did you mean 'pid'?"))
        }
        do {
            _ = try btf.fieldPath("task_struct.pid.x")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("is not a struct or union"))
        }
        #expect(throws: BTFError.notFound("no_such_type_xyz")) { try btf.fieldPath("no_such_type_xyz.a") }
    }

    @Test func sizesAndAlignments() throws {
        guard let btf = vmlinux() else { return }
        let u64 = try btf.lookup(cName: "u64")
        #expect(try btf.size(of: u64) == 8 && btf.alignment(of: u64) == 8)
        let task = try btf.lookup(cName: "struct task_struct")
        #expect(try btf.size(of: task) == Int(btf.type(task).size))
        #expect(try btf.alignment(of: task) >= 8)
        #expect(try btf.kind(of: btf.resolve(btf.lookup(cName: "pid_t"))) == .int)
    }

    @Test func rawTracepointAndFunctionPrototypes() throws {
        guard let btf = vmlinux() else { return }
        let sw = try btf.rawTracepointProto("sched_switch")
        // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
        #expect(sw.params.count == 4)
        #expect(btf.cTypeName(sw.params[1].type) == "struct task_struct *")
        #expect(btf.cTypeName(sw.params[2].type) == "struct task_struct *")
        let f = try btf.functionProto(named: "do_sys_openat2")
        #expect(f.params.map(\.name) == ["dfd", "filename", "how"])
        #expect(throws: BTFError.self) { try btf.rawTracepointProto("no_such_tp") }
    }
}
