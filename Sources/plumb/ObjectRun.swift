import Glibc
import ArgumentParser
import Plumb
import PlumbTrace

extension ObjectCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load an object, attach its programs by section name, print ring/perf buffer records as they arrive, and every map on exit.",
            discussion: """
                --attach PROG=TARGET names where a program attaches when its section names no target (bare SEC("uprobe"), SEC("uretprobe"), SEC("usdt")): uprobe:BINARY:FUNCTION[+OFFSET], uretprobe:BINARY:FUNCTION or usdt:BINARY:PROVIDER:NAME. As with libbpf's bpf_program__attach_uprobe(), it may also move a program whose section names a target: the program is then attached only where --attach says.

                -c CMD starts CMD (through /bin/sh) held before its first instruction, loads (with its pid in the global --pid-global names), attaches with its pid as the uprobe filter, lets it run, and stops when it exits.
                """)

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

        @Option(name: .customLong("attach"), help: ArgumentHelp("Attach PROG at TARGET: PROG=uprobe:BINARY:FUNCTION, PROG=uretprobe:BINARY:FUNCTION or PROG=usdt:BINARY:PROVIDER:NAME. Repeatable.", valueName: "prog=target"))
        var attachments: [String] = []

        @Option(name: .customShort("c"), help: ArgumentHelp("Run this command (held until attached; its pid filters uprobes) and stop when it exits.", valueName: "command"))
        var command: String?

        @Option(name: .customLong("pid-global"), help: ArgumentHelp("With -c: write the command's pid into this integer global before load.", valueName: "global"))
        var pidGlobal: String?

        @Argument(help: "A BPF object (clang -g -O2 -target bpf).")
        var object: String

        /// Everything checkable without the kernel is checked here, while parsing: errors then
        /// come with this command's usage, and nothing has been loaded.
        func validate() throws {
            let spec = try ObjectSpec(path: object)
            _ = try prepare(spec)
            _ = try attachRequests(spec)
            if let pidGlobal {
                guard command != nil else { throw ValidationError("--pid-global needs -c CMD (the pid it writes is the command's)") }
                _ = try PidGlobal.value(pidGlobal, pid: 1, in: spec)
                if assignments.contains(where: { $0.hasPrefix(pidGlobal + "=") }) {
                    throw ValidationError("--pid-global \(pidGlobal): --set also sets it; drop one")
                }
            }
            if command != nil && pid != nil { throw ValidationError("-c and --pid both name the process to trace; use one") }
            if let command, command.allSatisfy(\.isWhitespace) { throw ValidationError("-c: the command is empty") }
        }

        /// --attach, parsed and checked against the spec.
        func attachRequests(_ spec: ObjectSpec) throws -> [AttachRequest] {
            let requests = try attachments.map(AttachRequest.parse)
            for r in requests { try r.check(in: spec, loading: programs) }
            return requests
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
            let prepared = try prepare(spec)
            var globals = prepared.globals
            let printer = prepared.printer
            let requests = try attachRequests(spec)
            let stopAt = duration.map { EventLoop.now() + $0 }
            let output = OutputBuffer(fd: 1)
            // Status (loaded, attached, summaries) goes to stderr in every mode: stdout is the data.
            let status = OutputBuffer(fd: 2)
            // A signal may have come while the object was read; nothing is loaded yet.
            if StopSignal.isRequested {
                status.append("stopped by \(Arguments.signalName(StopSignal.signal)) before loading\n")
                return
            }
            // -c: the command exists (held) before load, so its pid can go into a global.
            var held: HeldCommand?
            // Whatever ends this early (an error, a signal), the command is not left held or running.
            var released = false
            defer {
                if let held {
                    if released {
                        if !CommandState.hasExited(held.pid) { kill(held.pid, SIGTERM) }
                        _ = held.wait()
                    } else {
                        // Never released (loading or attaching failed): it must not run the command at
                        // all. Reaped here: wait() would first write to the gate, and the dead shell's
                        // closed pipe would answer with SIGPIPE.
                        kill(held.pid, SIGKILL)
                        var status: Int32 = 0
                        while waitpid(held.pid, &status, 0) < 0 && errno == EINTR {}
                    }
                }
            }
            if let command {
                let h = try HeldCommand(CommandState.argv(command))
                held = h
                if let pidGlobal { globals[pidGlobal] = try PidGlobal.value(pidGlobal, pid: h.pid, in: spec) }
                status.append("started \(command): pid \(h.pid) (held until attached)\n")
            }
            let options = LoadOptions(targetBTF: try targetBTF.map { [try BTF(path: $0)] },
                                      programs: programs.isEmpty ? nil : Set(programs), globals: globals)
            let loaded: Object
            do { loaded = try spec.load(options) } catch {
                // The object as the user named it: one object among several in a script's output.
                throw RunError(message: "\(object): \(error)")
            }
            for name in loaded.spec.programs.map(\.name) {
                if let p = loaded.programs[name] { status.append("loaded \(name): \(p.type) program, id \(p.id)\n") }
            }
            status.flush()

            // Attach everything that names its target; a stop request ends this early.
            var links: [AnyObject] = []
            let filterPID = held?.pid ?? pid ?? -1
            let attachOptions = AttachOptions(pid: filterPID, perfRate: .frequency(perfFrequency))
            let requested = Set(requests.map(\.program))
            // Objects built with libbpf's <bpf/usdt.bpf.h> read argument specs from a map: --attach usdt fills it.
            let usdtSpecs = try LibbpfUSDTSpecs(object: loaded)
            for name in loaded.spec.programs.map(\.name) {
                if StopSignal.isRequested {
                    status.append("stopped by \(Arguments.signalName(StopSignal.signal)) before attaching \(name)\n")
                    break
                }
                if requested.contains(name) {
                    guard loaded.programs[name] != nil else { continue }
                    for r in requests where r.program == name {
                        let (owner, description) = try r.attach(try loaded.program(name), pid: filterPID, usdtSpecs: usdtSpecs)
                        let replaced = r.replacedTarget(in: loaded.spec).map { " (--attach, instead of section '\($0)')" } ?? ""
                        status.append("attached \(name): \(description)\(replaced)\n")
                        links.append(owner)
                    }
                } else if let link = try loaded.attach(name, options: attachOptions) {
                    status.append("attached \(name): \(link.description)\n")
                    links.append(link)
                } else {
                    let section = loaded.spec.program(name)?.section ?? ""
                    var hint = ""
                    if let kind = loaded.spec.program(name)?.kind, kind.type == .kprobe {
                        let form = kind.attach == .usdt ? "usdt:BINARY:PROVIDER:NAME" : kind.attach == .uretprobe ? "uretprobe:BINARY:FUNCTION" : "uprobe:BINARY:FUNCTION"
                        hint = "; name a target with --attach \(name)=\(form)"
                    }
                    status.append("not attached \(name): section '\(section)' does not auto-attach\(hint)\n")
                }
                status.flush()   // the attach lines are progress: show them now
            }
            status.flush()

            // Records until the duration ends or a signal arrives; then what is left, the summary, the maps.
            let loop = try EventLoop(object: loaded, printer: printer, output: output, json: json)
            var failure: Error?
            // A stop requested while attaching: the command never runs.
            if let held, !StopSignal.isRequested {
                held.release()
                released = true
                // The loop wakes at least every 100 ms; a watcher ends it when the command exits.
                let watch = CommandWatch(pid: held.pid, loop: loop)
                defer { watch.stop() }
                do { try loop.run(until: stopAt) } catch { failure = error }
                if CommandState.hasExited(held.pid) {
                    status.append("\(command ?? "command") exited with status \(held.wait())\n")
                }
            } else {
                do { try loop.run(until: stopAt) } catch { failure = error }
            }
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
