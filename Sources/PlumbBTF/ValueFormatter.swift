/// Renders bytes as the BTF type says they are: integers signed or not, enums by name, char
/// arrays as strings, structs as `{ .a = 1, .b = "x" }` (bpftrace's style), arrays as `[1, 2]`.
///
/// Formatting goes through a `FormatPlan`: the type is walked once into a flat list of steps
/// (field offsets, sizes, the literal text between fields), and each value is then written
/// as UTF-8 bytes straight into an output array. Printers that see the same type many times
/// (ring buffer records) keep the plan; `format(_:as:)` builds one per call.
///
/// Values shorter than their type print what fits: members and elements that end past the
/// bytes given are left out, scalars read the bytes there are.
public struct ValueFormatter: Sendable {
    public let btf: BTF
    /// How deep nested aggregates are expanded before `{...}`.
    public var maxDepth = 8

    public init(btf: BTF) { self.btf = btf }

    /// The plan for values of `type`: build once, apply to every value of that type.
    public func plan(for type: TypeID) -> FormatPlan {
        var builder = FormatPlan.Builder(btf: btf, maxDepth: min(max(maxDepth, 0), 60))
        return builder.build(type)
    }

    public func format(_ bytes: [UInt8], as type: TypeID) -> String {
        bytes.withUnsafeBytes { format($0, as: type) }
    }

    public func format(_ bytes: UnsafeRawBufferPointer, as type: TypeID) -> String {
        var out: [UInt8] = []
        plan(for: type).append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex bytes separated by spaces, for values without a type.
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        appendHex(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `hex(_:)`, written into `out`.
    public static func appendHex(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 3 * bytes.count) { scratch in
            guard let base = scratch.baseAddress else { return }
            var cursor = Cursor(base)
            cursor.hexBytes(bytes)
            out.append(contentsOf: UnsafeBufferPointer(start: base, count: cursor.p - base))
        }
    }

    /// `hex(_:)` at `destination`, which has room for 3 bytes per byte; returns the length.
    public static func writeHex(_ bytes: UnsafeRawBufferPointer, to destination: UnsafeMutablePointer<UInt8>) -> Int {
        var cursor = Cursor(destination)
        cursor.hexBytes(bytes)
        return cursor.p - destination
    }
}

/// How to print values of one BTF type: steps over fixed offsets, built by
/// `ValueFormatter.plan(for:)`.
///
/// The steps write through a raw cursor, with no capacity check per byte: `maxLength`
/// bounds what a value can take (every number at its longest, every string byte escaped),
/// and callers reserve that much first (`write(_:to:)`'s contract).
public struct FormatPlan: Sendable {
    /// One step. Offsets are relative to the value being printed (an array element's steps
    /// run once per element, at the element's offset). While building, `skip` and the array
    /// ranges count within one plan; `Builder.finish` makes them indices into `steps`.
    enum Step: Sendable {
        /// Literal text: literals[start..<start+count].
        case literal(start: Int, count: Int)
        /// Opens an aggregate at `depth`: its next item is its first (no separator).
        case open(start: Int, count: Int, depth: Int)
        /// A struct member: left out (continue at `skip`) when it ends past the bytes given;
        /// else ", " unless it is the aggregate's first item, then its label (".name = ").
        case item(end: Int, skip: Int, depth: Int, start: Int, count: Int)
        case unsigned(offset: Int, size: Int)
        case signed(offset: Int, size: Int)
        case bool(offset: Int, size: Int)
        /// A 16-byte integer: decimal when it fits 64 bits, else 0x hex.
        case wide(offset: Int, signed: Bool)
        case enumeration(offset: Int, size: Int, signed: Bool, table: Int)
        /// A pointer of `size` bytes (at most 8 are read).
        case pointer(offset: Int, size: Int)
        /// A float; when the bytes are not a 4- or 8-byte float, their hex (sliceLength -1: to the end).
        case float(offset: Int, size: Int, sliceLength: Int)
        /// A `char` array: always a string, up to the first NUL.
        case text(offset: Int, count: Int)
        /// A byte array (`unsigned char`, `signed char`): a string when every byte up to the
        /// first NUL is printable ASCII (then continue at `skip`), else the elements that follow.
        case textIfPrintable(offset: Int, count: Int, skip: Int)
        /// A bitfield; bits are read below `limit` (relative; -1: the end of the bytes given).
        case bitfield(bitOffset: Int, bits: Int, signed: Bool, limit: Int)
        /// Hex bytes (length -1: to the end of the bytes given).
        case hex(offset: Int, length: Int)
        /// `[a, b, ...]`: steps[start..<end] once per element that fits.
        case array(offset: Int, count: Int, stride: Int, start: Int, end: Int)
    }

    /// Every plan's steps, the value's first (steps[0..<rootEnd]), then arrays' element plans.
    let steps: [Step]
    let rootEnd: Int
    let literals: [UInt8]
    /// Enumerator names by value (as literal ranges), per enum type met.
    let enums: [[UInt64: (start: Int, count: Int)]]
    /// maxLength = fixedLength + lengthPerByte * (bytes given).
    let fixedLength: Int
    let lengthPerByte: Int

    /// The most bytes `write` can produce for a value of `count` bytes.
    @inline(__always)
    public func maxLength(forBytes count: Int) -> Int { fixedLength &+ lengthPerByte &* count }

    /// Writes the value in `bytes` (UTF-8, no newline) at `destination` and returns the bytes
    /// written. `destination` must have room for `maxLength(forBytes: bytes.count)`.
    @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer, to destination: UnsafeMutablePointer<UInt8>) -> Int {
        steps.withUnsafeBufferPointer { steps in
            literals.withUnsafeBufferPointer { lit in
                var cursor = Cursor(destination)
                run(steps, 0, rootEnd, base: 0, bytes, lit, &cursor)
                return cursor.p - destination
            }
        }
    }

    /// Writes the value in `bytes` (UTF-8, no newline) at the end of `out`.
    public func append(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let bound = maxLength(forBytes: bytes.count)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(bound, 1)) { scratch in
            guard let base = scratch.baseAddress else { return }
            let n = write(bytes, to: base)
            out.append(contentsOf: UnsafeBufferPointer(start: base, count: n))
        }
    }

    /// The plan as text, for a `[UInt8]` value.
    public func format(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        bytes.withUnsafeBytes { append($0, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    private func run(_ steps: UnsafeBufferPointer<Step>, _ first: Int, _ end: Int, base: Int, _ bytes: UnsafeRawBufferPointer,
                     _ lit: UnsafeBufferPointer<UInt8>, _ out: inout Cursor) {
        guard let literalBase = lit.baseAddress ?? UnsafePointer(bitPattern: 1) else { return }
        let count = bytes.count
        // Bit d: the aggregate open at depth d has printed an item (the next needs ", ").
        var started: UInt64 = 0
        var i = first
        while i < end {
            switch steps[i] {
            case .literal(let start, let n):
                out.put(literalBase + start, n)
            case .open(let start, let n, let depth):
                started &= ~(1 << UInt64(depth))
                out.put(literalBase + start, n)
            case .item(let end, let skip, let depth, let start, let n):
                if base + end > count { i = skip; continue }
                let bit: UInt64 = 1 << UInt64(depth)
                if started & bit != 0 { out.put(0x2c); out.put(0x20) }
                started |= bit
                out.put(literalBase + start, n)
            case .unsigned(let offset, let size):
                out.decimal(Self.integer(bytes, base + offset, size, signed: false))
            case .signed(let offset, let size):
                out.signed(Int64(bitPattern: Self.integer(bytes, base + offset, size, signed: true)))
            case .bool(let offset, let size):
                if Self.integer(bytes, base + offset, size, signed: false) == 0 {
                    out.put(0x66); out.put(0x61); out.put(0x6c); out.put(0x73); out.put(0x65)   // false
                } else {
                    out.put(0x74); out.put(0x72); out.put(0x75); out.put(0x65)   // true
                }
            case .wide(let offset, let signed):
                let at = base + offset
                if at >= 0, count - at >= 16 {
                    let lo = bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)
                    let hi = bytes.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self)
                    if hi == 0 {
                        out.decimal(lo)
                    } else {
                        out.put(0x30); out.put(0x78)
                        out.hexNumber(hi)
                        out.hexNumber(lo, width: 16)
                    }
                } else {
                    let v = Self.integer(bytes, at, 16, signed: signed)
                    if signed { out.signed(Int64(bitPattern: v)) } else { out.decimal(v) }
                }
            case .enumeration(let offset, let size, let signed, let table):
                let raw = Self.integer(bytes, base + offset, size, signed: signed)
                if let name = enums[table][raw] {
                    out.put(literalBase + name.start, name.count)
                } else if signed {
                    out.signed(Int64(bitPattern: raw))
                } else {
                    out.decimal(raw)
                }
            case .pointer(let offset, let size):
                out.put(0x30); out.put(0x78)
                out.hexNumber(Self.integer(bytes, base + offset, size, signed: false))
            case .float(let offset, let size, let sliceLength):
                let at = base + offset
                if size == 8, at >= 0, count - at >= 8 {
                    out.text("\(bytes.loadUnaligned(fromByteOffset: at, as: Double.self))")
                } else if size == 4, at >= 0, count - at >= 4 {
                    out.text("\(bytes.loadUnaligned(fromByteOffset: at, as: Float.self))")
                } else {
                    out.hexBytes(Self.slice(bytes, at, sliceLength))
                }
            case .text(let offset, let n):
                out.quoted(Self.cString(bytes, base + offset, n))
            case .textIfPrintable(let offset, let n, let skip):
                let s = Self.cString(bytes, base + offset, n)
                if s.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
                    out.quoted(s)
                    i = skip
                    continue
                }
            case .bitfield(let bitOffset, let bits, let signed, let limit):
                let end = limit < 0 ? count : min(count, base + limit)
                var v: UInt64 = 0
                for b in 0 ..< bits {
                    let bit = bitOffset + b
                    let byte = base + bit / 8
                    guard byte < end else { break }
                    if bytes[byte] & (1 << UInt8(bit % 8)) != 0 { v |= 1 << UInt64(b) }
                }
                if signed, bits < 64, v & (1 << UInt64(bits - 1)) != 0 {
                    out.signed(Int64(bitPattern: v | (~0 << UInt64(bits))))
                } else {
                    out.decimal(v)
                }
            case .hex(let offset, let length):
                out.hexBytes(Self.slice(bytes, base + offset, length))
            case .array(let offset, let n, let stride, let start, let stop):
                out.put(0x5b)
                for e in 0 ..< n {
                    let at = base + offset + e * stride
                    guard at + stride <= count else { break }
                    if e > 0 { out.put(0x2c); out.put(0x20) }
                    run(steps, start, stop, base: at, bytes, lit, &out)
                }
                out.put(0x5d)
            }
            i += 1
        }
    }

    /// `size` little-endian bytes at `at` (those there are, at most 8), sign-extended when
    /// `signed` and fewer than 8 were read.
    @inline(__always)
    static func integer(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ size: Int, signed: Bool) -> UInt64 {
        guard at >= 0 else { return 0 }
        let n = min(size, 8, bytes.count - at)
        guard n > 0 else { return 0 }
        var v: UInt64
        switch n {
        case 8: return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self))
        case 4: v = UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
        case 2: v = UInt64(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
        case 1: v = UInt64(bytes[at])
        default:
            v = 0
            for i in 0 ..< n { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
        }
        if signed && bytes[at + n - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }
        return v
    }

    /// Up to `n` bytes at `at`, ending before the first NUL.
    static func cString(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ n: Int) -> UnsafeRawBufferPointer {
        let s = slice(bytes, at, n)
        let end = s.firstIndex(of: 0) ?? s.count
        return UnsafeRawBufferPointer(rebasing: s[0 ..< end])
    }

    /// `length` bytes at `at` (-1: to the end), those there are.
    static func slice(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ length: Int) -> UnsafeRawBufferPointer {
        guard at >= 0, at < bytes.count else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let end = length < 0 ? bytes.count : min(bytes.count, at + length)
        return UnsafeRawBufferPointer(rebasing: bytes[at ..< end])
    }
}

extension FormatPlan {
    /// Walks a type into steps. Struct members are flattened into their parent's steps (their
    /// offsets added up); each array's element type gets a plan of its own.
    struct Builder {
        let btf: BTF
        let maxDepth: Int
        var plans: [[Step]] = [[]]
        var literals: [UInt8] = []
        var literalIndex: [String: (start: Int, count: Int)] = [:]
        var enums: [[UInt64: (start: Int, count: Int)]] = []
        var enumIndex: [TypeID: Int] = [:]
        var elementPlans: [UInt64: Int] = [:]
        var sizes: [TypeID: Int?] = [:]
        /// BTF.pointerSize looks `long` up by name (a scan of the whole BTF): once per plan.
        lazy var pointerSize = btf.pointerSize

        init(btf: BTF, maxDepth: Int) {
            self.btf = btf
            self.maxDepth = maxDepth
        }

        mutating func build(_ type: TypeID) -> FormatPlan {
            var steps: [Step] = []
            emit(type, offset: 0, slice: nil, depth: 0, into: &steps)
            plans[0] = steps
            return finish()
        }

        /// One step list for all plans (indices made absolute), and the length bound.
        func finish() -> FormatPlan {
            var starts: [Int] = []
            var total = 0
            for p in plans { starts.append(total); total += p.count }
            var all: [Step] = []
            all.reserveCapacity(total)
            for (index, plan) in plans.enumerated() {
                let base = starts[index]
                for step in plan {
                    switch step {
                    case .item(let end, let skip, let depth, let start, let count):
                        all.append(.item(end: end, skip: base + skip, depth: depth, start: start, count: count))
                    case .textIfPrintable(let offset, let count, let skip):
                        all.append(.textIfPrintable(offset: offset, count: count, skip: base + skip))
                    case .array(let offset, let count, let stride, let plan, _):   // start: the plan's index
                        all.append(.array(offset: offset, count: count, stride: stride, start: starts[plan], end: starts[plan] + plans[plan].count))
                    default:
                        all.append(step)
                    }
                }
            }
            // Bounds: a plan's after those of the element plans it uses (deeper, so no cycle).
            var bounds = [(fixed: Int, perByte: Int)?](repeating: nil, count: plans.count)
            func compute(_ index: Int) -> (fixed: Int, perByte: Int) {
                if let known = bounds[index] { return known }
                let b = bound(plans[index], compute)
                bounds[index] = b
                return b
            }
            let root = compute(0)
            let limit = 1 << 40
            if root.fixed >= limit || root.perByte >= limit {
                // Absurd BTF (arrays of arrays of billions): print the bytes instead.
                return FormatPlan(steps: [.hex(offset: 0, length: -1)], rootEnd: 1, literals: [], enums: [], fixedLength: 0, lengthPerByte: 3)
            }
            return FormatPlan(steps: all, rootEnd: plans[0].count, literals: literals, enums: enums,
                              fixedLength: root.fixed, lengthPerByte: root.perByte)
        }

        /// The most one plan writes: fixed + perByte * (bytes given). Saturates instead of
        /// overflowing.
        func bound(_ plan: [Step], _ elementBound: (Int) -> (fixed: Int, perByte: Int)) -> (fixed: Int, perByte: Int) {
            var fixed = 0, perByte = 0
            func add(_ n: Int) { fixed = min(fixed &+ n, 1 << 50) }
            for step in plan {
                switch step {
                case .literal(_, let n), .open(_, let n, _): add(n)
                case .item(_, _, _, _, let n): add(2 + n)
                case .unsigned, .signed, .bitfield: add(20 + 1)
                case .bool: add(5)
                case .wide: add(2 + 32)
                case .enumeration(_, _, _, let table):
                    add(max(21, enums[table].values.map(\.count).max() ?? 0))
                case .pointer: add(2 + 16)
                case .float(_, _, let length):
                    // Swift's shortest Double text is under 32 bytes; else hex "xx " per byte.
                    if length < 0 { add(32); perByte += 3 } else { add(max(32, 3 * length)) }
                case .text(_, let n): add(2 + 4 * n)   // every byte escaped: \xNN
                case .textIfPrintable(_, let n, _): add(2 + n)
                case .hex(_, let length):
                    if length < 0 { perByte += 3 } else { add(3 * length) }
                case .array(_, let n, _, let plan, _):
                    let element = elementBound(plan)
                    // Elements are sized: their bound has no per-byte part.
                    let (each, o1) = (2 + element.fixed).multipliedReportingOverflow(by: n)
                    add(o1 ? 1 << 50 : 2 + each)
                }
            }
            return (fixed, perByte)
        }

        mutating func literal(_ s: String) -> (start: Int, count: Int) {
            if let r = literalIndex[s] { return r }
            let r = (start: literals.count, count: s.utf8.count)
            literals.append(contentsOf: s.utf8)
            literalIndex[s] = r
            return r
        }

        mutating func append(_ s: String, to steps: inout [Step]) {
            let r = literal(s)
            steps.append(.literal(start: r.start, count: r.count))
        }

        /// Steps printing a value of `id` at `offset`. `slice` is how many bytes the value has
        /// (its type's size; nil for the outermost value, which has the bytes given).
        mutating func emit(_ id: TypeID, offset: Int, slice: Int?, depth: Int, into steps: inout [Step]) {
            let hexAll = Step.hex(offset: offset, length: slice ?? -1)
            guard depth <= maxDepth, let resolved = try? btf.resolve(id), let t = try? btf.type(resolved) else {
                steps.append(hexAll)
                return
            }
            let typeSize = Int(t.size)
            switch t.kind {
            case .int:
                guard let info = t.intInfo else { steps.append(hexAll); return }
                if info.encoding.contains(.bool) {
                    steps.append(.bool(offset: offset, size: typeSize))
                } else if typeSize == 16 {
                    steps.append(.wide(offset: offset, signed: info.encoding.contains(.signed)))
                } else if info.encoding.contains(.signed) {
                    steps.append(.signed(offset: offset, size: typeSize))
                } else {
                    steps.append(.unsigned(offset: offset, size: typeSize))
                }
            case .enum, .enum64:
                steps.append(.enumeration(offset: offset, size: typeSize, signed: t.isSignedEnum, table: enumTable(resolved, t)))
            case .pointer:
                steps.append(.pointer(offset: offset, size: slice.map { min($0, 8) } ?? 8))
            case .float:
                steps.append(.float(offset: offset, size: typeSize, sliceLength: slice ?? -1))
            case .array:
                guard let a = t.arrayInfo, let elementSize = size(of: a.elementType), elementSize > 0 else {
                    steps.append(hexAll)
                    return
                }
                let count = Int(a.count)
                switch charKind(a.elementType) {
                case .text:
                    steps.append(.text(offset: offset, count: count))
                    return
                case .bytes:
                    let at = steps.count
                    steps.append(.textIfPrintable(offset: offset, count: count, skip: 0))
                    steps.append(.array(offset: offset, count: count, stride: elementSize, start: elementPlan(a.elementType, size: elementSize, depth: depth + 1), end: 0))
                    steps[at] = .textIfPrintable(offset: offset, count: count, skip: steps.count)
                case .none:
                    steps.append(.array(offset: offset, count: count, stride: elementSize, start: elementPlan(a.elementType, size: elementSize, depth: depth + 1), end: 0))
                }
            case .struct, .union:
                if depth == maxDepth { append("{...}", to: &steps); return }
                let open = literal("{ ")
                steps.append(.open(start: open.start, count: open.count, depth: depth))
                for m in t.members {
                    let label = literal(m.name.isEmpty ? "" : ".\(m.name) = ")
                    let at = steps.count
                    if m.bitfieldSize > 0 {
                        steps.append(.item(end: 0, skip: 0, depth: depth, start: label.start, count: label.count))
                        let info = (try? btf.type(btf.resolve(m.type)))?.intInfo
                        steps.append(.bitfield(bitOffset: offset * 8 + Int(m.bitOffset), bits: Int(m.bitfieldSize),
                                               signed: info?.encoding.contains(.signed) ?? false,
                                               limit: slice.map { offset + $0 } ?? -1))
                        continue
                    }
                    let start = Int(m.bitOffset / 8)
                    let memberSize = size(of: m.type) ?? 0
                    // A member past the end of its (sized) parent never fits.
                    if let slice, start + memberSize > slice { continue }
                    steps.append(.literal(start: 0, count: 0))   // the item, once its end is known
                    emit(m.type, offset: offset + start, slice: memberSize, depth: depth + 1, into: &steps)
                    steps[at] = .item(end: offset + start + memberSize, skip: steps.count, depth: depth,
                                      start: label.start, count: label.count)
                }
                append(" }", to: &steps)
            default:
                steps.append(hexAll)
            }
        }

        /// `btf.size(of:)`, remembered, with the pointer size looked up once.
        mutating func size(of id: TypeID) -> Int? {
            if let known = sizes[id] { return known }
            var size: Int?
            if let r = try? btf.resolve(id), btf.kind(of: r) == .pointer {
                size = pointerSize
            } else if let r = try? btf.resolve(id), let t = try? btf.type(r), t.kind == .array, let a = t.arrayInfo {
                if let e = self.size(of: a.elementType) {
                    let (n, overflow) = e.multipliedReportingOverflow(by: Int(a.count))
                    size = overflow ? nil : n
                }
            } else {
                size = try? btf.size(of: id)
            }
            sizes[id] = size
            return size
        }

        /// The plan of an array's elements (shared by arrays of the same element type and depth).
        mutating func elementPlan(_ element: TypeID, size: Int, depth: Int) -> Int {
            let key = UInt64(element) << 8 | UInt64(depth)
            if let i = elementPlans[key] { return i }
            let index = plans.count
            plans.append([])
            elementPlans[key] = index
            var steps: [Step] = []
            emit(element, offset: 0, slice: size, depth: depth, into: &steps)
            plans[index] = steps
            return index
        }

        mutating func enumTable(_ id: TypeID, _ t: BTFType) -> Int {
            if let i = enumIndex[id] { return i }
            var table: [UInt64: (start: Int, count: Int)] = [:]
            for e in t.enumerators {
                // As read: 32-bit enums sign- or zero-extended, 64-bit ones as they are.
                let v = t.kind == .enum
                    ? (t.isSignedEnum ? UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: e.value))) : e.value & 0xffff_ffff)
                    : e.value
                if table[v] == nil { table[v] = literal(e.name) }   // the first name of a value wins
            }
            enums.append(table)
            enumIndex[id] = enums.count - 1
            return enums.count - 1
        }

        enum CharKind { case text, bytes, none }

        /// `char` arrays are text; `unsigned char`/`signed char` arrays (`__u8`, `__s8`) are bytes
        /// that print as text only when they look like it.
        func charKind(_ id: TypeID) -> CharKind {
            guard let r = try? btf.resolve(id), let t = try? btf.type(r), t.kind == .int, t.size == 1 else { return .none }
            if t.name == "char" || t.intInfo?.encoding.contains(.char) == true { return .text }
            if t.name == "unsigned char" || t.name == "signed char" { return .bytes }
            return .none
        }
    }
}

/// Where a plan writes: a pointer moved past each byte written. Capacity is the caller's
/// (see `FormatPlan.maxLength`); nothing here checks it.
struct Cursor {
    var p: UnsafeMutablePointer<UInt8>

    init(_ p: UnsafeMutablePointer<UInt8>) { self.p = p }

    static let hexDigits: StaticString = "0123456789abcdef"
    /// "00" "01" ... "99": two digits per division.
    static let digitPairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    @inline(__always)
    mutating func put(_ b: UInt8) {
        p.initialize(to: b)
        p += 1
    }

    @inline(__always)
    mutating func put(_ source: UnsafePointer<UInt8>, _ n: Int) {
        if n <= 0 { return }
        p.update(from: source, count: n)
        p += n
    }

    mutating func text(_ s: String) {
        for b in s.utf8 { put(b) }
    }

    /// Decimal digits, two at a time from a table, written right to left.
    @inline(__always)
    mutating func decimal(_ value: UInt64) {
        if value < 10 { put(48 &+ UInt8(truncatingIfNeeded: value)); return }
        let n = Cursor.digits(value)
        let pairs = Cursor.digitPairs.utf8Start
        var end = p + n
        var v = value
        while v >= 100 {
            let r = Int(truncatingIfNeeded: v % 100)
            v /= 100
            end -= 2
            end[0] = pairs[2 * r]
            end[1] = pairs[2 * r + 1]
        }
        if v >= 10 {
            end -= 2
            end[0] = pairs[2 * Int(v)]
            end[1] = pairs[2 * Int(v) + 1]
        } else {
            end -= 1
            end[0] = 48 &+ UInt8(truncatingIfNeeded: v)
        }
        p += n
    }

    @inline(__always)
    static func digits(_ v: UInt64) -> Int {
        var n = 1
        var limit: UInt64 = 10
        while n < 20 && v >= limit {
            n += 1
            limit = limit &* 10
        }
        return n
    }

    @inline(__always)
    mutating func signed(_ value: Int64) {
        if value < 0 {
            put(0x2d)
            decimal(0 &- UInt64(bitPattern: value))
        } else {
            decimal(UInt64(value))
        }
    }

    /// Lowercase hex without leading zeros (at least `width` digits).
    mutating func hexNumber(_ value: UInt64, width: Int = 1) {
        let digits = Cursor.hexDigits.utf8Start
        let n = max(width, (64 - value.leadingZeroBitCount + 3) / 4, 1)
        for d in stride(from: n - 1, through: 0, by: -1) {
            put(digits[Int((value >> (4 * UInt64(d))) & 15)])
        }
    }

    /// Hex bytes separated by spaces.
    mutating func hexBytes(_ bytes: UnsafeRawBufferPointer) {
        let digits = Cursor.hexDigits.utf8Start
        for (i, b) in bytes.enumerated() {
            if i > 0 { put(0x20) }
            put(digits[Int(b >> 4)])
            put(digits[Int(b & 15)])
        }
    }

    /// `"..."`: printable ASCII and valid UTF-8 sequences as they are; quotes, backslashes and
    /// every other byte escaped as C writes them (\n, \t, \r, \", \\, else \xNN).
    mutating func quoted(_ s: UnsafeRawBufferPointer) {
        put(0x22)
        guard let base = s.baseAddress?.assumingMemoryBound(to: UInt8.self) else { put(0x22); return }
        let digits = Cursor.hexDigits.utf8Start
        var run = 0
        var i = 0
        let n = s.count
        while i < n {
            let b = base[i]
            if b >= 0x20 && b < 0x7f && b != 0x22 && b != 0x5c { i += 1; continue }
            if b >= 0x80 {
                let length = Cursor.utf8SequenceLength(s, i)
                if length > 0 { i += length; continue }
            }
            put(base + run, i - run)
            put(0x5c)
            switch b {
            case 0x0a: put(0x6e)
            case 0x09: put(0x74)
            case 0x0d: put(0x72)
            case 0x22, 0x5c: put(b)
            default:
                put(0x78)
                put(digits[Int(b >> 4)])
                put(digits[Int(b & 15)])
            }
            i += 1
            run = i
        }
        put(base + run, n - run)
        put(0x22)
    }

    /// The length of the well-formed UTF-8 sequence starting at `i` (RFC 3629: no overlong
    /// forms, no surrogates, nothing above U+10FFFF), or 0.
    static func utf8SequenceLength(_ s: UnsafeRawBufferPointer, _ i: Int) -> Int {
        let b0 = s[i]
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xbf   // the second byte's range
        switch b0 {
        case 0xc2 ... 0xdf: length = 2
        case 0xe0: length = 3; low = 0xa0
        case 0xe1 ... 0xec, 0xee ... 0xef: length = 3
        case 0xed: length = 3; high = 0x9f
        case 0xf0: length = 4; low = 0x90
        case 0xf1 ... 0xf3: length = 4
        case 0xf4: length = 4; high = 0x8f
        default: return 0
        }
        guard i + length <= s.count else { return 0 }
        let b1 = s[i + 1]
        guard b1 >= low && b1 <= high else { return 0 }
        for k in 2 ..< length where s[i + k] & 0xc0 != 0x80 { return 0 }
        return length
    }
}
