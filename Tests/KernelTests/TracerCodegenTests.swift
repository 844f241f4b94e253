// The tracer's compiler against the real kernel: scripts are parsed and compiled, the
// plan's object loads (the verifier accepts every generated program), tracepoint programs
// attach and fill maps with exact counts for this thread's getpid calls.
import PlumbBPF
import PlumbLang
import PlumbSys
import PlumbBTF
import Glibc
import Foundation
import Testing
import TestSupport

/// Parses and compiles a script; a failure names the diagnostics.
func compileScript(_ text: String, options: CompileOptions = CompileOptions()) throws -> TracePlan {
    let file = SourceFile(name: "test.bt", text: text)
    let (script, parseDiagnostics) = parse(file)
    let printer = DiagnosticPrinter(file: file)
    if parseDiagnostics.contains(where: { $0.severity == .error }) {
        throw CompileFailure(printer.render(parseDiagnostics))
    }
    let (plan, diagnostics) = compile(script, file: file, environment: .system(), options: options)
    guard let plan else { throw CompileFailure(printer.render(diagnostics)) }
    return plan
}

/// Sum of a per-CPU u64 slot over CPUs.
func perCPUSum(_ map: Map, key: [UInt8], offset: Int = 0) throws -> UInt64? {
    guard let values = try map.lookupPerCPU(key) else { return nil }
    return values.reduce(0) { acc, v in
        acc &+ v[offset..<offset + 8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }
}

func u64Key(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

@Suite("Tracer: generated programs load and run", .serialized)
struct TracerCodegenTests {
    @Test("BEGIN with printf, maps and builtins loads; test-run fills a map")
    func beginLoads() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let plan = try compileScript("""
        BEGIN {
          printf("hello %s %d\\n", comm, pid);
          @start = nsecs;
          @n = count();
          $x = 5 * 3 + 1;
          @v[1, "a"] = $x;
          if ($x > 10) { @big = 1; } else { @big = 0; }
          @mn[comm] = min(3); @av = avg(2); @hh[1] = hist(3); @tu = (1, "ab", comm); @s = "str";
        }
        """)
        let object = try plan.object.load()
        #expect(plan.probes.count == 1)
        #expect(plan.probes[0].target == .begin)
        let prog = try object.program(plan.probes[0].program)
        _ = try prog.testRun()
        // Every script map carries BTF key and value types the kernel accepted.
        for m in plan.maps {
            let map = try object.map(m.mapName)
            #expect(map.btfKeyTypeID != 0 && map.btfValueTypeID != 0, "\(m.name) has no BTF types")
        }
        let big = try object.map(plan.maps.first { $0.name == "@big" }!.mapName)
        #expect(try big.lookup(u64Key(0)).map { $0.prefix(8) } == ArraySlice(u64Key(1)))
    }

    @Test("for ($kv : @map) walks the map with a callback; break stops it")
    func forMap() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let plan = try compileScript("""
        BEGIN {
          @m[1] = 10; @m[2] = 20; @m[3] = 30;
          @c["a"] = count(); @c["b"] = count(); @c["b"] = count();
          for ($kv : @m) { @sum = sum($kv.1); @keys = sum($kv.0); }
          for ($kv : @c) { if ($kv.0 == "b") { @b = $kv.1; break; } }
          for ($i : 0..4) { @r = sum($i); }
          @n = len(@m);
          @c1 = strcontains("hello world", "o w"); @c2 = strcontains("hello", "low"); @c3 = strcontains(comm, "");
        }
        """)
        let object = try plan.object.load()
        _ = try object.program(plan.probes[0].program).testRun()
        func value(_ name: String) throws -> UInt64? {
            let m = plan.maps.first { $0.name == name }!
            let map = try object.map(m.mapName)
            if case .value = m.value { return try map.lookup(u64Key(0)).map { u64($0, 0) } }
            return try perCPUSum(map, key: u64Key(0))
        }
        #expect(try value("@sum") == 60)
        #expect(try value("@keys") == 6)
        #expect(try value("@b") == 2)
        #expect(try value("@r") == 6)
        #expect(try value("@n") == 3)
        #expect(try value("@c1") == 1)
        #expect(try value("@c2") == 0)
        #expect(try value("@c3") == 1)
    }

    @Test("script structs: sizes and offsets as C lays them out")
    func scriptStructs() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let plan = try compileScript("""
        struct S { int a; char b[16]; struct S *next; unsigned long x, *y; }
        union U { char c; long l; }
        BEGIN { @sz = sizeof(struct S); @off = offsetof(struct S, next); @u = sizeof(union U); @x = offsetof(struct S, y);
                $p = (struct S *)0; if ($p != 0) { @a = $p->next->a; } }
        """)
        let object = try plan.object.load()
        _ = try object.program(plan.probes[0].program).testRun()
        func value(_ name: String) throws -> UInt64? {
            try object.map(plan.maps.first { $0.name == name }!.mapName).lookup(u64Key(0)).map { u64($0, 0) }
        }
        #expect(try value("@sz") == 48)
        #expect(try value("@off") == 24)
        #expect(try value("@u") == 8)
        #expect(try value("@x") == 40)
    }

    @Test("aggregation values follow Plan.swift's layouts: min/max {value, isSet}, avg {total, count}, hist/lhist buckets")
    func aggregationLayouts() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let plan = try compileScript("""
        BEGIN {
          @mn = min(5); @mn = min(3); @mx = max(-2); @mx = max(-7);
          @av = avg(4); @av = avg(6);
          @h = hist(0); @h = hist(1); @h = hist(7); @h = hist(-3);
          @l = lhist(25, 0, 100, 10); @l = lhist(-1, 0, 100, 10); @l = lhist(1000, 0, 100, 10);
        }
        """)
        let object = try plan.object.load()
        _ = try object.program(plan.probes[0].program).testRun()
        func map(_ name: String) throws -> Map { try object.map(plan.maps.first { $0.name == name }!.mapName) }
        func cpuValue(_ name: String, key: [UInt8] = u64Key(0)) throws -> [UInt8]? {
            // BEGIN ran on one CPU: the slot whose isSet/count is nonzero, or the nonzero one.
            try map(name).lookupPerCPU(key)?.first { $0.contains { $0 != 0 } }
        }
        let mn = try cpuValue("@mn")
        #expect(mn.map { Int64(bitPattern: u64($0, 0)) } == 3 && mn.map { u64($0, 8) } == 1)
        let mx = try cpuValue("@mx")
        #expect(mx.map { Int64(bitPattern: u64($0, 0)) } == -2 && mx.map { u64($0, 8) } == 1)
        let av = try cpuValue("@av")
        #expect(av.map { u64($0, 0) } == 10 && av.map { u64($0, 8) } == 2)
        // hist: negative -> 0, 0 -> 1, 1 -> 2, 7 -> 2 + 2 = 4.
        for bucket: UInt64 in [0, 1, 2, 4] {
            #expect(try perCPUSum(try map("@h"), key: u64Key(0) + u64Key(bucket)) == 1, "hist bucket \(bucket)")
        }
        // lhist(0, 100, 10): below -> 0, 25 -> 1 + 2 = 3, at or above max -> 1 + 10 = 11.
        for bucket: UInt64 in [0, 3, 11] {
            #expect(try perCPUSum(try map("@l"), key: u64Key(0) + u64Key(bucket)) == 1, "lhist bucket \(bucket)")
        }
    }

    @Test("-kk: failed probe reads are counted in the error counter map")
    func helperErrors() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        var options = CompileOptions()
        options.reportHelperErrors = true
        options.reportReadErrors = true
        let plan = try compileScript("BEGIN { @x = *(uint64 *)8; @s = str(16); @ok = curtask->pid; }", options: options)
        let object = try plan.object.load()
        _ = try object.program(plan.probes[0].program).testRun()
        let counters = try object.map(plan.errorCounterMap)
        let key = withUnsafeBytes(of: RuntimeCounter.probeReadFailed.rawValue.littleEndian) { Array($0) }
        #expect(try counters.lookup(key).map { u64($0, 0) } == 2)
    }

    @Test("tracepoint:syscalls:sys_enter_getpid counts this thread's calls")
    func tracepointCount() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()), getpidTracepointOrSkip() != nil else { return }
        let tid = currentTID()
        let plan = try compileScript("""
        tracepoint:syscalls:sys_enter_getpid /tid == \(tid)/ {
          @calls = count();
          @bytid[tid] = count();
          @total = sum(2);
          @h = hist(5);
          @last = args.__syscall_nr;
        }
        """)
        let object = try plan.object.load()
        let link = try object.program(plan.probes[0].program).attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
        for _ in 0..<7 { rawGetpid() }
        _ = link
        let calls = try object.map(plan.maps.first { $0.name == "@calls" }!.mapName)
        #expect(try perCPUSum(calls, key: u64Key(0)) == 7)
        let byTid = try object.map(plan.maps.first { $0.name == "@bytid" }!.mapName)
        #expect(try perCPUSum(byTid, key: u64Key(UInt64(tid))) == 7)
        let total = try object.map(plan.maps.first { $0.name == "@total" }!.mapName)
        #expect(try perCPUSum(total, key: u64Key(0)) == 14)
        let hist = try object.map(plan.maps.first { $0.name == "@h" }!.mapName)
        // 5 is in bucket 2 + floor(log2 5) = 4.
        #expect(try perCPUSum(hist, key: u64Key(0) + u64Key(4)) == 7)
        let last = try object.map(plan.maps.first { $0.name == "@last" }!.mapName)
        #expect(try last.lookup(u64Key(0)).map { Array($0.prefix(8)) } == u64Key(UInt64(sysGetpid)))
    }
}

@Suite("Tracer: BTF line info")
struct TracerLineInfoTests {
    @Test("bpftool prog dump xlated shows the script's lines")
    func lineInfo() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard access("/usr/sbin/bpftool", X_OK) == 0 else { return }
        let plan = try compileScript("""
        BEGIN {
          @hits = count();
          printf("pid %d\\n", pid);
        }
        """)
        let object = try plan.object.load()
        let id = try object.program(plan.probes[0].program).info().id
        let r = TestEnv.run("/usr/sbin/bpftool", ["prog", "dump", "xlated", "id", "\(id)"])
        #expect(r.stdout.contains("; @hits = count(); [file:test.bt line_num:2") || r.stdout.contains("@hits = count();"))
        #expect(r.stdout.contains("printf(\"pid %d\\n\", pid);"))
    }
}

/// Little-endian u64 at `offset`.
func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
    (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
}

@Suite("Tracer: ring buffer records", .serialized)
struct TracerRecordTests {
    @Test("printf records carry the action id and arguments at the plan's offsets")
    func printfRecord() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()), getpidTracepointOrSkip() != nil else { return }
        let tid = currentTID()
        let plan = try compileScript("""
        tracepoint:syscalls:sys_enter_getpid /tid == \(tid)/ {
          printf("%d %s %d %s\\n", tid, comm, 42 - 50, "lit");
          print(@n);
          @n = count();
          exit();
        }
        """)
        guard case .printf(let format, let fields) = plan.actions[0] else { Issue.record("first action is \(plan.actions[0])"); return }
        #expect(format == "%d %s %d %s\n")
        #expect(fields.map(\.offset) == [8, 16, 32, 40])
        #expect(fields[1].type == .string(size: 16))
        #expect(plan.actions[1] == .printMap(map: "@n", top: 0, divisor: 0))
        #expect(plan.actions[2] == .exit)
        let object = try plan.object.load()
        var records: [[UInt8]] = []
        let ring = try RingBuffer(map: try object.map(plan.eventsMap)) { records.append(Array($0)) }
        let link = try object.program(plan.probes[0].program).attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
        rawGetpid()
        _ = link
        _ = try ring.consume()
        #expect(records.count == 3)
        guard records.count == 3 else { return }
        let r = records[0]
        #expect(u64(r, 0) == 0)
        #expect(u64(r, 8) == UInt64(tid))
        let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines) ?? ""
        var comm = Array(name.utf8)
        comm += [UInt8](repeating: 0, count: 16 - comm.count)
        #expect(Array(r[16..<32]) == comm)
        #expect(Int64(bitPattern: u64(r, 32)) == -8)
        #expect(Array(r[40..<44]) == Array("lit\0".utf8))
        #expect(u64(records[1], 0) == 1)
        #expect(u64(records[2], 0) == 2)
    }
}

@Suite("Tracer: BTF tracepoints and uprobes", .serialized)
struct TracerProbeKindTests {
    @Test("rawtracepoint:sys_enter compiles as tp_btf: named BTF args, direct loads through pt_regs")
    func btfTracepoint() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let tid = currentTID()
        let plan = try compileScript("""
        rawtracepoint:sys_enter /tid == \(tid) && args.id == \(sysGetpid)/ {
          @calls[args.id] = count();
          @ax = args.regs->orig_ax;
          @comm = curtask->comm;
        }
        """)
        #expect(plan.probes[0].target == .btfTracepoint(name: "sys_enter"))
        #expect(plan.object.programs[0].kind.type == .tracing)
        let object = try plan.object.load()
        let link = try object.program(plan.probes[0].program).attachTracing()
        for _ in 0..<4 { rawGetpid() }
        _ = link
        let calls = try object.map(plan.maps.first { $0.name == "@calls" }!.mapName)
        #expect(try perCPUSum(calls, key: u64Key(UInt64(sysGetpid))) == 4)
        let ax = try object.map(plan.maps.first { $0.name == "@ax" }!.mapName)
        #expect(try ax.lookup(u64Key(0)).map { u64($0, 0) } == UInt64(sysGetpid))
    }

    @Test("uprobe:libc:getpid counts this thread's calls; uretprobe sees the return value")
    func uprobe() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let tid = currentTID()
        let plan = try compileScript("""
        uprobe:libc:getpid /tid == \(tid)/ { @calls = count(); }
        uretprobe:libc:getpid /tid == \(tid)/ { @ret = retval; }
        """)
        guard case .uprobe(let path, let symbol, _, false, _) = plan.probes[0].target, let symbol else {
            Issue.record("target \(plan.probes[0].target)")
            return
        }
        let object = try plan.object.load()
        let l1 = try object.program(plan.probes[0].program).attachUprobe(binary: path, symbol: symbol)
        let l2 = try object.program(plan.probes[1].program).attachUprobe(binary: path, symbol: symbol, retprobe: true)
        for _ in 0..<3 { rawGetpid() }
        _ = (l1, l2)
        let calls = try object.map(plan.maps.first { $0.name == "@calls" }!.mapName)
        #expect(try perCPUSum(calls, key: u64Key(0)) == 3)
        let ret = try object.map(plan.maps.first { $0.name == "@ret" }!.mapName)
        #expect(try ret.lookup(u64Key(0)).map { u64($0, 0) } == UInt64(getpid()))
    }
}
