import ArgumentParser
import Plumb
import Glibc

/// `-j`/`--json` and `-p`/`--pretty` as bpftool spells them (pretty implies JSON).
struct JSONFlags: ParsableArguments {
    @Flag(name: [.customShort("j"), .long], help: "Print JSON (bpftool's field names).")
    var json = false

    @Flag(name: [.customShort("p"), .long], help: "Print indented JSON.")
    var pretty = false

    var enabled: Bool { json || pretty }

    func write(_ value: JSONValue) {
        Output.write(value.text(pretty: pretty) + "\n")
    }
}

/// `-f`/`--bpffs` as bpftool spells it: also show where each object is pinned.
struct BPFFSFlag: ParsableArguments {
    @Flag(name: [.customShort("f"), .customLong("bpffs")], help: "Show the bpffs paths each object is pinned at (walks the bpffs mounts).")
    var enabled = false

    func paths() -> PinnedPaths { enabled ? KernelObjects.pinnedPaths() : PinnedPaths() }
}

struct ProgCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prog",
        abstract: "Programs loaded in the kernel now (bpftool prog).",
        subcommands: [List.self, Show.self, Dump.self, Tracelog.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every loaded program.")
        @OptionGroup var output: JSONFlags
        @OptionGroup var bpffs: BPFFSFlag

        func run() throws {
            let pinned = bpffs.paths()
            let programs = try KernelObjects.programs().map { $0.withPinned(pinned) }
            if output.enabled { output.write(.array(programs.map(\.json))) }
            else { Output.write(programs.map(\.text).joined()) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one program by id.")
        @OptionGroup var output: JSONFlags
        @OptionGroup var bpffs: BPFFSFlag
        @Argument(help: "Program id (see `plumb prog list`).") var id: UInt32

        func run() throws {
            let p = try KernelObjects.program(id: id).withPinned(bpffs.paths())
            if output.enabled { output.write(p.json) } else { Output.write(p.text) }
        }
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a loaded program's translated instructions (after the verifier's rewrites).",
            discussion: "Function names come from the program's BTF func_info, source lines from its line_info; helper calls are named from /proc/kallsyms and map references by map id.")
        @Argument(help: "Program id (see `plumb prog list`).") var id: UInt32

        func run() throws {
            Output.write(try KernelObjects.dumpTranslated(programID: id))
        }
    }

    struct Tracelog: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream the kernel's trace_pipe (bpf_printk output) until interrupted; mounts tracefs if needed.")

        func run() throws {
            let dir = try Tracefs.path(mount: true)
            let path = dir + "/trace_pipe"
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ValidationError("cannot open \(path): \(String(cString: strerror(errno))); run as root") }
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                Output.write(String(decoding: buf[0..<n], as: UTF8.self))
            }
        }
    }
}
