import ArgumentParser
import Plumb

struct BTFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "btf",
        abstract: "Read, query and print BTF type information.",
        subcommands: [Dump.self, Show.self, List.self]
    )

    static let defaultFile = "/sys/kernel/btf/vmlinux"

    /// Loads FILE; module BTF under /sys/kernel/btf is split on top of vmlinux.
    static func load(_ path: String, base basePath: String?) throws -> BTF {
        if let basePath { return try BTF(path: path, base: try BTF(path: basePath)) }
        if path.hasPrefix("/sys/kernel/btf/") && path != defaultFile {
            return try BTF(path: path, base: try BTF.kernel())
        }
        return try BTF(path: path)
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every type, as C (a vmlinux.h) or as bpftool's raw listing.")

        enum Format: String, ExpressibleByArgument { case c, raw }

        @Option(name: .long, help: "c (default) or raw")
        var format: Format = .c

        @Option(name: .long, help: "Base BTF for split BTF files (default: vmlinux for /sys/kernel/btf/<module>).")
        var base: String?

        @Option(name: .long, help: "Dump the kernel's loaded BTF object with this id (see `plumb btf list`) instead of a file.")
        var id: UInt32?

        @Argument(help: "Raw BTF file or ELF object (default /sys/kernel/btf/vmlinux).")
        var file: String = BTFCommand.defaultFile

        func run() throws {
            let btf = try id.map { id throws in try KernelObjects.btf(id: id) } ?? BTFCommand.load(file, base: base)
            var out = ""
            switch format {
            case .raw: try btf.rawDump(into: &out)
            case .c: try btf.cDump(into: &out)
            }
            Output.write(out)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print one type and the types it needs as C, with each member's offset and size.",
            discussion: """
                NAME is a C type name: task_struct, 'struct task_struct', 'union bpf_attr',
                'enum bpf_cmd', a typedef such as pid_t, or a function or variable name.
                Members are annotated pahole-style: /* offset size */ in bytes, and
                /* byte:bit size */ for bitfields; each definition ends with its size.
                """)

        @Option(name: .long, help: "Base BTF for split BTF files (default: vmlinux for /sys/kernel/btf/<module>).")
        var base: String?

        @Argument(help: "The type to show.")
        var name: String

        @Argument(help: "Raw BTF file or ELF object (default /sys/kernel/btf/vmlinux).")
        var file: String = BTFCommand.defaultFile

        func run() throws {
            let btf = try BTFCommand.load(file, base: base)
            let id = try btf.lookup(cName: name.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
            Output.write(try btf.cShow(id))
        }
    }
}
