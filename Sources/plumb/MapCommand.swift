import ArgumentParser
import Plumb

struct MapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "map",
        abstract: "Maps in the kernel now (bpftool map): list, show, dump, lookup, update, delete.",
        subcommands: [List.self, Show.self, Dump.self, Lookup.self, Update.self, Delete.self]
    )

    /// Which map: `ID`, `id ID`, `--name NAME`/`name NAME` or `--pinned PATH`/`pinned PATH`, then
    /// the rest of the words (`key ...`, `value ...`), as bpftool reads its arguments.
    struct Words {
        var map: Map
        var key: [String]?
        var value: [String]?
        var flags: [String] = []
    }

    static func parse(_ words: [String], name: String?, pinned: String?, wantKey: Bool, wantValue: Bool) throws -> Words {
        var rest = ArraySlice(words)
        var json: [String] = []
        rest = rest.filter { w in
            if ["-j", "--json", "-p", "--pretty"].contains(w) { json.append(w); return false }
            return true
        }[...]
        var name = name, pinned = pinned, id: UInt32?
        if let first = rest.first {
            if let n = UInt32(first) { id = n; rest.removeFirst() }
            else if ["id", "name", "pinned", "--name", "--pinned"].contains(first), rest.count >= 2 {
                let v = rest[rest.startIndex + 1]
                rest.removeFirst(2)
                switch first {
                case "id":
                    guard let n = UInt32(v) else { throw ValidationError("'\(v)' is not a map id") }
                    id = n
                case "name", "--name": name = v
                default: pinned = v
                }
            }
        }
        let map: Map
        switch (id, name, pinned) {
        case (let id?, nil, nil): map = try Map(id: id)
        case (nil, let name?, nil): map = try Map(id: try KernelObjects.mapID(named: name))
        case (nil, nil, let path?): map = try Map(pinned: path)
        default: throw ValidationError("name one map: ID, --name NAME or --pinned PATH")
        }
        var out = Words(map: map, flags: json)
        var current: String?
        var key: [String] = [], value: [String] = []
        for w in rest {
            if (w == "key" && wantKey) || (w == "value" && wantValue) { current = w; continue }
            switch current {
            case "key": key.append(w)
            case "value": value.append(w)
            default: throw ValidationError("unexpected '\(w)'; write \(wantKey ? "key BYTES..." : "")\(wantValue ? " value BYTES..." : "")")
            }
        }
        if wantKey { out.key = key }
        if wantValue { out.value = value }
        return out
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every map.")
        @OptionGroup var output: JSONFlags
        @OptionGroup var bpffs: BPFFSFlag

        func run() throws {
            let pinned = bpffs.paths()
            let maps = try KernelObjects.maps().map { $0.withPinned(pinned) }
            if output.enabled { output.write(.array(maps.map(\.json))) } else { Output.write(maps.map(\.text).joined()) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one map: ID, --name NAME or --pinned PATH.")
        @OptionGroup var output: JSONFlags
        @OptionGroup var bpffs: BPFFSFlag
        @Option(help: "The map's name.") var name: String?
        @Option(help: "A bpffs path the map is pinned at.") var pinned: String?
        @Argument(help: "Map id.") var id: UInt32?

        func run() throws {
            let w = try MapCommand.parse(id.map { [String($0)] } ?? [], name: name, pinned: pinned, wantKey: false, wantValue: false)
            let m = try KernelObjects.map(id: w.map.id).withPinned(bpffs.paths())
            if output.enabled { output.write(m.json) } else { Output.write(m.text) }
        }
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every entry, keys and values typed by the map's BTF.",
            discussion: "JSON output has bpftool's shape: hex bytes under key/value and the typed values under formatted.")
        @OptionGroup var output: JSONFlags
        @Option(help: "The map's name.") var name: String?
        @Option(help: "A bpffs path the map is pinned at.") var pinned: String?
        @Argument(help: "Map id.") var id: UInt32?

        func run() throws {
            let w = try MapCommand.parse(id.map { [String($0)] } ?? [], name: name, pinned: pinned, wantKey: false, wantValue: false)
            let btf = KernelObjects.mapBTF(w.map)
            if output.enabled { output.write(try KernelObjects.dumpJSON(w.map, btf: btf)) }
            else { Output.write(try KernelObjects.dumpText(w.map, btf: btf)) }
        }
    }

    struct Lookup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Look up one key: plumb map lookup ID key 0x01 0x00 0x00 0x00 (or key 1, typed by BTF).")
        @OptionGroup var output: JSONFlags
        @Option(help: "The map's name.") var name: String?
        @Option(help: "A bpffs path the map is pinned at.") var pinned: String?
        @Argument(parsing: .captureForPassthrough, help: "ID key BYTES...") var words: [String] = []

        func run() throws {
            // Words are passed through (keys may look like flags), so --help is too: answer it here.
            if words.contains(where: { $0 == "--help" || $0 == "-h" }) { Output.write(Plumb.helpMessage(for: Self.self) + "\n"); return }
            let w = try MapCommand.parse(words, name: name, pinned: pinned, wantKey: true, wantValue: false)
            let btf = KernelObjects.mapBTF(w.map)
            let key = try KernelObjects.encodeWords(w.key ?? [], size: w.map.keySize, btf: btf, type: w.map.btfKeyTypeID, what: "key")
            let json = output.enabled || !w.flags.isEmpty
            if w.map.type.isPerCPU {
                // One value per possible CPU, as bpftool prints them.
                guard let values = try w.map.lookupPerCPU(key) else {
                    throw ValidationError("key \(key.withUnsafeBytes { ValueFormatter.hex($0) }) is not in map \(w.map.id)")
                }
                let f = btf.map { ValueFormatter(btf: $0) }
                if json {
                    let v = JSONValue.object([("key", hexJSON(key)), ("values", .array(values.enumerated().map {
                        .object([("cpu", .uint(UInt64($0.offset))), ("value", hexJSON($0.element))]) }))])
                    Output.write(v.text(pretty: output.pretty || w.flags.contains("-p") || w.flags.contains("--pretty")) + "\n")
                } else {
                    for (cpu, v) in values.enumerated() {
                        let text = f.map { w.map.btfValueTypeID != 0 ? $0.format(v, as: w.map.btfValueTypeID) : nil }.flatMap { $0 } ?? v.withUnsafeBytes { ValueFormatter.hex($0) }
                        Output.write("cpu\(cpu): \(text)\n")
                    }
                }
                return
            }
            guard let value = try w.map.lookup(key) else {
                throw ValidationError("key \(key.withUnsafeBytes { ValueFormatter.hex($0) }) is not in map \(w.map.id)")
            }
            if json {
                var m: [(String, JSONValue)] = [("key", hexJSON(key)), ("value", hexJSON(value))]
                if let btf, w.map.btfValueTypeID != 0 {
                    var f: [(String, JSONValue)] = []
                    if w.map.btfKeyTypeID != 0 { f.append(("key", BTFJSON(btf: btf).value(key, type: w.map.btfKeyTypeID))) }
                    f.append(("value", BTFJSON(btf: btf).value(value, type: w.map.btfValueTypeID)))
                    m.append(("formatted", .object(f)))
                }
                Output.write(JSONValue.object(m).text(pretty: output.pretty || w.flags.contains("-p") || w.flags.contains("--pretty")) + "\n")
            } else {
                let f = btf.map { ValueFormatter(btf: $0) }
                func text(_ b: [UInt8], _ t: UInt32) -> String { f.map { t != 0 ? $0.format(b, as: t) : nil }.flatMap { $0 } ?? b.withUnsafeBytes { ValueFormatter.hex($0) } }
                Output.write("\(text(key, w.map.btfKeyTypeID)): \(text(value, w.map.btfValueTypeID))\n")
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set one entry: plumb map update ID key 0x01 0x00 0x00 0x00 value 42 [--exist|--noexist].")
        @Option(help: "The map's name.") var name: String?
        @Option(help: "A bpffs path the map is pinned at.") var pinned: String?
        @Flag(help: "Only replace an existing entry (BPF_EXIST).") var exist = false
        @Flag(help: "Only add a new entry (BPF_NOEXIST).") var noexist = false
        @Argument(parsing: .captureForPassthrough, help: "ID key BYTES... value BYTES...") var words: [String] = []

        func run() throws {
            // Words are passed through (keys may look like flags), so --help is too: answer it here.
            if words.contains(where: { $0 == "--help" || $0 == "-h" }) { Output.write(Plumb.helpMessage(for: Self.self) + "\n"); return }
            let w = try MapCommand.parse(words, name: name, pinned: pinned, wantKey: true, wantValue: true)
            let btf = KernelObjects.mapBTF(w.map)
            let key = try KernelObjects.encodeWords(w.key ?? [], size: w.map.keySize, btf: btf, type: w.map.btfKeyTypeID, what: "key")
            let value = try KernelObjects.encodeWords(w.value ?? [], size: w.map.valueSize, btf: btf, type: w.map.btfValueTypeID, what: "value")
            let flags: UpdateFlags = exist ? .exist : noexist ? .noExist : .any
            if w.map.type.isPerCPU {
                // One value for every CPU, as bpftool writes per-CPU maps.
                try w.map.updatePerCPU(key, Array(repeating: value, count: try Map.possibleCPUCount()), flags: flags)
            } else {
                try w.map.update(key, value, flags: flags)
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete one key: plumb map delete ID key BYTES...")
        @Option(help: "The map's name.") var name: String?
        @Option(help: "A bpffs path the map is pinned at.") var pinned: String?
        @Argument(parsing: .captureForPassthrough, help: "ID key BYTES...") var words: [String] = []

        func run() throws {
            // Words are passed through (keys may look like flags), so --help is too: answer it here.
            if words.contains(where: { $0 == "--help" || $0 == "-h" }) { Output.write(Plumb.helpMessage(for: Self.self) + "\n"); return }
            let w = try MapCommand.parse(words, name: name, pinned: pinned, wantKey: true, wantValue: false)
            let btf = KernelObjects.mapBTF(w.map)
            let key = try KernelObjects.encodeWords(w.key ?? [], size: w.map.keySize, btf: btf, type: w.map.btfKeyTypeID, what: "key")
            guard try w.map.delete(key) else { throw ValidationError("key \(key.withUnsafeBytes { ValueFormatter.hex($0) }) is not in map \(w.map.id)") }
        }
    }
}

func hexJSON(_ b: [UInt8]) -> JSONValue {
    .array(b.map { .string("0x" + ($0 < 16 ? "0" : "") + String($0, radix: 16)) })
}
