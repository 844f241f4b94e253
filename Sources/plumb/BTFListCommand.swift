import ArgumentParser
import Plumb

// `plumb btf list` and loading BTF by kernel id (for `btf dump --id N`). Registering them needs
// `List.self` in BTFCommand's subcommands and an `--id` option in its Dump (BTFCommand.swift
// belongs to another change in flight): `let btf = try id.map { try KernelObjects.btf(id: $0) } ?? load(...)`.
extension BTFCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the BTF objects the kernel holds (vmlinux, modules, programs').")
        @OptionGroup var output: JSONFlags

        func run() throws {
            let all = try KernelObjects.btfObjects()
            if output.enabled { output.write(.array(all.map(\.json))) } else { Output.write(all.map(\.text).joined()) }
        }
    }
}
