// The tracer's runtime: loads a TracePlan, runs BEGIN, attaches its probes, runs the event
// loop over the ring buffer, then END, and prints maps as bpftrace 0.17 prints them.
import PlumbLang
import PlumbBPF
import PlumbBTF
import PlumbSys
import PlumbELF
import Glibc
import Synchronization

public enum TraceError: Error, CustomStringConvertible, Sendable {
    case load(String)
    case attach(probe: String, reason: String)
    case unsupported(probe: String, what: String)
    case command(String)
    case output(String)
    /// A program the verifier refused, rendered at its place in the script (VerifierReport.swift).
    case rejected(String)

    public var description: String {
        switch self {
        case .load(let s): return "could not load the program: \(s)"
        case .attach(let p, let r): return "could not attach \(p): \(r)"
        case .unsupported(let p, let w): return "\(p): \(w)"
        case .command(let s): return s
        case .output(let s): return s
        case .rejected(let s): return s
        }
    }
}

public enum OutputFormat: String, Sendable { case text, json }

public struct TraceOptions: Sendable {
    public var format: OutputFormat = .text
    /// Where output goes (stdout unless -o).
    public var outputFD: Int32 = 1
    /// Standard output: the two newlines before the maps at exit go here even with -o (as in bpftrace).
    public var stdoutFD: Int32 = 1
    /// Print "Attaching N probes..." (bpftrace's -q turns it off).
    public var announceAttach = true
    /// `-p PID`: user probes trace this process and every process it forks after (see
    /// ProcessProbes.swift); tracing ends when all of them have exited.
    public var pid: Int32?
    /// More `-p PID`s (`-p 1 -p 2`), followed the same way.
    public var morePIDs: [Int32] = []
    /// `-c CMD`: run under /bin/sh once everything is attached; tracing stops when it exits.
    /// (Or `child`, started earlier so the compiler could know its pid.)
    public var command: String?
    public var child: GatedChild?
    /// Print `__BPFTRACE_NOTIFY_PROBES_ATTACHED` on stderr once attached.
    public var notifyAttached = false
    /// Allows system().
    public var unsafe = false
    /// Print maps at exit.
    public var printMapsAtExit = true
    /// -v: each program's id and the verifier's statistics line, as bpftrace prints them.
    public var verbose = false
    /// Report runtime error counters as they grow (-k) at exit.
    public var reportErrors = false
    /// -kk: failed probe reads too (bpftrace's -k leaves out the read functions).
    public var reportReadErrors = false
    /// `-B none`/`line`: write each event's output at once instead of when idle.
    public var flushEachEvent = false
    /// BPFTRACE_NO_USER_SYMBOLS=1 turns user-space symbolization off (addresses print as hex).
    public var userSymbols = true
    /// BPFTRACE_NO_CPP_DEMANGLE=1 prints C++ (and Swift) user symbols as they are in the file.
    public var demangle = true
    /// BPFTRACE_CAT_BYTES_MAX: how much of a file cat() prints.
    public var catBytesMax = 10240
    /// Called once every probe is attached (tests trigger their events here, then `stop()`).
    public var onAttached: (@Sendable (TraceRuntime) -> Void)?
    public init() {}
}

/// Set by SIGINT/SIGTERM; the event loop checks it between polls.

public final class TraceRuntime: @unchecked Sendable {
    public let plan: TracePlan
    public let options: TraceOptions
    let out: OutputBuffer
    let symbols: SystemSymbols
    let printfFormats: [PrintfFormat?]
    /// What was loaded (kept by name, not by the object's type: the library renames it).
    var loadedMaps: [String: Map] = [:]
    var loadedPrograms: [String: Program] = [:]
    var keepAlive: AnyObject?
    var links: [Link] = []
    /// USDT probes: one attachment (every site) per probe; released with `links`.
    var usdtAttachments: [USDTAttachment] = []
    var exitRequested = false
    /// iter probes: set when one is attached; its run ending ends the event loop (Iterators.swift).
    var iteratorProgress: IteratorProgress?
    public private(set) var attachedCount = 0

    public init(plan: TracePlan, options: TraceOptions = TraceOptions()) {
        self.plan = plan
        self.options = options
        self.out = OutputBuffer(fd: options.outputFD)
        self.symbols = SystemSymbols(demangle: options.demangle)
        // Probed and -c binaries: their symbols still resolve after their processes exit.
        for probe in plan.probes {
            switch probe.target {
            case .uprobe(let path, _, _, _, _), .usdt(let path, _, _, _): symbols.addKnownFile(path)
            default: break
            }
        }
        if let program = options.command?.split(separator: " ").first, program.hasPrefix("/") {
            symbols.addKnownFile(String(program))
        }
        printfFormats = plan.actions.map { a in
            switch a {
            case .printf(let f, _), .cat(let f, _), .system(let f, _): return PrintfFormat(f)
            default: return nil
            }
        }
    }

    /// How many probes bpftrace would announce (BEGIN and END count).
    public var probeCount: Int { plan.probes.count }

    private let stopFlag = Atomic<Bool>(false)

    /// Ends this runtime's event loop as Ctrl-C does (from any thread).
    public func stop() { stopFlag.store(true, ordering: .relaxed) }

    static func announce(_ n: Int) -> String { "Attaching \(n) probe\(n == 1 ? "" : "s")...\n" }

    // MARK: formatting against the live system

    func valuePrinter() -> ValuePrinter {
        let symbols = self.symbols
        let maps = self.loadedMaps
        let plan = self.plan
        // Opened on the first kernel-typed record printed, not before attaching.
        let kernelBTF: @Sendable () -> BTF? = { try? ProbeEnvironment.kernelTypes() }
        @Sendable func stack(_ mapName: String, _ id: UInt64) -> [UInt64] {
            guard !mapName.isEmpty, let map = maps[mapName],
                  let v = try? map.lookup(withUnsafeBytes(of: UInt32(truncatingIfNeeded: id).littleEndian, Array.init)) else { return [] }
            var frames: [UInt64] = []
            v.withUnsafeBytes { b in
                var o = 0
                while o + 8 <= b.count {
                    let f = Raw.uint(b, o, 8)
                    if f == 0 { break }
                    frames.append(f)
                    o += 8
                }
            }
            return frames
        }
        var symbolizer = Symbolizer(
            kernelSymbol: { symbols.kernelSymbol($0, withOffset: $1) },
            userSymbol: { [userSymbols = options.userSymbols] in userSymbols ? symbols.userSymbol($0, pid: $1, withOffset: $2) : nil },
            userFrames: { [userSymbols = options.userSymbols] in userSymbols ? symbols.userFrames($0, pid: $1, isReturnAddress: $2) : nil },
            kernelStack: { stack(plan.kernelStackMap, $0) },
            userStack: { stack(plan.userStackMap, $0) },
            username: { symbols.username($0) },
            record: { bytes, type, inPlan in
                guard let btf = inPlan ? plan.btf : kernelBTF() else { return nil }
                return ValueFormatter(btf: btf).format(bytes, as: type)
            })
        symbolizer.userModule = { [userSymbols = options.userSymbols] in userSymbols ? symbols.userModule($0, pid: $1) : nil }
        return ValuePrinter(symbols: symbolizer)
    }

    /// A map's contents now.
    public func snapshot(_ planned: PlannedMap) throws(TraceError) -> MapSnapshot {
        guard let map = loadedMaps[planned.mapName] else { throw .load("no map '\(planned.mapName)' for \(planned.name) in the loaded object") }
        do {
            if map.type.isPerCPU {
                return MapSnapshot(map: planned, raw: try map.entriesPerCPU())
            }
            return MapSnapshot(map: planned, raw: try map.entries().map { ($0.key, [$0.value]) })
        } catch {
            throw .load("reading \(planned.name): \(error)")
        }
    }

    func printMap(_ planned: PlannedMap, top: Int, divisor: Int, printer: TraceMapPrinter) {
        guard let s = try? snapshot(planned) else { return }
        switch options.format {
        case .text: out.append(printer.text(s, top: top, divisor: divisor))
        case .json: out.append(printer.json(s, top: top, divisor: divisor))
        }
    }

    func clearMap(_ planned: PlannedMap, zero: Bool) {
        guard let map = loadedMaps[planned.mapName], let keys = try? map.keys() else { return }
        for k in keys {
            if zero {
                if map.type.isPerCPU {
                    let n = (try? Map.possibleCPUCount()) ?? 1
                    try? map.updatePerCPU(k, Array(repeating: [UInt8](repeating: 0, count: map.valueSize), count: n))
                } else {
                    try? map.update(k, [UInt8](repeating: 0, count: map.valueSize))
                }
            } else {
                _ = try? map.delete(k)
            }
        }
    }

    func emit(type: String, text: String) {
        switch options.format {
        case .text: out.append(text)
        case .json: out.append("{\"type\": \"\(type)\", \"data\": \(JSON.quote(text))}\n")
        }
    }

    /// One ring-buffer record: its action id, then the arguments.
    func handle(_ record: UnsafeRawBufferPointer, printer: TraceMapPrinter) {
        let id = Raw.uint(record, 0, 8)
        // After exit() the rest of the batch is dropped, as bpftrace stops reading.
        guard !exitRequested, id < UInt64(plan.actions.count) else { return }
        let index = Int(id)
        let values = printer.values
        switch plan.actions[index] {
        case .printf(_, let args):
            guard let f = printfFormats[index] else { return }
            emit(type: "printf", text: f.format(record, args: args, printer: values))
        case .printMap(let name, let top, let divisor):
            if let m = plan.maps.first(where: { $0.name == name }) { printMap(m, top: top, divisor: divisor, printer: printer) }
        case .printValue(let field):
            switch options.format {
            case .text: out.append(values.text(field.type, record, at: field.offset) + "\n")
            case .json: out.append("{\"type\": \"value\", \"data\": \(values.json(field.type, record, at: field.offset))}\n")
            }
        case .clear(let name):
            if let m = plan.maps.first(where: { $0.name == name }) { clearMap(m, zero: false) }
        case .zero(let name):
            if let m = plan.maps.first(where: { $0.name == name }) { clearMap(m, zero: true) }
        case .exit:
            exitRequested = true
        case .time(let format):
            emit(type: "time", text: TraceRuntime.strftime(format))
        case .cat(_, let args):
            guard let f = printfFormats[index] else { return }
            let path = f.format(record, args: args, printer: values)
            if let text = readTextFile(path) {
                let bytes = text.utf8
                emit(type: "cat", text: bytes.count <= options.catBytesMax ? text : String(decoding: bytes.prefix(options.catBytesMax), as: UTF8.self))
            }
            else { FileHandleStderr.write("ERROR: failed to open file '\(path)': \(String(cString: strerror(errno)))\n") }
        case .system(_, let args):
            guard options.unsafe, let f = printfFormats[index] else { return }
            // Its output is captured and printed in order with ours (JSON: a "syscall" event).
            emit(type: "syscall", text: TraceRuntime.captureShell(f.format(record, args: args, printer: values)))
        case .join(let delimiter, let count, let size):
            var parts: [String] = []
            for i in 0..<count {
                let s = Raw.string(record, 8 + i * size, size)
                if s.isEmpty { break }
                parts.append(s)
            }
            // The text line ends in a newline; bpftrace's JSON event carries none.
            let text = parts.joined(separator: delimiter)
            emit(type: "join", text: options.format == .text ? text + "\n" : text)
        case .helperError(let helper, let location, let line, let column, let excerpt):
            reportHelperError(helper: helper, result: Int64(bitPattern: Raw.uint(record, 8, 8)),
                              location: location, line: line, column: column, excerpt: excerpt)
        }
    }

    /// -k/-kk: one failed helper, in bpftrace's words (the result is a negative errno).
    func reportHelperError(helper: String, result: Int64, location: String, line: Int, column: Int, excerpt: String) {
        switch options.format {
        case .text:
            let why = result < 0 && result > -4096 ? "\(String(cString: strerror(Int32(-result)))) (\(result))" : "\(result)"
            out.append("\(location): WARNING: Failed to \(helper): \(why)\n\(excerpt)")
        case .json:
            out.append("{\"type\": \"helper_error\", \"helper\": \(JSON.quote(helper)), \"retcode\": \(result), \"line\": \(line), \"col\": \(column)}\n")
        }
    }

    static func strftime(_ format: String) -> String {
        var now = time(nil)
        var tm = tm()
        localtime_r(&now, &tm)
        var buf = [CChar](repeating: 0, count: 512)
        let n = Glibc.strftime(&buf, buf.count, format, &tm)
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts `/bin/sh -c command`; with `gate`, the shell first waits for a byte (or EOF) on
    /// fd 3 so probes can attach before the command runs.
    static func runShell(_ command: String, wait: Bool, gate: Int32 = -1) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var script = command
        if gate >= 0 {
            posix_spawn_file_actions_adddup2(&actions, gate, 3)
            script = "read _ <&3; exec 3<&-; exec " + command
        }
        var pid: pid_t = 0
        let argv: [String] = ["/bin/sh", "-c", script]
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, &cargs, environ)
        guard rc == 0 else { return -1 }
        if wait {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        return pid
    }

    /// Runs `/bin/sh -c command` and returns what it wrote to stdout.
    static func captureShell(_ command: String) -> String {
        commandOutput(command)?.text ?? ""
    }

    // MARK: attaching

    static func softwareEvent(_ name: String) -> Perf.SoftwareEvent? {
        switch name {
        case "cpu-clock", "cpu": return .cpuClock
        case "task-clock": return .taskClock
        case "page-faults", "faults": return .pageFaults
        case "context-switches", "cs": return .contextSwitches
        case "cpu-migrations": return .cpuMigrations
        case "minor-faults": return .pageFaultsMin
        case "major-faults": return .pageFaultsMaj
        case "alignment-faults": return .alignmentFaults
        case "emulation-faults": return .emulationFaults
        case "dummy": return .dummy
        default: return nil
        }
    }

    func program(_ probe: PlannedProbe) throws(TraceError) -> Program {
        guard let p = loadedPrograms[probe.program] else { throw .attach(probe: probe.name, reason: "no program '\(probe.program)' in the loaded object") }
        return p
    }

    func attach(_ probe: PlannedProbe, pid: Int32?) throws(TraceError) -> Link? {
        let program = try self.program(probe)
        do {
            switch probe.target {
            case .begin, .end, .processBegin, .processEnd: return nil
            case .tracepoint(let category, let name):
                return try program.attachTracepoint(category: category, name: name)
            case .rawTracepoint(let name):
                return try program.attachRawTracepoint(name: name)
            case .btfTracepoint, .fentry:
                return try program.attachTracing()
            case .kprobe(let function, let offset, let isReturn):
                return try program.attachKprobe(function: function, offset: offset, retprobe: isReturn)
            case .uprobe(let path, let symbol, let address, let isReturn, let probePID):
                // Following processes: attached for all, filtered in the program by the pid set.
                let p = plan.filtersProcesses ? -1 : probePID ?? pid ?? -1
                // `address` is the probed virtual address (the symbol's, plus any offset); 0 leaves it to the symbol.
                if address == 0, let symbol {
                    return try program.attachUprobe(binary: path, symbol: symbol, retprobe: isReturn, pid: p)
                }
                let resolved = try UprobeResolver.resolveBinary(path)
                guard let elf = try? ELFFile(path: resolved), let offset = elf.fileOffset(ofVirtualAddress: address) else {
                    throw TraceError.attach(probe: probe.name, reason: "address 0x\(String(address, radix: 16)) is in no loadable segment of \(resolved)")
                }
                return try program.attachUprobe(binary: resolved, fileOffset: offset, retprobe: isReturn, pid: p)
            case .interval(let ns):
                let cpu = ((try? CPUs.online()) ?? []).first ?? 0
                return try program.attachPerfEvent(.cpuClock, rate: .period(max(1, ns)), cpus: [cpu])
            case .profile(let hz, let ns):
                let rate: SampleRate = hz.map { .frequency(max(1, $0)) } ?? .period(max(1, ns ?? 1_000_000))
                return try program.attachPerfEvent(.cpuClock, rate: rate)
            case .software(let event, let count):
                guard let e = TraceRuntime.softwareEvent(event) else {
                    throw TraceError.unsupported(probe: probe.name, what: "unknown software event '\(event)'")
                }
                return try program.attachPerfEvent(e, rate: .period(max(1, count)))
            case .hardware(let event, let count):
                guard let e = Perf.HardwareEvent(name: event) else {
                    throw TraceError.unsupported(probe: probe.name, what: "unknown hardware event '\(event)'")
                }
                return try program.attachHardwareEvent(e, period: max(1, count))
            case .usdt(let path, let provider, let name, let probePID):
                // Site i gets cookie i, the order the compiler dispatched argN on.
                let attachment = try program.attachUSDT(binary: path, provider: provider, name: name, pid: plan.filtersProcesses ? -1 : probePID ?? pid ?? -1)
                usdtAttachments.append(attachment)
                return nil
            case .watchpoint(let address, let length, let mode, _):
                guard let access = Perf.BreakpointAccess(mode: mode) else {
                    throw TraceError.unsupported(probe: probe.name, what: "watchpoint mode '\(mode)': use r, w, rw or x")
                }
                // A user address means nothing without its process (bpftrace: -p or -c).
                guard let pid else {
                    throw TraceError.unsupported(probe: probe.name, what: "a watchpoint needs a process: run with -p PID or -c CMD")
                }
                return try program.attachBreakpoint(address: address, length: length, access: access, pid: pid)
            case .iter(let name, let pin):
                let progress = IteratorProgress()
                iteratorProgress = progress
                if let pin { return try pinIterator(probe, at: pin, progress: progress) }
                return try startIterator(probe, name: name, progress: progress)
            }
        } catch let e as TraceError {
            throw e
        } catch {
            throw .attach(probe: probe.name, reason: "\(error)")
        }
    }

    func testRun(_ target: ProbeTarget) throws(TraceError) {
        for probe in plan.probes where probe.target == target {
            let program = try self.program(probe)
            do {
                _ = try program.testRun()
            } catch {
                // raw_tp programs want a context; syscall programs take none.
                do { _ = try program.testRun(context: [UInt8](repeating: 0, count: 8)) } catch {
                    throw .attach(probe: probe.name, reason: "running it with BPF_PROG_TEST_RUN failed: \(error)")
                }
            }
        }
    }

    // MARK: the run

    /// Loads, attaches and runs until exit(), a signal or the command's end. Returns the exit code.
    public func run() throws(TraceError) -> Int32 {
        // The CLI installs the handlers first thing in main; a library caller may not have.
        StopSignal.install()
        // -c: the command starts now (unless started already), held at a gate until every probe is attached.
        var gated = options.child
        if gated == nil, let command = options.command { gated = try GatedChild(command: command) }
        defer { if options.child == nil { gated?.terminate() } }
        // -p/-c/process probes: the process tracker first, so the programs can share its pid set.
        let following = try ProcessFollowing.start(plan: plan, targets: (options.pid.map { [$0] } ?? []) + options.morePIDs + (gated.map { [$0.pid] } ?? []))
        defer { following?.detach() }
        do {
            // Log level 4 (BPF_LOG_STATS): only the verifier's statistics, for -v.
            var loadOptions = LoadOptions(logLevel: options.verbose ? 4 : 0)
            loadOptions.reuseMaps = following?.reusedMaps ?? [:]
            let object = try plan.object.load(loadOptions)
            Timings.mark("load (BTF_LOAD, maps, PROG_LOAD)")
            keepAlive = object
            loadedMaps = object.maps
            loadedPrograms = object.programs
        } catch { throw TraceRuntime.loadFailure(error, plan: plan, verbose: options.verbose) }
        following?.bind(plan.probes, programs: loadedPrograms)
        defer { links.removeAll(); usdtAttachments.removeAll(); out.flush() }

        let printer = TraceMapPrinter(values: valuePrinter())
        var ring: RingBuffer?
        if !plan.eventsMap.isEmpty {
            do {
                let r = try RingBuffer()
                guard let events = loadedMaps[plan.eventsMap] else { throw TraceError.load("no ring buffer map '\(plan.eventsMap)'") }
                try r.add(events) { _ in }
                ring = r
            } catch { throw .load("opening the ring buffer '\(plan.eventsMap)': \(error)") }
        }
        func drain() {
            guard let ring else { return }
            _ = try? ring.consume { _, record in handle(record, printer: printer) }
        }

        if options.announceAttach {
            switch options.format {
            case .text: out.append(TraceRuntime.announce(probeCount))
            case .json: out.append("{\"type\": \"attached_probes\", \"data\": {\"probes\": \(probeCount)}}\n")
            }
        }

        if options.verbose && options.format == .text {
            var shown: Set<String> = []
            for probe in plan.probes where shown.insert(probe.program).inserted {
                guard let p = loadedPrograms[probe.program] else { continue }
                // bpftrace shows the statistics line only (newer kernels add time and stack depth).
                let log = p.verifierLog.split(separator: "\n").filter { $0.hasPrefix("processed ") }.map { $0 + "\n" }.joined()
                out.append("\nProgram ID: \(p.id)\n\nThe verifier log: \n\(log)\n")
            }
        }

        let targetPID = options.pid ?? gated?.pid

        try testRun(.begin)
        drain()
        if !exitRequested {
            for probe in plan.probes {
                if let link = try attach(probe, pid: targetPID) { links.append(link) }
                // Attaching many probes takes a while: an exit() or Ctrl-C meanwhile stops it.
                drain()
                if exitRequested || StopSignal.isRequested || stopFlag.load(ordering: .relaxed) { break }
            }
        }
        attachedCount = links.count + usdtAttachments.count
        Timings.mark("attach")
        if options.notifyAttached {
            out.flush()
            FileHandleStderr.write("__BPFTRACE_NOTIFY_PROBES_ATTACHED\n")
        }
        out.flush()
        gated?.release()
        options.onAttached?(self)
        // process:begin for the processes already running (unless BEGIN called exit()).
        if !exitRequested { try following?.pump(drain) }
        drain()
        out.flush()

        while !exitRequested && !StopSignal.isRequested && !stopFlag.load(ordering: .relaxed) {
            if let ring {
                let each = options.flushEachEvent
                _ = try? ring.poll(timeout: 100) { _, record in
                    handle(record, printer: printer)
                    if each { out.flush() }
                }
            } else {
                usleep(100_000)
            }
            // Each batch is written when it is handled (as bpftrace flushes per event batch), so
            // output interleaves with a -c command's own in time order.
            out.flush()
            if let following {
                try following.pump(drain)
                drain()
                out.flush()
                // -p/-c: tracing ends when every followed process has exited.
                if following.finished { break }
            }
            if iteratorFinished(iteratorProgress) { break }
            if let gated, gated.exited() { break }
            // -p without following (a library caller's plan): tracing ends with the traced process, as in bpftrace.
            if following == nil, let pid = options.pid, kill(pid, 0) != 0, errno == ESRCH { break }
        }
        // Probes stop before END runs, as in bpftrace.
        links.removeAll()
        usdtAttachments.removeAll()
        drain()
        // The last process:end records (a process that exited as the loop ended).
        if !exitRequested { try following?.pump(drain) }
        following?.detach()
        drain()
        exitRequested = false
        try testRun(.end)
        drain()
        reportCounters()

        if options.printMapsAtExit {
            // bpftrace writes these two newlines to stdout itself, even when -o sends the rest elsewhere.
            if options.outputFD == options.stdoutFD { out.append("\n\n") } else { out.flush(); FileHandleStderr.write("\n\n", fd: options.stdoutFD) }
            for m in plan.maps.sorted(by: { $0.name < $1.name }) { printMap(m, top: 0, divisor: 1, printer: printer) }
        }
        out.flush()
        gated?.terminate()
        return 0
    }

    /// The programs' own failure counts: lost events (ring buffer full) in the output stream.
    /// Failed helpers (-k/-kk) were reported one by one as they failed, as bpftrace does.
    func reportCounters() {
        guard !plan.errorCounterMap.isEmpty, let map = loadedMaps[plan.errorCounterMap] else { return }
        for counter in [RuntimeCounter.ringBufferFull] {
            let key = withUnsafeBytes(of: counter.rawValue.littleEndian, Array.init)
            var total: UInt64 = 0
            if map.type.isPerCPU {
                for v in (try? map.lookupPerCPU(key)) ?? [] { total &+= v.withUnsafeBytes { Raw.uint($0, 0, 8) } }
            } else if let v = try? map.lookup(key) {
                total = v.withUnsafeBytes { Raw.uint($0, 0, 8) }
            }
            guard total > 0 else { continue }
            // As bpftrace reports perf buffer losses: in the output stream.
            switch options.format {
            case .text: out.append("Lost \(total) events\n")
            case .json: out.append("{\"type\": \"lost_events\", \"data\": {\"events\": \(total)}}\n")
            }
            out.flush()
        }
    }
}

enum FileHandleStderr {
    static func write(_ s: String, fd: Int32 = 2) { OutputBuffer.writeAll(fd, s) }
}

/// A `-c` command started under /bin/sh that waits at a pipe until `release()`, so its pid is
/// known (for the compiler's cpid and uprobe filters) before it runs a single instruction.
public final class GatedChild: @unchecked Sendable {
    public let pid: pid_t
    private var gate: Int32
    private var status: Int32?

    public init(command: String) throws(TraceError) {
        var fds: [Int32] = [0, 0]
        // Close-on-exec from the start: other threads may spawn processes meanwhile.
        guard GatedChild.cloexecPipe(&fds) == 0 else { throw .command("pipe: \(String(cString: strerror(errno)))") }
        // A plain command runs as itself (so probes see only it, as with bpftrace); one that
        // needs a shell's syntax runs under /bin/sh.
        let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let needsShell = command.contains { "|&;<>()$`\\\"'*?[#~=%{}\n".contains($0) }
        if !needsShell, let program = words.first, GatedChild.executablePath(program) == nil {
            close(fds[0]); close(fds[1])
            throw .command("Failed to fork child: path '\(program)' does not exist or is not executable")
        }
        let pid: pid_t
        if needsShell || words.isEmpty {
            pid = TraceRuntime.runShell(command, wait: false, gate: fds[0])
        } else {
            pid = GatedChild.forkExec(words, gate: fds[0], writeEnd: fds[1])
        }
        close(fds[0])
        guard pid > 0 else { close(fds[1]); throw .command("could not run '\(command)'") }
        self.pid = pid
        gate = fds[1]
    }

    /// `name` as execvp would find it (a path, or a search of PATH), if executable.
    static func executablePath(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// pipe2(O_CLOEXEC) (a _GNU_SOURCE call Swift's Glibc module leaves out, so looked up).
    static func cloexecPipe(_ fds: inout [Int32]) -> Int32 {
        typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
        if let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2") {
            let f = unsafeBitCast(sym, to: Pipe2.self)
            return fds.withUnsafeMutableBufferPointer { b in b.baseAddress.map { f($0, O_CLOEXEC) } ?? -1 }
        }
        guard pipe(&fds) == 0 else { return -1 }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return 0
    }

    /// fork, wait in the child for the gate to close, then execvp: only async-signal-safe calls
    /// between fork and exec (everything is prepared before the fork).
    static func forkExec(_ words: [String], gate: Int32, writeEnd: Int32) -> pid_t {
        guard let file = strdup(words[0]) else { return -1 }
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { free(file); for p in argv { free(p) } }
        let pid = fork()
        if pid == 0 {
            close(writeEnd) // or the read below never sees EOF
            var byte: UInt8 = 0
            while read(gate, &byte, 1) < 0 && errno == EINTR {}
            close(gate)
            argv.withUnsafeMutableBufferPointer { if let base = $0.baseAddress { _ = execvp(file, base) } }
            _exit(127)
        }
        return pid
    }

    /// Lets the command run.
    public func release() {
        if gate >= 0 { close(gate); gate = -1 }
    }

    /// Whether it has exited (reaped here).
    public func exited() -> Bool {
        if status != nil { return true }
        var s: Int32 = 0
        if waitpid(pid, &s, WNOHANG) == pid { status = s; return true }
        return false
    }

    /// Ends it if still running (tracing stopped first), and reaps it.
    public func terminate() {
        // Never released (tracing failed to start): it must not run the command at all.
        if gate >= 0 { kill(pid, SIGKILL) }
        release()
        guard !exited() else { return }
        kill(pid, SIGTERM)
        var s: Int32 = 0
        while waitpid(pid, &s, 0) < 0 && errno == EINTR {}
        status = s
    }

    deinit { terminate() }
}
