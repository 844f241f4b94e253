// The checker and code generator, in one walk per probe: each expression is typed and
// lowered as it is visited, diagnostics are collected rather than thrown (all errors of
// a script at once), and the whole script is compiled twice: the first pass learns the
// types of every @map and $variable (a map may be read in one probe before another
// assigns it), the second reports and produces the plan.
import PlumbAsm
import PlumbBPF
import PlumbBTF
import PlumbSys
import PlumbELF
import Glibc

/// Compiles a parsed script into a plan the runtime loads, or the diagnostics saying why not.
public func compile(_ script: Script, file: SourceFile, environment: ProbeEnvironment,
                    options: CompileOptions = CompileOptions()) -> (TracePlan?, [Diagnostic]) {
    var first = Compiler(script: script, file: file, env: environment, options: options, learned: nil)
    first.run()
    if first.readUnknownMap {
        // A map read before any assignment types it (`@n = @n + 1`): learn again with the maps
        // found so far, an unknown map now reading as an integer 0, as bpftrace reads it.
        let again = Compiler(script: script, file: file, env: environment, options: options, learned: nil)
        again.knowledge.maps = first.knowledge.maps
        again.unknownMapsReadAsZero = true
        again.run()
        first = again
    }
    let second = Compiler(script: script, file: file, env: environment, options: options, learned: first.knowledge)
    second.run()
    return second.finish()
}

/// What the first pass learns for the second.
struct Knowledge {
    var maps: [String: MapState] = [:]
    /// Per program (in emission order): variable name -> type.
    var variables: [[String: SType]] = []
    var mapReads: Set<String> = []
    var mapWrites: Set<String> = []
}

/// One @map: what its keys and values are.
struct MapState {
    var name: String
    var keys: [SType]
    var value: MapValueKind
    var range: SourceRange
    var kernelName: String = ""
}

enum MapValueKind: Equatable {
    case count, sum(Bool), min(Bool), max(Bool), avg(Bool), stats(Bool), hist, lhist(Int64, Int64, Int64)
    case value(SType)

    var isAggregation: Bool { if case .value = self { return false }; return true }
    var valueSize: Int {
        switch self {
        case .count, .sum(_), .hist, .lhist(_, _, _): return 8
        case .min(_), .max(_), .avg(_), .stats(_): return 16
        case .value(let t): return Swift.max(8, (t.size + 7) / 8 * 8)
        }
    }
    /// The type a read of the map gives in an expression.
    var readType: SType {
        switch self {
        case .count, .hist, .lhist: return .u64
        case .sum(let s), .min(let s), .max(let s), .avg(let s), .stats(let s): return s ? .i64 : .u64
        case .value(let t): return t
        }
    }
    var functionName: String {
        switch self {
        case .count: "count"
        case .sum: "sum"
        case .min: "min"
        case .max: "max"
        case .avg: "avg"
        case .stats: "stats"
        case .hist: "hist"
        case .lhist: "lhist"
        case .value: "value"
        }
    }
}

/// What the probe's context gives: how args/argN/retval are read.
enum ProbeContext {
    case none
    case tracepoint(category: String, name: String, fields: [TracefsField])
    /// raw_tp without BTF: u64 args.
    case rawTracepoint
    /// tp_btf / fentry: BTF-typed u64 args (params) at ctx + 8*i; retval after them (fexit).
    case btf(params: [(name: String, type: SType)], returnType: SType?)
    /// pt_regs (uprobe/kprobe).
    case registers(isReturn: Bool, user: Bool)
    case perf
}

final class Compiler {
    let script: Script
    let file: SourceFile
    let env: ProbeEnvironment
    let options: CompileOptions
    let learned: Knowledge?
    var knowledge = Knowledge()
    var diagnostics: [Diagnostic] = []
    /// A learning pass read a map no statement had declared yet.
    var readUnknownMap = false
    /// The second learning pass: such a read is an integer 0, so its assignment declares the map.
    var unknownMapsReadAsZero = false
    private var cachedBTF: BTF??
    /// "category:name" -> why its args are unknown (tracepoints from BTF without tracefs).
    var tracepointArgsUnknown: [String: String] = [:]

    // Plan under construction.
    var programs: [ProgramSpec] = []
    var planned: [PlannedProbe] = []
    var actions: [AsyncAction] = []
    var usesEvents = false
    var usesKstack = false
    var usesUstack = false
    var usesCounters = false
    var planBTF = BTFBuilder()
    var funcProtoID: TypeID = 0
    var fileNameOffset: UInt32 = 0
    var lineOffsets: [Int: UInt32] = [:]
    /// The per-CPU scratch frame of the program being compiled, and those of earlier programs (CodegenScratch.swift).
    var scratchFrame = ScratchFrame()
    var scratchMaps: [(name: String, size: Int)] = []
    /// Plan BTF structs made for `args` records (CodegenArgs.swift).
    var argsTypeCache: [String: TypeID] = [:]

    // Per program.
    var b = ProgramBuilder()
    var references: [Int: ProgramReference] = [:]
    var lineInfo: [LineInfo] = []
    var variables: [String: (type: SType, slot: Int)] = [:]
    var variableRanges: [String: SourceRange] = [:]
    var usedVariables: Set<String> = []
    /// Variables assigned so far in this probe (slots may exist earlier, from the first pass).
    var definedVariables: Set<String> = []
    /// Variables whose assignment failed to check: reading them reports nothing more.
    var poisonedVariables: Set<String> = []
    /// The statement being compiled (for errors found deep in lowering).
    var currentStatement = SourceRange(0, 0)
    /// The innermost expression being compiled (where -k blames a failing helper).
    var siteExpr: Expr?
    /// The script's struct names -> their ids in `btf`.
    var scriptStructIDs: [String: TypeID] = [:]
    /// Enumerator name -> value over the kernel's BTF, built on first use.
    var enumerators: [String: Int64]?
    var reportedTooLarge = false
    var frame = Frame()
    var pool = RegisterPool()
    var context: ProbeContext = .none
    var probeName = ""
    var programKind: ProgramKind?
    /// The pin path of the pinned iterator being compiled (printf becomes bpf_seq_printf).
    var pinnedIterator: String?
    /// Constant strings for read-only data (CodegenSeqPrintf.swift) and their offsets.
    var rodata: [UInt8] = []
    var rodataStrings: [String: UInt32] = [:]
    var loops: [(breakLabel: Label, continueLabel: Label)] = []
    var exitLabel: Label?
    var programIndex = 0
    /// The error-counting subprogram of this program, when some site needs it.
    var counterStub: Label?
    /// Instruction indices where subprograms start (each gets func_info).
    var subprogramStarts: [Int] = []
    var counterFunctionID: TypeID = 0
    var callbackFunctionID: TypeID = 0
    /// Loop bodies over maps, emitted as callback subprograms after the program's exit.
    var pendingCallbacks: [(label: Label, emit: () -> Void)] = []
    /// func_info type per subprogram start (parallel to subprogramStarts).
    var subprogramTypes: [TypeID] = []
    /// Labels some statement jumps to (break, return, exit()).
    var stopUsed: Set<Label> = []
    /// The binary of the uprobe being compiled (for uaddr).
    var currentBinary: String?
    /// USDT sites per expanded probe name, in attach (cookie) order (SemaUser.swift).
    var usdtSites: [String: [USDTProbe]] = [:]
    /// DWARF types of uprobe targets (SemaUserDWARF.swift).
    let userTypes = UserTypes()
    /// Statement probes (`uprobe:PATH@FILE:LINE`) and the site being compiled (SemaLocals.swift).
    let statementProbes = StatementProbes()

    static let startTime: UInt64 = {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }()

    init(script: Script, file: SourceFile, env: ProbeEnvironment, options: CompileOptions, learned: Knowledge?) {
        self.script = script; self.file = file; self.env = env; self.options = options; self.learned = learned
        if let learned { knowledge.maps = learned.maps }
        let intID = planBTF.add(BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32))))
        let voidPtr = planBTF.add(BTFType(kind: .pointer, sizeOrType: 0))
        funcProtoID = planBTF.add(BTFType(kind: .functionProto, sizeOrType: intID, payload: .params([BTFParam(name: "ctx", type: voidPtr)])))
        fileNameOffset = planBTF.addString(file.name)
        let u64 = planBTF.add(BTFType(kind: .int, name: "unsigned long", sizeOrType: 8, payload: .int(BTFInt(encoding: [], offset: 0, bits: 64))))
        let counterProto = planBTF.add(BTFType(kind: .functionProto, sizeOrType: intID, payload: .params([BTFParam(name: "counter", type: u64)])))
        let voidPtr2 = planBTF.add(BTFType(kind: .pointer, sizeOrType: 0))
        let callbackProto = planBTF.add(BTFType(kind: .functionProto, sizeOrType: intID, payload: .params(
            ["map", "key", "value", "ctx"].map { BTFParam(name: $0, type: voidPtr2) })))
        callbackFunctionID = planBTF.add(BTFType(kind: .function, name: "map_loop", sizeOrType: callbackProto, payload: .functionLinkage(BTFLinkage.static.rawValue)))
        counterFunctionID = planBTF.add(BTFType(kind: .function, name: "count_error", sizeOrType: counterProto, payload: .functionLinkage(BTFLinkage.static.rawValue)))
    }

    /// Kernel types, plus the script's own structs when it defines any.
    var btf: BTF? {
        if let c = cachedBTF { return c }
        cachedBTF = .some(nil)
        let k = buildTypeBTF(kernel: env.kernelBTF())
        cachedBTF = .some(k)
        return k
    }

    var isFinalPass: Bool { learned != nil }

    func error(_ message: String, _ range: SourceRange, notes: [Diagnostic.Note] = []) {
        diagnostics.append(.error(message, at: range, notes: notes))
    }
    func warning(_ message: String, _ range: SourceRange, notes: [Diagnostic.Note] = []) {
        diagnostics.append(.warning(message, at: range, notes: notes))
    }

    // MARK: Driver

    func run() {
        // Kernel BTF is opened only when a probe or expression needs a type (most scripts never
        // do); the script's own structs are checked up front so their errors always show.
        if !script.structs.isEmpty { _ = btf }
        for probe in script.probes {
            for ap in probe.attachPoints {
                // One body compiled per wildcard match: an error at the same place in several
                // matches is reported once, with a note saying how many more it hit.
                let first = diagnostics.count
                var seenRanges: [SourceRange: Int] = [:]
                var repeats: [Int: Int] = [:]
                for (target, name, kind, ctx) in expand(ap) {
                    let start = diagnostics.count
                    compileProgram(probe: probe, attachPoint: ap, target: target, name: name, kind: kind, context: ctx)
                    var kept: [Diagnostic] = []
                    for d in diagnostics[start...] {
                        if let i = seenRanges[d.range], diagnostics[i].severity == d.severity {
                            repeats[i, default: 0] += diagnostics[i].message == d.message ? 0 : 1
                            continue
                        }
                        kept.append(d)
                    }
                    diagnostics.removeSubrange(start...)
                    for d in kept {
                        seenRanges[d.range] = diagnostics.count
                        diagnostics.append(d)
                    }
                }
                for (i, n) in repeats where n > 0 && i >= first {
                    diagnostics[i].notes.append(.init("\(n) more probe\(n == 1 ? "" : "s") matched by '\(ap.text)' \(n == 1 ? "has" : "have") the same error"))
                }
            }
        }
        if isFinalPass { unusedMapWarnings() }
    }

    func unusedMapWarnings() {
        guard let learned else { return }
        for (name, m) in knowledge.maps.sorted(by: { $0.key < $1.key }) {
            // A map only written is printed at exit, as bpftrace does: not unused. A map only read is never set.
            if !learned.mapWrites.contains(name) && learned.mapReads.contains(name) {
                warning("map '\(displayName(name))' is read but never assigned", m.range)
            }
        }
    }

    func displayName(_ map: String) -> String { "@" + map }

    func compileProgramBody(probe: Probe, attachPoint: AttachPoint, target: ProbeTarget, name: String, kind: ProgramKind,
                            context ctx: ProbeContext) {
        let diagnosticsAtStart = diagnostics.count
        b = ProgramBuilder()
        references = [:]
        lineInfo = []
        variables = [:]
        variableRanges = [:]
        usedVariables = []
        definedVariables = []
        poisonedVariables = []
        reportedTooLarge = false
        frame = Frame(scratch: scratchFrame.enabled)
        pool = RegisterPool()
        context = ctx
        probeName = name
        programKind = kind
        if case .iter(_, let pin) = target { pinnedIterator = pin } else { pinnedIterator = nil }
        if case .uprobe(let path, _, _, _, _) = target { currentBinary = path } else { currentBinary = nil }
        enterStatementSite(target)
        loops = []
        counterStub = nil
        subprogramStarts = []
        subprogramTypes = []
        pendingCallbacks = []
        let exit = b.newLabel("exit")
        exitLabel = exit
        let index = programIndex
        programIndex += 1

        // Variables learned by the first pass get their slots up front, so temporaries
        // released after each statement never overlap them.
        if let learned, index < learned.variables.count {
            for (n, t) in learned.variables[index].sorted(by: { $0.key < $1.key }) {
                variables[n] = (t, frame.allocate(max(8, t.size)))
            }
            frame.commit()
        }

        markLine(probe.range)
        b.emit(.mov64(.r6, .r1))
        emitProcessFilter(target)
        emitScratchPrologue()   // CodegenScratch.swift
        // Variables start zeroed: one assigned on only some paths reads as 0 elsewhere, and
        // the verifier never sees an uninitialized stack read.
        for (_, v) in variables.sorted(by: { $0.value.slot > $1.value.slot }) {
            zero(slot: v.slot, size: max(8, (v.type.size + 7) / 8 * 8))
        }
        if let pred = probe.predicate {
            markLine(pred.range)
            branchIfFalse(pred, to: exit, what: "a predicate")
            frame.reset()
        }
        block(probe.body)
        b.bind(exit)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        while !pendingCallbacks.isEmpty {
            let next = pendingCallbacks.removeFirst()
            b.bind(next.label)
            next.emit()
        }
        if let stub = counterStub { emitCounterStub(stub, line: probe.range) }

        if needsScratchFrame() { return }   // compiled again with big values in a scratch map
        if frame.maxDepth > 512 {
            error("the probe needs \(frame.maxDepth) bytes of BPF stack, more than the 512 the kernel allows; use fewer or shorter strings (BPFTRACE_STRLEN) at once", probe.range)
        }
        // A probe with errors gets no unused-variable warnings: a use that failed to check
        // would make them wrong (bpftrace, too, warns only once the script checks).
        let probeHasErrors = diagnostics[diagnosticsAtStart...].contains { $0.severity == .error }
        for (n, r) in variableRanges where !usedVariables.contains(n) && !probeHasErrors {
            warning("variable '$\(n)' was assigned but never used", r)
        }

        if !isFinalPass {
            knowledge.variables.append(variables.mapValues(\.type))
        }
        var instructions: [Instruction]
        do { instructions = try b.finish() } catch {
            self.error("internal: code generation failed for \(name): \(error)", probe.range)
            return
        }
        relocateScratchSlots(&instructions, program: index)
        if let shorter = Compiler.withoutContextCopy(instructions) {
            instructions = shorter
            references = Dictionary(uniqueKeysWithValues: references.map { ($0.key - 1, $0.value) })
            subprogramStarts = subprogramStarts.map { $0 - 1 }
            var lines: [LineInfo] = []
            for var l in lineInfo {
                l.slot = max(0, l.slot - 1)
                if let last = lines.last, last.slot == l.slot { lines[lines.count - 1] = l } else { lines.append(l) }
            }
            lineInfo = lines
        }
        let progName = "p\(index)_" + String(name.map { $0.isLetter || $0.isNumber ? $0 : "_" }).prefix(40)
        var spec = ProgramSpec(name: progName, kind: kind, instructions: instructions, references: references)
        spec.section = kind.sectionName
        let fn = planBTF.add(BTFType(kind: .function, name: progName, sizeOrType: funcProtoID, payload: .functionLinkage(BTFLinkage.global.rawValue)))
        spec.functionInfo = [FunctionInfo(slot: 0, type: fn)] + zip(subprogramStarts, subprogramTypes).map { FunctionInfo(slot: $0, type: $1) }
        for (i, start) in subprogramStarts.enumerated() {
            spec.functions.append((subprogramTypes[i] == counterFunctionID ? "count_error" : "map_loop_\(i)", start))
        }
        spec.lineInfo = lineInfo
        programs.append(spec)
        planned.append(PlannedProbe(program: progName, target: target, name: name, range: attachPoint.range))
    }

    /// Records a line_info for the code that follows (one per instruction index).
    func markLine(_ range: SourceRange) {
        let (line, column) = file.location(of: range.start)
        let offset: UInt32
        if let o = lineOffsets[line] { offset = o } else {
            offset = planBTF.addString(file.line(line))
            lineOffsets[line] = offset
        }
        let info = LineInfo(slot: b.pending.count, fileNameOffset: fileNameOffset, lineOffset: offset,
                            line: UInt32(clamping: line), column: UInt32(clamping: column))
        if let last = lineInfo.last, last.slot == info.slot { lineInfo[lineInfo.count - 1] = info } else { lineInfo.append(info) }
    }

    // MARK: Output

    func finish() -> (TracePlan?, [Diagnostic]) {
        // A body compiled once per attach point reports its errors once.
        var seen = Set<String>()
        let unique = diagnostics.filter { seen.insert("\($0.severity)|\($0.range)|\($0.message)").inserted }
        let sorted = unique.sorted { $0.range.start < $1.range.start }
        if unique.contains(where: { $0.severity == .error }) { return (nil, sorted) }
        if programs.isEmpty {
            return (nil, sorted + [.error("the script has no probes", at: SourceRange(0, 0))])
        }
        var maps: [MapSpec] = []
        var plannedMaps: [PlannedMap] = []
        var typeCache: [String: TypeID] = [:]
        // BPF_F_NO_PREALLOC: a preallocated hash map reserves every element up front (per CPU
        // for per-CPU maps), which was most of the tracer's start-up. Kernels from 6.1 allocate
        // elements as they are inserted in any program type (before, perf_event programs such
        // as profile and interval needed preallocated maps).
        let hashFlags = KernelInfo.versionCode >= (6 << 16 | 1 << 8) ? MapFlags.noPrealloc.rawValue : 0
        for (name, m) in knowledge.maps.sorted(by: { $0.key < $1.key }) {
            let layout = keyLayout(m.keys, histogram: m.value == .hist || { if case .lhist = m.value { return true }; return false }())
            let type: MapType = m.value.isAggregation ? .percpuHash : .hash
            let types = mapTypes(m, keySize: layout.size, valueSize: m.value.valueSize, cache: &typeCache)
            maps.append(MapSpec(name: m.kernelName, type: type, keySize: UInt32(clamping: layout.size), valueSize: UInt32(clamping: m.value.valueSize),
                                maxEntries: UInt32(clamping: options.mapKeysMax), flags: hashFlags,
                                keyType: types.key, valueType: types.value))
            let value: MapValue = switch m.value {
            case .count: .count
            case .sum(let s): .sum(signed: s)
            case .min(let s): .min(signed: s)
            case .max(let s): .max(signed: s)
            case .avg(let s): .avg(signed: s)
            case .stats(let s): .stats(signed: s)
            case .hist: .hist
            case .lhist(let a, let z, let s): .lhist(min: a, max: z, step: s)
            case .value(let t): .value(printed(t))
            }
            let keyFields = zip(layout.offsets, m.keys).map { Field(offset: $0, type: printed($1)) }
            plannedMaps.append(PlannedMap(name: "@" + name, mapName: m.kernelName, keys: keyFields, keySize: layout.size, value: value))
        }
        if usesEvents { maps.append(MapSpec(name: Compiler.eventsMap, type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: 1 << 20)) }
        if usesKstack || usesUstack {
            if usesKstack { maps.append(MapSpec(name: Compiler.kstackMap, type: .stackTrace, keySize: 4, valueSize: UInt32(clamping: 8 * options.stackDepth), maxEntries: 4096)) }
            if usesUstack { maps.append(MapSpec(name: Compiler.ustackMap, type: .stackTrace, keySize: 4, valueSize: UInt32(clamping: 8 * options.stackDepth), maxEntries: 4096)) }
        }
        maps += processFilterMaps()
        maps += scratchMapSpecs()
        if let rodata = rodataMapSpec() { maps.append(rodata) }
        maps.append(MapSpec(name: Compiler.countersMap, type: .array, keySize: 4, valueSize: 8, maxEntries: UInt32(clamping: RuntimeCounter.allCases.count)))
        var planBTFValue: BTF?
        let bytes = planBTF.encode()
        planBTFValue = try? BTF(bytes: Bytes(bytes))
        let object = ObjectSpec(name: "plumb", maps: maps, programs: programs, btf: planBTFValue)
        let plan = TracePlan(object: object, probes: planned, maps: plannedMaps, actions: actions,
                             eventsMap: usesEvents ? Compiler.eventsMap : "", btf: planBTFValue,
                             kernelStackMap: usesKstack ? Compiler.kstackMap : "", userStackMap: usesUstack ? Compiler.ustackMap : "",
                             errorCounterMap: Compiler.countersMap)
        return (plan, sorted)
    }

    static let eventsMap = "plumb_events"
    static let kstackMap = "plumb_kstack"
    static let ustackMap = "plumb_ustack"
    static let countersMap = "plumb_errors"

    /// Key elements at 8-aligned offsets (ints as 8 bytes); hist maps add a u64 bucket.
    func keyLayout(_ keys: [SType], histogram: Bool) -> (offsets: [Int], size: Int) {
        var offsets: [Int] = []
        // No keys: the one u64 zero key (a histogram's bucket follows it).
        var at = keys.isEmpty ? 8 : 0
        for k in keys {
            offsets.append(at)
            at += keyElementSize(k)
        }
        if histogram { at += 8 }
        return (offsets, at)
    }

    func keyElementSize(_ t: SType) -> Int {
        if t.isScalar { return 8 }
        return (t.size + 7) / 8 * 8
    }
}

extension ProgramKind {
    var sectionName: String {
        switch attach {
        case .tracepoint: return "tracepoint/" + target
        case .rawTracepoint: return "raw_tp/" + target
        case .tracing: return (expectedAttachType == .traceRawTP ? "tp_btf/" : expectedAttachType == .traceFexit ? "fexit/" : "fentry/") + target
        case .kprobe: return "kprobe/" + target
        case .kretprobe: return "kretprobe/" + target
        case .uprobe: return "uprobe"
        case .uretprobe: return "uretprobe"
        case .perfEvent: return "perf_event"
        case .iterator: return "iter/" + target
        default: return target
        }
    }
}

/// The BPF stack frame: 8-aligned slots below r10, temporaries released per statement.
/// With `scratch` on, slots of more than 8 bytes go to a per-CPU scratch map instead, at
/// offsets below `ScratchFrame.base` that a pass after code generation moves to the scratch
/// pointer (CodegenScratch.swift).
struct Frame {
    private(set) var depth = 0
    private(set) var committed = 0
    private(set) var maxDepth = 0
    var scratch = false
    private(set) var scratchDepth = 0
    private(set) var scratchCommitted = 0
    private(set) var scratchMaxDepth = 0

    init(scratch: Bool = false) { self.scratch = scratch }

    /// A slot of `size` bytes; returns its (negative) offset from r10.
    mutating func allocate(_ size: Int) -> Int {
        let rounded = (max(1, size) + 7) / 8 * 8
        if scratch && rounded > 8 {
            scratchDepth += rounded
            scratchMaxDepth = Swift.max(scratchMaxDepth, scratchDepth)
            return -(ScratchFrame.base + scratchDepth)
        }
        depth += rounded
        maxDepth = Swift.max(maxDepth, depth)
        return -depth
    }
    /// Keeps everything allocated so far (variables) across statements.
    mutating func commit() { committed = depth; scratchCommitted = scratchDepth }
    mutating func reset() { depth = committed; scratchDepth = scratchCommitted }
}

/// Callee-saved registers for values that must survive helper calls (r6 holds the context).
struct RegisterPool {
    private var free: [Register] = [.r9, .r8, .r7]
    mutating func take() -> Register? { free.popLast() }
    /// `r` itself when it is a free pool register (no move needed), else any.
    mutating func take(preferring r: Register) -> Register? {
        if let i = free.firstIndex(of: r) { return free.remove(at: i) }
        return free.popLast()
    }
    mutating func give(_ r: Register) {
        // Only pool registers come back (r6, the context, is never handed out).
        if [Register.r7, .r8, .r9].contains(r), !free.contains(r) { free.append(r) }
    }
}

extension Compiler {
    /// The context arrives in r1 and the prologue copies it to r6 so calls keep it. When every
    /// read of r6 comes before the first call, jump, or write to r1 (a straight-line start, no
    /// jump back into it), those reads use r1 and the copy goes: one instruction fewer, as
    /// bpftrace's programs that read the context only up front. nil: the program keeps it.
    static func withoutContextCopy(_ insns: [Instruction]) -> [Instruction]? {
        guard let first = insns.first, first == .mov64(.r6, .r1) else { return nil }
        func reads6(_ i: Instruction) -> Bool {
            if i.isWide { return false }
            if i.isJump, let op = i.jumpOp, op == .call || op == .exit { return false }
            return i.dst == .r6 || (i.src == .r6 && i.instructionClass != .st)
        }
        // The straight-line start where r1 still holds the context.
        var end = 1
        while end < insns.count {
            let i = insns[end]
            let plain: Bool
            switch i.instructionClass {
            case .alu, .alu64: plain = i.dst != .r1 && i.dst != .r6
            case .ldx: plain = i.mode == .mem && i.dst != .r1 && i.dst != .r6
            case .st, .stx: plain = i.mode == .mem
            default: plain = false
            }
            if !plain { break }
            end += 1
        }
        if insns[end...].contains(where: { reads6($0) || $0.dst == .r6 && !$0.isJump }) { return nil }
        // No jump may land inside the start (or on the copy).
        var slot = 0
        var slotOf: [Int] = []
        for i in insns { slotOf.append(slot); slot += i.slotCount }
        let startSlots = 0..<(end < insns.count ? slotOf[end] : slot)
        for (k, i) in insns.enumerated() where i.isJump {
            guard let off = i.branchOffset else { continue }
            if i.jumpOp == .call && i.src.rawValue != 1 { continue }
            if startSlots.contains(slotOf[k] + i.slotCount + off) { return nil }
        }
        var out = Array(insns[1...])
        for k in 0..<(end - 1) where reads6(out[k]) {
            if out[k].dst == .r6 { out[k].dst = .r1 }
            if out[k].src == .r6 { out[k].src = .r1 }
        }
        return out
    }
}
