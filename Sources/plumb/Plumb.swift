import ArgumentParser
import Plumb

@main
struct Plumb: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plumb",
        abstract: "Type-checked eBPF tracing: BTF, BPF objects, and a tracer.",
        subcommands: [BTFCommand.self, ObjectCommand.self, FeaturesCommand.self, ProgCommand.self, MapCommand.self, LinkCommand.self, GenCommand.self]
    )
}

/// Writes to stdout directly (dumps are megabytes; event lines must not wait in a buffer).
struct Output {
    static func write(_ s: String) {
        var s = s
        s.withUTF8 { buf in
            var p = buf.baseAddress
            var left = buf.count
            while left > 0, let base = p {
                let n = Glibc.write(1, base, left)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                p = base + n
                left -= n
            }
        }
    }
}

import Glibc
