import Foundation
import Testing
import PlumbELF
import TestSupport


@Suite struct ELFTests {
    @Test("devices, directories and pipes are refused instead of read forever; sysfs files are read")
    func onlyRegularFiles() throws {
        #expect(throws: ELFError.notRegularFile(path: "/dev/zero")) { try Bytes.read(path: "/dev/zero") }
        #expect(throws: ELFError.notRegularFile(path: "/dev/zero")) { try ELFFile(path: "/dev/zero") }
        #expect(ELFError.notRegularFile(path: "/dev/zero").description == "/dev/zero is not a regular file: give a BTF or ELF file")
        #expect(throws: ELFError.notRegularFile(path: "/")) { try Bytes.read(path: "/") }
        let fifo = NSTemporaryDirectory() + "plumb-fifo-\(getpid())"
        guard mkfifo(fifo, 0o600) == 0 else { return }
        defer { unlink(fifo) }
        // O_RDONLY on a FIFO with no writer would block in open(): open it non-blocking via a writer first.
        let w = open(fifo, O_RDWR | O_NONBLOCK)
        defer { if w >= 0 { close(w) } }
        #expect(throws: ELFError.notRegularFile(path: fifo)) { try Bytes.read(path: fifo) }
        // sysfs reports the real size of the kernel's BTF: it is a regular file and is read whole.
        if FileManager.default.isReadableFile(atPath: "/sys/kernel/btf/vmlinux") {
            let b = try Bytes.read(path: "/sys/kernel/btf/vmlinux")
            let size = (try FileManager.default.attributesOfItem(atPath: "/sys/kernel/btf/vmlinux")[.size] as? NSNumber)?.intValue
            #expect(b.count > 0 && b.count == size)
        }
    }

    /// Section names and sizes as llvm-objdump lists them (the oracle).
    func objdumpSections(_ path: String) -> [String: UInt64] {
        let r = TestEnv.run(TestEnv.llvmObjdump, ["-h", path])
        var out: [String: UInt64] = [:]
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 3, Int(f[0]) != nil, let size = UInt64(f[2], radix: 16) { out[String(f[1])] = size }
        }
        return out
    }

    @Test(arguments: ["basic.bpfel.o", "basic.bpfeb.o"])
    func readsBPFObjects(name: String) throws {
        let path = try TestEnv.fixtures().appendingPathComponent(name).path
        let elf = try ELFFile(path: path)
        #expect(elf.machine == ELFFile.EM_BPF)
        #expect(elf.type == ELFFile.ET_REL)
        #expect(elf.order == (name.contains("bpfeb") ? .big : .little))
        let expected = objdumpSections(path)
        #expect(!expected.isEmpty)
        for s in elf.sections where !s.name.isEmpty {
            #expect(expected[s.name] == s.size, "section \(s.name)")
        }
        let syms = try elf.symbols()
        #expect(syms.contains { $0.name == "on_getpid" && $0.type == ELFSymbol.STT_FUNC })
        #expect(syms.contains { $0.name == "counts" })
        let relSection = try #require(elf.section(named: ".reltracepoint/syscalls/sys_enter_getpid"))
        let relocs = try elf.relocations(in: relSection)
        #expect(!relocs.isEmpty)
        #expect(relocs.allSatisfy { Int($0.symbolIndex) < syms.count })
    }

    @Test func readsHostBinariesAndMapsAddresses() throws {
        let elf = try ELFFile(path: "/bin/ls")
        #expect(elf.machine == ELFFile.EM_X86_64 || elf.machine == ELFFile.EM_AARCH64)
        #expect(!elf.programHeaders.isEmpty)
        let dyn = try elf.symbols(dynamic: true)
        #expect(!dyn.isEmpty)
        // The entry point lies in an executable segment and maps to a file offset.
        #expect(elf.fileOffset(ofVirtualAddress: elf.entry) != nil)
    }

    @Test func typedErrors() {
        #expect(throws: ELFError.notELF) { try ELFFile(bytes: Bytes([1, 2, 3, 4, 5])) }
        var h = [UInt8](repeating: 0, count: 64)
        h[0...3] = [0x7f, 0x45, 0x4c, 0x46]
        h[4] = 1
        #expect(throws: ELFError.unsupportedClass(1)) { try ELFFile(bytes: Bytes(h)) }
        h[4] = 2; h[5] = 9
        #expect(throws: ELFError.badByteOrder(9)) { try ELFFile(bytes: Bytes(h)) }
        h[5] = 1
        h[40] = 0xff; h[41] = 0xff // section headers far past the end
        h[58] = 64; h[60] = 3
        #expect(throws: ELFError.self) { try ELFFile(bytes: Bytes(h)) }
        #expect(throws: (any Error).self) { try ELFFile(path: "/nonexistent/file.o") }
    }

    /// Deterministic corpus: truncations and seeded mutations of the fixtures must throw or
    /// parse, never crash.
    @Test func mutatedCorpusNeverCrashes() throws {
        let dir = try TestEnv.fixtures()
        var rng = SplitMix(seed: 42)
        for o in TestEnv.corpusSeeds {
            let file = try Bytes.read(path: dir.appendingPathComponent(o).path)
            let original = file.array(0..<file.count)
            func exercise(_ b: [UInt8]) {
                guard let elf = try? ELFFile(bytes: Bytes(b)) else { return }
                _ = try? elf.symbols()
                for s in elf.sections {
                    _ = elf.contents(of: s).toArray()
                    _ = try? elf.relocations(in: s)
                    _ = try? elf.notes(in: s)
                }
            }
            for cut in stride(from: 0, to: original.count, by: 16) { exercise(Array(original[..<cut])) }
            for _ in 0..<1000 {
                var m = original
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    let i = Int.random(in: 0..<m.count, using: &rng)
                    m[i] = UInt8.random(in: 0...255, using: &rng)
                }
                exercise(m)
            }
        }
    }
}
