// Helpers for the BPF runtime kernel tests: programs built with BPFAsm, a per-id leak check
// that also covers perf events, and small process/CPU utilities.
import PlumbBPF
import PlumbAsm
import PlumbSys
import Foundation
import Glibc
import Testing
import TestSupport

/// getpid's syscall number (raw_tp/tp_btf sys_enter programs filter on it).
#if arch(x86_64)
let sysGetpid: Int32 = 39
#elseif arch(arm64)
let sysGetpid: Int32 = 172
#endif

/// The calling thread's kernel id: tests filter on it so concurrent tests cannot disturb counts.
/// (gettid and sched_setaffinity are _GNU_SOURCE: not in Swift's Glibc module, so dlsym them.)
func currentTID() -> Int32 {
    typealias Fn = @convention(c) () -> Int32
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gettid") else { fatalError("no gettid in libc") }
    return unsafeBitCast(sym, to: Fn.self)()
}

private typealias AffinityFn = @convention(c) (Int32, Int, UnsafeMutableRawPointer) -> Int32
private func affinityCall(_ name: String) -> AffinityFn? {
    dlsym(UnsafeMutableRawPointer(bitPattern: 0), name).map { unsafeBitCast($0, to: AffinityFn.self) }
}

enum Asm {
    /// Encodes a finished builder.
    static func encode(_ b: ProgramBuilder) throws -> [UInt8] {
        Instruction.encode(try b.finish())
    }

    /// Emits: r7 = current tid; if r7 != tid goto `skip`.
    static func filterTID(_ b: inout ProgramBuilder, _ tid: Int32, skip: Label) {
        b.emit(.call(HelperID.getCurrentPidTgid))
        b.emit(.mov32(.r7, .r0))                         // lower 32 bits: the thread id
        b.jump(.jne, .r7, imm: tid, to: skip)
    }

    /// Emits: if the u64 at ctx+8 (the syscall id of raw_tp/tp_btf sys_enter) != nr goto `skip`. ctx in r6.
    static func filterSyscall(_ b: inout ProgramBuilder, _ nr: Int32, skip: Label) {
        b.emit(.load(.r1, .r6, offset: 8, size: .doubleWord))
        b.jump(.jne, .r1, imm: nr, to: skip)
    }

    /// Emits: map[key] += 1 for an array-like map with u32 keys and u64 values.
    static func increment(_ b: inout ProgramBuilder, map: Map, key: Int32 = 0) {
        let done = b.newLabel()
        b.emit(.loadMapFD(.r1, fd: map.fd.rawValue))
        b.emit(.store(.r10, offset: -4, imm: key, size: .word))
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -4))
        b.emit(.call(HelperID.mapLookupElem))
        b.jump(.jeq, .r0, imm: 0, to: done)
        b.emit(.mov64(.r1, 1))
        b.emit(.atomic(.add, .r0, offset: 0, .r1, size: .doubleWord))
        b.bind(done)
    }

    /// Counts hits into `counter[0]`: only those of thread `tid` (if given) and, for sys_enter
    /// raw/BTF tracepoints, only getpid (`syscallFilter`).
    static func counter(_ counter: Map, tid: Int32?, syscallFilter: Bool = false) throws -> [UInt8] {
        var b = ProgramBuilder()
        let out = b.newLabel("out")
        b.emit(.mov64(.r6, .r1))
        if let tid { filterTID(&b, tid, skip: out) }
        if syscallFilter { filterSyscall(&b, sysGetpid, skip: out) }
        increment(&b, map: counter)
        b.bind(out)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        return try encode(b)
    }

    /// Fills `hash` (u32 tid -> u64 hits): looks the key up, adds 1, or inserts 1.
    static func hashCounter(_ hash: Map, tid: Int32) throws -> [UInt8] {
        var b = ProgramBuilder()
        let out = b.newLabel("out"), insert = b.newLabel("insert")
        filterTID(&b, tid, skip: out)
        b.emit(.store(.r10, offset: -4, .r7, size: .word))
        b.emit(.loadMapFD(.r1, fd: hash.fd.rawValue))
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -4))
        b.emit(.call(HelperID.mapLookupElem))
        b.jump(.jeq, .r0, imm: 0, to: insert)
        b.emit(.mov64(.r1, 1))
        b.emit(.atomic(.add, .r0, offset: 0, .r1, size: .doubleWord))
        b.goto(out)
        b.bind(insert)
        b.emit(.store(.r10, offset: -16, imm: 1, size: .doubleWord))
        b.emit(.loadMapFD(.r1, fd: hash.fd.rawValue))
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -4))
        b.emit(.mov64(.r3, .r10))
        b.emit(.add64(.r3, -16))
        b.emit(.mov64(.r4, 0))
        b.emit(.call(HelperID.mapUpdateElem))
        b.bind(out)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        return try encode(b)
    }

    enum Output { case ringbufOutput, ringbufReserveDiscardOdd, perfEventOutput }

    /// For thread `tid`: seq = state[0]++ (atomically), then emits the 16-byte record {seq, tid}
    /// to `target`; failures to emit are counted in state[1].
    static func emitter(_ output: Output, target: Map, state: Map, tid: Int32) throws -> [UInt8] {
        var b = ProgramBuilder()
        let out = b.newLabel("out"), dropped = b.newLabel("dropped")
        b.emit(.mov64(.r6, .r1))
        filterTID(&b, tid, skip: out)
        // r8 = seq
        b.emit(.loadMapFD(.r1, fd: state.fd.rawValue))
        b.emit(.store(.r10, offset: -4, imm: 0, size: .word))
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -4))
        b.emit(.call(HelperID.mapLookupElem))
        b.jump(.jeq, .r0, imm: 0, to: out)
        b.emit(.mov64(.r8, 1))
        b.emit(.atomic(.fetchAdd, .r0, offset: 0, .r8, size: .doubleWord))
        switch output {
        case .ringbufOutput, .perfEventOutput:
            b.emit(.store(.r10, offset: -24, .r8, size: .doubleWord))
            b.emit(.store(.r10, offset: -16, .r7, size: .doubleWord))
            if output == .ringbufOutput {
                b.emit(.loadMapFD(.r1, fd: target.fd.rawValue))
                b.emit(.mov64(.r2, .r10))
                b.emit(.add64(.r2, -24))
                b.emit(.mov64(.r3, 16))
                b.emit(.mov64(.r4, 0))
                b.emit(.call(HelperID.ringbufOutput))
            } else {
                b.emit(.mov64(.r1, .r6))
                b.emit(.loadMapFD(.r2, fd: target.fd.rawValue))
                b.emit(.mov32(.r3, -1))                   // BPF_F_CURRENT_CPU (zero-extended)
                b.emit(.mov64(.r4, .r10))
                b.emit(.add64(.r4, -24))
                b.emit(.mov64(.r5, 16))
                b.emit(.call(HelperID.perfEventOutput))
            }
            b.jump(.jne, .r0, imm: 0, to: dropped)
            b.goto(out)
        case .ringbufReserveDiscardOdd:
            let discard = b.newLabel("discard")
            b.emit(.loadMapFD(.r1, fd: target.fd.rawValue))
            b.emit(.mov64(.r2, 16))
            b.emit(.mov64(.r3, 0))
            b.emit(.call(HelperID.ringbufReserve))
            b.jump(.jeq, .r0, imm: 0, to: dropped)
            b.emit(.store(.r0, offset: 0, .r8, size: .doubleWord))
            b.emit(.store(.r0, offset: 8, .r7, size: .doubleWord))
            b.emit(.mov64(.r1, .r0))
            b.emit(.mov64(.r2, 0))
            b.emit(.mov64(.r3, .r8))
            b.emit(.and64(.r3, 1))
            b.jump(.jne, .r3, imm: 0, to: discard)
            b.emit(.call(HelperID.ringbufSubmit))
            b.goto(out)
            b.bind(discard)
            b.emit(.call(helper: 133))                    // bpf_ringbuf_discard
            b.goto(out)
        }
        b.bind(dropped)
        increment(&b, map: state, key: 1)
        b.bind(out)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        return try encode(b)
    }
}

/// Records the kernel ids of what a test created — maps, programs, links and perf events — and
/// checks they are all gone once their owners were released. Ids, not global counts: other
/// tests run concurrently in this process.
final class RuntimeLeaks: @unchecked Sendable {
    private var objects: [(ObjectKind, UInt32)] = []
    private var perfEvents: [(fd: Int32, id: UInt64)] = []

    func track(_ map: Map) { objects.append((.map, map.id)) }
    /// Every map and program of a loaded object.
    func track(_ object: Object) {
        for m in object.maps.values { track(m) }
        for p in object.programs.values { track(p) }
    }
    func track(_ program: Program) { objects.append((.program, program.id)) }
    func track(_ link: Link) {
        for id in link.linkIDs { objects.append((.link, id)) }
        for (fd, id) in zip(link.fileDescriptors.perfEvents, link.perfEventIDs) { perfEvents.append((fd, id)) }
    }

    /// A perf event is leaked when its fd number is still open and still the very same event.
    private func perfAlive() -> [(fd: Int32, id: UInt64)] {
        perfEvents.filter { fd, id in
            guard fcntl(fd, F_GETFD) >= 0 else { return false }
            let owned = OwnedFD(taking: fd)
            let current = try? Perf.id(owned)
            _ = owned.release()
            return current == id
        }
    }

    func verify(seconds: Int = 2, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for _ in 0..<(seconds * 100) {
            let alive = try objects.filter { kind, id in try Sys.exists(id: id, kind: kind) }
            if alive.isEmpty && perfAlive().isEmpty { return }
            usleep(10_000)
        }
        let alive = try objects.filter { kind, id in try Sys.exists(id: id, kind: kind) }
        Issue.record("leaked: \(alive.map { "\($0.0) \($0.1)" }) perf events \(perfAlive().map { "fd \($0.fd)" })", sourceLocation: sourceLocation)
    }
}

/// Runs `body`, lets everything it created go, then checks the kernel freed it all.
/// `seconds` bounds the wait for the kernel's deferred frees (uprobe links are released one
/// by one, ~0.1 s each, after their fds close).
func withRuntimeLeakCheck(seconds: Int = 2, sourceLocation: SourceLocation = #_sourceLocation, _ body: (RuntimeLeaks) throws -> Void) throws {
    let leaks = RuntimeLeaks()
    try body(leaks)
    try leaks.verify(seconds: seconds, sourceLocation: sourceLocation)
}

/// A one-slot (or `slots`) array map of u64 counters.
func counterMap(_ name: String = "counter", slots: Int = 1, type: MapType = .array) throws -> Map {
    try Map.create(type: type, keySize: 4, valueSize: 8, maxEntries: slots, name: name)
}

func count(_ map: Map, key: UInt32 = 0) throws -> UInt64 {
    try map.lookup(key, as: UInt64.self) ?? 0
}

/// Pins the calling thread to `cpu` for the duration of `body` (restoring the old mask after).
func onCPU<R>(_ cpu: Int, _ body: () throws -> R) throws -> R {
    guard let get = affinityCall("sched_getaffinity"), let set = affinityCall("sched_setaffinity"), cpu < 1024 else {
        return try body()
    }
    var old = [UInt64](repeating: 0, count: 16), new = [UInt64](repeating: 0, count: 16)
    new[cpu / 64] |= 1 << UInt64(cpu % 64)
    guard old.withUnsafeMutableBytes({ get(0, $0.count, $0.baseAddress!) }) == 0 else { return try body() }
    guard new.withUnsafeMutableBytes({ set(0, $0.count, $0.baseAddress!) }) == 0 else { return try body() }
    defer { _ = old.withUnsafeMutableBytes { set(0, $0.count, $0.baseAddress!) } }
    return try body()
}

/// Burns CPU for `ms` milliseconds.
func spin(milliseconds ms: Int) {
    var start = timespec(), now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    var x: UInt64 = 0
    repeat {
        for i in 0..<10_000 { x &+= UInt64(i) }
        clock_gettime(CLOCK_MONOTONIC, &now)
    } while (now.tv_sec - start.tv_sec) * 1_000_000_000 + (now.tv_nsec - start.tv_nsec) < ms * 1_000_000
    if x == 42 { print("") }
}

/// Builds Tests/Fixtures/uprobe/target.c with cc (once per flavour) and returns the binary's path.
func uprobeTarget(pie: Bool) throws -> String {
    let src = TestEnv.fixturesSource.appendingPathComponent("uprobe/target.c").path
    let dir = TestEnv.root.appendingPathComponent(".build/fixtures/uprobe").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let out = dir + (pie ? "/target-pie" : "/target-nopie")
    let r = TestEnv.run("/usr/bin/env", ["cc", "-O2", "-g0", pie ? "-fPIE" : "-fno-PIE", pie ? "-pie" : "-no-pie", "-o", out, src])
    guard r.status == 0 else { throw FixtureBuildError(message: r.stdout + r.stderr) }
    return out
}

struct FixtureBuildError: Error, CustomStringConvertible {
    var message: String
    var description: String { "cc failed: \(message)" }
}

/// The BPFError behind an untyped error (tests catch inside closures).
func bpfError(_ error: any Error) -> BPFError? { error as? BPFError }
