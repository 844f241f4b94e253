// What a library user writes: `import Plumb` and nothing else of ours. Loads a fixture
// object, attaches it where its section says, reads a hash map and a ring buffer.
import Plumb
import Testing
import Glibc

@Suite struct PlumbTests {
    @Test("import Plumb alone: load an object, attach it by section, read a map and a ring buffer")
    func loadAttachRead() throws {
        guard getuid() == 0 else { print("SKIP: loading BPF objects needs root"); return }
        guard let path = fixturePath("basic.bpfel.o") else {
            Issue.record("basic.bpfel.o is missing and could not be built (clang -target bpf)")
            return
        }
        let me = UInt32(getpid())
        func bytes(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
        // Only this thread's getpid calls count: other tests in the process call getpid too.
        let object = try Object(path: path, options: LoadOptions(globals: ["target_pid": bytes(me), "target_tid": bytes(threadID())]))

        var pids: [UInt32] = []
        let ring = try RingBuffer(map: try object.map("events")) { record in
            // struct event { u32 pid; u32 kind; u64 value; char comm[16]; }
            if record.count >= 32 { pids.append(record.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) }
        }
        let link = try object.program("on_getpid").attach()
        #expect(link.description == "tracepoint syscalls/sys_enter_getpid")
        for _ in 0..<5 { _ = getpid() }
        try link.detach()

        #expect(try object.map("counts").lookup(me, as: UInt64.self) == 5)
        #expect(try ring.consume() == 5)
        #expect(pids == [UInt32](repeating: me, count: 5))

        // Errors come as one BPFError; a system error says its errno by name.
        do {
            _ = try Map(pinned: "/sys/fs/bpf/plumb-no-such-pin")
            Issue.record("opening a missing pin succeeded")
        } catch {
            #expect(error.errno == .noSuchFileOrDirectory)
        }
    }
}
