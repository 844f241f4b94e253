import CPlumbSys
import Glibc

/// Everything BPF_MAP_CREATE takes.
public struct MapAttributes: Sendable {
    public var type: MapType
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: MapFlags
    /// At most 15 characters of [A-Za-z0-9_.].
    public var name: String
    /// For array/hash of maps: a map whose shape every inner map must match. Only read during the call.
    public var innerMapFD: Int32?
    /// Sets `MapFlags.numaNode` as well.
    public var numaNode: UInt32?
    public var btfFD: Int32?
    public var btfKeyTypeID: UInt32
    public var btfValueTypeID: UInt32
    public var btfVmlinuxValueTypeID: UInt32
    /// Bloom filter hash count, arena address, … (type specific).
    public var mapExtra: UInt64
    public var ifindex: UInt32

    public init(type: MapType, keySize: UInt32, valueSize: UInt32, maxEntries: UInt32,
                flags: MapFlags = [], name: String = "", innerMapFD: Int32? = nil, numaNode: UInt32? = nil,
                btfFD: Int32? = nil, btfKeyTypeID: UInt32 = 0, btfValueTypeID: UInt32 = 0,
                btfVmlinuxValueTypeID: UInt32 = 0, mapExtra: UInt64 = 0, ifindex: UInt32 = 0) {
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
        self.name = name
        self.innerMapFD = innerMapFD
        self.numaNode = numaNode
        self.btfFD = btfFD
        self.btfKeyTypeID = btfKeyTypeID
        self.btfValueTypeID = btfValueTypeID
        self.btfVmlinuxValueTypeID = btfVmlinuxValueTypeID
        self.mapExtra = mapExtra
        self.ifindex = ifindex
    }
}

/// Where a batch operation stopped; pass it back to continue. Opaque to callers.
package struct BatchCursor: Sendable {
    // Hash maps use a u32 bucket index, arrays a key-sized index: max(keySize, 8) fits both.
    var token: [UInt8]
    var started = false
    package init(keySize: Int) { token = [UInt8](repeating: 0, count: max(keySize, 8)) }
}

/// Outcome of one batch call.
package struct BatchResult: Sendable, Equatable {
    /// Elements processed by this call.
    package var count: Int
    /// True when the map has no more elements (the kernel said ENOENT).
    package var done: Bool
}

extension Sys {
    // MARK: create

    package static func mapCreate(_ a: MapAttributes) throws(SysError) -> OwnedFD {
        var attr = cbpf_map_create_attr()
        attr.map_type = a.type.rawValue
        attr.key_size = a.keySize
        attr.value_size = a.valueSize
        attr.max_entries = a.maxEntries
        var flags = a.flags
        if let node = a.numaNode {
            flags.insert(.numaNode)
            attr.numa_node = node
        }
        attr.map_flags = flags.rawValue
        if let inner = a.innerMapFD { attr.inner_map_fd = UInt32(bitPattern: inner) }
        try setObjectName(&attr.map_name, a.name)
        attr.map_ifindex = a.ifindex
        if let btf = a.btfFD { attr.btf_fd = UInt32(bitPattern: btf) }
        attr.btf_key_type_id = a.btfKeyTypeID
        attr.btf_value_type_id = a.btfValueTypeID
        attr.btf_vmlinux_value_type_id = a.btfVmlinuxValueTypeID
        attr.map_extra = a.mapExtra
        return try callFD(.mapCreate, &attr,
                          context: "\(a.type) map '\(a.name)' key \(a.keySize) value \(a.valueSize) max_entries \(a.maxEntries) flags 0x\(String(a.flags.rawValue, radix: 16))")
    }

    // MARK: elements (raw buffers)

    /// Bytes a lookup writes for one value: per-CPU maps store one 8-byte-aligned slot per possible CPU.
    package static func valueBufferSize(type: MapType, valueSize: Int, possibleCPUs: Int) -> Int {
        type.isPerCPU ? ((valueSize + 7) & ~7) * possibleCPUs : valueSize
    }

    /// BPF_MAP_LOOKUP_ELEM. Returns false when the key is absent (ENOENT).
    /// `value` must hold `valueBufferSize(...)` bytes: the kernel writes that many.
    package static func mapLookup(_ map: borrowing OwnedFD, key: UnsafeRawBufferPointer?,
                                 value: UnsafeMutableRawBufferPointer, flags: UInt64 = 0) throws(SysError) -> Bool {
        try elem(.mapLookupElem, map.rawValue, key: key?.baseAddress, value: value.baseAddress, flags: flags)
    }

    /// BPF_MAP_UPDATE_ELEM.
    package static func mapUpdate(_ map: borrowing OwnedFD, key: UnsafeRawBufferPointer?,
                                 value: UnsafeRawBufferPointer, flags: UpdateFlags = .any) throws(SysError) {
        try updateRaw(map.rawValue, key: key, value: value, flags: flags)
    }

    // Raw-buffer overloads are BitwiseCopyable too, so the generic entry points call this
    // by a distinct name instead of risking overload resolution picking themselves.
    private static func updateRaw(_ fd: Int32, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
                                  flags: UpdateFlags) throws(SysError) {
        var attr = cbpf_map_elem_attr()
        attr.map_fd = UInt32(bitPattern: fd)
        attr.key = address(key?.baseAddress)
        attr.value = address(value.baseAddress)
        attr.flags = flags.rawValue
        if case .failure(let e) = call(.mapUpdateElem, &attr) {
            throw .syscall(command: .mapUpdateElem, errno: e, context: "map fd \(fd)")
        }
    }

    /// BPF_MAP_DELETE_ELEM. Returns false when the key was absent.
    @discardableResult
    package static func mapDelete(_ map: borrowing OwnedFD, key: UnsafeRawBufferPointer) throws(SysError) -> Bool {
        try elem(.mapDeleteElem, map.rawValue, key: key.baseAddress, value: nil, flags: 0)
    }

    /// BPF_MAP_GET_NEXT_KEY. `key` nil asks for the first key. Returns false at the end.
    package static func mapNextKey(_ map: borrowing OwnedFD, key: UnsafeRawBufferPointer?,
                                  next: UnsafeMutableRawBufferPointer) throws(SysError) -> Bool {
        try elem(.mapGetNextKey, map.rawValue, key: key?.baseAddress, value: next.baseAddress, flags: 0)
    }

    /// BPF_MAP_LOOKUP_AND_DELETE_ELEM: pops from queues/stacks (key nil), or takes from hashes.
    /// Returns false when empty / absent.
    package static func mapLookupAndDelete(_ map: borrowing OwnedFD, key: UnsafeRawBufferPointer?,
                                          value: UnsafeMutableRawBufferPointer, flags: UInt64 = 0) throws(SysError) -> Bool {
        try elem(.mapLookupAndDeleteElem, map.rawValue, key: key?.baseAddress, value: value.baseAddress, flags: flags)
    }

    /// BPF_MAP_FREEZE: user space can no longer write; programs still can unless rdonlyProg.
    package static func mapFreeze(_ map: borrowing OwnedFD) throws(SysError) {
        var attr = cbpf_map_elem_attr()
        attr.map_fd = UInt32(bitPattern: map.rawValue)
        if case .failure(let e) = call(.mapFreeze, &attr) {
            throw .syscall(command: .mapFreeze, errno: e, context: "map fd \(map.rawValue)")
        }
    }

    private static func elem(_ cmd: BPFCommand, _ fd: Int32, key: UnsafeRawPointer?, value: UnsafeMutableRawPointer?,
                             flags: UInt64) throws(SysError) -> Bool {
        var attr = cbpf_map_elem_attr()
        attr.map_fd = UInt32(bitPattern: fd)
        attr.key = address(key)
        attr.value = address(value.map { UnsafeRawPointer($0) })
        attr.flags = flags
        switch call(cmd, &attr) {
        case .success: return true
        case .failure(let e) where e == .noSuchFileOrDirectory: return false
        case .failure(let e): throw .syscall(command: cmd, errno: e, context: "map fd \(fd)")
        }
    }

    // MARK: elements (byte arrays / plain values)

    /// Lookup with byte arrays; `valueSize` must be the full buffer size (see `valueBufferSize`).
    package static func mapLookup(_ map: borrowing OwnedFD, key: [UInt8], valueSize: Int) throws(SysError) -> [UInt8]? {
        var value = [UInt8](repeating: 0, count: valueSize)
        let found = try withBytes(key) { (k) throws(SysError) in
            try withMutableBytes(&value) { (v) throws(SysError) in
                try elem(.mapLookupElem, map.rawValue, key: k.count == 0 ? nil : k.baseAddress, value: v.baseAddress, flags: 0)
            }
        }
        return found ? value : nil
    }

    package static func mapUpdate(_ map: borrowing OwnedFD, key: [UInt8], value: [UInt8], flags: UpdateFlags = .any) throws(SysError) {
        try withBytes(key) { (k) throws(SysError) in
            try withBytes(value) { (v) throws(SysError) in
                try updateRaw(map.rawValue, key: k.count == 0 ? nil : k, value: v, flags: flags)
            }
        }
    }

    @discardableResult
    package static func mapDelete(_ map: borrowing OwnedFD, key: [UInt8]) throws(SysError) -> Bool {
        try withBytes(key) { (k) throws(SysError) in try mapDelete(map, key: k) }
    }

    /// All keys, by walking GET_NEXT_KEY. Keys deleted concurrently may restart the walk (kernel semantics).
    package static func mapKeys(_ map: borrowing OwnedFD, keySize: Int) throws(SysError) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        var current: [UInt8]? = nil
        var next = [UInt8](repeating: 0, count: keySize)
        while true {
            let more = try withBytes(current ?? []) { (k) throws(SysError) in
                try withMutableBytes(&next) { (n) throws(SysError) in
                    try mapNextKey(map, key: current == nil ? nil : k, next: n)
                }
            }
            if !more { return keys }
            keys.append(next)
            current = next
        }
    }

    /// Typed lookup for plain (trivially copyable) keys and values of the map's exact sizes.
    package static func mapLookup<K: BitwiseCopyable, V: BitwiseCopyable>(_ map: borrowing OwnedFD, key: K, as: V.Type) throws(SysError) -> V? {
        var k = key
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: MemoryLayout<V>.size, alignment: MemoryLayout<V>.alignment)
        defer { out.deallocate() }
        let found = try withUnsafeBytes(of: &k) { (kb) throws(SysError) in try elem(.mapLookupElem, map.rawValue, key: kb.baseAddress, value: out.baseAddress, flags: 0) }
        return found ? out.loadUnaligned(as: V.self) : nil
    }

    package static func mapUpdate<K: BitwiseCopyable, V: BitwiseCopyable>(_ map: borrowing OwnedFD, key: K, value: V, flags: UpdateFlags = .any) throws(SysError) {
        var k = key, v = value
        try withUnsafeBytes(of: &k) { (kb) throws(SysError) in
            try withUnsafeBytes(of: &v) { (vb) throws(SysError) in try updateRaw(map.rawValue, key: kb, value: vb, flags: flags) }
        }
    }

    // MARK: batch

    /// BPF_MAP_LOOKUP_BATCH (or LOOKUP_AND_DELETE_BATCH). Fills up to `count` keys and values.
    /// Throws `.unsupported` when the map type has no batch ops (e.g. queues, or kernels < 5.6).
    package static func mapLookupBatch(_ map: borrowing OwnedFD, cursor: inout BatchCursor, keys: UnsafeMutableRawBufferPointer,
                                      values: UnsafeMutableRawBufferPointer, count: Int, andDelete: Bool = false,
                                      elemFlags: UInt64 = 0) throws(SysError) -> BatchResult {
        let cmd: BPFCommand = andDelete ? .mapLookupAndDeleteBatch : .mapLookupBatch
        guard let n = UInt32(exactly: count) else { throw .invalidArgument("batch count \(count)") }
        var out = cursor.token
        let r: (SysResult, UInt32) = cursor.token.withUnsafeBytes { inTok in
            out.withUnsafeMutableBytes { outTok in
                var attr = cbpf_map_batch_attr()
                attr.map_fd = UInt32(bitPattern: map.rawValue)
                attr.in_batch = cursor.started ? address(inTok.baseAddress) : 0
                attr.out_batch = address(outTok.baseAddress)
                attr.keys = address(keys.baseAddress)
                attr.values = address(values.baseAddress)
                attr.count = n
                attr.elem_flags = elemFlags
                let res = call(cmd, &attr)
                return (res, attr.count)
            }
        }
        switch r.0 {
        case .success:
            cursor.token = out
            cursor.started = true
            return BatchResult(count: Int(r.1), done: false)
        case .failure(let e) where e == .noSuchFileOrDirectory:
            // ENOENT ends the walk; the elements copied so far in this call still count.
            cursor.token = out
            cursor.started = true
            return BatchResult(count: Int(r.1), done: true)
        case .failure(let e):
            throw batchError(cmd, e, fd: map.rawValue)
        }
    }

    /// BPF_MAP_UPDATE_BATCH: `count` keys and values laid out back to back. Returns how many were written.
    @discardableResult
    package static func mapUpdateBatch(_ map: borrowing OwnedFD, keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer,
                                      count: Int, elemFlags: UInt64 = 0) throws(SysError) -> Int {
        guard let n = UInt32(exactly: count) else { throw .invalidArgument("batch count \(count)") }
        var attr = cbpf_map_batch_attr()
        attr.map_fd = UInt32(bitPattern: map.rawValue)
        attr.keys = address(keys.baseAddress)
        attr.values = address(values.baseAddress)
        attr.count = n
        attr.elem_flags = elemFlags
        if case .failure(let e) = call(.mapUpdateBatch, &attr) { throw batchError(.mapUpdateBatch, e, fd: map.rawValue) }
        return Int(attr.count)
    }

    /// BPF_MAP_DELETE_BATCH. Returns how many were deleted.
    @discardableResult
    package static func mapDeleteBatch(_ map: borrowing OwnedFD, keys: UnsafeRawBufferPointer, count: Int) throws(SysError) -> Int {
        guard let n = UInt32(exactly: count) else { throw .invalidArgument("batch count \(count)") }
        var attr = cbpf_map_batch_attr()
        attr.map_fd = UInt32(bitPattern: map.rawValue)
        attr.keys = address(keys.baseAddress)
        attr.count = n
        if case .failure(let e) = call(.mapDeleteBatch, &attr) { throw batchError(.mapDeleteBatch, e, fd: map.rawValue) }
        return Int(attr.count)
    }

    private static func batchError(_ cmd: BPFCommand, _ e: Errno, fd: Int32) -> SysError {
        if e.isNotSupported {
            return .unsupported(command: cmd, errno: e, context: "map fd \(fd)")
        }
        return .syscall(command: cmd, errno: e, context: "map fd \(fd)\(e == .invalidArgument ? "; kernels before 5.6 have no batch commands" : "")")
    }
}

/// Byte access to an array without copying, with typed throws through the closure (the
/// stdlib's is untyped rethrows). PlumbBPF's map code uses these too.
@inline(__always)
package func withBytes<R>(_ a: [UInt8], _ body: (UnsafeRawBufferPointer) throws(SysError) -> R) throws(SysError) -> R {
    let r: Result<R, SysError> = a.withUnsafeBytes { b in
        do throws(SysError) { return .success(try body(b)) } catch { return .failure(error) }
    }
    return try r.get()
}

@inline(__always)
package func withMutableBytes<R>(_ a: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(SysError) -> R) throws(SysError) -> R {
    let r: Result<R, SysError> = a.withUnsafeMutableBytes { b in
        do throws(SysError) { return .success(try body(b)) } catch { return .failure(error) }
    }
    return try r.get()
}
