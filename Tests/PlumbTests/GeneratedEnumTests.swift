// C enums in `plumb gen swift` output (Generated/BareAttachProbe.swift): RawRepresentable structs
// with a static member per enumerator, used in record structs, checked against BTF at open.
import Plumb
import Testing
import Glibc

@Suite struct GeneratedEnumTests {
    @Test func enumeratorsAreStaticMembersAndUnlistedValuesSurvive() {
        typealias Kind = BareAttachProbe.HitKind
        #expect(Kind.entry.rawValue == 0 && Kind.named.rawValue == 3 && Kind.kinds.rawValue == 5)
        // `return` is a keyword: the generated member is escaped, and still reachable.
        #expect(Kind.return.rawValue == 1)
        #expect(Kind.named.description == "HIT_NAMED")
        // A value the C enum does not list is kept, not trapped on.
        #expect(Kind(rawValue: 77).description == "hit_kind(77)")
        #expect(MemoryLayout<Kind>.size == 4 && MemoryLayout<Kind>.alignment == 4)
        #expect(MemoryLayout<BareAttachProbe.Hit>.offset(of: \.kind) == 4)
        var r = BareAttachProbe.Hit()
        r.kind = .usdt
        #expect(r.kind == .usdt && r.kind != .entry)
    }

    @Test func enumsAreCheckedAgainstTheObjectsBTF() throws {
        guard let path = fixturePath("bare_attach.bpfel.o"), let other = fixturePath("basic.bpfel.o") else {
            Issue.record("fixtures missing")
            return
        }
        _ = try BareAttachProbe(path: path)
        // An object without enum hit_kind is refused when opened.
        #expect(throws: BPFError.self) { _ = try BareAttachProbe(path: other) }
    }

    @Test func recordsCarryTheEnum() async throws {
        guard getuid() == 0 else { print("SKIP: loading BPF objects needs root"); return }
        guard let path = fixturePath("bare_attach.bpfel.o") else { Issue.record("bare_attach.bpfel.o missing"); return }
        let probe = try BareAttachProbe(path: path)
        let me = UInt32(getpid())
        probe.globals.targetPid = me
        let loaded = try probe.load()
        // Only on_named's section names a target (libc's getppid); other processes call it too.
        let links = try loaded.attach()
        #expect(links.count == 1)
        let stream = try loaded.events.records(as: BareAttachProbe.Hit.self)
        for _ in 0..<3 { _ = getppid() }
        var mine = 0
        for try await e in stream where e.pid == me {
            #expect(e.kind == .named)
            mine += 1
            if mine == 3 { break }
        }
        #expect(mine == 3)
        // Other tests of this process may call getppid meanwhile: at least ours are counted.
        #expect(try loaded.hits.lookup(BareAttachProbe.HitKind.matched.rawValue) ?? 0 >= 3)
        withExtendedLifetime(links) {}
    }
}
