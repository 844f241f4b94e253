import Foundation
import Testing
import PlumbELF
import TestSupport

@Suite struct USDTSpecTests {
    func reg(_ name: String) -> USDTRegister { USDTRegister.named(name)! }
    func parse(_ spec: String, symbols: [String: UInt64] = [:]) throws(ELFError) -> USDTArgument {
        try USDT.parseArgument(spec, probe: "p:n") { name in symbols[name] }
    }

    @Test func registersMapToPtRegsWithWidthAndShift() {
        let expected: [(String, X86Register, Int, Int, Int)] = [
            ("rax", .rax, 8, 0, 80), ("eax", .rax, 4, 0, 80), ("ax", .rax, 2, 0, 80), ("al", .rax, 1, 0, 80), ("ah", .rax, 1, 1, 81),
            ("rbx", .rbx, 8, 0, 40), ("bh", .rbx, 1, 1, 41), ("ch", .rcx, 1, 1, 89), ("dh", .rdx, 1, 1, 97),
            ("rcx", .rcx, 8, 0, 88), ("rdx", .rdx, 8, 0, 96), ("rsi", .rsi, 8, 0, 104), ("rdi", .rdi, 8, 0, 112),
            ("dil", .rdi, 1, 0, 112), ("sil", .rsi, 1, 0, 104), ("bpl", .rbp, 1, 0, 32), ("spl", .rsp, 1, 0, 152),
            ("rbp", .rbp, 8, 0, 32), ("rsp", .rsp, 8, 0, 152), ("esp", .rsp, 4, 0, 152), ("rip", .rip, 8, 0, 128),
            ("r15", .r15, 8, 0, 0), ("r14", .r14, 8, 0, 8), ("r14d", .r14, 4, 0, 8), ("r14w", .r14, 2, 0, 8), ("r14b", .r14, 1, 0, 8),
            ("r13", .r13, 8, 0, 16), ("r12d", .r12, 4, 0, 24), ("r11", .r11, 8, 0, 48), ("r10w", .r10, 2, 0, 56),
            ("r9", .r9, 8, 0, 64), ("r8b", .r8, 1, 0, 72), ("r8l", .r8, 1, 0, 72),
        ]
        for (name, full, width, shift, load) in expected {
            let r = USDTRegister.named(name)
            #expect(r?.register == full, "\(name)")
            #expect(r?.width == width, "\(name)")
            #expect(r?.byteShift == shift, "\(name)")
            #expect(r?.ptRegsLoadOffset == load, "\(name)")
        }
        let offsets: [(X86Register, Int)] = [(.r15, 0), (.r14, 8), (.r13, 16), (.r12, 24), (.rbp, 32), (.rbx, 40), (.r11, 48), (.r10, 56),
                                             (.r9, 64), (.r8, 72), (.rax, 80), (.rcx, 88), (.rdx, 96), (.rsi, 104), (.rdi, 112),
                                             (.origRax, 120), (.rip, 128), (.cs, 136), (.eflags, 144), (.rsp, 152), (.ss, 160)]
        for (r, o) in offsets { #expect(r.ptRegsOffset == o, "\(r)") }
        for bad in ["", "r16", "sih", "eflags", "xmm0", "RAX", "r8x"] { #expect(USDTRegister.named(bad) == nil, "\(bad)") }
    }

    @Test func parsesEveryOperandForm() throws {
        let syms: [String: UInt64] = ["g_total": 0x4010, "CheckpointStats": 0x9000, "g_table": 0x4100]
        let cases: [(String, Int, Bool, USDTLocation)] = [
            ("-4@$1", 4, true, .constant(1)),
            ("1@$-7", 1, false, .constant(-7)),
            ("8@$0x10", 8, false, .constant(16)),
            ("8@$0xffffffffffffffff", 8, false, .constant(-1)),
            ("-8@$-9223372036854775808", 8, true, .constant(Int64.min)),
            ("8@%rax", 8, false, .register(reg("rax"))),
            ("4@%r14d", 4, false, .register(reg("r14d"))),
            ("1@%ah", 1, false, .register(reg("ah"))),
            ("-1@%dil", 1, true, .register(reg("dil"))),
            ("2@%r9w", 2, false, .register(reg("r9w"))),
            ("4@60(%rax)", 4, false, .memory(base: reg("rax"), offset: 60)),
            ("-4@-136(%rbp)", 4, true, .memory(base: reg("rbp"), offset: -136)),
            ("4@(%r12)", 4, false, .memory(base: reg("r12"), offset: 0)),
            ("4@0(%r13)", 4, false, .memory(base: reg("r13"), offset: 0)),
            ("8@0x20(%rsp)", 8, false, .memory(base: reg("rsp"), offset: 32)),
            ("-4@(%rax,%rdx,4)", 4, true, .effectiveAddress(base: reg("rax"), index: reg("rdx"), scale: 4, offset: 0, symbol: nil)),
            ("8@-8(%rbx,%rcx)", 8, false, .effectiveAddress(base: reg("rbx"), index: reg("rcx"), scale: 1, offset: -8, symbol: nil)),
            ("8@16(,%rsi,8)", 8, false, .effectiveAddress(base: nil, index: reg("rsi"), scale: 8, offset: 16, symbol: nil)),
            ("-4@g_table(,%rax,4)", 4, true, .effectiveAddress(base: nil, index: reg("rax"), scale: 4, offset: 0,
                                                               symbol: USDTSymbol(name: "g_table", address: 0x4100))),
            ("-8@g_total(%rip)", 8, true, .global(symbol: USDTSymbol(name: "g_total", address: 0x4010), offset: 0)),
            ("-4@40+CheckpointStats(%rip)", 4, true, .global(symbol: USDTSymbol(name: "CheckpointStats", address: 0x9000), offset: 40)),
            ("-4@CheckpointStats+44(%rip)", 4, true, .global(symbol: USDTSymbol(name: "CheckpointStats", address: 0x9000), offset: 44)),
            ("-4@CheckpointStats-4(%rip)", 4, true, .global(symbol: USDTSymbol(name: "CheckpointStats", address: 0x9000), offset: -4)),
            ("8@missing(%rip)", 8, false, .global(symbol: USDTSymbol(name: "missing", address: nil), offset: 0)),
            ("8@g_total+8", 8, false, .global(symbol: USDTSymbol(name: "g_total", address: 0x4010), offset: 8)),
            ("8@$g_table+4", 8, false, .symbolAddress(symbol: USDTSymbol(name: "g_table", address: 0x4100), offset: 4)),
            ("8@8(%rip)", 8, false, .memory(base: reg("rip"), offset: 8)),
            ("%rdi", 8, false, .register(reg("rdi"))),
        ]
        for (spec, size, signed, location) in cases {
            let a = try parse(spec, symbols: syms)
            #expect(a.size == size, "\(spec)")
            #expect(a.isSigned == signed, "\(spec)")
            #expect(a.location == location, "\(spec)")
            #expect(a.text == spec)
        }
    }

    @Test func rejectsMalformedSpecsWithTypedErrors() throws {
        let bad = ["3@%rax", "16@%rax", "-@%rax", "4@", "4@%", "4@%foo", "4@$", "4@$x+", "4@(%rax", "4@()", "4@(%rax,%rbx,3)",
                   "4@(%ax)", "4@(%rax,%rip)", "4@sym(%rbx,%rcx,4)x", "4@12", "4@%rax)", "4@$99999999999999999999",
                   "4@0x(%rax)", "4@sym(%rip,%rax)", "4@+5", "@%rax", "4@%eax extra"]
        for spec in bad {
            #expect(throws: ELFError.self, "\(spec)") { _ = try parse(spec) }
            do { _ = try parse(spec) } catch {
                guard case .badUSDTArgument(let probe, let arg, _) = error else { Issue.record("\(spec): \(error)"); continue }
                #expect(probe == "p:n")
                #expect(arg == spec)
                #expect(error.description.contains("cannot be parsed"))
            }
        }
        // Arguments: split on spaces, at most 12.
        #expect(try USDT.parseArguments("").isEmpty)
        #expect(try USDT.parseArguments(" -4@%esi  8@%rax ").count == 2)
        #expect(try USDT.parseArguments(Array(repeating: "8@%rax", count: 12).joined(separator: " ")).count == 12)
        #expect(throws: ELFError.self) { try USDT.parseArguments(Array(repeating: "8@%rax", count: 13).joined(separator: " ")) }
    }

    /// Deterministic mutation corpus: every mutant parses or fails with `.badUSDTArgument`, never traps.
    @Test func mutatedSpecsNeverTrap() {
        let seeds = ["-4@40+CheckpointStats(%rip)", "-4@(%rax,%rdx,4)", "1@%ah", "8@$0x10", "-4@g_table(,%rax,4)", "4@-136(%rbp)"]
        let alphabet = Array("0123456789-+@$%(),xabcdehilpqrsw_ ".utf8)
        var rng = SplitMix(seed: 0x5D7)
        var parsed = 0, rejected = 0
        for i in 0..<20_000 {
            var b = Array(seeds[i % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0 where !b.isEmpty: b[Int.random(in: 0..<b.count, using: &rng)] = alphabet.randomElement(using: &rng)!
                case 1 where !b.isEmpty: b.remove(at: Int.random(in: 0..<b.count, using: &rng))
                default: b.insert(alphabet.randomElement(using: &rng)!, at: Int.random(in: 0...b.count, using: &rng))
                }
            }
            do {
                _ = try USDT.parseArguments(String(decoding: b, as: UTF8.self), probe: "fuzz") { _ in 0x1000 }
                parsed += 1
            } catch {
                if case .badUSDTArgument = error { rejected += 1 } else { Issue.record("unexpected \(error)") }
            }
        }
        #expect(parsed > 100 && rejected > 100)
    }
}

@Suite struct USDTNoteTests {
    /// A stapsdt descriptor: three addresses then provider, name, args.
    func descriptor(pc: UInt64, base: UInt64, sema: UInt64, _ strings: [String], addressSize: Int = 8) -> [UInt8] {
        var d: [UInt8] = []
        for v in [pc, base, sema] {
            for i in 0..<addressSize { d.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
        }
        for s in strings { d += Array(s.utf8) + [0] }
        return d
    }

    func view(_ b: [UInt8]) -> ByteView { ByteView(Bytes(b), order: .little) }

    @Test func decodesDescriptorsOfBothClasses() throws {
        for size in [8, 4] {
            let d = descriptor(pc: 0x1234, base: 0x2000, sema: 0x4048, ["prov", "name", "-4@%edi 8@(%rax)"], addressSize: size)
            let n = try USDT.parseNote(view(d), addressSize: size)
            #expect(n.pc == 0x1234 && n.base == 0x2000 && n.semaphore == 0x4048)
            #expect(n.provider == "prov" && n.name == "name" && n.arguments == "-4@%edi 8@(%rax)")
        }
        // No argument string at all is accepted (an argument-less probe).
        let bare = try USDT.parseNote(view(descriptor(pc: 1, base: 2, sema: 0, ["p", "n"])), addressSize: 8)
        #expect(bare.arguments == "")
    }

    @Test func rejectsMalformedDescriptors() {
        let good = descriptor(pc: 0x1234, base: 0x2000, sema: 0, ["prov", "name", "8@%rax"])
        var cases: [[UInt8]] = [Array(good.prefix(23)), Array(good.prefix(24)), Array(good.prefix(28)),
                                descriptor(pc: 1, base: 2, sema: 3, ["", "name", ""]), descriptor(pc: 1, base: 2, sema: 3, ["p", "", ""])]
        cases.append(Array(good.dropLast()))   // argument string not NUL-terminated
        for (i, c) in cases.enumerated() {
            #expect(throws: ELFError.self, "case \(i)") { try USDT.parseNote(view(c), addressSize: 8) }
        }
        #expect(throws: ELFError.self) { try USDT.parseNote(view(good), addressSize: 2) }
    }

    /// Deterministic mutation corpus over whole binaries' note sections: parse or typed error.
    @Test func mutatedNotesNeverTrap() throws {
        let fixtures: USDTFixtures
        do { fixtures = try USDTFixtures.build() } catch { print("SKIP: \(error)"); return }
        let original = try Array(Data(contentsOf: URL(fileURLWithPath: fixtures.pie)))
        let elf = try ELFFile(bytes: Bytes(original))
        let notes = try #require(elf.section(named: ".note.stapsdt"))
        let start = Int(notes.offset), count = Int(notes.size)
        var rng = SplitMix(seed: 0xC0FFEE)
        var ok = 0, failed = 0
        for _ in 0..<600 {
            var b = original
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                b[start + Int.random(in: 0..<count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            guard let e = try? ELFFile(bytes: Bytes(b)) else { continue }
            do { _ = try USDT.probes(in: e); ok += 1 } catch {
                switch error {
                case .badUSDTNote, .badUSDTArgument, .badSection: failed += 1
                default: Issue.record("unexpected \(error)")
                }
            }
        }
        #expect(ok + failed == 600)
        #expect(failed > 0)
    }
}

@Suite struct USDTBinaryTests {
    /// Our parse agrees with readelf -n note for note; sites are NOPs at their file offsets.
    func checkAgainstReadelf(_ path: String) throws -> [USDTProbe] {
        let elf = try ELFFile(path: path)
        let probes = try USDT.probes(in: elf)
        let expected = TestEnv.readelfUSDT(path)
        #expect(probes.count == expected.count, "\(path)")
        #expect(!probes.isEmpty)
        let stapsdtBase = elf.section(named: ".stapsdt.base")?.address
        for (p, e) in zip(probes, expected) {
            #expect(p.provider == e.provider && p.name == e.name, "\(p)")
            #expect(p.noteAddress == e.location && p.noteBase == e.base, "\(p)")
            // No prelink here: the base matches and nothing moves.
            #expect(stapsdtBase == e.base)
            #expect(p.address == e.location)
            #expect(p.semaphoreAddress == (e.semaphore == 0 ? nil : e.semaphore), "\(p)")
            #expect(p.argumentText == e.arguments, "\(p)")
            let args = try #require(p.arguments)
            #expect(args.map(\.text) == e.arguments.split(separator: " ").map(String.init), "\(p)")
            // A nop, or int3 (0xcc) while a uprobe sits there: the kernel writes its breakpoint
            // into every executable-capable mapping of the file, our read-only one included, and
            // other tests attach to these sites concurrently.
            let site = elf.view.u8(Int(p.fileOffset))
            #expect(site == 0x90 || site == 0xcc, "\(p): a probe site is a nop")
            if let s = p.semaphoreFileOffset {
                // The semaphore lives in .probes, file-backed, and reads 0 in the file.
                let probesSection = try #require(elf.section(named: ".probes"))
                #expect(s >= probesSection.offset && s < probesSection.offset + probesSection.size)
                #expect(elf.view.u16(Int(s)) == 0)
            }
        }
        return probes
    }

    @Test func fixtureBinariesMatchReadelf() throws {
        let fixtures: USDTFixtures
        do { fixtures = try USDTFixtures.build() } catch { print("SKIP: \(error)"); return }
        for path in [fixtures.pie, fixtures.nopie] {
            let probes = try checkAgainstReadelf(path)
            let names = probes.map(\.qualifiedName)
            #expect(names.filter { $0 == "plumb:twice" }.count == 2)
            #expect(Set(names) == ["plumb:tick", "plumb:twice", "plumb:regs", "plumb:many", "plumb:gated"])
            let gated = try #require(probes.first { $0.name == "gated" })
            #expect(gated.semaphoreFileOffset != nil)
            #expect(probes.filter { $0.semaphoreAddress != nil }.count == 1)
            let many = try #require(probes.first { $0.name == "many" })
            #expect(many.arguments?.count == 12)
            let regs = try #require(probes.first { $0.name == "regs" }?.arguments)
            #expect(regs[0].location == .register(USDTRegister.named("ah")!))
            let tick = try #require(probes.first { $0.name == "tick" }?.arguments)
            let syms = try ELFFile(path: path).symbols()
            let total = try #require(syms.first { $0.name == "g_total" }?.value)
            let stats = try #require(syms.first { $0.name == "g_stats" }?.value)
            #expect(tick[1].location == .global(symbol: USDTSymbol(name: "g_total", address: total), offset: 0))
            #expect(tick[3].location == .global(symbol: USDTSymbol(name: "g_stats", address: stats), offset: 8))
            #expect(tick[5].location == .constant(-7))
        }
        let lib = try checkAgainstReadelf(fixtures.library)
        #expect(lib.map(\.qualifiedName) == ["plumblib:work"])
        #expect(lib[0].arguments?[1].location.symbol?.name == "lib_counter")
        #expect(lib[0].arguments?[1].location.symbol?.address != nil)
    }

    @Test func prelinkedBaseMovesSitesAndSemaphores() throws {
        let fixtures: USDTFixtures
        do { fixtures = try USDTFixtures.build() } catch { print("SKIP: \(error)"); return }
        // Raise every note's recorded base by 8, as if prelink had moved the image (and .stapsdt.base)
        // down by 8 after the notes were written: the adjusted pc and semaphore are 8 lower.
        var b = try Array(Data(contentsOf: URL(fileURLWithPath: fixtures.pie)))
        let elf = try ELFFile(bytes: Bytes(b))
        let section = try #require(elf.section(named: ".note.stapsdt"))
        let original = try USDT.probes(in: elf)
        var o = Int(section.offset)
        let end = o + Int(section.size)
        while o + 12 <= end {
            let namesz = Int(elf.view.u32(o)!), descsz = Int(elf.view.u32(o + 4)!)
            let desc = o + 12 + ((namesz + 3) & ~3)
            let base = elf.view.u64(desc + 8)! + 8
            for i in 0..<8 { b[desc + 8 + i] = UInt8(truncatingIfNeeded: base >> (8 * UInt64(i))) }
            o = desc + ((descsz + 3) & ~3)
        }
        let moved = try USDT.probes(in: try ELFFile(bytes: Bytes(b)))
        #expect(moved.count == original.count)
        for (m, p) in zip(moved, original) {
            #expect(m.address == p.address - 8)
            #expect(m.noteAddress == p.noteAddress)
            #expect(m.semaphoreAddress == p.semaphoreAddress.map { $0 - 8 })
            #expect(m.fileOffset == p.fileOffset - 8)
        }
    }

    /// PostgreSQL 15 (configured --enable-dtrace): 71 sites under 57 names, semaphores on all.
    @Test func postgresProbesMatchReadelf() throws {
        let path = "/usr/lib/postgresql/15/bin/postgres"
        guard FileManager.default.fileExists(atPath: path) else {
            print("SKIP: \(path) missing (apt-get install postgresql-15; scripts/setup.sh does)")
            return
        }
        let probes = try checkAgainstReadelf(path)
        #expect(probes.count == 71)
        #expect(Set(probes.map(\.qualifiedName)).count == 57)
        #expect(probes.allSatisfy { $0.provider == "postgresql" && $0.semaphoreFileOffset != nil })
        let byName = Dictionary(grouping: probes, by: \.name)
        let checkpoint = try #require(byName["checkpoint__done"]?.first?.arguments)
        #expect(checkpoint.map(\.text) == ["-4@40+CheckpointStats(%rip)", "-4@NBuffers(%rip)", "-4@44+CheckpointStats(%rip)",
                                           "-4@48+CheckpointStats(%rip)", "-4@52+CheckpointStats(%rip)"])
        guard case .global(let stats, 40) = checkpoint[0].location else { Issue.record("\(checkpoint[0])"); return }
        #expect(stats.name == "CheckpointStats" && stats.address != nil)
        #expect(checkpoint[0].isSigned && checkpoint[0].size == 4)
        let lwlock = try #require(byName["lwlock__wait__start"]?.first?.arguments)
        #expect(lwlock.count == 2)
        let wait = try #require(probes.first { $0.argumentText == "1@%dil 1@%sil" }?.arguments)
        #expect(wait[0].location == .register(USDTRegister.named("dil")!))
    }
}
