import ArgumentParser
import Plumb
import PlumbSys
import Glibc

@main
struct Plumb: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plumb",
        abstract: "Type-checked eBPF tracing: BTF, BPF objects, and a tracer.",
        version: PlumbVersion.number,
        subcommands: [TraceCommand.self, BTFCommand.self, ObjectCommand.self, ProgCommand.self, MapCommand.self,
                      LinkCommand.self, GenCommand.self, FeaturesCommand.self],
        defaultSubcommand: TraceCommand.self
    )

    /// ArgumentParser's main, with signals handled from the first instant: a command that
    /// loads and attaches stops cleanly on SIGINT/SIGTERM (even one sent while it starts);
    /// the others die of them as usual.
    static func main() {
        Timings.mark("main")
        StopSignal.install()
        let arguments = Array(CommandLine.arguments.dropFirst())
        // Under the name `bpftrace` (a symlink) every argument is bpftrace's, `-h` included.
        if TraceCLI.invokedAsBpftrace { Glibc.exit(TraceCLI(bpftraceMode: true).main(arguments)) }
        // The tracer (the default command) skips ArgumentParser: its reflection-driven parse costs
        // milliseconds of start-up, and TraceCommand hands every argument to TraceCLI anyway.
        // Help and version requests and subcommand names still go through the parser.
        if let first = arguments.first, first.hasPrefix("-") || first == "trace",
           !arguments.contains(where: { ["-h", "--help", "--version", "help", "--experimental-dump-help", "--generate-completion-script"].contains($0) }) {
            let traceArguments = first == "trace" ? Array(arguments.dropFirst()) : arguments
            let code = TraceCLI(bpftraceMode: false).main(traceArguments)
            Glibc.exit(code)
        }
        // `--version` after subcommand names too (`plumb object --version`): the full text,
        // not the parser's bare number.
        let subcommands: Set<String> = ["btf", "object", "features", "dump", "show", "run"]
        if arguments.contains("--version"), arguments.allSatisfy({ $0 == "--version" || subcommands.contains($0) }) {
            StopSignal.makeFatal()
            Output.write(PlumbVersion.description + "\n")
            return
        }
        if let message = CommandSuggestion.mistypedSubcommand(arguments) {
            OutputBuffer.writeAll(2, "Error: \(message)\n")
            Glibc.exit(64)   // ArgumentParser's code for a usage error
        }
        do {
            var command = try parseAsRoot(arguments)
            if !(command is ObjectCommand.Run || command is TraceCommand) { StopSignal.makeFatal() }
            try command.run()
        } catch let error as ValidationError {
            // Thrown by a command's run(): the message alone (usage is for parse errors).
            exit(withError: RunError(message: error.message))
        } catch {
            exit(withError: error)
        }
    }
}

struct RunError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Writes to stdout directly (dumps are megabytes and print once; nothing to batch).
struct Output {
    static func write(_ s: String) {
        OutputBuffer.writeAll(1, s)
    }
}
