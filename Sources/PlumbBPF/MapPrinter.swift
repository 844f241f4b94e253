import PlumbBTF

/// Prints every map of a loaded object with its BTF types, as a trace ends: global data by
/// variable, hash and array maps by entry (arrays over 64 entries without their zero
/// values), per-CPU maps with one value per CPU, queues and stacks popped, maps of maps and
/// program arrays by count. Ring buffers and perf event arrays are skipped (their contents
/// are events), and so are maps that cannot be read.
public struct MapPrinter {
    public let object: Object
    let formatter: ValueFormatter?
    /// Plans by type: a map's entries share their key and value types.
    private let plans = PlanCache()

    final class PlanCache {
        var plans: [TypeID: FormatPlan] = [:]
    }

    public init(object: Object) {
        self.object = object
        formatter = object.spec.btf.map { ValueFormatter(btf: $0) }
    }

    /// Every map, in the object's order.
    public func all() -> String {
        var out = ""
        for m in object.spec.maps { out += self.map(m) }
        return out
    }

    /// One map's text ("" for the maps not printed).
    public func map(_ m: MapSpec) -> String {
        guard let map = object.maps[m.name], m.type != .ringbuf, m.type != .perfEventArray else { return "" }
        var out = ""
        if let section = m.dataSection {
            out += "\(m.name) (\(section)):\n"
            guard let bytes = try? map.lookup([0, 0, 0, 0]) else { return out }
            for v in m.variables where !v.name.contains(".") {
                let end = Int(v.offset) + Int(v.size)
                guard end <= bytes.count else { continue }
                out += "  \(v.name) = \(format(Array(bytes[Int(v.offset) ..< end]), v.type))\n"
            }
            return out
        }
        switch m.type {
        case .arrayOfMaps, .hashOfMaps, .progArray, .stackTrace:
            let n = (try? map.keys().count) ?? 0
            return "\(m.name) (\(m.type)): \(n) entries\n"
        case .queue, .stack:
            out += "\(m.name) (\(m.type)):\n"
            while let v = try? map.pop() { out += "  \(format(v, m.valueType))\n" }
            return out
        default:
            break
        }
        if m.type.isPerCPU {
            guard let entries = try? map.entriesPerCPU() else { return "" }
            out += "\(m.name) (\(m.type), \(entries.count) entries):\n"
            for e in entries {
                out += "  \(format(e.key, m.keyType)): [" + e.values.map { format($0, m.valueType) }.joined(separator: ", ") + "]\n"
            }
            return out
        }
        guard let entries = try? map.entries() else { return "" }
        var shown = entries
        var note = ""
        if m.type == .array && entries.count > 64 {
            shown = entries.filter { $0.value.contains { $0 != 0 } }
            note = ", zero values not shown"
        }
        out += "\(m.name) (\(m.type), \(entries.count) entries\(note)):\n"
        for e in shown { out += "  \(format(e.key, m.keyType)): \(format(e.value, m.valueType))\n" }
        return out
    }

    func format(_ bytes: [UInt8], _ type: TypeID) -> String {
        guard let formatter, type != 0 else { return bytes.withUnsafeBytes { ValueFormatter.hex($0) } }
        if plans.plans[type] == nil { plans.plans[type] = formatter.plan(for: type) }
        return plans.plans[type]?.format(bytes) ?? ""
    }
}

extension MapPrinter {
    /// Every map printed by `all()`, one NDJSON line each: `{"map":M,"entries":[{"key":K,"value":V}]}`,
    /// typed by BTF (untyped bytes as a hex string). Global data is one entry with key 0 and the
    /// variables as an object; per-CPU maps have `"values"` (one per CPU); queues and stacks
    /// only values; maps of maps, program arrays and stack maps their keys.
    public func allJSON() -> String {
        var out = ""
        for m in object.spec.maps {
            if let line = json(m) { out += line.text() + "\n" }
        }
        return out
    }

    /// One map as JSON (nil for the maps not printed).
    public func json(_ m: MapSpec) -> JSONValue? {
        guard let map = object.maps[m.name], m.type != .ringbuf, m.type != .perfEventArray else { return nil }
        let typed = object.spec.btf.map { BTFJSON(btf: $0) }
        func value(_ bytes: [UInt8], _ type: TypeID) -> JSONValue {
            guard let typed, type != 0 else { return .string(bytes.withUnsafeBytes { JSONRecordFormat.hex($0) }) }
            return typed.value(bytes, type: type)
        }
        func result(_ entries: [JSONValue]) -> JSONValue { .object([("map", .string(m.name)), ("entries", .array(entries))]) }
        if m.dataSection != nil {
            guard let bytes = try? map.lookup([0, 0, 0, 0]) else { return result([]) }
            var vars: [(String, JSONValue)] = []
            for v in m.variables where !v.name.contains(".") {
                let end = Int(v.offset) + Int(v.size)
                guard end <= bytes.count else { continue }
                vars.append((v.name, value(Array(bytes[Int(v.offset) ..< end]), v.type)))
            }
            return result([.object([("key", .int(0)), ("value", .object(vars))])])
        }
        switch m.type {
        case .arrayOfMaps, .hashOfMaps, .progArray, .stackTrace:
            let keys = (try? map.keys()) ?? []
            return result(keys.map { .object([("key", value($0, m.keyType))]) })
        case .queue, .stack:
            var items: [JSONValue] = []
            while let v = try? map.pop() { items.append(.object([("value", value(v, m.valueType))])) }
            return result(items)
        default:
            break
        }
        if m.type.isPerCPU {
            guard let entries = try? map.entriesPerCPU() else { return nil }
            return result(entries.map { e in
                .object([("key", value(e.key, m.keyType)), ("values", .array(e.values.map { value($0, m.valueType) }))])
            })
        }
        guard let entries = try? map.entries() else { return nil }
        return result(entries.map { .object([("key", value($0.key, m.keyType)), ("value", value($0.value, m.valueType))]) })
    }
}
