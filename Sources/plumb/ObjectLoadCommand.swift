import ArgumentParser
import Plumb

// `plumb object load OBJ --pin DIR`. Registering it needs `Load.self` in ObjectCommand's
// subcommands list (ObjectCommand.swift belongs to another change in flight).
extension ObjectCommand {
    struct Load: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load an object, attach its programs by their sections, pin everything under a bpffs folder, and exit.",
            discussion: """
                Programs, maps and links are pinned as DIR/progs/NAME, DIR/maps/NAME and DIR/links/NAME; the programs stay attached after plumb exits. `rm -r DIR` or `plumb link detach ID` undoes it.
                """)

        @Option(help: "A folder on a bpffs mount (e.g. /sys/fs/bpf/myprobe); created if missing.")
        var pin: String

        @Option(name: .customLong("target-btf"), help: "Relocate against this BTF (raw or ELF) instead of the running kernel's.")
        var targetBTF: String?

        @Argument(help: "A BPF object (clang -g -O2 -target bpf).")
        var object: String

        func run() throws {
            var spec = try ObjectSpec(path: object)
            _ = try spec.applyCORE(targets: try ObjectCommand.targets(targetBTF))
            let loaded = try Object(spec: spec)
            let pinned = try loaded.attachAndPin(under: pin)
            var out = ""
            for (name, path) in pinned.links.sorted(by: { $0.key < $1.key }) {
                let id = (try? loaded.program(name).id).map { " (program id \($0))" } ?? ""
                out += "attached \(name)\(id): \(path)\n"
            }
            for (name, why) in pinned.notAttached.sorted(by: { $0.key < $1.key }) { out += "not attached \(name): \(why)\n" }
            out += "pinned \(pinned.programs.count) programs, \(pinned.maps.count) maps, \(pinned.links.count) links under \(pin)\n"
            Output.write(out)
        }
    }
}
