import ArgumentParser
import Plumb
import Glibc

/// "Did you mean" for the CLI's own words: subcommands (`plumb prgo list`, `plumb prog lsit`)
/// and BTF type names (`plumb btf show task_strct`).
enum CommandSuggestion {
    /// The message for a mistyped subcommand in `arguments`, or nil when there is none to make.
    static func mistypedSubcommand(_ arguments: [String]) -> String? {
        var command: ParsableCommand.Type = Plumb.self
        var path = ["plumb"]
        for arg in arguments {
            if arg.hasPrefix("-") { return nil }
            let subcommands = command.configuration.subcommands
            guard !subcommands.isEmpty else { return nil }
            if let next = subcommands.first(where: { $0._commandName == arg }) {
                command = next
                path.append(arg)
                continue
            }
            if arg == "help" { return nil }
            if ObjectIdentifier(command) == ObjectIdentifier(Plumb.self) {
                // The tracer (the default command) takes a script file: an existing file is one.
                if access(arg, F_OK) == 0 { return nil }
            } else if command.configuration.defaultSubcommand != nil {
                return nil   // the word is the default subcommand's argument
            }
            let names = subcommands.map { $0._commandName }
            guard let guess = Suggestion.closest(to: arg, in: names) else { return nil }
            let prefix = path.joined(separator: " ")
            return "unknown command '\(prefix) \(arg)'. Did you mean '\(prefix) \(guess)'? (`\(prefix) --help` lists them)"
        }
        return nil
    }

    /// "; did you mean 'task_struct'?" for a type name BTF does not have (tags kept), or "".
    static func typeName(_ name: String, in btf: BTF) -> String {
        let parts = name.split(separator: " ", maxSplits: 1).map(String.init)
        let tagged = parts.count == 2 && ["struct", "union", "enum"].contains(parts[0])
        let bare = tagged ? parts[1] : name
        guard (try? btf.lookup(cName: name)) == nil else { return "" }
        let names = btf.ids.lazy.map { btf.name(of: $0) }
        guard let guess = Suggestion.closest(to: bare, in: names) else { return "" }
        return "; did you mean '\(tagged ? parts[0] + " " : "")\(guess)'?"
    }
}
