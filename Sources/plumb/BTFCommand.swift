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

        @Option(name: .long, help: "c (a vmlinux.h) or raw (bpftool's listing).")
        var format: Format = .c

        @Option(name: .long, help: "Base BTF for split BTF files (default: vmlinux for /sys/kernel/btf/<module>).")
        var base: String?

        @Option(name: .long, help: "Dump the kernel's loaded BTF object with this id (see `plumb btf list`) instead of a file.")
        var id: UInt32?

        @Argument(help: "Raw BTF file or ELF object.")
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
                NAME is a C type name: task_struct, 'struct task_struct', 'union bpf_attr', 'enum bpf_cmd', a typedef such as pid_t, or a function or variable name. Members are annotated pahole-style: /* offset size */ in bytes, and /* byte:bit size */ for bitfields; each definition ends with its size.

                NAME may also be a field path (task_struct.mm.arg_start, 'struct sk_buff'.len, task_struct.comm[2]): then each step is printed with its byte offset (from the object it reads; `->` marks a step through a pointer) and type, and the final member's type with its size.
                """)

        @Option(name: .long, help: "Base BTF for split BTF files (default: vmlinux for /sys/kernel/btf/<module>).")
        var base: String?

        @Argument(help: "The type to show.")
        var name: String

        @Argument(help: "Raw BTF file or ELF object.")
        var file: String = BTFCommand.defaultFile

        func run() throws {
            let btf = try BTFCommand.load(file, base: base)
            let cName = name.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            // Section names (.bss, .data.x) start with a dot; other names with a dot are paths.
            if !cName.hasPrefix("."), cName.contains(".") {
                do { Output.write(try Show.fieldPath(cName, in: btf)) } catch {
                    let root = cName.split(separator: ".", maxSplits: 1).first.map(String.init) ?? cName
                    throw RunError(message: "\(error)" + CommandSuggestion.typeName(root, in: btf))
                }
                return
            }
            let id: TypeID
            do { id = try btf.lookup(cName: cName) } catch {
                throw RunError(message: "\(error)" + CommandSuggestion.typeName(cName, in: btf))
            }
            Output.write(try btf.cShow(id))
        }

        /// A field path's steps: `  mm  +2008  struct mm_struct *`, one line per read.
        static func fieldPath(_ path: String, in btf: BTF) throws -> String {
            let steps = try btf.fieldPath(path)
            let root = path.split(separator: ".", maxSplits: 1).first.map(String.init) ?? path
            var out = "\(btf.cTypeName(try btf.lookup(cName: root)))\n"
            let names = steps.map { ($0.throughPointer ? "->" : ".") + $0.name }
            let offsets = steps.map { s -> String in
                s.bitfieldSize > 0 ? "+\(s.byteOffset):\(s.bitOffset % 8) (\(s.bitfieldSize) bit\(s.bitfieldSize == 1 ? "" : "s"))" : "+\(s.byteOffset)"
            }
            let nameWidth = names.map(\.count).max() ?? 0
            let offsetWidth = offsets.map(\.count).max() ?? 0
            for (i, s) in steps.enumerated() {
                let n = names[i] + String(repeating: " ", count: nameWidth - names[i].count)
                let o = offsets[i] + String(repeating: " ", count: offsetWidth - offsets[i].count)
                out += "  \(n)  \(o)  \(btf.cTypeName(s.type))\n"
            }
            if let last = steps.last {
                let resolved = (try? btf.resolve(last.type)) ?? last.type
                var line = "\(last.name.split(separator: ".").last.map(String.init) ?? last.name): \(btf.cTypeName(last.type))"
                if resolved != last.type { line += " (\(btf.cTypeName(resolved)))" }
                if last.bitfieldSize > 0 {
                    line += ", \(last.bitfieldSize) bit\(last.bitfieldSize == 1 ? "" : "s")"
                } else if let size = try? btf.size(of: last.type) {
                    line += size == 1 ? ", 1 byte" : ", \(size) bytes"
                }
                out += line + "\n"
            }
            return out
        }
    }
}
