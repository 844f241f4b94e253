import ArgumentParser
import Plumb

struct ObjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "object",
        abstract: "Inspect, relocate and run clang-compiled BPF objects.",
        subcommands: [Dump.self, Run.self, Load.self]
    )

    /// The BTF that CO-RE relocates against: a custom file, or the running kernel plus its modules.
    static func targets(_ customPath: String?) throws -> [BTF] {
        if let customPath { return [try BTF(path: customPath)] }
        return try BTF.kernelTargets()
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List maps, globals and programs; print each program's instructions after CO-RE relocation.")

        @Option(name: .customLong("target-btf"), help: "Relocate against this BTF (raw or ELF) instead of the running kernel's.")
        var targetBTF: String?

        @Argument(help: "A BPF object (clang -g -O2 -target bpf).")
        var object: String

        func run() throws {
            var spec = try ObjectSpec(path: object)
            let applied = try spec.applyCORE(targets: try ObjectCommand.targets(targetBTF))
            Output.write(spec.dump(relocations: applied))
        }
    }
}
