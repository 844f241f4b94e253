import ArgumentParser
import Plumb

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "What this kernel supports: program types, map types, attach kinds, helpers (probed as bpftool does).")

    @Flag(name: .long, help: "Skip the per-program-type helper lists (one program load per helper).")
    var noHelpers = false

    func run() throws {
        let report = FeatureReport.probe(helpersFor: noHelpers ? [] : [.kprobe, .tracepoint, .rawTracepoint, .perfEvent, .tracing])
        Output.write(report.table())
    }
}
