import PlumbBTF
import Glibc

/// Prints ring buffer and perf buffer records as `MAP: VALUE` lines: typed when the record's
/// type is known — named per map (`recordTypes`), else the one struct in the object's BTF of
/// the record's size — and as hex bytes otherwise.
///
/// Types are checked when the printer is made (before anything is loaded); formatting plans
/// are built once per map and record size, and records are written as bytes into the
/// caller's buffer (`RecordFormat.append`), the hot path of a trace.
public final class RecordPrinter: @unchecked Sendable {
    public let spec: ObjectSpec
    let formatter: ValueFormatter?
    /// Record types named per map.
    let explicit: [String: TypeID]
    /// Struct types by size, for records of maps without a named type.
    let bySize: [Int: [TypeID]]
    private var plans: [TypeID: FormatPlan] = [:]

    /// `recordTypes`: map name -> type name (`event`, `struct event`, a typedef). Each map must
    /// be a ring buffer or perf event array of `spec`, each type a struct, union or typedef of
    /// its BTF; otherwise this throws, naming what is close.
    public init(spec: ObjectSpec, recordTypes: [String: String] = [:]) throws(BPFError) {
        self.spec = spec
        formatter = spec.btf.map { ValueFormatter(btf: $0) }
        var explicit: [String: TypeID] = [:]
        let eventMaps = spec.maps.filter { $0.type == .ringbuf || $0.type == .perfEventArray }.map(\.name)
        for (map, typeName) in recordTypes.sorted(by: { $0.key < $1.key }) {
            guard let m = spec.maps.first(where: { $0.name == map }) else {
                var message = "no map '\(map)' in \(spec.path)"
                if let guess = Suggestion.closest(to: map, in: eventMaps) ?? Suggestion.closest(to: map, in: spec.maps.map(\.name)) {
                    message += "; did you mean '\(guess)'?"
                }
                throw .invalidArgument(message + RecordPrinter.listing(eventMaps))
            }
            guard m.type == .ringbuf || m.type == .perfEventArray else {
                throw .invalidArgument("map '\(map)' is a \(m.type) map; record types apply to ring buffers and perf event arrays" + RecordPrinter.listing(eventMaps))
            }
            guard let btf = spec.btf else {
                throw .invalidArgument("\(spec.path) has no BTF, so its records cannot be typed; build it with clang -g")
            }
            explicit[map] = try RecordPrinter.lookup(typeName, in: btf, object: spec.path)
        }
        self.explicit = explicit

        var sizes: [Int: [TypeID]] = [:]
        if let btf = spec.btf {
            // Map definitions (.maps variables' structs) are not records.
            var definitions = Set<TypeID>()
            if let sec = btf.firstID(named: ".maps", kind: .dataSection), let ds = try? btf.type(sec) {
                for v in ds.sectionVariables {
                    if let t = try? btf.type(v.type), let r = try? btf.resolve(t.type) { definitions.insert(r) }
                }
            }
            for id in btf.ownIDs where btf.kind(of: id) == .struct && !definitions.contains(id) && !btf.name(of: id).isEmpty {
                if let size = try? btf.size(of: id) { sizes[size, default: []].append(id) }
            }
        }
        bySize = sizes
    }

    /// `MAP=TYPE` arguments as the `recordTypes` of `init`.
    public static func parseRecordTypes(_ arguments: [String]) throws(BPFError) -> [String: String] {
        var types: [String: String] = [:]
        for a in arguments {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex, a.index(after: eq) != a.endIndex else {
                throw .invalidArgument("'\(a)' is not MAP=TYPE (for example events=event)")
            }
            types[String(a[..<eq])] = String(a[a.index(after: eq)...])
        }
        return types
    }

    /// How records of `map` print; keep it for the map's lifetime.
    public func format(forMap map: String) -> RecordFormat {
        RecordFormat(printer: self, map: map, type: explicit[map].flatMap { plan($0) })
    }

    /// One record as a line (for occasional records; a trace's loop uses `format(forMap:)`).
    public func line(map: String, _ record: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        format(forMap: map).append(record, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The plan for records of `size` bytes of a map without a named type (nil: hex).
    func plan(size: Int) -> FormatPlan? {
        guard let candidates = bySize[size], candidates.count == 1 else { return nil }
        return plan(candidates[0])
    }

    func plan(_ type: TypeID) -> FormatPlan? {
        guard let formatter else { return nil }
        if let p = plans[type] { return p }
        let p = formatter.plan(for: type)
        plans[type] = p
        return p
    }

    static func lookup(_ name: String, in btf: BTF, object: String) throws(BPFError) -> TypeID {
        let words = name.split(separator: " ", omittingEmptySubsequences: true)
        let kinds: [BTFKind]
        let bare: String
        if words.count == 2, words[0] == "struct" || words[0] == "union" {
            kinds = [words[0] == "struct" ? .struct : .union]
            bare = String(words[1])
        } else {
            kinds = [.struct, .union, .typedef]
            bare = name
        }
        for k in kinds {
            if let id = btf.firstID(named: bare, kind: k) { return id }
        }
        var candidates: [String] = []
        for id in btf.ownIDs where kinds.contains(btf.kind(of: id)) {
            let n = btf.name(of: id)
            if !n.isEmpty { candidates.append(n) }
        }
        var message = "no struct, union or typedef named '\(bare)' in \(object)'s BTF"
        if let guess = Suggestion.closest(to: bare, in: candidates) { message += "; did you mean '\(guess)'?" }
        throw .invalidArgument(message)
    }

    static func listing(_ maps: [String]) -> String {
        maps.isEmpty ? " (this object has none)" : " (this object's: \(maps.joined(separator: ", ")))"
    }
}

/// How one map's records print: `MAP: ` then the value, typed or hex, then a newline.
public final class RecordFormat: @unchecked Sendable {
    let printer: RecordPrinter
    let prefix: [UInt8]
    /// The map's named type, if any.
    let type: FormatPlan?
    // Records of one map mostly have one size: the last size's plan is kept at hand.
    private var lastSize = -1
    private var lastPlan: FormatPlan?

    init(printer: RecordPrinter, map: String, type: FormatPlan?) {
        self.printer = printer
        prefix = Array("\(map): ".utf8)
        self.type = type
    }

    /// Writes the record's line into `output`: the hot path of a trace.
    @inline(__always)
    public func append(_ record: UnsafeRawBufferPointer, to output: OutputBuffer) {
        let plan = self.plan(for: record.count)
        let body = plan?.maxLength(forBytes: record.count) ?? 3 * record.count
        output.write(reserving: prefix.count + body + 1) { p in
            prefix.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: $0.count) }
            var n = prefix.count
            if let plan {
                n += plan.write(record, to: p + n)
            } else {
                n += ValueFormatter.writeHex(record, to: p + n)
            }
            p[n] = 0x0a
            return n + 1
        }
    }

    /// Appends the record's line to `out`.
    public func append(_ record: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(contentsOf: prefix)
        if let plan = plan(for: record.count) {
            plan.append(record, to: &out)
        } else {
            ValueFormatter.appendHex(record, to: &out)
        }
        out.append(0x0a)
    }

    /// The map's type, else the plan for records of this size (nil: hex).
    @inline(__always)
    func plan(for size: Int) -> FormatPlan? {
        if let type { return type }
        if size != lastSize {
            lastSize = size
            lastPlan = printer.plan(size: size)
        }
        return lastPlan
    }
}

extension RecordPrinter {
    /// The BTF type records of `map` with `size` bytes are read as: the map's named type, else
    /// the one struct of that size (nil: untyped).
    public func typeID(forMap map: String, size: Int) -> TypeID? {
        if let t = explicit[map] { return t }
        guard let candidates = bySize[size], candidates.count == 1 else { return nil }
        return candidates[0]
    }

    /// How records of `map` print as NDJSON lines.
    public func jsonFormat(forMap map: String) -> JSONRecordFormat {
        JSONRecordFormat(printer: self, map: map)
    }
}

/// One map's records as NDJSON: `{"map":M,"cpu":C,"timestamp":NS,"value":{...}}`, or `"data":"hex"`
/// when the record is untyped. Not the fast text path: each record becomes a `JSONValue` first.
public final class JSONRecordFormat: @unchecked Sendable {
    let printer: RecordPrinter
    let map: String
    let json: BTFJSON?

    init(printer: RecordPrinter, map: String) {
        self.printer = printer
        self.map = map
        json = printer.spec.btf.map { BTFJSON(btf: $0) }
    }

    /// The record's line (`cpu`: perf buffers' CPU; ring buffers have none).
    public func line(_ record: UnsafeRawBufferPointer, cpu: Int?) -> String {
        var members: [(String, JSONValue)] = [("map", .string(map))]
        if let cpu { members.append(("cpu", .int(Int64(cpu)))) }
        // Monotonic nanoseconds when read: the clock bpf_ktime_get_ns uses.
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        members.append(("timestamp", .uint(UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec))))
        if let json, let type = printer.typeID(forMap: map, size: record.count) {
            members.append(("value", json.value(Array(record), type: type)))
        } else {
            members.append(("data", .string(JSONRecordFormat.hex(record))))
        }
        return JSONValue.object(members).text() + "\n"
    }

    /// Bytes as one run of lower-case hex digits ("2a00ff").
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(2 * bytes.count)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public func append(_ record: UnsafeRawBufferPointer, cpu: Int?, to output: OutputBuffer) {
        output.append(line(record, cpu: cpu))
    }
}
