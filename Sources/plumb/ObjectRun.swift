import Glibc
import ArgumentParser
import Plumb

extension ObjectCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load an object, attach its programs by section name, print ring/perf buffer records as they arrive, and every map on exit.")

        @Option(name: .customLong("target-btf"), help: "Relocate against this BTF instead of the running kernel's.")
        var targetBTF: String?

        @Option(name: .customLong("set"), help: "Set a global (const volatile ones too) before load: VAR=VALUE. Repeatable.")
        var assignments: [String] = []

        // `.unconditional`: "-1" is this option's value, not a flag, so it gets a real message.
        @Option(name: .long, parsing: .unconditional, help: "Stop after this long (5s, 500ms); default: until Ctrl-C or SIGTERM.",
                transform: Arguments.duration)
        var duration: Double?

        @Option(name: .customLong("program"), help: "Load and attach only this program. Repeatable.")
        var programs: [String] = []

        @Option(name: .long, parsing: .unconditional, help: "uprobes: trace only this process.", transform: Arguments.pid)
        var pid: Int32?

        @Option(name: .customLong("perf-freq"), parsing: .unconditional,
                help: "perf_event programs: cpu-clock samples per second on each CPU.", transform: Arguments.frequency)
        var perfFrequency: UInt64 = 99

        @Option(name: .customLong("record-type"), help: "Print MAP's records as TYPE (a struct name in the object's BTF): MAP=TYPE. Repeatable.")
        var recordTypes: [String] = []

        @Flag(name: .long, help: "Print records and maps as NDJSON on stdout (one object a line); status lines stay on stderr.")
        var json = false

        @Argument(help: "A BPF object (clang -g -O2 -target bpf).")
        var object: String

        /// Everything checkable without the kernel is checked here, while parsing: errors then
        /// come with this command's usage, and nothing has been loaded.
        func validate() throws {
            _ = try prepare(try ObjectSpec(path: object))
        }

        /// The --set values and the record printer (--record-type), checked against the spec.
        func prepare(_ spec: ObjectSpec) throws -> (globals: [String: [UInt8]], printer: RecordPrinter) {
            let globals: [String: [UInt8]]
            do { globals = try spec.globalValues(assignments) } catch {
                throw ValidationError("--set: \(Arguments.message(error))")
            }
            do {
                return (globals, try RecordPrinter(spec: spec, recordTypes: try RecordPrinter.parseRecordTypes(recordTypes)))
            } catch {
                throw ValidationError("--record-type: \(Arguments.message(error))")
            }
        }

        func run() throws {
            let spec = try ObjectSpec(path: object)
            let (globals, printer) = try prepare(spec)
            let stopAt = duration.map { EventLoop.now() + $0 }
            let output = OutputBuffer(fd: 1)
            // Status (loaded, attached, summaries) goes to stderr in every mode: stdout is the data.
            let status = OutputBuffer(fd: 2)
            // A signal may have come while the object was read; nothing is loaded yet.
            if StopSignal.isRequested {
                status.append("stopped by \(Arguments.signalName(StopSignal.signal)) before loading\n")
                return
            }
            let options = LoadOptions(targetBTF: try targetBTF.map { [try BTF(path: $0)] },
                                      programs: programs.isEmpty ? nil : Set(programs), globals: globals)
            let loaded = try spec.load(options)
            for name in loaded.spec.programs.map(\.name) {
                if let p = loaded.programs[name] { status.append("loaded \(name): \(p.type) program, id \(p.id)\n") }
            }
            status.flush()

            // Attach everything that names its target; a stop request ends this early.
            var links: [Link] = []
            let attachOptions = AttachOptions(pid: pid ?? -1, perfRate: .frequency(perfFrequency))
            for name in loaded.spec.programs.map(\.name) {
                if StopSignal.isRequested {
                    status.append("stopped by \(Arguments.signalName(StopSignal.signal)) before attaching \(name)\n")
                    break
                }
                if let link = try loaded.attach(name, options: attachOptions) {
                    status.append("attached \(name): \(link.description)\n")
                    links.append(link)
                } else {
                    status.append("not attached \(name): section '\(loaded.spec.program(name)?.section ?? "")' does not auto-attach\n")
                }
                status.flush()   // the attach lines are progress: show them now
            }
            status.flush()

            // Records until the duration ends or a signal arrives; then what is left, the summary, the maps.
            let loop = try EventLoop(object: loaded, printer: printer, output: output, json: json)
            var failure: Error?
            do { try loop.run(until: stopAt) } catch { failure = error }
            do { try loop.finish() } catch { failure = failure ?? error }
            links.removeAll() // detach before reading final map contents
            status.append(loop.summary)
            status.flush()
            output.append(json ? MapPrinter(object: loaded).allJSON() : MapPrinter(object: loaded).all())
            output.flush()
            if let failure { throw failure }
        }
    }
}

/// Option values the argument parser cannot check by type alone.
enum Arguments {
    /// "5s", "500ms", "2m", "1.5s", or a bare number of seconds; not negative.
    static func duration(_ text: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000001), ("s", 1), ("m", 60), ("h", 3600)]
        var value: Double?
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let n = Double(text.dropLast(suffix.count)) { value = n * scale; break }
        }
        guard let seconds = value ?? Double(text), seconds.isFinite else {
            throw ValidationError("use a number with s, ms, m or h (5s, 500ms)")
        }
        guard seconds >= 0 else { throw ValidationError("a duration cannot be negative") }
        return seconds
    }

    static func pid(_ text: String) throws -> Int32 {
        guard let n = Int64(text) else { throw ValidationError("a process id is a number") }
        guard n > 0 else { throw ValidationError("a process id must be positive") }
        guard let pid = Int32(exactly: n) else { throw ValidationError("no process id is that large") }
        return pid
    }

    static func frequency(_ text: String) throws -> UInt64 {
        guard let n = Int64(text) else { throw ValidationError("a frequency is a whole number of samples per second") }
        guard n > 0 else { throw ValidationError("the frequency must be positive (samples per second on each CPU)") }
        return UInt64(n)
    }

    /// A library error's message without the generic prefix.
    static func message(_ error: Error) -> String {
        if let e = error as? BPFError, case .invalidArgument(let m) = e { return m }
        return "\(error)"
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }
}
