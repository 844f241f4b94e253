// @maps as bpftrace 0.17 prints them, from their kernel layout (see Plan.swift's contracts).
// Reading (per-CPU values summed, min/max over CPUs that saw a value) is separate from
// rendering, so both are testable without a kernel.
import PlumbLang

/// One map entry's value, its CPUs already combined.
public enum MapReading: Sendable, Equatable {
    /// count, sum, min, max: the raw 64 bits (signedness from the map).
    case scalar(UInt64)
    /// avg and stats.
    case average(total: Int64, count: UInt64)
    /// hist/lhist: counts by bucket index.
    case buckets([Int: UInt64])
    /// value maps: the value's bytes.
    case bytes([UInt8])
}

/// A map's contents at one moment: user keys (without the hist bucket) and combined values.
public struct MapSnapshot: Sendable {
    public var map: PlannedMap
    public var entries: [(key: [UInt8], value: MapReading)]
    public init(map: PlannedMap, entries: [(key: [UInt8], value: MapReading)]) { self.map = map; self.entries = entries }

    /// Builds a snapshot from raw kernel entries: `values` holds one slot per CPU for per-CPU
    /// maps (one slot for value maps). Hist entries are grouped by user key.
    public init(map: PlannedMap, raw unnormalized: [(key: [UInt8], values: [[UInt8]])]) {
        self.map = map
        let raw = MapSnapshot.normalize(unnormalized, keys: map.keys)
        var out: [(key: [UInt8], value: MapReading)] = []
        func u64(_ b: [UInt8], _ o: Int) -> UInt64 { b.withUnsafeBytes { Raw.uint($0, o, 8) } }
        switch map.value {
        case .hist, .lhist:
            var index: [[UInt8]: Int] = [:]
            let userKeySize = max(0, map.keySize - 8)
            for (key, values) in raw {
                let user = Array(key.prefix(userKeySize))
                let bucket = Int(truncatingIfNeeded: u64(key, userKeySize))
                // Bucket numbers the contract cannot produce are dropped (a bad one would have
                // the printer walk billions of empty buckets).
                guard bucket >= 0, bucket <= MapSnapshot.lastBucket(map.value) else { continue }
                var sum: UInt64 = 0
                for v in values { sum &+= u64(v, 0) }
                let slot: Int
                if let s = index[user] { slot = s } else { slot = out.count; index[user] = slot; out.append((user, .buckets([:]))) }
                if case .buckets(var b) = out[slot].value {
                    b[bucket, default: 0] &+= sum
                    out[slot].value = .buckets(b)
                }
            }
        case .count, .sum:
            for (key, values) in raw { out.append((key, .scalar(values.reduce(0) { $0 &+ u64($1, 0) }))) }
        case .min(let signed), .max(let signed):
            let isMax: Bool = { if case .max = map.value { return true } else { return false } }()
            for (key, values) in raw {
                var best: UInt64?
                for v in values where u64(v, 8) != 0 {
                    let x = u64(v, 0)
                    guard let b = best else { best = x; continue }
                    let less = signed ? Int64(bitPattern: x) < Int64(bitPattern: b) : x < b
                    if less != isMax && x != b { best = x }
                }
                // No CPU saw a value: bpftrace shows no entry.
                if let best { out.append((key, .scalar(best))) }
            }
        case .avg, .stats:
            for (key, values) in raw {
                var total: Int64 = 0, count: UInt64 = 0
                for v in values { total &+= Int64(bitPattern: u64(v, 0)); count &+= u64(v, 8) }
                out.append((key, .average(total: total, count: count)))
            }
        case .value:
            for (key, values) in raw { out.append((key, .bytes(values.first ?? []))) }
        }
        entries = out
    }
}

extension MapSnapshot {
    /// The highest bucket index a hist (2 + 63) or lhist (its overflow bucket) can hold.
    static func lastBucket(_ kind: MapValue) -> Int {
        if case .lhist(let min, let max, let step) = kind {
            let (span, overflow) = max.subtractingReportingOverflow(min)
            guard !overflow, span >= 0 else { return 1 }
            return 1 + Int(span / Swift.max(1, step))
        }
        return 65
    }

    /// String key elements compare up to their NUL: bytes after it (left over in a buffer
    /// the program did not clear) would split one printed key into several. Entries whose
    /// keys agree once those bytes are zeroed are merged (their per-CPU values pooled).
    static func normalize(_ raw: [(key: [UInt8], values: [[UInt8]])], keys: [Field]) -> [(key: [UInt8], values: [[UInt8]])] {
        let strings = keys.compactMap { f -> (Int, Int)? in
            if case .string(let size) = f.type { return (f.offset, size) }
            return nil
        }
        guard !strings.isEmpty else { return raw }
        var out: [(key: [UInt8], values: [[UInt8]])] = []
        var index: [[UInt8]: Int] = [:]
        for (key, values) in raw {
            var k = key
            for (offset, size) in strings where offset >= 0 && offset < k.count {
                let end = min(k.count, offset + size)
                if let nul = k[offset..<end].firstIndex(of: 0) {
                    for i in nul..<end { k[i] = 0 }
                }
            }
            if let i = index[k] { out[i].values += values } else { index[k] = out.count; out.append((k, values)) }
        }
        return out
    }
}

/// Text and JSON rendering of map snapshots.
public struct TraceMapPrinter: Sendable {
    public var values: ValuePrinter
    public init(values: ValuePrinter = ValuePrinter()) { self.values = values }

    // MARK: ordering

    func compareKeys(_ a: [UInt8], _ b: [UInt8], _ keys: [Field]) -> Bool {
        a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in
                for f in keys {
                    switch f.type {
                    case .integer(let size, let signed):
                        if signed {
                            let x = Raw.int(pa, f.offset, size), y = Raw.int(pb, f.offset, size)
                            if x != y { return x < y }
                        } else {
                            let x = Raw.uint(pa, f.offset, size), y = Raw.uint(pb, f.offset, size)
                            if x != y { return x < y }
                        }
                    default:
                        let x = Raw.bytes(pa, f.offset, f.type.size), y = Raw.bytes(pb, f.offset, f.type.size)
                        if x != y { return x.lexicographicallyPrecedes(y) }
                    }
                }
                return false
            }
        }
    }

    static func isSigned(_ v: MapValue) -> Bool {
        switch v {
        case .sum(let s), .min(let s), .max(let s), .avg(let s), .stats(let s): return s
        case .value(.integer(_, let s)): return s
        default: return false
        }
    }

    static func average(_ total: Int64, _ count: UInt64) -> Int64 {
        count == 0 ? 0 : total / Int64(clamping: count)
    }

    /// bpftrace's order: by value for numbers, by average for avg/stats, by total count for
    /// histograms, by key otherwise. Ties keep key order (bpftrace leaves them in hash order).
    public func sorted(_ s: MapSnapshot) -> [(key: [UInt8], value: MapReading)] {
        // bpftrace 0.17 shows a keyless count() that never ran as 0 (no other kind).
        if s.entries.isEmpty, s.map.keys.isEmpty, case .count = s.map.value { return [([UInt8](repeating: 0, count: 8), .scalar(0))] }
        let byKey = s.entries.enumerated().sorted { l, r in
            compareKeys(l.element.key, r.element.key, s.map.keys) || (!compareKeys(r.element.key, l.element.key, s.map.keys) && l.offset < r.offset)
        }.map(\.element)
        let signed = TraceMapPrinter.isSigned(s.map.value)
        enum Rank { case signed(Int64), unsigned(UInt64), none }
        func rank(_ v: MapReading) -> Rank {
            switch v {
            case .scalar(let x): return signed ? .signed(Int64(bitPattern: x)) : .unsigned(x)
            case .average(let t, let c): return .signed(TraceMapPrinter.average(t, c))
            case .buckets(let b): return .unsigned(b.values.reduce(0, &+))
            case .bytes(let bytes):
                switch s.map.value {
                case .value(.integer(let size, true)): return .signed(bytes.withUnsafeBytes { Raw.int($0, 0, size) })
                case .value(.integer(let size, false)): return .unsigned(bytes.withUnsafeBytes { Raw.uint($0, 0, size) })
                case .value(.boolean): return .unsigned(UInt64(bytes.first ?? 0))
                default: return .none
                }
            }
        }
        let result = Array(byKey.enumerated()).sorted { l, r in
            switch (rank(l.element.value), rank(r.element.value)) {
            case (.signed(let a), .signed(let b)) where a != b: return a < b
            case (.unsigned(let a), .unsigned(let b)) where a != b: return a < b
            default: return l.offset < r.offset
            }
        }
        return result.map(\.element)
    }

    // MARK: text

    func keyText(_ key: [UInt8], _ map: PlannedMap) -> String {
        if map.keys.isEmpty { return "" }
        return key.withUnsafeBytes { b in
            "[" + map.keys.map { values.text($0.type, b, at: $0.offset, context: .mapKey) }.joined(separator: ", ") + "]"
        }
    }

    func scalarText(_ v: MapReading, _ map: PlannedMap, divisor: Int) -> String {
        let div = UInt64(max(1, divisor))
        switch v {
        case .scalar(let x):
            if TraceMapPrinter.isSigned(map.value) { return String(Int64(bitPattern: x) / Int64(bitPattern: div)) }
            return String(x / div)
        case .average(let t, let c):
            if case .stats = map.value {
                return "count \(c), average \(TraceMapPrinter.average(t, c) / Int64(bitPattern: div)), total \(t / Int64(bitPattern: div))"
            }
            return String(TraceMapPrinter.average(t, c) / Int64(bitPattern: div))
        case .bytes(let bytes):
            guard case .value(let type) = map.value else { return "" }
            if case .integer(let size, let signed) = type, div > 1 {
                return bytes.withUnsafeBytes { signed ? String(Raw.int($0, 0, size) / Int64(bitPattern: div)) : String(Raw.uint($0, 0, size) / div) }
            }
            return bytes.withUnsafeBytes { values.text(type, $0, at: 0) }
        case .buckets: return ""
        }
    }

    /// `print(@map, top, div)` and the maps printed at exit, as text.
    public func text(_ s: MapSnapshot, top: Int = 0, divisor: Int = 1) -> String {
        var entries = sorted(s)
        if top > 0 && entries.count > top { entries = Array(entries.suffix(top)) }
        if entries.isEmpty {
            // An empty map is a blank line; avg/stats keep their own trailing one too.
            switch s.map.value {
            case .avg, .stats: return "\n\n"
            default: return "\n"
            }
        }
        var out = ""
        switch s.map.value {
        case .hist, .lhist:
            for (key, value) in entries {
                out += s.map.name + keyText(key, s.map) + ": \n"
                if case .buckets(let b) = value { out += histogram(b, s.map.value, divisor: divisor) }
                out += "\n"
            }
        default:
            for (key, value) in entries {
                out += s.map.name + keyText(key, s.map) + ": " + scalarText(value, s.map, divisor: divisor) + "\n"
            }
            switch s.map.value {
            case .avg, .stats: out += "\n"
            default: break
            }
        }
        return out
    }

    /// A bucket's bounds: (lower, upper) where nil means unbounded; hist uses powers of two.
    static func bounds(_ bucket: Int, _ kind: MapValue) -> (lower: Int64?, upper: Int64?) {
        if case .lhist(let min, let max, let step) = kind {
            let last = MapSnapshot.lastBucket(kind)
            if bucket <= 0 { return (nil, min) }
            if bucket >= last { return (max, nil) }
            let lo = min &+ Int64(bucket - 1) &* step
            return (lo, lo &+ step)
        }
        switch bucket {
        case ...0: return (nil, 0)
        case 1: return (0, 1)
        default:
            let p = bucket - 2
            return (p >= 63 ? Int64.max : Int64(1) << Int64(p), p + 1 >= 63 ? nil : Int64(1) << Int64(p + 1))
        }
    }

    /// hist labels: powers of two with K, M, G, T, P, E for every 10 bits.
    static func powerLabel(_ power: Int) -> String {
        let suffixes = ["", "K", "M", "G", "T", "P", "E"]
        let unit = power / 10
        return String(1 << (power % 10)) + (unit < suffixes.count ? suffixes[unit] : "")
    }

    /// lhist labels: whole multiples of 1M or 1K shortened.
    static func linearLabel(_ n: Int64) -> String {
        if n != 0 && n % (1024 * 1024) == 0 { return "\(n / (1024 * 1024))M" }
        if n != 0 && n % 1024 == 0 { return "\(n / 1024)K" }
        return String(n)
    }

    static func label(_ bucket: Int, _ kind: MapValue) -> String {
        if case .lhist(let min, let max, let step) = kind {
            let last = MapSnapshot.lastBucket(kind)
            if bucket <= 0 { return "(..., \(linearLabel(min)))" }
            if bucket >= last { return "[\(linearLabel(max)), ...)" }
            let lo = min &+ Int64(bucket - 1) &* step
            return "[\(linearLabel(lo)), \(linearLabel(lo &+ step)))"
        }
        switch bucket {
        case ...0: return "(..., 0)"
        case 1: return "[0]"
        case 2: return "[1]"
        default: return "[\(powerLabel(bucket - 2)), \(powerLabel(bucket - 1)))"
        }
    }

    func histogram(_ buckets: [Int: UInt64], _ kind: MapValue, divisor: Int) -> String {
        let nonzero = buckets.filter { $0.value != 0 }.keys
        guard let first = nonzero.min(), let last = nonzero.max() else { return "" }
        let div = UInt64(max(1, divisor))
        // Bars scale with the raw counts; only the printed numbers are divided (as bpftrace).
        let peak = buckets.values.max() ?? 0
        var out = ""
        for bucket in first...last {
            let raw = buckets[bucket] ?? 0
            let count = raw / div
            var label = TraceMapPrinter.label(bucket, kind)
            if label.count < 16 { label += String(repeating: " ", count: 16 - label.count) }
            var number = String(count)
            if number.count < 8 { number = String(repeating: " ", count: 8 - number.count) + number }
            let width = 52
            let bar = peak == 0 ? 0 : Int(raw.multipliedFullWidth(by: UInt64(width)).low / peak)
            let at = min(bar, width)
            out += label + number + " |" + String(repeating: "@", count: at) + String(repeating: " ", count: width - at) + "|\n"
        }
        return out
    }

    // MARK: JSON

    func keyJSON(_ key: [UInt8], _ map: PlannedMap) -> String {
        key.withUnsafeBytes { b in
            JSON.quote(map.keys.map { values.text($0.type, b, at: $0.offset, context: .mapKey) }.joined(separator: ","))
        }
    }

    func valueJSON(_ v: MapReading, _ map: PlannedMap, divisor: Int) -> String {
        switch v {
        case .average(let t, let c):
            let div = Int64(max(1, divisor))
            if case .stats = map.value {
                return "{\"count\": \(c), \"average\": \(TraceMapPrinter.average(t, c) / div), \"total\": \(t / div)}"
            }
            return String(TraceMapPrinter.average(t, c) / div)
        case .bytes(let bytes):
            guard case .value(let type) = map.value else { return "null" }
            if case .integer = type, divisor > 1 { return scalarText(v, map, divisor: divisor) }
            return bytes.withUnsafeBytes { values.json(type, $0, at: 0) }
        case .buckets(let b):
            let nonzero = b.filter { $0.value != 0 }.keys
            guard let first = nonzero.min(), let last = nonzero.max() else { return "[]" }
            var parts: [String] = []
            for bucket in first...last {
                let (lo, hi) = TraceMapPrinter.bounds(bucket, map.value)
                var fields: [String] = []
                if let lo { fields.append("\"min\": \(lo)") }
                if let hi { fields.append("\"max\": \(hi - 1)") }
                fields.append("\"count\": \((b[bucket] ?? 0) / UInt64(max(1, divisor)))")
                parts.append("{" + fields.joined(separator: ", ") + "}")
            }
            return "[" + parts.joined(separator: ", ") + "]"
        case .scalar:
            return scalarText(v, map, divisor: divisor)
        }
    }

    /// One NDJSON line (with its newline), or "" for an empty map as bpftrace does.
    public func json(_ s: MapSnapshot, top: Int = 0, divisor: Int = 1) -> String {
        var entries = sorted(s)
        if top > 0 && entries.count > top { entries = Array(entries.suffix(top)) }
        if entries.isEmpty { return "" }
        let type: String
        switch s.map.value {
        case .hist, .lhist: type = "hist"
        case .avg, .stats: type = "stats"
        default: type = "map"
        }
        let data: String
        if s.map.keys.isEmpty {
            data = valueJSON(entries[0].value, s.map, divisor: divisor)
        } else {
            data = "{" + entries.map { keyJSON($0.key, s.map) + ": " + valueJSON($0.value, s.map, divisor: divisor) }.joined(separator: ", ") + "}"
        }
        return "{\"type\": \"\(type)\", \"data\": {\(JSON.quote(s.map.name)): \(data)}}\n"
    }
}
