// `plumb [trace] ...`: the tracer's command line, bpftrace 0.17's flags (getopt style, so
// `-lv`, `-kk` and `-eprog` work). Invoked as `bpftrace` (a symlink), it also answers with
// bpftrace's texts and exit codes. Argument parsing and wiring only; the work is in PlumbLang
// (compile) and PlumbTrace (run, list, print).
import ArgumentParser
import Plumb
import PlumbLang
import PlumbTrace
import PlumbSys
import Glibc

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Trace with a bpftrace-compatible script (the default command: `plumb -e 'PROGRAM'`, `plumb FILE.bt`).",
        discussion: TraceCLI.usage(name: "plumb"))

    @Argument(parsing: .captureForPassthrough, help: "bpftrace's options, then the script file (or -e PROGRAM) and its positional parameters.")
    var arguments: [String] = []

    func run() throws {
        // Under the name `bpftrace` (a symlink) it answers as bpftrace does.
        let code = TraceCLI(bpftraceMode: TraceCLI.invokedAsBpftrace).main(arguments)
        if code != 0 { throw ExitCode(code) }
    }
}

/// What the command line asked for.
struct TraceArguments {
    var program: String?
    var file: String?
    var positional: [String] = []
    var list = false
    var listPattern: String?
    var verbose = false
    var debug = 0
    var quiet = false
    var helperChecks = 0
    var unsafe = false
    var info = false
    var help = false
    var version = false
    var format = "text"
    var outputFile: String?
    var pid: String?
    /// `-p` again (`-p 1 -p 2`): every one is followed.
    var morePIDs: [String] = []
    var command: String?
    var buffering: String?
    /// --check: parse and type-check only (nothing loaded, no privileges needed).
    var checkOnly = false
    /// --include FILE (read before the script) and -I DIR (the header search path).
    var includes: [String] = []
    var includeDirs: [String] = []
    var noWarnings = false
}

struct TraceCLI {
    var bpftraceMode: Bool
    var name: String { bpftraceMode ? "bpftrace" : "plumb" }

    /// argv[0]'s base name is `bpftrace` (a symlink to plumb).
    static var invokedAsBpftrace: Bool {
        guard let first = CommandLine.arguments.first else { return false }
        return first.split(separator: "/").last == "bpftrace"
    }

    static func usage(name: String) -> String {
        """
        USAGE:
            \(name) [options] filename
            \(name) [options] - <stdin input>
            \(name) [options] -e 'program'

        OPTIONS:
            -B MODE        output buffering mode ('full', 'none')
            -f FORMAT      output format ('text', 'json')
            -o file        redirect bpftrace output to file
            -e 'program'   execute this program
            -h, --help     show this help message
            -I DIR         add the directory to the include search path
            --include FILE add an #include file before preprocessing
            -l [search]    list probes
            -p PID         enable USDT probes on PID
            -c 'CMD'       run CMD and enable USDT probes on resulting process
            --usdt-file-activation
                           activate usdt semaphores based on file path
            --unsafe       allow unsafe builtin functions
            -q             keep messages quiet
            --info         Print information about kernel BPF support
            -k             emit a warning when a bpf helper returns an error (except read functions)
            -kk            check all bpf helper functions
            -V, --version  bpftrace version
            --no-warnings  disable all warning messages

        TROUBLESHOOTING OPTIONS:
            -v                      verbose messages
            -d                      (dry run) debug info
            -dd                     (dry run) verbose debug info
            --emit-elf FILE         (dry run) generate ELF file with bpf programs and write to FILE
            --emit-llvm FILE        write LLVM IR to FILE.original.ll and FILE.optimized.ll\(name == "plumb" ? "\n    --check                 parse and type-check only: print diagnostics, load nothing" : "")

        ENVIRONMENT:
            BPFTRACE_STRLEN             [default: 64] bytes on BPF stack per str()
            BPFTRACE_NO_CPP_DEMANGLE    [default: 0] disable C++ symbol demangling
            BPFTRACE_MAP_KEYS_MAX       [default: 4096] max keys in a map
            BPFTRACE_CAT_BYTES_MAX      [default: 10k] maximum bytes read by cat builtin
            BPFTRACE_MAX_PROBES         [default: 512] max number of probes
            BPFTRACE_MAX_BPF_PROGS      [default: 512] max number of generated BPF programs
            BPFTRACE_LOG_SIZE           [default: 1000000] log size in bytes
            BPFTRACE_PERF_RB_PAGES      [default: 64] pages per CPU to allocate for ring buffer
            BPFTRACE_NO_USER_SYMBOLS    [default: 0] disable user symbol resolution
            BPFTRACE_CACHE_USER_SYMBOLS [default: auto] enable user symbol cache
            BPFTRACE_VMLINUX            [default: none] vmlinux path used for kernel symbol resolution
            BPFTRACE_BTF                [default: none] BTF file

        EXAMPLES:
        \(name) -l '*sleep*'
            list probes containing "sleep"
        \(name) -e 'kprobe:do_nanosleep { printf("PID %d sleeping...\\n", pid); }'
            trace processes calling sleep
        \(name) -e 'tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }'
            count syscalls by process name

        """
    }

    /// `message`: a usage error (the usage follows it); `unsupported`: a valid option plumb does not offer.
    enum ParseFailure: Error { case message(String), unsupported(String) }

    /// getopt_long with bpftrace's option string: flags may be combined (`-lv`), an option's
    /// value may be attached (`-eprog`) or the next argument, and options may come after other
    /// arguments (GNU permutation); the first other argument is the script (unless -e), the
    /// rest its positional parameters.
    static func parseArguments(_ args: [String], name: String) throws(ParseFailure) -> TraceArguments {
        var a = TraceArguments()
        var i = 0
        let withValue: Set<Character> = ["e", "f", "o", "p", "c", "B", "I"]
        let flags: Set<Character> = ["l", "v", "d", "q", "k", "h", "V", "b"]
        var rest: [String] = []
        func value(_ option: String) throws(ParseFailure) -> String {
            i += 1
            guard i < args.count else { throw .message("\(name): option '\(option)' requires an argument") }
            return args[i]
        }
        func inlineOrNext(_ inline: String?) throws(ParseFailure) -> String {
            if let inline { return inline }
            return try value(args[i])
        }
        while i < args.count {
            let arg = args[i]
            if arg == "--" { rest += args[(i + 1)...]; break }
            if arg.hasPrefix("--") {
                let body = arg.dropFirst(2)
                let (key, inline): (String, String?) = body.firstIndex(of: "=").map { (String(body[..<$0]), String(body[body.index(after: $0)...])) } ?? (String(body), nil)
                switch key {
                case "help": a.help = true
                case "version": a.version = true
                case "unsafe": a.unsafe = true
                case "info": a.info = true
                case "no-warnings": a.noWarnings = true
                case "usdt-file-activation": break
                case "include": a.includes.append(try inlineOrNext(inline))
                // Accepted by bpftrace's parser, but there is no ELF or LLVM IR to write here:
                // plumb builds the programs in memory. Say so rather than run the script.
                case "emit-elf":
                    _ = try inlineOrNext(inline)
                    throw .unsupported("--emit-elf is not supported: plumb builds its BPF programs in memory, without an ELF file; -d prints them, with the script line above each group of instructions")
                case "emit-llvm":
                    _ = try inlineOrNext(inline)
                    throw .unsupported("--emit-llvm is not supported: plumb generates BPF instructions itself, without LLVM; -d prints them")
                // A flag, so `--check -e PROG` works; `--check=FILE` names the script too.
                case "check": a.checkOnly = true; if let inline { a.file = inline }
                default: throw .message("\(name): unrecognized option '\(arg)'")
                }
                i += 1
                continue
            }
            if arg.hasPrefix("-") && arg != "-" {
                var chars = Array(arg.dropFirst())
                while !chars.isEmpty {
                    let c = chars.removeFirst()
                    if withValue.contains(c) {
                        let v: String
                        if !chars.isEmpty { v = String(chars); chars = [] }
                        else {
                            i += 1
                            guard i < args.count else { throw .message("\(name): option requires an argument -- '\(c)'") }
                            v = args[i]
                        }
                        switch c {
                        case "e": a.program = v
                        case "f": a.format = v
                        case "o": a.outputFile = v
                        case "p": if a.pid == nil { a.pid = v } else { a.morePIDs.append(v) }
                        case "c": a.command = v
                        case "B": a.buffering = v
                        default: a.includeDirs.append(v)   // -I
                        }
                    } else if flags.contains(c) {
                        switch c {
                        case "l": a.list = true
                        case "v": a.verbose = true
                        case "d": a.debug += 1
                        case "q": a.quiet = true
                        case "k": a.helperChecks += 1
                        case "h": a.help = true
                        case "V": a.version = true
                        default: break
                        }
                    } else {
                        throw .message("\(name): invalid option -- '\(c)'")
                    }
                }
                i += 1
                continue
            }
            // The script or a parameter; like GNU getopt, options may still follow (`-- ` ends them).
            rest.append(arg)
            i += 1
        }
        if a.list {
            a.listPattern = rest.first
        } else if a.program == nil && a.file == nil, let first = rest.first {
            a.file = first
            a.positional = Array(rest.dropFirst())
        } else {
            a.positional = rest
        }
        return a
    }

    func stderr(_ s: String) { TraceOutput.stderr(s) }

    /// An environment variable as a positive integer (bpftrace refuses anything else).
    /// A 0/1 switch from the environment (unset: off), as bpftrace 0.17 checks it.
    func envSwitch(_ key: String) throws(ParseFailure) -> Bool {
        guard let raw = getenv(key) else { return false }
        switch String(cString: raw) {
        case "0": return false
        case "1": return true
        default: throw .message("ERROR: Env var '\(key)' did not contain a valid value (0 or 1).")
        }
    }

    /// A number from the environment, as bpftrace 0.17 reads it (0 is accepted, except where
    /// plumb cannot work with it: a string of 0 bytes).
    func envNumber(_ key: String, _ fallback: Int, allowZero: Bool = true) throws(ParseFailure) -> Int {
        guard let raw = getenv(key) else { return fallback }
        let text = String(cString: raw)
        guard let n = UInt64(text), n > 0 || allowZero, let v = Int(exactly: n) else {
            throw .message("ERROR: Env var '\(key)' did not contain a valid uint64_t, or was zero-valued.")
        }
        return v
    }

    func main(_ args: [String]) -> Int32 {
        let a: TraceArguments
        do { a = try TraceCLI.parseArguments(args, name: name) } catch {
            switch error {
            case .message(let m): stderr(m + "\n" + TraceCLI.usage(name: name))
            case .unsupported(let m): stderr("ERROR: " + m + "\n")
            }
            return 1
        }
        if a.help { TraceOutput.stdout(TraceCLI.usage(name: name)); return 0 }
        if a.version { TraceOutput.stdout(bpftraceMode ? "bpftrace v0.17.0\n" : "plumb (bpftrace v0.17.0 compatible)\n"); return 0 }
        if a.info { TraceOutput.stdout(TraceCLI.info()); return 0 }
        if a.list {
            let listing = ProbeListing.list(a.listPattern, verbose: a.verbose)
            TraceOutput.stdout(listing.text)
            for w in listing.warnings { stderr("WARNING: \(w)\n") }
            for e in listing.errors { stderr("ERROR: \(e)\n") }
            if !listing.errors.isEmpty { return 1 }
            return 0
        }
        guard a.format == "text" || a.format == "json" else {
            stderr("ERROR: Invalid output format \"\(a.format)\"\nValid formats: 'text', 'json'\n")
            return 1
        }
        if let b = a.buffering, !["full", "none", "line"].contains(b) {
            stderr("ERROR: Invalid buffering mode \"\(b)\"\nValid modes: 'full', 'none', 'line'\n")
            return 1
        }

        // The script's text.
        let source: SourceFile
        if let program = a.program {
            source = SourceFile(name: "stdin", text: program)
        } else if let path = a.file {
            let text: String?
            if path == "-" { text = TraceOutput.readAll(fd: 0) } else { text = TraceOutput.readFile(path) }
            guard let text else {
                stderr("ERROR: failed to open file '\(path)': \(String(cString: strerror(errno)))\n")
                return bpftraceMode ? 255 : 1
            }
            source = SourceFile(name: path == "-" ? "stdin" : path, text: text)
        } else {
            stderr(TraceCLI.usage(name: name))
            if !bpftraceMode { stderr("\nOTHER COMMANDS (plumb --help):\n    btf, object, features\n") }
            return 1
        }

        let stringLength: Int, mapKeys: Int, maxProbes: Int, catBytes: Int, noUserSymbols: Bool, noDemangle: Bool
        do throws(ParseFailure) {
            stringLength = try envNumber("BPFTRACE_STRLEN", 64, allowZero: false)
            mapKeys = try envNumber("BPFTRACE_MAP_KEYS_MAX", 4096)
            maxProbes = try envNumber("BPFTRACE_MAX_PROBES", 512)
            _ = try envNumber("BPFTRACE_PERF_RB_PAGES", 64)
            catBytes = try envNumber("BPFTRACE_CAT_BYTES_MAX", 10240)
            // Checked as bpftrace checks them; plumb has no use for their values.
            _ = try envNumber("BPFTRACE_LOG_SIZE", 1_000_000)
            _ = try envNumber("BPFTRACE_MAX_BPF_PROGS", 512)
            _ = try envNumber("BPFTRACE_MAX_TYPE_RES_ITERATIONS", 0)
            noUserSymbols = try envSwitch("BPFTRACE_NO_USER_SYMBOLS")
            noDemangle = try envSwitch("BPFTRACE_NO_CPP_DEMANGLE")
            _ = try envSwitch("BPFTRACE_CACHE_USER_SYMBOLS")
        } catch {
            if case .message(let m) = error { stderr(m + "\n") }
            return 1
        }
        if stringLength > 200 {
            stderr("ERROR: BPFTRACE_STRLEN too large (max 200 bytes on the BPF stack)\n")
            return 1
        }

        // BPFTRACE_BTF: the types to check the script against; a file that is not BTF is an error now.
        if let path = getenv("BPFTRACE_BTF").map({ String(cString: $0) }), !path.isEmpty {
            do { _ = try ProbeEnvironment.kernelTypes() } catch {
                stderr("ERROR: BPFTRACE_BTF=\(path): \(error)\n")
                return 1
            }
        }

        var pids: [Int32] = []
        for p in (a.pid.map { [$0] } ?? []) + a.morePIDs {
            guard let n = Int32(p), n > 0 else { stderr("ERROR: pid '\(p)' is not a valid process id\n"); return 1 }
            guard kill(n, 0) == 0 || errno == EPERM else { stderr("ERROR: failed to find process \(n): No such process\n"); return 1 }
            pids.append(n)
        }
        let pid = pids.first

        let swiftStyle = DiagnosticPrinter(file: source)
        let render: ([Diagnostic]) -> String = { [bpftraceMode] diagnostics in
            bpftraceMode ? diagnostics.map { TraceCLI.bpftraceStyle($0, source) }.joined() : swiftStyle.render(diagnostics)
        }
        Timings.mark("arguments")
        let (script, parseDiagnostics) = PlumbLang.parse(source, headers: TraceCLI.headerSource(scriptPath: a.file, includeDirs: a.includeDirs),
                                                         preincluded: a.includes)
        Timings.mark("parse")
        let warnings = a.noWarnings ? parseDiagnostics.filter { $0.severity == .error } : parseDiagnostics
        if !warnings.isEmpty { stderr(render(warnings)) }
        if parseDiagnostics.contains(where: { $0.severity == .error }) { return 1 }

        // -c: started (held) before compiling so `cpid` is known.
        var child: GatedChild?
        if let command = a.command, !a.checkOnly, a.debug == 0 {
            do { child = try GatedChild(command: command) } catch { stderr("ERROR: \(error)\n"); return bpftraceMode ? 255 : 1 }
        }
        defer { child?.terminate() }

        let compiled = TraceCLI.compileScript(script, source: source, positional: a.positional, unsafe: a.unsafe,
                                              stringLength: stringLength, mapKeys: mapKeys, childPID: child?.pid, pid: pid,
                                              command: a.command, helperChecks: a.helperChecks)
        Timings.mark("check and codegen (tracefs formats, BTF if used)")
        let shown = a.noWarnings ? compiled.diagnostics.filter { $0.severity == .error } : compiled.diagnostics
        if !shown.isEmpty { stderr(render(shown)) }
        guard let plan = compiled.plan, !compiled.diagnostics.contains(where: { $0.severity == .error }) else {
            if compiled.diagnostics.isEmpty { stderr("ERROR: the compiler produced no plan and said nothing about why\n") }
            return 1
        }
        // Quiet on success, like a compiler.
        if a.checkOnly { return 0 }
        if a.debug > 0 {
            // -dd: the syntax tree and the maps first, as bpftrace's -dd shows its passes.
            if a.debug > 1 { TraceOutput.stdout(TraceCLI.verboseDebug(script, plan)) }
            TraceOutput.stdout(TraceCLI.disassemble(plan))
            return 0
        }
        let attachable = plan.probes.count
        if attachable > maxProbes {
            stderr("ERROR: Can't attach to \(attachable) probes because it exceeds the current limit of \(maxProbes) probes.\n"
                   + "You can increase the limit through the BPFTRACE_MAX_PROBES environment variable, but BE CAREFUL since a high number of probes attached can cause your system to crash.\n")
            return 1
        }

        var options = TraceOptions()
        options.format = a.format == "json" ? .json : .text
        options.announceAttach = !a.quiet
        options.pid = pid
        options.morePIDs = Array(pids.dropFirst())
        options.child = child
        options.unsafe = a.unsafe
        options.verbose = a.verbose
        options.reportErrors = a.helperChecks > 0
        options.reportReadErrors = a.helperChecks > 1
        options.flushEachEvent = a.buffering == "none" || a.buffering == "line"
        options.catBytesMax = catBytes
        options.userSymbols = !noUserSymbols
        options.demangle = !noDemangle
        options.notifyAttached = getenv("__BPFTRACE_NOTIFY_PROBES_ATTACHED") != nil
        var outputFD: Int32 = 1
        if let path = a.outputFile {
            outputFD = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard outputFD >= 0 else { stderr("ERROR: failed to open output file '\(path)': \(String(cString: strerror(errno)))\n"); return 1 }
        }
        defer { if outputFD != 1 { close(outputFD) } }
        options.outputFD = outputFD
        do {
            return try TraceRuntime(plan: plan, options: options).run()
        } catch {
            // A verifier rejection is a diagnostic of the script, rendered as the compiler's are.
            if case .rejected(let text) = error { stderr(text); return 1 }
            stderr("ERROR: \(error)\n")
            // bpftrace 0.17 exits with 255 when a probe fails to attach.
            switch error {
            case .attach, .unsupported: return bpftraceMode ? 255 : 1
            default: return 1
            }
        }
    }

    /// `--info` in bpftrace's layout: system, build, then what the kernel supports.
    static func info() -> String {
        var u = utsname()
        uname(&u)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let report = FeatureReport.probe(helpersFor: [])
        func yes(_ f: FeatureSupport) -> String { f.isSupported ? "yes" : "no" }
        var out = "System\n  OS: \(field(u.sysname)) \(field(u.release)) \(field(u.version))\n  Arch: \(field(u.machine))\n\n"
        out += "Build\n  version: v0.17.0 (plumb)\n  LLVM: none (plumb generates BPF itself)\n\n"
        out += "Map types\n" + report.mapTypes.map { "  \($0.0): \(yes($0.1))\n" }.joined() + "\n"
        out += "Program types\n" + report.programTypes.map { "  \($0.0): \(yes($0.1))\n" }.joined() + "\n"
        out += "Probe types\n" + report.attachKinds.map { "  \($0.0): \(yes($0.1))\n" }.joined()
        return out
    }

    /// bpftrace's own form: `stdin:1:9-14: ERROR: message`, the line, tildes under the range.
    static func bpftraceStyle(_ d: Diagnostic, _ file: SourceFile) -> String {
        let (line, column) = file.location(of: d.range.start)
        let (endLine, endColumn) = file.location(of: max(d.range.start, d.range.end))
        let severity = d.severity == .error ? "ERROR" : (d.severity == .warning ? "WARNING" : "NOTE")
        let source = file.line(line)
        var out = endLine == line
            ? "\(file.name):\(line):\(column)-\(max(endColumn, column + 1)): \(severity): \(d.message)\n"
            : "\(file.name):\(line)-\(endLine): \(severity): \(d.message)\n"
        out += source + "\n"
        let width = endLine == line ? max(1, endColumn - column) : max(1, source.utf8.count - column + 1)
        out += String(repeating: " ", count: max(0, column - 1)) + String(repeating: "~", count: width) + "\n"
        return out
    }

    /// The compiler, against the running system.
    static func compileScript(_ script: Script, source: SourceFile, positional: [String], unsafe: Bool,
                              stringLength: Int, mapKeys: Int, childPID: Int32?, pid: Int32? = nil, command: String? = nil,
                              helperChecks: Int = 0) -> (plan: TracePlan?, diagnostics: [Diagnostic]) {
        var options = CompileOptions(stringLength: stringLength, positionalParameters: positional, unsafe: unsafe,
                                     mapKeysMax: mapKeys, childPID: childPID)
        options.pid = pid
        options.childCommand = command
        // -k/-kk: the programs count failing helpers for the runtime to report.
        options.reportHelperErrors = helperChecks > 0
        options.reportReadErrors = helperChecks > 1
        let (plan, diagnostics) = compile(script, file: source, environment: ProbeEnvironment.system(), options: options)
        return (plan, diagnostics)
    }

    /// `-d`: every program's instructions.
    static func disassemble(_ plan: TracePlan) -> String {
        // The script line above each group of instructions (PlumbLang/CodegenListing.swift).
        plan.listing()
    }

    /// -dd: the parsed script (one S-expression per probe) and every map the plan creates.
    static func verboseDebug(_ script: Script, _ plan: TracePlan) -> String {
        var out = "AST\n---\n" + script.sexpr + "\n\nMaps\n----\n"
        for m in plan.object.maps {
            let script = plan.maps.first { $0.mapName == m.name }.map { " (\($0.name))" } ?? ""
            out += "\(m.name)\(script): \(m.type), key \(m.keySize) bytes, value \(m.valueSize) bytes, max entries \(m.maxEntries)"
                + (m.flags != 0 ? ", flags 0x\(String(m.flags, radix: 16))" : "") + "\n"
        }
        return out + "\nPrograms\n--------\n"
    }
}

enum TraceOutput {
    static func write(_ fd: Int32, _ s: String) { OutputBuffer.writeAll(fd, s) }

    static func stdout(_ s: String) { write(1, s) }
    static func stderr(_ s: String) { write(2, s) }

    static func readAll(fd: Int32) -> String? {
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { break }
            data += buf[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll(fd: fd)
    }
}

extension TraceCLI {
    /// Headers as cpp finds them: `"name"` in the script's directory (the current one for -e
    /// and stdin), then in each -I directory; `<name>` in the -I directories only (the kernel's
    /// types come from BTF, and its well-known macros are built in). An absolute name is read as is.
    static func headerSource(scriptPath: String?, includeDirs: [String]) -> HeaderSource {
        @Sendable func directory(of path: String?) -> String {
            guard let p = path, p != "-", let slash = p.lastIndex(of: "/") else { return "." }
            return slash == p.startIndex ? "/" : String(p[..<slash])
        }
        return HeaderSource { name, quoted, includer in
            if name.hasPrefix("/") { return TraceOutput.readFile(name).map { ($0, name) } }
            let dirs = (quoted ? [directory(of: includer ?? scriptPath)] : []) + includeDirs
            for dir in dirs {
                let path = dir + "/" + name
                if let text = TraceOutput.readFile(path) { return (text, path) }
            }
            return nil
        }
    }
}
