import ArgumentParser
import Plumb
import Glibc

/// Set by SIGINT/SIGTERM; the event loop checks it between polls.
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

func installStopHandlers() {
    let handler: @convention(c) (Int32) -> Void = { _ in stopRequested = 1 }
    var action = sigaction()
    action.__sigaction_handler.sa_handler = handler
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0 // no SA_RESTART: a blocked epoll_wait returns EINTR at once
    sigaction(SIGINT, &action, nil)
    sigaction(SIGTERM, &action, nil)
    // A parent may have started us with these blocked (the mask is inherited): unblock them,
    // or Ctrl-C and SIGTERM would wait forever.
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    sigprocmask(SIG_UNBLOCK, &set, nil)
}

/// "5s", "500ms", "2m", "1.5s", or a bare number of seconds.
func parseDuration(_ text: String) throws -> Double {
    let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        if let n = Double(text.dropLast(suffix.count)), n >= 0 { return n * scale }
    }
    if let n = Double(text), n >= 0 { return n }
    throw ValidationError("bad duration '\(text)': use a number with s, ms, m or h (5s, 500ms)")
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

extension ObjectCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load an object, attach its programs by section name, print ring/perf buffer records as they arrive, and every map on exit.")

        @Option(name: .customLong("target-btf"), help: "Relocate against this BTF instead of the running kernel's.")
        var targetBTF: String?

        @Option(name: .customLong("set"), help: "Set a global (const volatile ones too) before load: VAR=VALUE. Repeatable.")
        var assignments: [String] = []

        @Option(name: .long, help: "Stop after this long (5s, 500ms); default: until Ctrl-C or SIGTERM.")
        var duration: String?

        @Option(name: .customLong("program"), help: "Load and attach only this program. Repeatable.")
        var programs: [String] = []

        @Option(name: .long, help: "uprobes: trace only this process.")
        var pid: Int32 = -1

        @Option(name: .customLong("perf-freq"), help: "perf_event programs: cpu-clock samples per second on each CPU.")
        var perfFrequency: UInt64 = 99

        @Option(name: .customLong("record-type"), help: "Print MAP's records as TYPE (a struct name in the object's BTF): MAP=TYPE. Repeatable.")
        var recordTypes: [String] = []

        @Argument(help: "A BPF object (clang -g -O2 -target bpf).")
        var object: String

        func run() throws {
            let spec = try ObjectSpec(path: object)
            var globals: [String: [UInt8]] = [:]
            for a in assignments {
                guard let eq = a.firstIndex(of: "=") else { throw ValidationError("--set takes VAR=VALUE, got '\(a)'") }
                let name = String(a[..<eq]), text = String(a[a.index(after: eq)...])
                guard let v = spec.maps.lazy.compactMap({ $0.variable(name) }).first else {
                    let known: [String] = spec.maps.flatMap { m in m.variables.map(\.name) }.filter { !$0.contains(".") }
                    throw ValidationError("no global variable '\(name)' in \(object); it has: \(known.joined(separator: ", "))")
                }
                do {
                    if let btf = spec.btf {
                        globals[name] = try ValueFormatter(btf: btf).encode(text, as: v.type, size: Int(v.size))
                    } else {
                        globals[name] = try ValueFormatter.encodeInteger(text, size: Int(v.size))
                    }
                } catch {
                    throw ValidationError("--set \(name): \(error)")
                }
            }
            let stopAt = try duration.map { monotonicSeconds() + (try parseDuration($0)) }
            let options = LoadOptions(targetBTF: try targetBTF.map { [try BTF(path: $0)] },
                                      programs: programs.isEmpty ? nil : Set(programs), globals: globals)
            installStopHandlers()
            let loaded = try spec.load(options)
            let formatter = loaded.spec.btf.map { ValueFormatter(btf: $0) }
            for name in loaded.spec.programs.map(\.name) {
                if let p = loaded.programs[name] { Output.write("loaded \(name): \(p.type) program, id \(p.id)\n") }
            }

            // Attach everything that names its target.
            var links: [Link] = []
            let attachOptions = AttachOptions(pid: pid, perfRate: .frequency(perfFrequency))
            for name in loaded.spec.programs.map(\.name) {
                if let link = try loaded.attach(name, options: attachOptions) {
                    Output.write("attached \(name): \(link.description)\n")
                    links.append(link)
                } else {
                    Output.write("not attached \(name): section '\(loaded.spec.program(name)?.section ?? "")' does not auto-attach\n")
                }
            }

            // Readers for every ring buffer and perf event array.
            var explicitTypes: [String: String] = [:]
            for r in recordTypes {
                guard let eq = r.firstIndex(of: "=") else { throw ValidationError("--record-type takes MAP=TYPE, got '\(r)'") }
                explicitTypes[String(r[..<eq])] = String(r[r.index(after: eq)...])
            }
            let printer = RecordPrinter(spec: loaded.spec, formatter: formatter, explicit: explicitTypes)
            var rings: RingBuffer?
            var perfs: [PerfBuffer] = []
            for m in loaded.spec.maps {
                guard let map = loaded.maps[m.name] else { continue }
                if m.type == .ringbuf {
                    if rings == nil { rings = try RingBuffer() }
                    try rings!.add(map) { printer.print(map: m.name, $0) }
                } else if m.type == .perfEventArray {
                    perfs.append(try PerfBuffer(map: map, sample: { _, data in printer.print(map: m.name, data) },
                                                lost: { cpu, n in Output.write("\(m.name): lost \(n) records on CPU \(cpu)\n") }))
                }
            }

            // The event loop: poll until the duration ends or a signal arrives.
            while stopRequested == 0 {
                let now = monotonicSeconds()
                if let stopAt, now >= stopAt { break }
                let wait = stopAt.map { Int32(max(0, min(100, ($0 - now) * 1000))) } ?? 100
                if let r = rings { _ = try? r.poll(timeout: perfs.isEmpty ? wait : 0) }
                for p in perfs { _ = try? p.poll(timeout: rings == nil ? wait / Int32(max(1, perfs.count)) : 0) }
                if rings == nil && perfs.isEmpty { usleep(useconds_t(max(1, wait)) * 1000) }
                }
            // Whatever arrived last, then the summary.
            if let r = rings { _ = try? r.consume() }
            for p in perfs { _ = try? p.consume() }
            links.removeAll() // detach before reading final map contents
            var summary = ""
            if let r = rings { summary += "ring buffers: \(r.delivered) records delivered\n" }
            for p in perfs { summary += "perf buffer \(p.map.name): \(p.delivered) records delivered, \(p.lostCount) lost\n" }
            summary += MapPrinter(object: loaded, formatter: formatter).all()
            Output.write(summary)
        }
    }
}

/// Prints ring/perf records: typed when the object's BTF has a struct of the record's size
/// (or the one named with --record-type), else hex.
final class RecordPrinter: @unchecked Sendable {
    let formatter: ValueFormatter?
    let explicit: [String: TypeID]
    /// Struct types by size, for records of maps without an explicit type.
    let bySize: [Int: [TypeID]]

    init(spec: ObjectSpec, formatter: ValueFormatter?, explicit: [String: String]) {
        self.formatter = formatter
        var e: [String: TypeID] = [:]
        var sizes: [Int: [TypeID]] = [:]
        if let btf = spec.btf {
            for (map, name) in explicit {
                if let id = btf.firstID(named: name, kind: .struct) ?? btf.firstID(named: name, kind: .typedef) { e[map] = id }
            }
            // Map definitions (.maps variables' structs) are not records.
            var definitions = Set<TypeID>()
            if let sec = btf.firstID(named: ".maps", kind: .dataSection), let ds = try? btf.type(sec) {
                for v in ds.sectionVariables { if let t = try? btf.type(v.type), let r = try? btf.resolve(t.type) { definitions.insert(r) } }
            }
            for id in btf.ownIDs where btf.kind(of: id) == .struct && !definitions.contains(id) && !btf.name(of: id).isEmpty {
                if let size = try? btf.size(of: id) { sizes[size, default: []].append(id) }
            }
        }
        self.explicit = e
        bySize = sizes
    }

    func print(map: String, _ data: UnsafeRawBufferPointer) {
        var line = map + ": "
        if let formatter, let type = explicit[map] ?? unique(size: data.count) {
            line += formatter.format(data, as: type)
        } else {
            line += ValueFormatter.hex(data)
        }
        Output.write(line + "\n")
    }

    func unique(size: Int) -> TypeID? {
        guard let c = bySize[size], c.count == 1 else { return nil }
        return c[0]
    }
}

/// Prints every map's contents with its BTF types (skipping ring buffers and perf arrays,
/// whose contents are events, and inner-map templates).
struct MapPrinter {
    let object: Object
    let formatter: ValueFormatter?

    func all() -> String {
        var out = ""
        for m in object.spec.maps {
            guard let map = object.maps[m.name], m.type != .ringbuf, m.type != .perfEventArray else { continue }
            if m.dataSection != nil {
                out += "\(m.name) (\(m.dataSection!)):\n"
                guard let bytes = try? map.lookup([0, 0, 0, 0]) else { continue }
                for v in m.variables where !v.name.contains(".") {
                    let end = Int(v.offset) + Int(v.size)
                    guard end <= bytes.count else { continue }
                    let slice = Array(bytes[Int(v.offset)..<end])
                    out += "  \(v.name) = \(format(slice, v.type))\n"
                }
                continue
            }
            if m.type == .arrayOfMaps || m.type == .hashOfMaps || m.type == .progArray || m.type == .stackTrace {
                let n = (try? map.keys().count) ?? 0
                out += "\(m.name) (\(m.type)): \(n) entries\n"
                continue
            }
            if m.type == .queue || m.type == .stack {
                out += "\(m.name) (\(m.type)):\n"
                while let v = try? map.pop() { out += "  \(format(v, m.valueType))\n" }
                continue
            }
            if m.type.isPerCPU {
                guard let entries = try? map.entriesPerCPU() else { continue }
                out += "\(m.name) (\(m.type), \(entries.count) entries):\n"
                for e in entries {
                    out += "  \(format(e.key, m.keyType)): [" + e.values.map { format($0, m.valueType) }.joined(separator: ", ") + "]\n"
                }
                continue
            }
            guard let entries = try? map.entries() else { continue }
            var shown = entries
            var note = ""
            if m.type == .array && entries.count > 64 {
                shown = entries.filter { $0.value.contains { $0 != 0 } }
                note = ", zero values not shown"
            }
            out += "\(m.name) (\(m.type), \(entries.count) entries\(note)):\n"
            for e in shown { out += "  \(format(e.key, m.keyType)): \(format(e.value, m.valueType))\n" }
        }
        return out
    }

    func format(_ bytes: [UInt8], _ type: TypeID) -> String {
        guard let formatter, type != 0 else { return bytes.withUnsafeBytes { ValueFormatter.hex($0) } }
        return formatter.format(bytes, as: type)
    }
}
