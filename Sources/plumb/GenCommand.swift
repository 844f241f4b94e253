import ArgumentParser
import Plumb

struct GenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "Generate code from BPF objects.",
        subcommands: [Swift_.self]
    )

    struct Swift_: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "swift",
            abstract: "A typed Swift face of an object (as bpftool gen skeleton / bpf2go): structs, maps, programs, globals.",
            discussion: "plumb gen swift probe.bpf.o > Probe.swift; the structs are checked against the object's BTF when it is opened.")

        @Option(help: "The generated class's name (default: the object's name + Probe).")
        var name: String?

        @Argument(help: "A BPF object (clang -g -O2 -target bpf).")
        var object: String

        func run() throws {
            let spec = try ObjectSpec(path: object)
            let file = object.split(separator: "/").last.map(String.init) ?? object
            Output.write(SwiftGenerator(spec: spec, typeName: name).generate(command: "plumb gen swift \(file)"))
        }
    }
}
