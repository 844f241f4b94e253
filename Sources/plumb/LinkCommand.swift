import ArgumentParser
import Plumb

struct LinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "link",
        abstract: "Links (attachments) in the kernel now (bpftool link).",
        subcommands: [List.self, Show.self, Detach.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every link.")
        @OptionGroup var output: JSONFlags

        func run() throws {
            let links = try KernelObjects.links()
            if output.enabled { output.write(.array(links.map(\.json))) } else { Output.write(links.map(\.text).joined()) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one link by id.")
        @OptionGroup var output: JSONFlags
        @Argument(help: "Link id (see `plumb link list`).") var id: UInt32

        func run() throws {
            let l = try KernelObjects.link(id: id)
            if output.enabled { output.write(l.json) } else { Output.write(l.text) }
        }
    }

    struct Detach: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Detach a link by id.",
            discussion: "Tracepoint, raw tracepoint and perf event links have no BPF_LINK_DETACH; for those the link's pins under /sys/fs/bpf are removed, which frees it when no process holds it.")
        @Argument(help: "Link id (see `plumb link list`).") var id: UInt32

        func run() throws {
            switch try KernelObjects.detach(linkID: id) {
            case .detached: Output.write("detached link \(id)\n")
            case .unpinned(let paths): Output.write("unpinned \(paths.joined(separator: ", ")); link \(id) is gone\n")
            case .stillHeld(let paths):
                Output.write("unpinned \(paths.joined(separator: ", ")); link \(id) stays while a process holds it\n")
            }
        }
    }
}
