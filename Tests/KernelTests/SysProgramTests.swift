import PlumbSys
import Glibc
import Testing
import TestSupport

@Suite("BPFSys programs and attachment", .serialized)
struct SysProgramTests {
    @Test("a hand-written r0 = 0; exit loads, reports its info and test-runs")
    func loadMinimal() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withLeakCheck { leaks in
            var log = ""
            let p = try Sys.progLoad(ProgramAttributes(type: .socketFilter, instructions: Prog.returnZero, name: "ret0", logLevel: 1), log: &log)
            try leaks.prog(p)
            let info = try Sys.programInfo(p)
            #expect(info.type == .socketFilter)
            #expect(info.name == "ret0")
            #expect(info.xlatedLength == 16)
            #expect(info.gplCompatible)
            #expect(log.contains("processed 2 insns"))
            let run = try Sys.progTestRun(p, data: [UInt8](repeating: 0, count: 64), repeat: 3)
            #expect(run.returnValue == 0)
        }
    }

    @Test("a rejected program's error carries the verifier log")
    func verifierLog() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        do {
            _ = try Sys.progLoad(ProgramAttributes(type: .socketFilter, instructions: Prog.readsUninitializedR0, name: "bad"))
            Issue.record("the verifier accepted a program that never sets r0")
        } catch {
            guard case .verifierRejected(let e, let name, let log, _) = error else {
                Issue.record("expected verifierRejected, got \(error)")
                return
            }
            #expect(e == .permissionDenied)
            #expect(name == "bad")
            #expect(log.contains("R0 !read_ok"))
            #expect(error.description.contains("R0 !read_ok"))
        }
        // A log buffer far too small is grown until the whole log fits.
        do {
            _ = try Sys.progLoad(ProgramAttributes(type: .socketFilter, instructions: Prog.readsUninitializedR0, logLevel: 2, logSize: 16))
            Issue.record("accepted")
        } catch {
            guard case .verifierRejected(_, _, let log, let truncated) = error else { Issue.record("\(error)"); return }
            #expect(!truncated)
            #expect(log.contains("R0 !read_ok"))
        }
        #expect(throws: SysError.self) { _ = try Sys.progLoad(ProgramAttributes(type: .socketFilter, instructions: [1, 2, 3])) }
    }

    @Test("BTF: a minimal blob loads; a corrupt one is rejected with the kernel's log")
    func btf() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        // Header + one type: INT "int", 4 bytes, signed, 32 bits.
        func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        let types = le32(1) + le32(1 << 24) + le32(4) + le32((1 << 24) | 32)
        let strings: [UInt8] = [0] + Array("int".utf8) + [0]
        let header: [UInt8] = [0x9f, 0xeb, 1, 0] + le32(24) + le32(0) + le32(UInt32(types.count))
            + le32(UInt32(types.count)) + le32(UInt32(strings.count))
        let fd = try Sys.btfLoad(header + types + strings)
        let info = try Sys.btfInfo(fd)
        #expect(info.id > 0)
        #expect(!info.isKernel)
        #expect(info.size == UInt32(24 + types.count + strings.count))
        do {
            // Name offset 99 points past the string section.
            _ = try Sys.btfLoad(header + le32(99) + types.dropFirst(4) + strings)
            Issue.record("corrupt BTF accepted")
        } catch {
            guard case .btfRejected(_, let log) = error else { Issue.record("\(error)"); return }
            #expect(!log.isEmpty)
        }
    }

    @Test("tracepoint syscalls:sys_enter_getpid via perf_event_open + SET_BPF counts our getpid calls")
    func tracepointSetBPF() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard let id = getpidTracepointOrSkip() else { return }
        try withLeakCheck { leaks in
            let counter = try makeCounter()
            try leaks.map(counter)
            let prog = try Sys.progLoad(ProgramAttributes(type: .tracepoint, instructions: Prog.counter(mapFD: counter.rawValue), name: "count_tp"))
            try leaks.prog(prog)
            let event = try Perf.openTracepoint(id: id)
            try Perf.setBPF(event, program: prog)
            try Perf.enable(event)
            for _ in 0..<25 { rawGetpid() }
            #expect(try readCounter(counter) >= 25)
            #expect(try Perf.id(event) > 0)
            try Perf.disable(event)
        }
    }

    @Test("tracepoint attach via BPF_LINK_CREATE with a cookie; closing the link stops counting")
    func tracepointLink() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard let id = getpidTracepointOrSkip() else { return }
        try withLeakCheck { leaks in
            let counter = try makeCounter()
            try leaks.map(counter)
            let prog = try Sys.progLoad(ProgramAttributes(type: .tracepoint, instructions: Prog.counter(mapFD: counter.rawValue), name: "count_link"))
            try leaks.prog(prog)
            let event = try Perf.openTracepoint(id: id)
            let link = try Sys.linkCreatePerfEvent(prog, perfEvent: event, cookie: 0xfeed)
            try leaks.link(link)
            let info = try Sys.linkInfo(link)
            #expect(info.type == .perfEvent)
            #expect(info.programID == (try Sys.programInfo(prog).id))
            for _ in 0..<10 { rawGetpid() }
            #expect(try readCounter(counter) >= 10)
            // Perf-event links cannot be detached in place: the distinct `.unsupported` answer.
            do {
                try Sys.linkDetach(link)
                Issue.record("perf event link detached in place")
            } catch {
                guard case .unsupported? = error as? SysError else { Issue.record("\(error)"); return }
            }
            _ = consume link
            let before = try readCounter(counter)
            rawGetpid()
            // Closing the link detaches: nobody (no other process either) bumps the counter now.
            #expect(try readCounter(counter) == before)
        }
    }

    @Test("raw tracepoint sys_enter via RAW_TRACEPOINT_OPEN")
    func rawTracepoint() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withLeakCheck { leaks in
            let counter = try makeCounter()
            try leaks.map(counter)
            let prog = try Sys.progLoad(ProgramAttributes(type: .rawTracepoint, instructions: Prog.counter(mapFD: counter.rawValue), name: "count_raw"))
            try leaks.prog(prog)
            let link = try Sys.rawTracepointOpen(prog, name: "sys_enter")
            try leaks.link(link)
            #expect(try Sys.linkInfo(link).type == .rawTracepoint)
            for _ in 0..<10 { rawGetpid() }
            #expect(try readCounter(counter) >= 10)
        }
        do {
            let prog = try Sys.progLoad(ProgramAttributes(type: .rawTracepoint, instructions: Prog.returnZero))
            _ = try Sys.rawTracepointOpen(prog, name: "no_such_tracepoint_plumb")
            Issue.record("attached to a missing raw tracepoint")
        } catch {
            #expect(errnoOf(error) == .noSuchFileOrDirectory)
        }
    }

    @Test("cpu-clock software events on every online CPU drive a perf_event program")
    func cpuClock() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withLeakCheck { leaks in
            let counter = try makeCounter()
            try leaks.map(counter)
            let prog = try Sys.progLoad(ProgramAttributes(type: .perfEvent, instructions: Prog.counter(mapFD: counter.rawValue), name: "count_clock"))
            try leaks.prog(prog)
            var events: [Int32] = []   // raw numbers: [OwnedFD] is impossible, so own them by hand here
            defer { for fd in events { close(fd) } }
            for cpu in try CPUs.online() {
                let ev = try Perf.openSoftware(.cpuClock, frequency: 1000, cpu: Int32(cpu))
                try Perf.setBPF(ev, program: prog)
                events.append(ev.release())
            }
            // Burn ~150 ms of CPU so the clock fires on ours at least.
            spin(milliseconds: 150)
            #expect(try readCounter(counter) > 0)
        }
    }

    @Test("uprobe on libc getpid via the uprobe PMU")
    func uprobe() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard let (path, offset) = fileOffset(ofSymbol: "getpid") else {
            guard TestEnv.kernelAvailable("cannot locate getpid in a mapped file") else { return }
            return
        }
        do { _ = try Perf.pmuType("uprobe") } catch {
            guard TestEnv.kernelAvailable("no uprobe PMU: \(error)") else { return }
            return
        }
        try withLeakCheck { leaks in
            let counter = try makeCounter()
            try leaks.map(counter)
            let prog = try Sys.progLoad(ProgramAttributes(type: .kprobe, instructions: Prog.counter(mapFD: counter.rawValue), name: "count_uprobe"))
            try leaks.prog(prog)
            for retprobe in [false, true] {
                let event = try Perf.openUprobe(path: path, offset: offset, retprobe: retprobe, pid: getpid(), cpu: -1)
                let link = try Sys.linkCreatePerfEvent(prog, perfEvent: event)
                try leaks.link(link)
                let before = try readCounter(counter)
                for _ in 0..<5 { rawGetpid() }
                #expect(try readCounter(counter) >= before + 5, "retprobe: \(retprobe)")
            }
        }
    }

    @Test("a missing tracepoint is a clear error")
    func missingTracepoint() throws {
        do {
            _ = try Tracefs.tracepointID(category: "syscalls", name: "sys_enter_plumb_nonexistent")
            Issue.record("found a tracepoint that does not exist")
        } catch {
            if case .filesystemUnavailable = error {
                _ = TestEnv.kernelAvailable("tracefs: \(error)")
                return
            }
            guard case .tracepointNotFound(let c, let n, _) = error else { Issue.record("\(error)"); return }
            #expect(c == "syscalls" && n == "sys_enter_plumb_nonexistent")
            #expect(error.description.contains("does not exist"))
        }
        #expect(throws: SysError.self) { _ = try Tracefs.tracepointID(category: "..", name: "x") }
    }
}

/// The file and file offset of a libc function: dlsym gives the address, /proc/self/maps the mapping.
func fileOffset(ofSymbol name: String) -> (String, UInt64)? {
    guard let handle = dlopen(nil, RTLD_NOW), let sym = dlsym(handle, name) else { return nil }
    let addr = UInt64(UInt(bitPattern: sym))
    guard let maps = try? String(decoding: readAll("/proc/self/maps"), as: UTF8.self) else { return nil }
    for line in maps.split(separator: "\n") {
        // start-end perms offset dev inode path
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 6, f[1].contains("x") else { continue }
        let range = f[0].split(separator: "-")
        guard range.count == 2, let lo = UInt64(range[0], radix: 16), let hi = UInt64(range[1], radix: 16),
              let off = UInt64(f[2], radix: 16), addr >= lo, addr < hi else { continue }
        return (String(f[5]), addr - lo + off)
    }
    return nil
}

private func readAll(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw SysError.file(path: path, errno: .current) }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return out }
        out += buf[0..<n]
    }
}
