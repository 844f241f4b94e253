import PlumbBPF
import PlumbAsm
import PlumbSys
import PlumbBTF
import PlumbELF
import Foundation
import Testing
import TestSupport

func fixture(_ name: String) throws -> String {
    try TestEnv.fixtures().appendingPathComponent(name).path
}

/// llvm-objdump's listing, per function symbol: instruction texts in order.
func objdumpFunctions(_ path: String) -> [String: [String]] {
    let r = TestEnv.run(TestEnv.llvmObjdump, ["-d", "--no-show-raw-insn", path])
    var out: [String: [String]] = [:]
    var current: String?
    for line in r.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasSuffix(">:"), let open = line.firstIndex(of: "<") {
            current = String(line[line.index(after: open)..<line.index(line.endIndex, offsetBy: -2)])
            out[current!] = []
        } else if let c = current, let tab = line.firstIndex(of: "\t"), line.first == " " {
            out[c]!.append(String(line[line.index(after: tab)...]))
        }
    }
    return out
}

/// Instruction text without branch-target annotations (they name different symbols once
/// subprograms are linked into one program).
func stripAnnotation(_ s: String) -> String {
    guard let i = s.range(of: " <") else { return s.trimmingCharacters(in: .whitespaces) }
    return String(s[..<i.lowerBound]).trimmingCharacters(in: .whitespaces)
}

@Suite struct ObjectSpecTests {
    @Test func readsMapsOfEveryKind() throws {
        let spec = try ObjectSpec(path: fixture("objects.bpfel.o"))
        #expect(spec.name == "objects.bpfel")
        #expect(spec.license == "Dual BSD/GPL")
        func m(_ n: String) throws -> MapSpec { try #require(spec.map(n), "map \(n)") }
        let hash = try m("m_hash")
        #expect(hash.type == .hash && hash.keySize == 4 && hash.valueSize == 16 && hash.maxEntries == 64 && hash.flags == 1)
        #expect(spec.btf?.cTypeName(hash.keyType) == "struct key4")
        #expect(try m("m_array").type == .array)
        #expect(try m("m_percpu_hash").type == .percpuHash)
        #expect(try m("m_percpu_array").valueSize == 4)
        #expect(try m("m_lru").pinning == .byName)
        #expect(try m("m_ringbuf").type == .ringbuf && m("m_ringbuf").maxEntries == 4096)
        #expect(try m("m_perf").type == .perfEventArray && m("m_perf").keySize == 4)
        #expect(try m("m_stacks").valueSize == 127 * 8)
        #expect(try m("m_queue").type == .queue && m("m_queue").keySize == 0)
        #expect(try m("m_stack").type == .stack)
        #expect(try m("m_lpm").keySize == 8)
        let outer = try m("m_outer")
        #expect(outer.type == .arrayOfMaps && outer.valueSize == 4)
        #expect(outer.innerMap?.spec.type == .array)
        #expect(outer.initialInnerMaps.map(\.slot) == [0, 2])
        #expect(outer.initialInnerMaps.map(\.map) == ["inner_a", "inner_b"])
        #expect(try m("m_outer_hash").type == .hashOfMaps)
    }

    @Test func readsGlobalDataAndExterns() throws {
        let spec = try ObjectSpec(path: fixture("objects.bpfel.o"))
        let rodata = try #require(spec.maps.first { $0.dataSection == ".rodata" })
        #expect(rodata.name == "objects..rodata") // libbpf's naming: prefix cut to fit 15 chars
        #expect(rodata.isReadOnlyData)
        let threshold = try #require(rodata.variable("cfg_threshold"))
        #expect(threshold.size == 8)
        #expect(Array(rodata.contents[Int(threshold.offset)..<Int(threshold.offset) + 8]) == [0xe8, 3, 0, 0, 0, 0, 0, 0])
        #expect(spec.btf?.cTypeName(threshold.type) == "const volatile __u64")
        let bss = try #require(spec.maps.first { $0.dataSection == ".bss" })
        #expect(bss.contents.allSatisfy { $0 == 0 })
        #expect(bss.variable("static_counter")?.isStatic == true)
        let custom = try #require(spec.maps.first { $0.dataSection == ".data.custom" })
        #expect(custom.name == "obj.data.custom")
        #expect(custom.contents == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(spec.maps.contains { $0.dataSection == ".rodata.custom" && $0.isReadOnlyData })
        #expect(spec.externs.map(\.name).sorted() == ["CONFIG_HZ", "LINUX_KERNEL_VERSION", "bpf_rcu_read_lock", "bpf_rcu_read_unlock"])
        #expect(spec.externs.first { $0.name == "bpf_rcu_read_lock" }?.kind == .ksymFunction)
        #expect(spec.externs.first { $0.name == "CONFIG_HZ" }?.isWeak == true)
        // The object's BTF is fixed up as libbpf does: DATASEC sizes and offsets filled in.
        let btf = try #require(spec.btf)
        let ds = try btf.type(try #require(btf.firstID(named: ".rodata", kind: .dataSection)))
        #expect(ds.size == rodata.valueSize)
        #expect(ds.sectionVariables.map(\.offset).contains(threshold.offset))
    }

    @Test func programsHaveKindsReferencesAndLinkedSubprograms() throws {
        let spec = try ObjectSpec(path: fixture("objects.bpfel.o"))
        #expect(spec.programs.map(\.name) == ["first_prog", "second_prog", "third_prog"])
        let first = try #require(spec.program("first_prog"))
        #expect(first.type == .tracepoint && first.kind.target == "syscalls/sys_enter_getpid")
        #expect(first.functions.map(\.name) == ["first_prog", "loop_cb", "add_twice", "global_helper"])
        #expect(first.references.values.contains(.map("m_array")))
        #expect(first.references.values.contains(.kconfig("LINUX_KERNEL_VERSION")))
        #expect(!first.functionInfo.isEmpty && !first.lineInfo.isEmpty)
        #expect(first.functionInfo.map(\.slot) == first.functions.map(\.index))
        let second = try #require(spec.program("second_prog"))
        #expect(second.references.values.contains(.ksym("bpf_rcu_read_lock", isFunction: true)))
        #expect(second.functions.map(\.name) == ["second_prog", "add_twice"])
        let third = try #require(spec.program("third_prog"))
        #expect(third.type == .rawTracepoint && third.kind.target == "sys_enter")
        // Every pseudo call lands on the start of a linked function.
        for p in spec.programs {
            var slotOf: [Int] = []
            var slot = 0
            for insn in p.instructions { slotOf.append(slot); slot += insn.slotCount }
            let starts = Set(p.functions.map { slotOf[$0.index] })
            for (i, insn) in p.instructions.enumerated() where insn.opcode == 0x85 && insn.src.rawValue == 1 && p.references[i] == nil {
                #expect(starts.contains(slotOf[i] + Int(insn.imm) + 1), "\(p.name) call at \(i)")
            }
        }
    }

    @Test(arguments: ["basic", "objects"])
    func linkedFunctionsDisassembleLikeLLVMObjdump(name: String) throws {
        let path = try fixture("\(name).bpfel.o")
        let spec = try ObjectSpec(path: path)
        let expected = objdumpFunctions(path)
        let dis = Disassembler()
        for p in spec.programs {
            for (n, f) in p.functions.enumerated() {
                let end = n + 1 < p.functions.count ? p.functions[n + 1].index : p.instructions.count
                let ours = p.instructions[f.index..<end]
                let theirs = try #require(expected[f.name], "objdump has no \(f.name)")
                #expect(ours.count == theirs.count, "\(p.name)/\(f.name)")
                for (insn, text) in zip(ours, theirs) {
                    // Calls and function addresses are re-targeted by linking.
                    if (insn.opcode == 0x85 && insn.src.rawValue == 1) || insn.pseudoSource == .function { continue }
                    #expect(stripAnnotation(dis.text(insn)) == stripAnnotation(text), "\(p.name)/\(f.name)")
                }
            }
        }
    }

    @Test(arguments: ["basic", "objects"])
    func bothByteOrdersGiveTheSameSpec(name: String) throws {
        let le = try ObjectSpec(path: fixture("\(name).bpfel.o"))
        let be = try ObjectSpec(path: fixture("\(name).bpfeb.o"))
        #expect(le.order == .little && be.order == .big)
        #expect(le.maps.map(\.name) == be.maps.map(\.name).map { $0.replacingOccurrences(of: "bpfeb", with: "bpfel") })
        #expect(le.maps.map(\.maxEntries) == be.maps.map(\.maxEntries))
        #expect(le.programs.map(\.name) == be.programs.map(\.name))
        for (a, b) in zip(le.programs, be.programs) {
            #expect(a.instructions.count == b.instructions.count)
            #expect(a.references.count == b.references.count)
            #expect(a.functions.map(\.name) == b.functions.map(\.name))
        }
    }

    @Test func dumpListsEverything() throws {
        let spec = try ObjectSpec(path: fixture("objects.bpfel.o"))
        let text = spec.dump()
        #expect(text.contains("m_outer: array_of_maps"))
        #expect(text.contains("[2] = inner_b"))
        #expect(text.contains("const volatile __u64 cfg_threshold @ 0 (8 bytes) = e8 03 00 00 00 00 00 00"))
        #expect(text.contains("<first_prog>:"))
        #expect(text.contains("<add_twice>:"))
        #expect(text.contains("; __u64 *v = bpf_map_lookup_elem(&m_array, &key);"))
        #expect(text.contains("; map m_array"))
    }

    @Test func inMemoryObjectsNeedNoELF() throws {
        var b = ProgramBuilder()
        b.emit(.loadMapFD(.r1, fd: 0))
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        let insns = try b.finish()
        let kind = try #require(ProgramKind(section: "tracepoint/syscalls/sys_enter_getpid"))
        let prog = ProgramSpec(name: "counter", kind: kind, instructions: insns, references: [0: .map("hits")])
        let spec = ObjectSpec(name: "mem", maps: [MapSpec(name: "hits", type: .array, keySize: 4, valueSize: 8, maxEntries: 1)], programs: [prog])
        #expect(spec.program("counter")?.references[0] == .map("hits"))
        #expect(spec.dump().contains("; map hits"))
    }

    @Test func sectionNamesFollowLibbpf() throws {
        let cases: [(String, ProgramType, ProgramKind.AutoAttach, String)] = [
            ("tracepoint/syscalls/sys_enter_openat", .tracepoint, .tracepoint, "syscalls/sys_enter_openat"),
            ("tp/sched/sched_switch", .tracepoint, .tracepoint, "sched/sched_switch"),
            ("raw_tp/sys_enter", .rawTracepoint, .rawTracepoint, "sys_enter"),
            ("raw_tracepoint/sys_exit", .rawTracepoint, .rawTracepoint, "sys_exit"),
            ("tp_btf/sched_switch", .tracing, .tracing, "sched_switch"),
            ("uprobe/libc.so.6:malloc", .kprobe, .uprobe, "libc.so.6:malloc"),
            ("uretprobe//bin/bash:readline", .kprobe, .uretprobe, "/bin/bash:readline"),
            ("usdt/postgres:postgresql:query__start", .kprobe, .usdt, "postgres:postgresql:query__start"),
            ("kprobe/do_sys_openat2", .kprobe, .kprobe, "do_sys_openat2"),
            ("kretprobe/do_sys_openat2", .kprobe, .kretprobe, "do_sys_openat2"),
            ("fentry/do_unlinkat", .tracing, .tracing, "do_unlinkat"),
            ("fexit/do_unlinkat", .tracing, .tracing, "do_unlinkat"),
            ("perf_event", .perfEvent, .perfEvent, ""),
        ]
        for (section, type, attach, target) in cases {
            let k = try #require(ProgramKind(section: section), "\(section)")
            #expect(k.type == type && k.attach == attach && k.target == target, "\(section)")
        }
        #expect(ProgramKind(section: "tp_btf/sched_switch")?.expectedAttachType == .traceRawTP)
        #expect(ProgramKind(section: "fexit/x")?.expectedAttachType == .traceFexit)
        #expect(ProgramKind(section: "tpx/foo") == nil)
        #expect(ProgramKind(section: "uprobe.s/libc.so.6:free")?.sleepable == true)
    }

    @Test func attachPointsAreParsedWithTheSectionName() throws {
        func point(_ section: String) -> AttachPoint? { ProgramKind(section: section)?.attachPoint }
        #expect(point("tracepoint/syscalls/sys_enter_openat") == .tracepoint(category: "syscalls", name: "sys_enter_openat"))
        #expect(point("tracepoint/sys_enter_openat") == .malformed(expected: "tracepoint/<category>/<name>"))
        #expect(point("raw_tp/sys_enter") == .rawTracepoint("sys_enter"))
        #expect(point("tp_btf/sched_switch") == .btf)
        #expect(point("uprobe/libc.so.6:malloc+8") == .uprobe(try #require(UprobeSectionTarget("libc.so.6:malloc+8")), retprobe: false))
        #expect(point("uretprobe//bin/bash:0x40") == .uprobe(try #require(UprobeSectionTarget("/bin/bash:0x40")), retprobe: true))
        #expect(point("kretprobe/do_sys_openat2+0x10") == .kprobe(function: "do_sys_openat2", offset: 16, retprobe: true))
        #expect(point("perf_event") == .perfEvent)
        #expect(point("uprobe") == .unspecified)
        #expect(point("usdt/postgres:postgresql:query__start") == .unsupported(.usdt))
        #expect(point("socket") == AttachPoint.none)
        #expect(point("uprobe")?.isAutomatic == false && point("perf_event")?.isAutomatic == true)
        #expect(ProgramKind(section: "tp/sched/sched_switch")?.section == "tp/sched/sched_switch")
    }

    @Test func badObjectsGiveTypedErrors() throws {
        #expect(throws: BPFError.self) { try ObjectSpec(path: "/nonexistent.o") }
        #expect(throws: BPFError.self) { try ObjectSpec(path: "/bin/ls") } // not BPF
        // Mutations of a real object: every outcome is an error value or a spec, never a crash.
        let original = try Bytes.read(path: fixture("objects.bpfel.o"))
        let bytes = original.array(0..<original.count)
        var rng = SplitMix(seed: 7)
        func next() -> Int { Int(truncatingIfNeeded: rng.next() >> 1) }
        for _ in 0..<400 {
            var m = bytes
            for _ in 0..<(1 + next() % 6) { m[next() % m.count] = UInt8(truncatingIfNeeded: next()) }
            guard let elf = try? ELFFile(bytes: Bytes(m)) else { continue }
            if let spec = try? ObjectSpec(elf: elf, path: "mutant") { _ = spec.dump() }
        }
        for cut in stride(from: 0, to: bytes.count, by: 97) {
            guard let elf = try? ELFFile(bytes: Bytes(Array(bytes[..<cut]))) else { continue }
            _ = try? ObjectSpec(elf: elf, path: "cut")
        }
    }
}
