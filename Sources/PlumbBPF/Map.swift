import PlumbSys
import Synchronization
import Glibc

/// A BPF map the kernel holds, owned through its fd (closed when the `Map` is released).
///
/// Value buffers are always sized from the map's own shape: per-CPU maps read and write
/// one 8-byte-aligned slot per possible CPU, whatever the caller expects.
public final class Map: @unchecked Sendable {
    public let fd: OwnedFD
    public let name: String
    public let type: MapType
    public let keySize: Int
    public let valueSize: Int
    public let maxEntries: Int
    public let flags: MapFlags
    /// Kernel id (stable for the object's lifetime, unlike the fd).
    public let id: UInt32
    /// BTF type ids of key and value, when the map was created with BTF (0 otherwise).
    public let btfKeyTypeID: UInt32
    public let btfValueTypeID: UInt32
    private let pin = Mutex<String?>(nil)

    /// Takes ownership of a map fd and reads its shape from the kernel.
    public init(fd: consuming OwnedFD) throws(BPFError) {
        let info: MapInfo
        do { info = try Sys.mapInfo(fd) } catch { throw .system(error) }
        guard let type = info.type else {
            throw .mapMismatch(map: info.name, reason: "unknown map type \(info.rawType) (newer than this library)")
        }
        self.fd = fd
        self.name = info.name
        self.type = type
        self.keySize = Int(info.keySize)
        self.valueSize = Int(info.valueSize)
        self.maxEntries = Int(info.maxEntries)
        self.flags = info.flags
        self.id = info.id
        self.btfKeyTypeID = info.btfKeyTypeID
        self.btfValueTypeID = info.btfValueTypeID
    }

    /// BPF_MAP_CREATE with everything the kernel takes.
    public convenience init(_ attributes: MapAttributes) throws(BPFError) {
        let fd: OwnedFD
        do { fd = try Sys.mapCreate(attributes) } catch { throw .system(error) }
        try self.init(fd: fd)
    }

    /// Creates a map (the common case).
    public static func create(type: MapType, keySize: Int, valueSize: Int, maxEntries: Int,
                              flags: MapFlags = [], name: String = "") throws(BPFError) -> Map {
        guard let k = UInt32(exactly: keySize), let v = UInt32(exactly: valueSize), let n = UInt32(exactly: maxEntries) else {
            throw .invalidArgument("map sizes out of range: key \(keySize), value \(valueSize), max_entries \(maxEntries)")
        }
        return try Map(MapAttributes(type: type, keySize: k, valueSize: v, maxEntries: n, flags: flags, name: name))
    }

    /// Opens an existing map by kernel id (needs CAP_SYS_ADMIN).
    public convenience init(id: UInt32) throws(BPFError) {
        let found: OwnedFD?
        do { found = try Sys.fd(byID: id, kind: .map) } catch { throw .system(error) }
        guard let fd = found else { throw .system(.syscall(command: .mapGetFDByID, errno: .noSuchFileOrDirectory, context: "no map with id \(id)")) }
        try self.init(fd: fd)
    }

    /// Opens a map pinned on bpffs.
    public convenience init(pinned path: String) throws(BPFError) {
        let fd: OwnedFD
        do { fd = try Sys.objGet(path: path) } catch { throw .system(error) }
        try self.init(fd: fd)
    }

    /// Possible CPUs: the number of value slots of a per-CPU map.
    public static func possibleCPUCount() throws(BPFError) -> Int {
        do { return try CPUs.possible().count } catch { throw .system(error) }
    }

    /// Bytes of one per-CPU slot: the kernel rounds every CPU's value up to 8 bytes.
    public var perCPUSlotSize: Int { (valueSize + 7) & ~7 }

    /// Bytes a lookup writes for one element.
    public func valueBufferSize() throws(BPFError) -> Int {
        type.isPerCPU ? perCPUSlotSize * (try Map.possibleCPUCount()) : valueSize
    }

    private var label: String { name.isEmpty ? "\(type) map id \(id)" : "\(name)" }

    /// A failed syscall on this map, named by the map rather than its fd.
    private func failure(_ error: SysError) -> BPFError { .system(error.naming("map '\(label)'")) }

    private func check(key count: Int) throws(BPFError) {
        if count != keySize { throw .mapMismatch(map: label, reason: "key is \(count) bytes, the map's keys are \(keySize)") }
    }

    private func check(value count: Int) throws(BPFError) {
        if count != valueSize { throw .mapMismatch(map: label, reason: "value is \(count) bytes, the map's values are \(valueSize)") }
    }

    private func requireNotPerCPU(_ op: String) throws(BPFError) {
        if type.isPerCPU { throw .mapMismatch(map: label, reason: "\(op) on a per-CPU map: use \(op)PerCPU, which has one value per possible CPU") }
    }

    // MARK: raw elements

    /// The value at `key`, or nil when absent. Per-CPU maps: use `lookupPerCPU`.
    public func lookup(_ key: [UInt8]) throws(BPFError) -> [UInt8]? {
        try requireNotPerCPU("lookup")
        try check(key: key.count)
        return try lookupBuffer(key)
    }

    /// Lookup into a buffer of the map's full value size (per-CPU: all slots).
    private func lookupBuffer(_ key: [UInt8]) throws(BPFError) -> [UInt8]? {
        let size = try valueBufferSize()
        do { return try Sys.mapLookup(fd, key: key, valueSize: size) } catch { throw failure(error) }
    }

    public func update(_ key: [UInt8], _ value: [UInt8], flags: UpdateFlags = .any) throws(BPFError) {
        try requireNotPerCPU("update")
        try check(key: key.count)
        try check(value: value.count)
        do { try Sys.mapUpdate(fd, key: key, value: value, flags: flags) } catch { throw failure(error) }
    }

    /// Deletes `key`; false when it was absent.
    @discardableResult
    public func delete(_ key: [UInt8]) throws(BPFError) -> Bool {
        try check(key: key.count)
        do { return try Sys.mapDelete(fd, key: key) } catch { throw failure(error) }
    }

    /// Every key, by walking BPF_MAP_GET_NEXT_KEY.
    public func keys() throws(BPFError) -> [[UInt8]] {
        do { return try Sys.mapKeys(fd, keySize: keySize) } catch { throw failure(error) }
    }

    /// Every (key, value) pair: one batch walk when the kernel supports it for this map,
    /// otherwise keys then lookups (elements deleted in between are skipped).
    public func entries() throws(BPFError) -> [(key: [UInt8], value: [UInt8])] {
        try requireNotPerCPU("entries")
        return try rawEntries()
    }

    private func rawEntries() throws(BPFError) -> [(key: [UInt8], value: [UInt8])] {
        if let batch = try? lookupBatch() { return batch }
        var out: [(key: [UInt8], value: [UInt8])] = []
        for k in try keys() {
            if let v = try lookupBuffer(k) { out.append((k, v)) }
        }
        return out
    }

    // MARK: typed elements

    /// Typed lookup; `K` and `V` must be exactly the map's key and value sizes.
    public func lookup<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, as: V.Type = V.self) throws(BPFError) -> V? {
        try checkTypes(K.self, V.self)
        guard let bytes = try lookup(Self.bytes(of: key)) else { return nil }
        return Self.load(bytes, as: V.self)
    }

    public func update<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, _ value: V, flags: UpdateFlags = .any) throws(BPFError) {
        try checkTypes(K.self, V.self)
        try update(Self.bytes(of: key), Self.bytes(of: value), flags: flags)
    }

    @discardableResult
    public func delete<K: BitwiseCopyable>(_ key: K) throws(BPFError) -> Bool {
        try delete(Self.bytes(of: key))
    }

    public func keys<K: BitwiseCopyable>(as: K.Type) throws(BPFError) -> [K] {
        try check(key: MemoryLayout<K>.size)
        return try keys().map { Self.load($0, as: K.self) }
    }

    public func entries<K: BitwiseCopyable, V: BitwiseCopyable>(as: (K.Type, V.Type)) throws(BPFError) -> [(key: K, value: V)] {
        try checkTypes(K.self, V.self)
        return try entries().map { (Self.load($0.key, as: K.self), Self.load($0.value, as: V.self)) }
    }

    private func checkTypes<K, V>(_: K.Type, _: V.Type) throws(BPFError) {
        if MemoryLayout<K>.size != keySize {
            throw .mapMismatch(map: label, reason: "\(K.self) is \(MemoryLayout<K>.size) bytes, the map's keys are \(keySize)")
        }
        if MemoryLayout<V>.size != valueSize {
            throw .mapMismatch(map: label, reason: "\(V.self) is \(MemoryLayout<V>.size) bytes, the map's values are \(valueSize)")
        }
    }

    static func bytes<T: BitwiseCopyable>(of value: T) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    static func load<T: BitwiseCopyable>(_ bytes: some Collection<UInt8>, as: T.Type) -> T {
        // Callers checked the size; copy into an aligned temporary rather than trust alignment.
        var out = [UInt8](repeating: 0, count: max(MemoryLayout<T>.size, 1))
        _ = out.withUnsafeMutableBufferPointer { $0.initialize(from: bytes.prefix(MemoryLayout<T>.size)) }
        return out.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    // MARK: per-CPU

    /// One value per possible CPU (each `valueSize` bytes, the 8-byte slot padding removed).
    public func lookupPerCPU(_ key: [UInt8]) throws(BPFError) -> [[UInt8]]? {
        guard type.isPerCPU else { throw .mapMismatch(map: label, reason: "lookupPerCPU on a \(type) map, which has one value per key") }
        try check(key: key.count)
        guard let all = try lookupBuffer(key) else { return nil }
        return splitPerCPU(all)
    }

    private func splitPerCPU(_ all: [UInt8]) -> [[UInt8]] {
        let slot = perCPUSlotSize
        return stride(from: 0, to: all.count, by: slot).map { Array(all[$0..<min($0 + valueSize, all.count)]) }
    }

    /// Sets every CPU's value: `values` holds one value per possible CPU.
    public func updatePerCPU(_ key: [UInt8], _ values: [[UInt8]], flags: UpdateFlags = .any) throws(BPFError) {
        guard type.isPerCPU else { throw .mapMismatch(map: label, reason: "updatePerCPU on a \(type) map") }
        try check(key: key.count)
        let cpus = try Map.possibleCPUCount()
        guard values.count == cpus else {
            throw .mapMismatch(map: label, reason: "\(values.count) per-CPU values given, this machine has \(cpus) possible CPUs")
        }
        var buffer = [UInt8](repeating: 0, count: perCPUSlotSize * cpus)
        for (i, v) in values.enumerated() {
            try check(value: v.count)
            buffer.replaceSubrange(i * perCPUSlotSize ..< i * perCPUSlotSize + v.count, with: v)
        }
        do { try Sys.mapUpdate(fd, key: key, value: buffer, flags: flags) } catch { throw failure(error) }
    }

    public func lookupPerCPU<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, as: V.Type = V.self) throws(BPFError) -> [V]? {
        try checkTypes(K.self, V.self)
        return try lookupPerCPU(Self.bytes(of: key))?.map { Self.load($0, as: V.self) }
    }

    public func updatePerCPU<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, _ values: [V], flags: UpdateFlags = .any) throws(BPFError) {
        try checkTypes(K.self, V.self)
        try updatePerCPU(Self.bytes(of: key), values.map { Self.bytes(of: $0) }, flags: flags)
    }

    /// Every key with its per-CPU values.
    public func entriesPerCPU() throws(BPFError) -> [(key: [UInt8], values: [[UInt8]])] {
        guard type.isPerCPU else { throw .mapMismatch(map: label, reason: "entriesPerCPU on a \(type) map") }
        return try rawEntries().map { ($0.key, splitPerCPU($0.value)) }
    }

    // MARK: batch

    /// Whether the last batch call fell back to per-element commands (for tests and stats).
    public private(set) var lastBatchFellBack = false

    private static func batchUnsupported(_ e: SysError) -> Bool {
        switch e {
        case .unsupported: return true
        case .syscall(_, let errno, _): return errno == .invalidArgument || errno.isNotSupported
        default: return false
        }
    }

    /// Every element via BPF_MAP_LOOKUP_BATCH (or LOOKUP_AND_DELETE_BATCH); values are
    /// full buffers (per-CPU maps: all slots). Falls back to keys + lookups when unsupported.
    public func lookupBatch(andDelete: Bool = false) throws(BPFError) -> [(key: [UInt8], value: [UInt8])] {
        let vsize = try valueBufferSize()
        var chunk = max(min(maxEntries, 1024), 1)
        var cursor = BatchCursor(keySize: keySize)
        var out: [(key: [UInt8], value: [UInt8])] = []
        while true {
            var keys = [UInt8](repeating: 0, count: chunk * max(keySize, 1))
            var values = [UInt8](repeating: 0, count: chunk * max(vsize, 1))
            let result: BatchResult
            do throws(SysError) {
                result = try withMutableBytes(&keys) { kb throws(SysError) in
                    try withMutableBytes(&values) { vb throws(SysError) in
                        try Sys.mapLookupBatch(fd, cursor: &cursor, keys: kb, values: vb, count: chunk, andDelete: andDelete)
                    }
                }
            } catch {
                if error.errno == .noSpace && chunk < 1 << 20 {
                    // A hash bucket holds more elements than fit: retry the same position with more room.
                    chunk *= 2
                    continue
                }
                if Self.batchUnsupported(error) && out.isEmpty && !andDelete {
                    lastBatchFellBack = true
                    var slow: [(key: [UInt8], value: [UInt8])] = []
                    for k in try self.keys() { if let v = try lookupBuffer(k) { slow.append((k, v)) } }
                    return slow
                }
                if Self.batchUnsupported(error) && out.isEmpty && andDelete {
                    lastBatchFellBack = true
                    var slow: [(key: [UInt8], value: [UInt8])] = []
                    for k in try self.keys() {
                        if let v = try lookupBuffer(k) { slow.append((k, v)); try delete(k) }
                    }
                    return slow
                }
                throw failure(error)
            }
            lastBatchFellBack = false
            for i in 0..<min(result.count, chunk) {
                out.append((Array(keys[i * keySize ..< (i + 1) * keySize]), Array(values[i * vsize ..< (i + 1) * vsize])))
            }
            if result.done { return out }
        }
    }

    /// Writes `keys[i] = values[i]` with one BPF_MAP_UPDATE_BATCH (per-element fallback).
    /// Per-CPU maps: each value is the full buffer (one 8-byte-aligned slot per possible CPU).
    public func updateBatch(keys: [[UInt8]], values: [[UInt8]], flags: UpdateFlags = .any) throws(BPFError) {
        guard keys.count == values.count else { throw .invalidArgument("\(keys.count) keys but \(values.count) values") }
        if keys.isEmpty { return }
        let vsize = try valueBufferSize()
        for k in keys { try check(key: k.count) }
        for v in values where v.count != vsize {
            throw .mapMismatch(map: label, reason: "batch value is \(v.count) bytes, elements of this map take \(vsize)")
        }
        let flat = keys.flatMap { $0 }, flatValues = values.flatMap { $0 }
        do throws(SysError) {
            _ = try withBytes(flat) { kb throws(SysError) in
                try withBytes(flatValues) { vb throws(SysError) in
                    try Sys.mapUpdateBatch(fd, keys: kb, values: vb, count: keys.count, elemFlags: flags.rawValue)
                }
            }
            lastBatchFellBack = false
        } catch {
            guard Self.batchUnsupported(error) else { throw failure(error) }
            lastBatchFellBack = true
            do {
                for (k, v) in zip(keys, values) { try Sys.mapUpdate(fd, key: k, value: v, flags: flags) }
            } catch { throw failure(error) }
        }
    }

    /// Deletes `keys` with one BPF_MAP_DELETE_BATCH (per-element fallback). Returns how many were deleted.
    @discardableResult
    public func deleteBatch(keys: [[UInt8]]) throws(BPFError) -> Int {
        if keys.isEmpty { return 0 }
        for k in keys { try check(key: k.count) }
        let flat = keys.flatMap { $0 }
        do throws(SysError) {
            let n = try withBytes(flat) { kb throws(SysError) in try Sys.mapDeleteBatch(fd, keys: kb, count: keys.count) }
            lastBatchFellBack = false
            return n
        } catch {
            // ENOENT: a key was absent; the kernel stops there. Finish one by one.
            guard Self.batchUnsupported(error) || error.errno == .noSuchFileOrDirectory else { throw failure(error) }
            lastBatchFellBack = true
            var n = 0
            for k in keys where try delete(k) { n += 1 }
            return n
        }
    }

    // MARK: queue / stack / bloom filter

    private func requireKeyless(_ op: String) throws(BPFError) {
        guard type == .queue || type == .stack || type == .bloomFilter else {
            throw .mapMismatch(map: label, reason: "\(op) needs a queue, stack (or bloom filter) map, this is \(type)")
        }
    }

    /// Pushes onto a queue/stack (adds to a bloom filter). `.exist` overwrites the oldest when full.
    public func push(_ value: [UInt8], flags: UpdateFlags = .any) throws(BPFError) {
        try requireKeyless("push")
        try check(value: value.count)
        do { try Sys.mapUpdate(fd, key: [], value: value, flags: flags) } catch { throw failure(error) }
    }

    /// Removes and returns the next element (queue: oldest, stack: newest); nil when empty.
    public func pop() throws(BPFError) -> [UInt8]? {
        try requireKeyless("pop")
        var value = [UInt8](repeating: 0, count: valueSize)
        let found: Bool
        do {
            found = try withMutableBytes(&value) { (v) throws(SysError) in try Sys.mapLookupAndDelete(fd, key: nil, value: v) }
        } catch { throw failure(error) }
        return found ? value : nil
    }

    /// The next element without removing it; nil when empty.
    public func peek() throws(BPFError) -> [UInt8]? {
        try requireKeyless("peek")
        var value = [UInt8](repeating: 0, count: valueSize)
        let found: Bool
        do {
            found = try withMutableBytes(&value) { (v) throws(SysError) in try Sys.mapLookup(fd, key: nil, value: v) }
        } catch { throw failure(error) }
        return found ? value : nil
    }

    public func push<V: BitwiseCopyable>(_ value: V, flags: UpdateFlags = .any) throws(BPFError) {
        try push(Self.bytes(of: value), flags: flags)
    }

    public func pop<V: BitwiseCopyable>(as: V.Type) throws(BPFError) -> V? {
        try check(value: MemoryLayout<V>.size)
        return try pop().map { Self.load($0, as: V.self) }
    }

    public func peek<V: BitwiseCopyable>(as: V.Type) throws(BPFError) -> V? {
        try check(value: MemoryLayout<V>.size)
        return try peek().map { Self.load($0, as: V.self) }
    }

    // MARK: freeze, pin

    /// Makes the map read-only for user space (programs may still write unless rdonlyProg).
    public func freeze() throws(BPFError) {
        do { try Sys.mapFreeze(fd) } catch { throw failure(error) }
    }

    /// Where this map was pinned by `pin`, if anywhere.
    public var pinnedPath: String? { pin.withLock { $0 } }

    /// Pins the map at `path` on a bpffs mount; it then outlives this process until `unpin`.
    public func pin(_ path: String) throws(BPFError) {
        do { try Sys.objPin(fd, path: path) } catch { throw failure(error) }
        pin.withLock { $0 = path }
    }

    /// Removes the pin (`path`, or where `pin` put it).
    public func unpin(_ path: String? = nil) throws(BPFError) {
        guard let target = path ?? pinnedPath else { throw .invalidArgument("map '\(label)' is not pinned") }
        if unlink(target) != 0 {
            throw .system(.file(path: target, errno: .current))
        }
        pin.withLock { if $0 == target { $0 = nil } }
    }

    // MARK: memory-mapped arrays

    /// Maps the values of a BPF_F_MMAPABLE array into this process: reads and writes go
    /// straight to the kernel's memory (global data). Frozen maps can only be mapped read-only.
    public func mapMemory(writable: Bool = true) throws(BPFError) -> MapMemory {
        guard type == .array, flags.contains(.mmapable) else {
            throw .mapMismatch(map: label, reason: "only array maps created with BPF_F_MMAPABLE can be memory-mapped")
        }
        let stride = (valueSize + 7) & ~7
        let page = Perf.pageSize
        let (bytes, overflow) = stride.multipliedReportingOverflow(by: maxEntries)
        guard !overflow, bytes > 0 else { throw .mapMismatch(map: label, reason: "map too large to mmap") }
        let length = (bytes + page - 1) / page * page
        let region: MappedRegion
        do { region = try MappedRegion(fd: fd.rawValue, length: length, writable: writable, offset: 0) } catch { throw failure(error) }
        return MapMemory(map: self, region: region, stride: stride, writable: writable)
    }
}

/// The values of a memory-mapped array map, in place. Valid while this object lives.
public final class MapMemory: @unchecked Sendable {
    public let map: Map
    private let region: MappedRegion
    /// Distance between consecutive elements (value size rounded up to 8).
    public let stride: Int
    public let isWritable: Bool

    init(map: Map, region: consuming MappedRegion, stride: Int, writable: Bool) {
        self.map = map
        self.region = region
        self.stride = stride
        self.isWritable = writable
    }

    /// All mapped bytes (a page multiple; elements start at multiples of `stride`).
    public var bytes: UnsafeMutableRawBufferPointer { region.bytes }

    /// The value bytes of element `index`.
    public func element(_ index: Int) throws(BPFError) -> UnsafeMutableRawBufferPointer {
        guard index >= 0, index < map.maxEntries else {
            throw .invalidArgument("index \(index) outside map '\(map.name)' (max_entries \(map.maxEntries))")
        }
        return UnsafeMutableRawBufferPointer(rebasing: region.bytes[index * stride ..< index * stride + map.valueSize])
    }

    /// Reads a `T` at byte `offset` of element `index`.
    public func load<T: BitwiseCopyable>(_ index: Int = 0, offset: Int = 0, as: T.Type) throws(BPFError) -> T {
        let e = try element(index)
        guard offset >= 0, offset + MemoryLayout<T>.size <= e.count else {
            throw .invalidArgument("\(T.self) at offset \(offset) runs past the \(e.count)-byte value")
        }
        return e.loadUnaligned(fromByteOffset: offset, as: T.self)
    }

    /// Writes a `T` at byte `offset` of element `index`.
    public func store<T: BitwiseCopyable>(_ value: T, _ index: Int = 0, offset: Int = 0) throws(BPFError) {
        guard isWritable else { throw .invalidArgument("map '\(map.name)' was mapped read-only") }
        let e = try element(index)
        guard offset >= 0, offset + MemoryLayout<T>.size <= e.count else {
            throw .invalidArgument("\(T.self) at offset \(offset) runs past the \(e.count)-byte value")
        }
        e.storeBytes(of: value, toByteOffset: offset, as: T.self)
    }
}
