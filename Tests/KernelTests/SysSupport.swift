// Helpers for the BPFSys kernel tests: hand-encoded instructions and an id-based leak check.
import PlumbSys
import Glibc
import Testing
import TestSupport

/// One BPF instruction, little-endian (the test machine is x86-64): op, dst/src nibbles, off, imm.
func insn(_ op: UInt8, dst: UInt8 = 0, src: UInt8 = 0, off: Int16 = 0, imm: Int32 = 0) -> [UInt8] {
    let o = UInt16(bitPattern: off), i = UInt32(bitPattern: imm)
    return [op, (src << 4) | (dst & 0xf), UInt8(o & 0xff), UInt8(o >> 8),
            UInt8(i & 0xff), UInt8((i >> 8) & 0xff), UInt8((i >> 16) & 0xff), UInt8(i >> 24)]
}

enum Prog {
    /// r0 = 0; exit
    static let returnZero: [UInt8] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]

    /// exit without setting r0: the verifier says "R0 !read_ok".
    static let readsUninitializedR0: [UInt8] = [0x95, 0, 0, 0, 0, 0, 0, 0]

    /// Adds 1 to the u64 at key 0 of the array map `mapFD` (key u32, value u64); returns 0.
    static func counter(mapFD: Int32) -> [UInt8] {
        insn(0x18, dst: 1, src: 1, imm: mapFD) + insn(0)      // r1 = map (BPF_PSEUDO_MAP_FD)
            + insn(0x62, dst: 10, off: -4, imm: 0)             // *(u32 *)(r10 - 4) = 0
            + insn(0xbf, dst: 2, src: 10)                      // r2 = r10
            + insn(0x07, dst: 2, imm: -4)                      // r2 += -4
            + insn(0x85, imm: 1)                               // call bpf_map_lookup_elem
            + insn(0x15, dst: 0, off: 2, imm: 0)               // if r0 == 0 goto +2
            + insn(0xb7, dst: 1, imm: 1)                       // r1 = 1
            + insn(0xdb, dst: 0, src: 1, off: 0, imm: 0)       // lock *(u64 *)(r0 + 0) += r1
            + returnZero
    }
}

/// Why kernel tests cannot run here, or nil when bpf() works for us.
func bpfUnavailableReason() -> String? {
    do {
        _ = try Sys.mapCreate(MapAttributes(type: .array, keySize: 4, valueSize: 4, maxEntries: 1))
        return nil
    } catch {
        return "bpf() unusable: \(error)"
    }
}

/// A one-slot array map (u32 key -> u64) used as a hit counter.
func makeCounter(name: String = "counter") throws -> OwnedFD {
    try Sys.mapCreate(MapAttributes(type: .array, keySize: 4, valueSize: 8, maxEntries: 1, name: name))
}

func readCounter(_ map: borrowing OwnedFD) throws -> UInt64 {
    try Sys.mapLookup(map, key: UInt32(0), as: UInt64.self) ?? 0
}

/// Records the ids of objects a test created and checks they are gone once their owners died.
/// Ids, not global counts: other tests and other processes load objects concurrently.
final class LeakCheck: @unchecked Sendable {
    private var tracked: [(ObjectKind, UInt32)] = []

    func map(_ fd: borrowing OwnedFD) throws { tracked.append((.map, try Sys.mapInfo(fd).id)) }
    func prog(_ fd: borrowing OwnedFD) throws { tracked.append((.program, try Sys.programInfo(fd).id)) }
    func link(_ fd: borrowing OwnedFD) throws { tracked.append((.link, try Sys.linkInfo(fd).id)) }

    /// Every tracked id must have disappeared (the kernel frees some objects via RCU, so poll briefly).
    func verify(sourceLocation: SourceLocation = #_sourceLocation) throws {
        for _ in 0..<200 {
            let alive = try tracked.filter { kind, id in try Sys.exists(id: id, kind: kind) }
            if alive.isEmpty { return }
            usleep(10_000)
        }
        let alive = try tracked.filter { kind, id in try Sys.exists(id: id, kind: kind) }
        Issue.record("leaked kernel objects: \(alive.map { "\($0.0) \($0.1)" })", sourceLocation: sourceLocation)
    }
}

/// Runs `body` (which owns every fd it creates) and then checks nothing it tracked survived.
func withLeakCheck(_ body: (LeakCheck) throws -> Void) throws {
    let check = LeakCheck()
    try body(check)
    try check.verify()
}

/// One getpid(2) system call.
func rawGetpid() {
    // glibc >= 2.25 no longer caches getpid(): every call enters the kernel.
    _ = getpid()
}

/// The errno of a SysError (tests catch untyped errors inside closures).
func errnoOf(_ error: any Error) -> Errno? {
    (error as? SysError)?.errno
}

/// The id of syscalls:sys_enter_getpid, or nil (the test skipping, and saying why) without it.
func getpidTracepointOrSkip() -> UInt32? {
    do { return try Tracefs.tracepointID(category: "syscalls", name: "sys_enter_getpid") } catch {
        _ = TestEnv.kernelAvailable("tracepoint syscalls:sys_enter_getpid: \(error)")
        return nil
    }
}

/// The bpffs mount point, or nil (the test skipping, and saying why) without one.
func bpffsOrSkip() -> String? {
    do { return try BPFFS.path() } catch {
        _ = TestEnv.kernelAvailable("bpffs: \(error)")
        return nil
    }
}

@Suite struct ErrnoTests {
    @Test("Errno has swift-system's names and prints as NAME (strerror)")
    func namesAndDescriptions() {
        #expect(Errno.notPermitted.rawValue == EPERM && Errno.permissionDenied.rawValue == EACCES)
        #expect(Errno.noSuchFileOrDirectory.rawValue == ENOENT && Errno.invalidArgument.rawValue == EINVAL)
        #expect(Errno.notPermitted.description == "EPERM (Operation not permitted)")
        #expect(Errno.kernelNotSupported.description == "ENOTSUPP (Operation not supported)")
        #expect(Errno(rawValue: 4095).name == "errno 4095")
        #expect(Errno.notSupported.isNotSupported && Errno.kernelNotSupported.isNotSupported && !Errno.fileExists.isNotSupported)
        let e = SysError.verifierRejected(errno: .permissionDenied, program: "p", log: "0: (95) exit\nR0 !read_ok", truncated: false)
        #expect(e.errno == .permissionDenied && e.verifierLog?.contains("R0 !read_ok") == true)
        #expect(SysError.invalidArgument("x").errno == nil)
    }
}
