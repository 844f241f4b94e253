import PlumbSys
import PlumbBTF

// What code from `plumb gen swift` builds on: fixed-size C strings, typed maps, and the layout
// check that compares a generated Swift struct with the object's BTF when the object is opened.

/// A C `char name[count]` as stored bytes, readable as a String (up to the first NUL).
public struct CString<let count: Int>: Sendable, BitwiseCopyable, CustomStringConvertible {
    public var bytes: InlineArray<count, UInt8>

    public init() { bytes = InlineArray(repeating: 0) }

    /// `text` truncated to `count - 1` bytes and NUL-terminated.
    public init(_ text: String) {
        self.init()
        self.string = text
    }

    public var string: String {
        get {
            var out: [UInt8] = []
            for i in 0..<count {
                if bytes[i] == 0 { break }
                out.append(bytes[i])
            }
            return String(decoding: out, as: UTF8.self)
        }
        set {
            let utf8 = Array(newValue.utf8.prefix(Swift.max(0, count - 1)))
            for i in 0..<count { bytes[i] = i < utf8.count ? utf8[i] : 0 }
        }
    }

    public var description: String { string }
}

/// A map whose keys and values are Swift types of the generated code (sizes checked when made).
public struct TypedMap<Key: BitwiseCopyable, Value: BitwiseCopyable>: @unchecked Sendable {
    public let map: Map

    public init(_ map: Map) throws(BPFError) {
        guard map.keySize == MemoryLayout<Key>.size || (map.keySize == 0 && MemoryLayout<Key>.size == 0) else {
            throw .mapMismatch(map: map.name, reason: "key is \(map.keySize) bytes, \(Key.self) is \(MemoryLayout<Key>.size); regenerate the Swift code for this object")
        }
        guard map.valueSize == MemoryLayout<Value>.size else {
            throw .mapMismatch(map: map.name, reason: "value is \(map.valueSize) bytes, \(Value.self) is \(MemoryLayout<Value>.size); regenerate the Swift code for this object")
        }
        self.map = map
    }

    public func lookup(_ key: Key) throws(BPFError) -> Value? { try map.lookup(key, as: Value.self) }
    public func update(_ key: Key, _ value: Value, flags: UpdateFlags = .any) throws(BPFError) { try map.update(key, value, flags: flags) }
    @discardableResult public func delete(_ key: Key) throws(BPFError) -> Bool { try map.delete(key) }
    public func entries() throws(BPFError) -> [(key: Key, value: Value)] { try map.entries(as: (Key.self, Value.self)) }
    public func keys() throws(BPFError) -> [Key] { try map.keys(as: Key.self) }
}

/// Compares generated Swift layouts with the BTF they came from.
public enum LayoutCheck {
    /// Throws unless the C type `name` of `kind` has `size` bytes and each named member sits at the
    /// offset Swift gave it (nil offsets — computed properties — are skipped).
    public static func verify(_ btf: BTF?, kind: BTFKind, name: String, swiftType: String, size: Int,
                              members: [(String, Int?)]) throws(BPFError) {
        guard let btf else { throw .invalidArgument("the object has no BTF to check \(swiftType) against; compile with clang -g") }
        let id: TypeID
        do { id = try btf.lookup(name, kind: kind) } catch {
            throw .invalidArgument("the object has no \(kind == .union ? "union" : "struct") \(name) for \(swiftType); regenerate the Swift code for this object")
        }
        do {
            try verify(btf, id: id, name: name, swiftType: swiftType, size: size, members: members)
        } catch {
            // C allows one name for several types across compilation units: any that matches will do.
            for other in 1..<TypeID(btf.count) where other != id {
                guard let t = try? btf.type(other), t.kind == kind, t.name == name else { continue }
                if (try? verify(btf, id: other, name: name, swiftType: swiftType, size: size, members: members)) != nil { return }
            }
            throw error
        }
    }

    static func verify(_ btf: BTF, id: TypeID, name: String, swiftType: String, size: Int,
                       members: [(String, Int?)]) throws(BPFError) {
        let t: BTFType
        do { t = try btf.type(id) } catch { throw .btf(path: "object", error) }
        guard Int(t.size) == size else {
            throw .invalidArgument("\(swiftType) is \(size) bytes but \(name) is \(t.size) in the object's BTF; regenerate the Swift code for this object")
        }
        for (member, offset) in members {
            guard let offset else { continue }
            guard let m = t.members.first(where: { $0.name == member }) else {
                throw .invalidArgument("\(name) has no member \(member) (\(swiftType) expects one); regenerate the Swift code for this object")
            }
            guard m.bitfieldSize == 0, Int(m.bitOffset / 8) == offset, m.bitOffset % 8 == 0 else {
                throw .invalidArgument("\(swiftType).\(member) is at byte \(offset) but \(name).\(member) is at bit \(m.bitOffset) in the object's BTF; regenerate the Swift code")
            }
        }
    }

    /// Throws unless the object has enum `name` of `size` bytes whose enumerators have the
    /// values the generated type's static members hold (names are C's; values as bit patterns).
    public static func verifyEnum(_ btf: BTF?, name: String, swiftType: String, size: Int,
                                  values: [(String, UInt64)]) throws(BPFError) {
        guard let btf else { throw .invalidArgument("the object has no BTF to check \(swiftType) against; compile with clang -g") }
        let ids = btf.ids(named: name, kind: .enum) + btf.ids(named: name, kind: .enum64)
        guard !ids.isEmpty else {
            throw .invalidArgument("the object has no enum \(name) for \(swiftType); regenerate the Swift code for this object")
        }
        let mask: UInt64 = size >= 8 ? .max : (1 << UInt64(size * 8)) - 1
        var problem = ""
        // C allows one name for several types across compilation units: any that matches will do.
        for id in ids {
            guard let t = try? btf.type(id) else { continue }
            guard Int(t.size) == size else { problem = "\(swiftType) is \(size) bytes but enum \(name) is \(t.size)"; continue }
            let actual = Dictionary(t.enumerators.map { ($0.name, $0.value & mask) }, uniquingKeysWith: { a, _ in a })
            if let wrong = values.first(where: { actual[$0.0] != $0.1 & mask }) {
                problem = actual[wrong.0] == nil ? "enum \(name) has no \(wrong.0)" : "\(wrong.0) is \(actual[wrong.0] ?? 0) in the object, \(wrong.1 & mask) in \(swiftType)"
                continue
            }
            return
        }
        throw .invalidArgument("\(problem); regenerate the Swift code for this object")
    }

    /// Throws unless global `name` exists with `size` bytes.
    public static func verifyGlobal(_ spec: ObjectSpec, name: String, size: Int) throws(BPFError) {
        guard let v = spec.maps.lazy.compactMap({ $0.variable(name) }).first else {
            throw .invalidArgument("the object has no global '\(name)'; regenerate the Swift code for this object")
        }
        guard Int(v.size) == size else {
            throw .invalidArgument("global '\(name)' is \(v.size) bytes, its Swift type \(size); regenerate the Swift code for this object")
        }
    }

    /// The initial value of global `name` from the object's data sections.
    public static func initialValue<T: BitwiseCopyable>(_ spec: ObjectSpec, name: String, as: T.Type) -> T? {
        for m in spec.maps where m.dataSection != nil {
            guard let v = m.variable(name) else { continue }
            let s = Int(v.offset), e = s + MemoryLayout<T>.size
            guard Int(v.size) == MemoryLayout<T>.size else { return nil }
            if e <= m.contents.count { return m.contents[s..<e].withUnsafeBytes { $0.loadUnaligned(as: T.self) } }
            // .bss has no contents: zero.
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: MemoryLayout<T>.size) { buf in
                buf.initialize(repeating: 0)
                return UnsafeRawBufferPointer(buf).loadUnaligned(as: T.self)
            }
        }
        return nil
    }

    /// The bytes of `value`, for `LoadOptions.globals`.
    public static func bytes<T: BitwiseCopyable>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }
}

extension LayoutCheck {
    /// The live value of global `name` of a loaded object (read from its data-section map).
    public static func currentValue<T: BitwiseCopyable>(_ object: Object, name: String, as: T.Type) throws(BPFError) -> T? {
        guard let (map, v) = object.global(name), Int(v.size) == MemoryLayout<T>.size else { return nil }
        guard let bytes = try map.lookup([0, 0, 0, 0]) else { return nil }
        let s = Int(v.offset), e = s + MemoryLayout<T>.size
        guard e <= bytes.count else { return nil }
        return bytes[s..<e].withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    /// Writes global `name` of a loaded object (read-only sections are frozen and refuse it).
    public static func setValue<T: BitwiseCopyable>(_ object: Object, name: String, _ value: T) throws(BPFError) {
        guard let (map, v) = object.global(name), Int(v.size) == MemoryLayout<T>.size else {
            throw .invalidArgument("no global '\(name)' of \(MemoryLayout<T>.size) bytes")
        }
        guard var bytes = try map.lookup([0, 0, 0, 0]) else { throw .invalidArgument("global data of '\(name)' cannot be read") }
        let s = Int(v.offset)
        guard s + MemoryLayout<T>.size <= bytes.count else { throw .invalidArgument("global '\(name)' lies outside its section") }
        withUnsafeBytes(of: value) { for (i, b) in $0.enumerated() { bytes[s + i] = b } }
        try map.update([0, 0, 0, 0], bytes)
    }
}
