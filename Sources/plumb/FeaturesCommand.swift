import ArgumentParser
import Plumb
import Glibc

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "What this kernel supports: system settings, program types, map types, attach kinds, helpers (probed as bpftool does).",
        discussion: """
            --has answers one question with the exit code (0 yes, 1 no, 2 unknown name):
              prog_type=tracing   map_type=task_storage   attach=tp_btf   helper=bpf_loop   helper=bpf_loop@kprobe
            """)

    @Flag(name: .long, help: "Skip the per-program-type helper lists (one program load per helper).")
    var noHelpers = false

    @OptionGroup var output: JSONFlags

    @Option(name: .long, help: "Answer one question with the exit code instead of printing: prog_type=NAME, map_type=NAME, attach=NAME, helper=NAME[@PROG_TYPE].")
    var has: String?

    func run() throws {
        let needsHelpers = has.map { $0.hasPrefix("helper=") } ?? !noHelpers
        var helperTypes: [ProgramType] = []
        if needsHelpers {
            // Helpers of every program type that loads, or of the one asked about.
            if let has, let at = has.split(separator: "@").dropFirst().first, let t = ProgramType.allCases.first(where: { "\($0)" == at }) {
                helperTypes = [t]
            } else if has != nil {
                helperTypes = [.kprobe, .tracepoint, .rawTracepoint, .perfEvent, .tracing]
            } else {
                helperTypes = ProgramType.allCases.filter { $0 != .unspec }
            }
        }
        var report = FeatureReport.probe(helpersFor: helperTypes)
        report.probeBTFMapTypes()
        if let has {
            guard let answer = report.has(has) else {
                FileHandleOutput.error("plumb features: unknown feature '\(has)'; ask prog_type=NAME, map_type=NAME, attach=NAME or helper=NAME (names as `plumb features` prints them)\n")
                throw ExitCode(2)
            }
            throw ExitCode(answer ? 0 : 1)
        }
        let system = SystemFeatures.probe()
        if output.enabled {
            output.write(report.json(system: system))
            return
        }
        var out = "SYSTEM\n"
        for (name, value) in system.sysctls { out += "  " + SystemFeatures.describe(name, value) + "\n" }
        for (name, value) in system.config { out += "  \(name) is \(value.map { $0 == "y" ? "set to y" : "set to \($0)" } ?? "not set")\n" }
        out += "\n" + report.table()
        Output.write(out)
    }
}

enum FileHandleOutput {
    static func error(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = Glibc.write(2, buf.baseAddress, buf.count) }
    }
}
