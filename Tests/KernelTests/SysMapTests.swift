import PlumbSys
import Glibc
import Testing
import TestSupport

@Suite("BPFSys maps", .serialized)
struct SysMapTests {
    @Test("every common map type can be created and reports its shape")
    func createEachType() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let cpus = try CPUs.possible().count
        let page = UInt32(Perf.pageSize)
        try withLeakCheck { leaks in
            let inner = try Sys.mapCreate(MapAttributes(type: .array, keySize: 4, valueSize: 8, maxEntries: 4, name: "inner"))
            try leaks.map(inner)
            let cases: [MapAttributes] = [
                MapAttributes(type: .hash, keySize: 4, valueSize: 8, maxEntries: 16, name: "h"),
                MapAttributes(type: .array, keySize: 4, valueSize: 8, maxEntries: 16, name: "a"),
                MapAttributes(type: .percpuHash, keySize: 4, valueSize: 8, maxEntries: 16, name: "ph"),
                MapAttributes(type: .percpuArray, keySize: 4, valueSize: 8, maxEntries: 16, name: "pa"),
                MapAttributes(type: .lruHash, keySize: 4, valueSize: 8, maxEntries: 16, name: "lru"),
                MapAttributes(type: .lruPercpuHash, keySize: 4, valueSize: 8, maxEntries: 16, name: "plru"),
                MapAttributes(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: page * 4, name: "rb"),
                MapAttributes(type: .perfEventArray, keySize: 4, valueSize: 4, maxEntries: UInt32(cpus), name: "pe"),
                MapAttributes(type: .stackTrace, keySize: 4, valueSize: 8 * 127, maxEntries: 16, name: "st"),
                MapAttributes(type: .queue, keySize: 0, valueSize: 8, maxEntries: 16, name: "q"),
                MapAttributes(type: .stack, keySize: 0, valueSize: 8, maxEntries: 16, name: "s"),
                MapAttributes(type: .lpmTrie, keySize: 8, valueSize: 8, maxEntries: 16, flags: .noPrealloc, name: "lpm"),
                MapAttributes(type: .arrayOfMaps, keySize: 4, valueSize: 4, maxEntries: 4, name: "aom", innerMapFD: inner.rawValue),
                MapAttributes(type: .hashOfMaps, keySize: 4, valueSize: 4, maxEntries: 4, name: "hom", innerMapFD: inner.rawValue),
                MapAttributes(type: .bloomFilter, keySize: 0, valueSize: 8, maxEntries: 16, name: "bloom", mapExtra: 3),
                MapAttributes(type: .hash, keySize: 4, valueSize: 8, maxEntries: 16, flags: .noPrealloc, name: "numa", numaNode: 0),
            ]
            for a in cases {
                let fd = try Sys.mapCreate(a)
                try leaks.map(fd)
                let info = try Sys.mapInfo(fd)
                #expect(info.type == a.type, "\(a.type)")
                #expect(info.keySize == a.keySize, "\(a.type)")
                #expect(info.valueSize == a.valueSize, "\(a.type)")
                #expect(info.maxEntries == a.maxEntries, "\(a.type)")
                #expect(info.name == a.name)
                #expect(info.id > 0)
            }
        }
    }

    @Test("invalid map attributes give an error naming the command and errno")
    func createErrors() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        do {
            _ = try Sys.mapCreate(MapAttributes(type: .hash, keySize: 0, valueSize: 8, maxEntries: 1))
            Issue.record("zero key size accepted")
        } catch {
            #expect(errnoOf(error) == .invalidArgument)
            #expect(error.description.contains("BPF_MAP_CREATE"))
            #expect(error.description.contains("EINVAL"))
        }
        #expect(throws: SysError.self) { _ = try Sys.mapCreate(MapAttributes(type: .hash, keySize: 4, valueSize: 8, maxEntries: 1, name: "bad name!")) }
    }

    @Test("hash: update, lookup, missing key, flags, iterate, delete")
    func hashElements() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withLeakCheck { leaks in
            let m = try Sys.mapCreate(MapAttributes(type: .hash, keySize: 4, valueSize: 8, maxEntries: 8, name: "crud"))
            try leaks.map(m)
            for k in UInt32(1)...5 { try Sys.mapUpdate(m, key: k, value: UInt64(k) * 100) }
            #expect(try Sys.mapLookup(m, key: UInt32(3), as: UInt64.self) == 300)
            #expect(try Sys.mapLookup(m, key: UInt32(42), as: UInt64.self) == nil)
            // BPF_NOEXIST on an existing key is EEXIST, BPF_EXIST on a missing one ENOENT.
            do {
                try Sys.mapUpdate(m, key: UInt32(3), value: UInt64(1), flags: .noExist)
                Issue.record("NOEXIST overwrote")
            } catch { #expect(errnoOf(error) == .fileExists) }
            do {
                try Sys.mapUpdate(m, key: UInt32(9), value: UInt64(1), flags: .exist)
                Issue.record("EXIST created")
            } catch { #expect(errnoOf(error) == .noSuchFileOrDirectory) }
            let keys = try Sys.mapKeys(m, keySize: 4).map { $0.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }
            #expect(keys.sorted() == [1, 2, 3, 4, 5])
            #expect(try Sys.mapDelete(m, key: [3, 0, 0, 0]))
            #expect(try !Sys.mapDelete(m, key: [3, 0, 0, 0]))
            #expect(try Sys.mapLookup(m, key: [3, 0, 0, 0], valueSize: 8) == nil)
            #expect(try Sys.mapLookup(m, key: [4, 0, 0, 0], valueSize: 8) == [144, 1, 0, 0, 0, 0, 0, 0])
        }
    }

    @Test("per-CPU array: one value slot per possible CPU")
    func perCPU() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let cpus = try CPUs.possible().count
        try withLeakCheck { leaks in
            let m = try Sys.mapCreate(MapAttributes(type: .percpuArray, keySize: 4, valueSize: 4, maxEntries: 2, name: "pcpu"))
            try leaks.map(m)
            // 4-byte values occupy 8-byte slots.
            let size = Sys.valueBufferSize(type: .percpuArray, valueSize: 4, possibleCPUs: cpus)
            #expect(size == 8 * cpus)
            var values = [UInt8](repeating: 0, count: size)
            for c in 0..<cpus { values[c * 8] = UInt8(c + 1) }
            try Sys.mapUpdate(m, key: [1, 0, 0, 0], value: values)
            let back = try #require(try Sys.mapLookup(m, key: [1, 0, 0, 0], valueSize: size))
            let slots: [UInt8] = (0..<cpus).map { back[$0 * 8] }
            let wanted: [UInt8] = (0..<cpus).map { UInt8($0 + 1) }
            #expect(slots == wanted)
        }
    }

    @Test("batch lookup, lookup-and-delete, update and delete; unsupported types say so")
    func batch() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withLeakCheck { leaks in
            let m = try Sys.mapCreate(MapAttributes(type: .hash, keySize: 4, valueSize: 8, maxEntries: 64, name: "batch"))
            try leaks.map(m)
            let n = 20
            var keys = (0..<n).map { UInt32($0 + 1) }
            var vals = (0..<n).map { UInt64($0 + 1) * 7 }
            let written = try keys.withUnsafeBytes { k in try vals.withUnsafeBytes { v in try Sys.mapUpdateBatch(m, keys: k, values: v, count: n) } }
            #expect(written == n)

            // Read back in chunks of 6 until the kernel says done.
            var cursor = BatchCursor(keySize: 4)
            var seen: [UInt32: UInt64] = [:]
            var outK = [UInt32](repeating: 0, count: 6), outV = [UInt64](repeating: 0, count: 6)
            var rounds = 0
            while rounds < 100 {
                rounds += 1
                let r = try outK.withUnsafeMutableBytes { k in
                    try outV.withUnsafeMutableBytes { v in try Sys.mapLookupBatch(m, cursor: &cursor, keys: k, values: v, count: 6) }
                }
                for i in 0..<r.count { seen[outK[i]] = outV[i] }
                if r.done { break }
            }
            #expect(seen.count == n)
            #expect(seen[5] == 35)

            // Delete the first five by batch, then drain the rest with lookup-and-delete.
            keys = Array(keys.prefix(5))
            let deleted = try keys.withUnsafeBytes { try Sys.mapDeleteBatch(m, keys: $0, count: 5) }
            #expect(deleted == 5)
            var drained = 0
            cursor = BatchCursor(keySize: 4)
            outK = [UInt32](repeating: 0, count: 64); vals = [UInt64](repeating: 0, count: 64)
            while true {
                let r = try outK.withUnsafeMutableBytes { k in
                    try vals.withUnsafeMutableBytes { v in try Sys.mapLookupBatch(m, cursor: &cursor, keys: k, values: v, count: 64, andDelete: true) }
                }
                drained += r.count
                if r.done || r.count == 0 { break }
            }
            #expect(drained == n - 5)
            #expect(try Sys.mapKeys(m, keySize: 4).isEmpty)

            // Queues have no batch ops: the error is the distinct `.unsupported` case.
            let q = try Sys.mapCreate(MapAttributes(type: .queue, keySize: 0, valueSize: 8, maxEntries: 4, name: "qbatch"))
            try leaks.map(q)
            var qc = BatchCursor(keySize: 0)
            do {
                _ = try outK.withUnsafeMutableBytes { k in
                    try vals.withUnsafeMutableBytes { v in try Sys.mapLookupBatch(q, cursor: &qc, keys: k, values: v, count: 4) }
                }
                Issue.record("queue batch lookup succeeded")
            } catch {
                guard case .unsupported? = error as? SysError else { Issue.record("expected .unsupported, got \(error)"); return }
                #expect("\(error)".contains("not supported"))
            }
        }
    }

    @Test("queue is FIFO, stack is LIFO, both pop with LOOKUP_AND_DELETE")
    func queueAndStack() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withLeakCheck { leaks in
            for (type, expected) in [(MapType.queue, [UInt64(1), 2, 3]), (.stack, [3, 2, 1])] {
                let m = try Sys.mapCreate(MapAttributes(type: type, keySize: 0, valueSize: 8, maxEntries: 8, name: "\(type)"))
                try leaks.map(m)
                for v in [UInt64(1), 2, 3] {
                    var v = v
                    try withUnsafeBytes(of: &v) { try Sys.mapUpdate(m, key: nil, value: $0) }
                }
                var popped: [UInt64] = []
                var slot: UInt64 = 0
                while try withUnsafeMutableBytes(of: &slot, { try Sys.mapLookupAndDelete(m, key: nil, value: $0) }) {
                    popped.append(slot)
                }
                #expect(popped == expected, "\(type)")
            }
        }
    }

    @Test("frozen maps refuse writes from user space")
    func freeze() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withLeakCheck { leaks in
            let m = try Sys.mapCreate(MapAttributes(type: .array, keySize: 4, valueSize: 8, maxEntries: 1, name: "frozen"))
            try leaks.map(m)
            try Sys.mapUpdate(m, key: UInt32(0), value: UInt64(9))
            try Sys.mapFreeze(m)
            do {
                try Sys.mapUpdate(m, key: UInt32(0), value: UInt64(1))
                Issue.record("frozen map accepted a write")
            } catch { #expect(errnoOf(error) == .notPermitted) }
            #expect(try Sys.mapLookup(m, key: UInt32(0), as: UInt64.self) == 9)
        }
    }

    @Test("pin on bpffs, reopen by path, unpin")
    func pinning() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let root: String
        do { root = try BPFFS.path() } catch {
            guard TestEnv.kernelAvailable("bpffs: \(error)") else { return }
            return
        }
        try withLeakCheck { leaks in
            let m = try Sys.mapCreate(MapAttributes(type: .hash, keySize: 4, valueSize: 4, maxEntries: 4, name: "pinned"))
            try leaks.map(m)
            let path = "\(root)/plumb_sys_test_\(getpid())"
            try Sys.objPin(m, path: path)
            defer { unlink(path) }
            let again = try Sys.objGet(path: path)
            #expect(try Sys.mapInfo(again).id == Sys.mapInfo(m).id)
            #expect(unlink(path) == 0)
            #expect(throws: SysError.self) { _ = try Sys.objGet(path: path) }
        }
    }

    @Test("ids: enumeration sees our map, fd-by-id reopens it, and it vanishes when closed")
    func ids() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        var id: UInt32 = 0
        do {
            let m = try Sys.mapCreate(MapAttributes(type: .array, keySize: 4, valueSize: 4, maxEntries: 1, name: "byid"))
            id = try Sys.mapInfo(m).id
            #expect(try Sys.ids(.map).contains(id))
            guard let reopened = try Sys.fd(byID: id, kind: .map) else {
                Issue.record("map \(id) not found by id")
                return
            }
            #expect(try Sys.mapInfo(reopened).name == "byid")
        }
        for _ in 0..<100 where try Sys.exists(id: id, kind: .map) { usleep(10_000) }
        #expect(try !Sys.exists(id: id, kind: .map))
        #expect(try !Sys.ids(.map).contains(id))
    }

    @Test("CPU list parsing")
    func cpuLists() throws {
        #expect(CPUs.parse("0-1,3\n") == [0, 1, 3])
        #expect(CPUs.parse("0") == [0])
        #expect(CPUs.parse("") == [])
        #expect(CPUs.parse("2-1") == nil)
        #expect(CPUs.parse("a") == nil)
        #expect(CPUs.parse("0-") == nil)
        #expect(try !CPUs.online().isEmpty)
    }
}
