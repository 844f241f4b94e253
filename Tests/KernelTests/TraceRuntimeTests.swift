// The tracer's runtime end to end on hand-built plans (what the compiler will produce):
// BEGIN printf, a tracepoint counting into a per-CPU hash printed at exit, an interval exit().
import PlumbBPF
import PlumbAsm
import PlumbSys
import PlumbLang
import PlumbTrace
import Glibc
import Testing
import TestSupport

/// Builds programs that write async records: the record is laid out on the stack, then
/// bpf_ringbuf_output(events, fp - size, size, 0).
struct RecordEmitter {
    var b = ProgramBuilder()
    var references: [Int: ProgramReference] = [:]

    /// Stores 64-bit words (immediates or registers) at fp-size+8*i, then outputs them.
    /// (Map loads are referenced by instruction index, the builder's pending count.)
    mutating func emit(_ words: [Either]) {
        let size = Int16(words.count * 8)
        for (i, w) in words.enumerated() {
            let off = -size + Int16(i * 8)
            switch w {
            case .imm(let v):
                b.emit(.loadImm64(.r1, v))
                b.emit(.store(.r10, offset: off, .r1, size: .doubleWord))
            case .reg(let r):
                b.emit(.store(.r10, offset: off, r, size: .doubleWord))
            }
        }
        mapFD(.r1, "events")
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, Int32(-size)))
        b.emit(.mov64(.r3, Int32(size)))
        b.emit(.mov64(.r4, 0))
        b.emit(.call(helper: 130))                             // bpf_ringbuf_output
    }

    mutating func mapFD(_ r: Register, _ name: String) {
        // The load's index is counted in instructions emitted so far (the builder's own order).
        references[b.pending.count] = .map(name)
        b.emit(.loadMapFD(r, fd: 0))
    }

    enum Either { case imm(Int64), reg(Register) }

    mutating func finish(_ name: String, section: String) throws -> ProgramSpec {
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        return ProgramSpec(name: name, kind: try #require(ProgramKind(section: section)), instructions: try b.finish(), references: references)
    }
}

func eventsMap() -> MapSpec { MapSpec(name: "events", type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: 1 << 16) }

/// Runs a plan with output into a temporary file; returns (exit code, output).
func runPlan(_ plan: TracePlan, format: OutputFormat = .text, configure: (inout TraceOptions) -> Void = { _ in }) throws -> (Int32, String) {
    var template = Array("/tmp/plumb-trace-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    try #require(fd >= 0)
    let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    defer { close(fd); unlink(path) }
    var options = TraceOptions()
    options.outputFD = fd
    options.stdoutFD = fd
    options.format = format
    configure(&options)
    let runtime = TraceRuntime(plan: plan, options: options)
    let code = try runtime.run()
    return (code, String(decoding: try readTraceOutput(path), as: UTF8.self))
}

func readTraceOutput(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    try #require(fd >= 0)
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

@Suite(.serialized) struct TraceRuntimeTests {
    let range = SourceRange(0, 0)

    // BEGIN { printf("hello %d %s\n", 42, "hi"); exit(); }
    @Test func beginPrintfAndExit() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        var e = RecordEmitter()
        e.emit([.imm(0), .imm(42), .imm(Int64(0x6968))])   // action 0, 42, "hi\0..."
        e.emit([.imm(1)])                                   // action 1: exit
        let begin = try e.finish("begin", section: "raw_tp/sys_enter")
        let plan = TracePlan(object: ObjectSpec(name: "t", maps: [eventsMap()], programs: [begin]),
                             probes: [PlannedProbe(program: "begin", target: .begin, name: "BEGIN", range: range)],
                             maps: [],
                             actions: [.printf(format: "hello %d %s\n", args: [Field(offset: 8, type: .integer(size: 8, signed: true)), Field(offset: 16, type: .string(size: 8))]),
                                       .exit],
                             eventsMap: "events")
        try withRuntimeLeakCheck { _ in
            let (code, text) = try runPlan(plan)
            #expect(code == 0)
            #expect(text == "Attaching 1 probe...\nhello 42 hi\n\n\n")
            let (_, json) = try runPlan(plan, format: .json)
            #expect(json == "{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}\n{\"type\": \"printf\", \"data\": \"hello 42 hi\\n\"}\n\n\n")
        }
    }

    // tracepoint:syscalls:sys_enter_getpid /tid == T/ { @[tid] = count(); }  plus END { printf("end\n") }
    @Test func tracepointCountsIntoAMapPrintedAtExit() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()), getpidTracepointOrSkip() != nil else { return }
        let tid = currentTID()
        var b = ProgramBuilder()
        let done = b.newLabel("done"), add = b.newLabel("add")
        var refs: [Int: ProgramReference] = [:]
        b.emit(.call(helper: 14))                              // bpf_get_current_pid_tgid
        b.emit(.mov32(.r7, .r0))
        b.jump(.jne, .r7, imm: tid, to: done)
        b.emit(.store(.r10, offset: -8, .r7, size: .doubleWord))     // key: tid (u64)
        refs[b.pending.count] = .map("counts")
        b.emit(.loadMapFD(.r1, fd: 0))
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -8))
        b.emit(.call(helper: 1))                               // bpf_map_lookup_elem
        b.jump(.jne, .r0, imm: 0, to: add)
        b.emit(.store(.r10, offset: -16, imm: 1, size: .doubleWord))  // first hit: insert 1
        refs[b.pending.count] = .map("counts")
        b.emit(.loadMapFD(.r1, fd: 0))
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -8))
        b.emit(.mov64(.r3, .r10))
        b.emit(.add64(.r3, -16))
        b.emit(.mov64(.r4, 0))
        b.emit(.call(helper: 2))                               // bpf_map_update_elem
        b.goto(done)
        b.bind(add)
        b.emit(.mov64(.r1, 1))
        b.emit(.atomic(.add, .r0, offset: 0, .r1, size: .doubleWord))
        b.bind(done)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        let counter = ProgramSpec(name: "count_getpid", kind: try #require(ProgramKind(section: "tracepoint/syscalls/sys_enter_getpid")),
                                  instructions: try b.finish(), references: refs)
        var e = RecordEmitter()
        e.emit([.imm(0)])
        let end = try e.finish("end", section: "raw_tp/sys_enter")
        let maps = [eventsMap(), MapSpec(name: "counts", type: .percpuHash, keySize: 8, valueSize: 8, maxEntries: 1024)]
        let plan = TracePlan(object: ObjectSpec(name: "t", maps: maps, programs: [counter, end]),
                             probes: [PlannedProbe(program: "count_getpid", target: .tracepoint(category: "syscalls", name: "sys_enter_getpid"),
                                                   name: "tracepoint:syscalls:sys_enter_getpid", range: range),
                                      PlannedProbe(program: "end", target: .end, name: "END", range: range)],
                             maps: [PlannedMap(name: "@", mapName: "counts", keys: [Field(offset: 0, type: .integer(size: 8, signed: false))], keySize: 8, value: .count)],
                             actions: [.printf(format: "end\n", args: [])], eventsMap: "events")
        try withRuntimeLeakCheck { _ in
            let (code, text) = try runPlan(plan) { o in
                o.onAttached = { runtime in
                    for _ in 0..<17 { rawGetpid() }
                    runtime.stop()
                }
            }
            #expect(code == 0)
            #expect(text == "Attaching 2 probes...\nend\n\n\n@[\(tid)]: 17\n")
        }
    }

    // interval:ms:50 { printf("tick\n"); exit(); }
    @Test func intervalProbeExits() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        var e = RecordEmitter()
        e.emit([.imm(0)])
        e.emit([.imm(1)])
        let tick = try e.finish("tick", section: "perf_event")
        let plan = TracePlan(object: ObjectSpec(name: "t", maps: [eventsMap()], programs: [tick]),
                             probes: [PlannedProbe(program: "tick", target: .interval(periodNanoseconds: 50_000_000), name: "interval:ms:50", range: range)],
                             maps: [], actions: [.printf(format: "tick\n", args: []), .exit], eventsMap: "events")
        try withRuntimeLeakCheck { _ in
            let start = monotonicNow()
            let (code, text) = try runPlan(plan)
            #expect(code == 0)
            #expect(text == "Attaching 1 probe...\ntick\n\n\n")
            #expect(monotonicNow() - start < 5)
        }
    }
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
