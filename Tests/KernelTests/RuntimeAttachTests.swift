import PlumbBPF
import PlumbAsm
import PlumbSys
import PlumbBTF
import Foundation
import Glibc
import Testing
import TestSupport

@Suite("BPF runtime: programs, links and every attach kind", .serialized)
struct RuntimeAttachTests {
    @Test("tracepoint syscalls/sys_enter_getpid: an in-memory program fills a hash map; releasing the link detaches")
    func tracepointHash() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let tid = currentTID()
            let hash = try Map.create(type: .hash, keySize: 4, valueSize: 8, maxEntries: 64, name: "per_tid")
            leaks.track(hash)
            let prog = try Program.load(ProgramAttributes(type: .tracepoint, instructions: try Asm.hashCounter(hash, tid: tid), name: "tp_hash"))
            leaks.track(prog)
            #expect(prog.type == .tracepoint)
            #expect(prog.name == "tp_hash")
            #expect(prog.tag.count == 8 && prog.tag != [UInt8](repeating: 0, count: 8))
            var link: Link? = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
            leaks.track(link!)
            #expect(link!.description == "tracepoint syscalls/sys_enter_getpid")
            #expect(link!.kind == .tracepoint)
            #expect(link!.isAttached)
            // 5.15+ attaches through a bpf link; the fallback would hold only the perf event.
            #expect(link!.count == 1)
            for _ in 0..<37 { rawGetpid() }
            #expect(try hash.lookup(UInt32(bitPattern: tid), as: UInt64.self) == 37)
            #expect(try hash.keys(as: UInt32.self) == [UInt32(bitPattern: tid)])
            link = nil
            for _ in 0..<5 { rawGetpid() }
            #expect(try hash.lookup(UInt32(bitPattern: tid), as: UInt64.self) == 37, "counting went on after the link was released")
        }
    }

    @Test("explicit detach(): stops counting, a second detach is an error")
    func explicitDetach() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let counter = try counterMap()
            leaks.track(counter)
            let prog = try Program.load(ProgramAttributes(type: .tracepoint, instructions: try Asm.counter(counter, tid: currentTID()), name: "tp_detach"))
            leaks.track(prog)
            let link = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid", cookie: 7)
            leaks.track(link)
            for _ in 0..<3 { rawGetpid() }
            try link.detach()
            #expect(!link.isAttached)
            for _ in 0..<3 { rawGetpid() }
            #expect(try count(counter) == 3)
            #expect(throws: BPFError.self) { try link.detach() }
        }
    }

    @Test("PERF_EVENT_IOC_SET_BPF path (pre-5.15 kernels): counts, no bpf link, released event detaches")
    func tracepointIOCTL() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let counter = try counterMap()
            leaks.track(counter)
            let prog = try Program.load(ProgramAttributes(type: .tracepoint, instructions: try Asm.counter(counter, tid: currentTID()), name: "tp_ioctl"))
            leaks.track(prog)
            prog.forcePerfEventIOCTL = true
            #expect(throws: BPFError.self) { _ = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid", cookie: 1) }
            var link: Link? = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
            leaks.track(link!)
            #expect(link!.linkIDs.isEmpty)
            #expect(link!.perfEventIDs.count == 1)
            for _ in 0..<9 { rawGetpid() }
            link = nil
            for _ in 0..<9 { rawGetpid() }
            #expect(try count(counter) == 9)
        }
    }

    @Test("a pinned link stays attached after its owner is released, until unpinned")
    func pinnedLink() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard let dir = bpffsOrSkip() else { return }
        try withRuntimeLeakCheck { leaks in
            let counter = try counterMap()
            leaks.track(counter)
            let path = "\(dir)/plumb_rt_link_\(getpid())"
            do {
                let prog = try Program.load(ProgramAttributes(type: .rawTracepoint, instructions: try Asm.counter(counter, tid: currentTID(), syscallFilter: true), name: "raw_pinned"))
                leaks.track(prog)
                let link = try prog.attachRawTracepoint(name: "sys_enter")
                leaks.track(link)
                try link.pin(path)
            }
            for _ in 0..<4 { rawGetpid() }
            #expect(try count(counter) == 4, "the pin should keep the program attached")
            try Link.unpin(path)
            usleep(50_000)   // the link is freed via RCU after the last reference goes
            for _ in 0..<4 { rawGetpid() }
            #expect(try count(counter) == 4, "still attached after unpinning")
        }
    }

    @Test("attaching a program of the wrong type says which type is needed")
    func wrongType() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let prog = try Program.load(ProgramAttributes(type: .socketFilter, instructions: Prog.returnZero, name: "sf"))
            leaks.track(prog)
            do {
                _ = try prog.attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
                Issue.record("a socket filter attached to a tracepoint")
            } catch {
                guard case .programMismatch? = bpfError(error) else { Issue.record("\(error)"); return }
                #expect(String(describing: error).contains("load it as tracepoint"))
            }
            let tp = try Program.load(ProgramAttributes(type: .tracepoint, instructions: Prog.returnZero, name: "tp"))
            leaks.track(tp)
            do {
                _ = try tp.attachTracepoint(category: "syscalls", name: "sys_enter_no_such_call")
                Issue.record("attached to a missing tracepoint")
            } catch {
                #expect(String(describing: error).contains("does not exist"))
            }
        }
    }

    @Test("raw tracepoint sys_enter counts exactly our getpid calls")
    func rawTracepoint() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let counter = try counterMap()
            leaks.track(counter)
            let prog = try Program.load(ProgramAttributes(type: .rawTracepoint, instructions: try Asm.counter(counter, tid: currentTID(), syscallFilter: true), name: "raw_getpid"))
            leaks.track(prog)
            let link = try prog.attachRawTracepoint(name: "sys_enter")
            leaks.track(link)
            #expect(link.description == "raw_tracepoint sys_enter")
            #expect(link.linkIDs.count == 1)
            for _ in 0..<21 { rawGetpid() }
            #expect(try count(counter) == 21)
        }
    }

    @Test("tp_btf sys_enter (attach_btf_id of btf_trace_sys_enter) via attachTracing")
    func tpBTF() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let btfID: UInt32
        do {
            guard let id = try BTF.kernel().firstID(named: "btf_trace_sys_enter", kind: .typedef) else {
                _ = TestEnv.kernelAvailable("vmlinux BTF has no btf_trace_sys_enter")
                return
            }
            btfID = UInt32(id)
        } catch {
            _ = TestEnv.kernelAvailable("no vmlinux BTF: \(error)")
            return
        }
        try withRuntimeLeakCheck { leaks in
            let counter = try counterMap()
            leaks.track(counter)
            let prog = try Program.load(ProgramAttributes(type: .tracing, instructions: try Asm.counter(counter, tid: currentTID(), syscallFilter: true),
                                                          name: "btf_getpid", expectedAttachType: .traceRawTP, attachBTFID: btfID))
            leaks.track(prog)
            #expect(prog.attachBTFID == btfID)
            let link = try prog.attachTracing()
            leaks.track(link)
            #expect(link.description.hasPrefix("tp_btf"))
            for _ in 0..<13 { rawGetpid() }
            #expect(try count(counter) == 13)
        }
    }

    @Test("uprobe and uretprobe on a compiled test binary (PIE and non-PIE, .symtab symbol), pid-filtered: exactly N hits")
    func uprobeTestBinary() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard TestEnv.kernelAvailable(Features.uprobes().isSupported ? nil : "uprobes: \(Features.uprobes())") else { return }
        for pie in [true, false] {
            let binary = try uprobeTarget(pie: pie)
            let target = try UprobeResolver.resolve(binary: binary, symbol: "plumb_target")
            #expect(target.fileOffset > 0)
            #expect(!target.isIFunc)
            try withRuntimeLeakCheck { leaks in
                let n = 1234
                let entries = try counterMap("entries"), returns = try counterMap("returns")
                leaks.track(entries); leaks.track(returns)
                let onEntry = try Program.load(ProgramAttributes(type: .kprobe, instructions: try Asm.counter(entries, tid: nil), name: "up_entry"))
                let onReturn = try Program.load(ProgramAttributes(type: .kprobe, instructions: try Asm.counter(returns, tid: nil), name: "up_return"))
                leaks.track(onEntry); leaks.track(onReturn)

                let child = Process()
                child.executableURL = URL(fileURLWithPath: binary)
                child.arguments = ["\(n)"]
                let input = Pipe(), output = Pipe()
                child.standardInput = input
                child.standardOutput = output
                try child.run()
                defer { if child.isRunning { child.terminate() } }
                let pidLine = readLine(output.fileHandleForReading)
                guard let pid = Int32(pidLine) else { Issue.record("child printed '\(pidLine)'"); return }

                let l1 = try onEntry.attachUprobe(binary: binary, symbol: "plumb_target", pid: pid)
                let l2 = try onReturn.attachUprobe(binary: binary, symbol: "plumb_target", retprobe: true, pid: pid)
                leaks.track(l1); leaks.track(l2)
                #expect(l1.description.contains("uprobe \(binary):plumb_target+0x0 (offset 0x\(String(target.fileOffset, radix: 16)))"))
                #expect(l2.description.hasPrefix("uretprobe "))
                // Another process running the same binary is not counted (pid filter).
                let other = TestEnv.run(binary, ["50"], stdin: Data("x".utf8))
                #expect(other.status == 0)

                input.fileHandleForWriting.write(Data("x".utf8))
                child.waitUntilExit()
                #expect(child.terminationStatus == 0)
                #expect(try count(entries) == UInt64(n), "pie: \(pie)")
                #expect(try count(returns) == UInt64(n), "pie: \(pie)")
            }
        }
    }

    @Test("uprobe and uretprobe on getpid in libc.so.6 (short name, versioned name), same offset as the dynamic loader's")
    func uprobeLibc() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard TestEnv.kernelAvailable(Features.uprobes().isSupported ? nil : "uprobes: \(Features.uprobes())") else { return }
        let target = try UprobeResolver.resolve(binary: "libc.so.6", symbol: "getpid")
        #expect(target.path.hasSuffix("/libc.so.6"))
        let versioned = try UprobeResolver.resolve(binary: "libc.so.6", symbol: "getpid@@GLIBC_2.2.5")
        #expect(versioned.fileOffset == target.fileOffset)
        // Cross-check with what dlsym + /proc/self/maps say about the copy we run.
        if let (_, loaderOffset) = fileOffset(ofSymbol: "getpid") {
            #expect(loaderOffset == target.fileOffset)
        }
        try withRuntimeLeakCheck { leaks in
            let entries = try counterMap("entries"), returns = try counterMap("returns")
            leaks.track(entries); leaks.track(returns)
            let tid = currentTID()
            let onEntry = try Program.load(ProgramAttributes(type: .kprobe, instructions: try Asm.counter(entries, tid: tid), name: "libc_entry"))
            let onReturn = try Program.load(ProgramAttributes(type: .kprobe, instructions: try Asm.counter(returns, tid: tid), name: "libc_return"))
            leaks.track(onEntry); leaks.track(onReturn)
            let me = getpid()   // before attaching: this call would count
            let l1 = try onEntry.attachUprobe(binary: "libc.so.6", symbol: "getpid", pid: me)
            let l2 = try onReturn.attachUprobe(binary: "libc.so.6", symbol: "getpid@@GLIBC_2.2.5", retprobe: true, pid: me)
            leaks.track(l1); leaks.track(l2)
            #expect(l1.description.contains("libc.so.6:getpid+0x0 (offset 0x"))
            for _ in 0..<40 { rawGetpid() }
            let (e, r) = (try count(entries), try count(returns))
            #expect(e == 40, "entries \(e), returns \(r)")
            #expect(r == 40, "entries \(e), returns \(r)")
        }
    }

    @Test("uprobe resolution errors name the binary and symbol and suggest nm -D")
    func uprobeErrors() throws {
        do {
            _ = try UprobeResolver.resolve(binary: "libc.so.6", symbol: "plumb_no_such_function")
            Issue.record("resolved a missing symbol")
        } catch {
            guard case .symbolNotFound(let binary, let symbol, _)? = bpfError(error) else { Issue.record("\(error)"); return }
            #expect(binary.hasSuffix("libc.so.6"))
            #expect(symbol == "plumb_no_such_function")
            #expect(String(describing: error).contains("nm -D"))
        }
        do {
            _ = try UprobeResolver.resolveBinary("libplumb_missing.so.1")
            Issue.record("found a missing library")
        } catch {
            guard case .binaryNotFound(_, let searched)? = bpfError(error) else { Issue.record("\(error)"); return }
            #expect(searched.contains("/usr/lib/x86_64-linux-gnu") || searched.contains("/usr/lib"))
        }
        // A plain program name goes through PATH.
        #expect(try UprobeResolver.resolveBinary("sh").hasSuffix("/sh"))
        // Data symbols are not functions.
        do {
            _ = try UprobeResolver.resolve(binary: "libc.so.6", symbol: "environ")
            Issue.record("attached to a data symbol")
        } catch {
            #expect(String(describing: error).contains("not a function"))
        }
    }

    @Test("cpu-clock perf event on every online CPU: one link per CPU, every CPU samples")
    func perfEventEveryCPU() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let cpus = try CPUs.online()
        try withRuntimeLeakCheck { leaks in
            let counter = try Map.create(type: .percpuArray, keySize: 4, valueSize: 8, maxEntries: 1, name: "clock")
            leaks.track(counter)
            let prog = try Program.load(ProgramAttributes(type: .perfEvent, instructions: try Asm.counter(counter, tid: nil), name: "clock"))
            leaks.track(prog)
            let link = try prog.attachPerfEvent(.cpuClock, rate: .frequency(1000))
            leaks.track(link)
            #expect(link.count == cpus.count)
            #expect(link.fileDescriptors.perfEvents.count == cpus.count)
            // Keep every CPU busy for a moment so each one's clock fires.
            for cpu in cpus { try onCPU(cpu) { spin(milliseconds: 60) } }
            let perCPU = try counter.lookupPerCPU(UInt32(0), as: UInt64.self) ?? []
            let possible = try CPUs.possible()
            for cpu in cpus {
                let i = possible.firstIndex(of: cpu) ?? cpu
                #expect(i < perCPU.count && perCPU[i] > 0, "cpu \(cpu) never sampled: \(perCPU)")
            }
        }
        // A period instead of a frequency works too.
        try withRuntimeLeakCheck { leaks in
            let counter = try counterMap()
            leaks.track(counter)
            let prog = try Program.load(ProgramAttributes(type: .perfEvent, instructions: try Asm.counter(counter, tid: nil), name: "clock_period"))
            leaks.track(prog)
            let link = try prog.attachPerfEvent(.cpuClock, rate: .period(1_000_000), cpus: [cpus[0]])
            leaks.track(link)
            try onCPU(cpus[0]) { spin(milliseconds: 30) }
            #expect(try count(counter) > 0)
        }
    }

    @Test("kprobes: a clear error where CONFIG_KPROBES is off, a working attach where it is on")
    func kprobe() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let counter = try counterMap()
            leaks.track(counter)
            let prog = try Program.load(ProgramAttributes(type: .kprobe, instructions: try Asm.counter(counter, tid: currentTID()), name: "kp"))
            leaks.track(prog)
            if Features.kprobes().isSupported {
                #if arch(x86_64)
                let fn = "__x64_sys_getpid"
                #else
                let fn = "__arm64_sys_getpid"
                #endif
                let link = try prog.attachKprobe(function: fn)
                leaks.track(link)
                for _ in 0..<5 { rawGetpid() }
                #expect(try count(counter) == 5)
            } else {
                do {
                    _ = try prog.attachKprobe(function: "do_nanosleep")
                    Issue.record("kprobe attached on a kernel without kprobes")
                } catch {
                    guard case .unsupported? = bpfError(error) else { Issue.record("\(error)"); return }
                    print("expected error: \(error)")
                    #expect(String(describing: error).hasPrefix("kprobes are not supported by this kernel (CONFIG_KPROBES is off"))
                    #expect(String(describing: error).hasSuffix("use a tracepoint or fentry instead"))
                }
            }
        }
    }

    @Test("fentry: a clear error where BPF trampolines are missing, a working attach where present")
    func fentry() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let kernel: BTF
        do { kernel = try BTF.kernel() } catch {
            _ = TestEnv.kernelAvailable("no vmlinux BTF: \(error)")
            return
        }
        // getpid -> task_tgid_vnr -> __task_pid_nr_ns (syscall wrappers themselves have no BTF).
        let fn = "__task_pid_nr_ns"
        guard let id = kernel.firstID(named: fn, kind: .function) else {
            _ = TestEnv.kernelAvailable("vmlinux BTF has no \(fn)")
            return
        }
        try withRuntimeLeakCheck { leaks in
            let counter = try counterMap()
            leaks.track(counter)
            let attrs = ProgramAttributes(type: .tracing, instructions: try Asm.counter(counter, tid: currentTID()), name: "fentry_getpid",
                                          expectedAttachType: .traceFentry, attachBTFID: UInt32(id))
            if Features.fentry().isSupported {
                let prog = try Program.load(attrs)
                leaks.track(prog)
                let link = try prog.attachTracing()
                leaks.track(link)
                #expect(link.description.hasPrefix("fentry"))
                for _ in 0..<5 { rawGetpid() }
                #expect(try count(counter) >= 5)
            } else {
                do {
                    _ = try Program.load(attrs)
                    Issue.record("fentry loaded although the probe said unsupported")
                } catch {
                    guard case .unsupported? = bpfError(error) else { Issue.record("\(error)"); return }
                    print("expected error: \(error)")
                    #expect(String(describing: error).hasPrefix("fentry/fexit programs are not supported by this kernel"))
                    #expect(String(describing: error).contains("use a tracepoint, raw tracepoint or kprobe instead"))
                }
            }
        }
    }

    @Test("Program(id:), pin/unpin and info")
    func programIdentity() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard let dir = bpffsOrSkip() else { return }
        try withRuntimeLeakCheck { leaks in
            let prog = try Program.load(ProgramAttributes(type: .socketFilter, instructions: Prog.returnZero, name: "ident"))
            leaks.track(prog)
            let again = try Program(id: prog.id)
            #expect(again.tag == prog.tag && again.name == "ident")
            let path = "\(dir)/plumb_rt_prog_\(getpid())"
            try prog.pin(path)
            #expect(prog.pinnedPath == path)
            let pinned = try Program(pinned: path)
            #expect(pinned.id == prog.id)
            try prog.unpin()
            #expect(access(path, F_OK) != 0)
            let run = try prog.testRun(data: [UInt8](repeating: 0, count: 64))
            #expect(run.returnValue == 0)
        }
    }
}

/// One line from a pipe (without the newline).
func readLine(_ handle: FileHandle) -> String {
    var bytes: [UInt8] = []
    while true {
        let chunk = handle.readData(ofLength: 1)
        guard let b = chunk.first, b != 0x0a else { break }
        bytes.append(b)
    }
    return String(decoding: bytes, as: UTF8.self)
}
