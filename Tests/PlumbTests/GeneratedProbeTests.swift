// Code from `plumb gen swift` (the files in Generated/, regenerated and compared by PlumbCLITests)
// used as a library user would: open (layouts checked against BTF), set globals, load, attach, read.
import Plumb
import Testing
import Glibc

@Suite struct GeneratedProbeTests {
    @Test func layoutsOfEveryGeneratedStructMatchBTF() throws {
        // Opening checks size and every member offset of each struct (packed, aligned, bitfields, gaps).
        guard let layout = fixturePath("btf_layout.bpfel.o"), let objects = fixturePath("objects.bpfel.o") else {
            Issue.record("fixtures missing")
            return
        }
        _ = try BtfLayoutProbe(path: layout)
        for (name, open) in [("btf_edge", { (p: String) throws in _ = try BtfEdgeProbe(path: p) }),
                             ("btf_decls", { (p: String) throws in _ = try BtfDeclsProbe(path: p) }),
                             ("execsnoop", { (p: String) throws in _ = try ExecsnoopProbe(path: p) }),
                             ("core_proc", { (p: String) throws in _ = try CoreProcProbe(path: p) })] {
            guard let path = fixturePath("\(name).bpfel.o") else { Issue.record("\(name) missing"); continue }
            #expect(throws: Never.self, "\(name)") { try open(path) }
        }
        let probe = try ObjectsProbe(path: objects)
        #expect(MemoryLayout<ObjectsProbe.Val16>.size == 16)
        #expect(MemoryLayout<ObjectsProbe.LpmKey>.offset(of: \.addr) == 4)
        #expect(probe.globals.cfgThreshold == 0 || probe.globals.cfgThreshold > 0)
        // Initial values come from the object's data sections.
        #expect(probe.globals.customData == 0x1122334455667788)
        #expect(probe.globals.customRo == 7)
    }

    @Test func aStructThatChangedIsRefusedAtOpen() throws {
        // BasicProbe.Event against an object whose struct event differs: the first BTF without one fails.
        guard let other = fixturePath("objects.bpfel.o") else { return }
        #expect(throws: BPFError.self) { _ = try BasicProbe(path: other) }
    }

    @Test func cStringsRoundTrip() {
        var s = CString<8>("plumbing!")
        #expect(s.string == "plumbin", "cut to 7 bytes and a NUL")
        s.string = "ok"
        #expect(s.string == "ok" && s.bytes[2] == 0)
        #expect(MemoryLayout<CString<16>>.size == 16)
    }

    @Test func loadSetGlobalsAttachAndReadTypedRecords() async throws {
        guard getuid() == 0 else { print("SKIP: loading BPF objects needs root"); return }
        guard let path = fixturePath("basic.bpfel.o") else { Issue.record("basic.bpfel.o missing"); return }
        let probe = try BasicProbe(path: path)
        #expect(probe.globals.seenValue == 7 && probe.globals.tag.string == "plumb")
        let me = UInt32(getpid())
        probe.globals.targetPid = me
        probe.globals.seenValue = 42
        // The program filters on this thread; everything up to the first await runs on it.
        probe.globals.targetTid = threadID()
        let loaded = try probe.load()
        let links = try loaded.attach()
        #expect(links.count == 2)
        let stream = try loaded.events.records(as: BasicProbe.Event.self)
        for _ in 0..<3 { _ = getpid() }
        #expect(try loaded.counts.lookup(me) == 3)
        var seen = 0
        for try await e in stream {
            #expect(e.pid == me && e.kind == 1 && e.value == 42)
            #expect(!e.comm.string.isEmpty)
            seen += 1
            if seen == 3 { break }
        }
        #expect(seen == 3)
        // Globals after load: read what the program wrote, write a writable one.
        #expect(try loaded.readGlobals().hits >= 3)
        #expect(try loaded.readGlobals().tag.string == "plumb")
        try loaded.setGlobal(\.seenValue, 99)
        #expect(try loaded.readGlobals().seenValue == 99)
        #expect(throws: BPFError.self, "const globals are frozen after load") { try loaded.setGlobal(\.targetPid, 1) }
        withExtendedLifetime(links) {}
    }
}
