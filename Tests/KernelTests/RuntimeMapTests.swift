import PlumbBPF
import PlumbAsm
import PlumbSys
import Glibc
import Testing
import TestSupport

@Suite("BPF runtime: Map API", .serialized)
struct RuntimeMapTests {
    struct Point: Equatable, BitwiseCopyable { var x: UInt32; var y: UInt32; var z: UInt64 }

    @Test("typed hash: update, lookup, flags, keys, entries, delete; sizes are checked")
    func typedHash() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let m = try Map.create(type: .hash, keySize: 4, valueSize: 16, maxEntries: 32, name: "points")
            leaks.track(m)
            #expect(m.type == .hash && m.keySize == 4 && m.valueSize == 16 && m.maxEntries == 32 && m.name == "points")
            for k in UInt32(1)...10 { try m.update(k, Point(x: k, y: k * 2, z: UInt64(k) << 40)) }
            #expect(try m.lookup(UInt32(7), as: Point.self) == Point(x: 7, y: 14, z: 7 << 40))
            #expect(try m.lookup(UInt32(70), as: Point.self) == nil)
            #expect(throws: BPFError.self) { try m.update(UInt32(7), Point(x: 0, y: 0, z: 0), flags: .noExist) }
            #expect(try m.keys(as: UInt32.self).sorted() == Array(1...10))
            let entries = try m.entries(as: (UInt32.self, Point.self))
            #expect(entries.count == 10)
            #expect(entries.allSatisfy { $0.value.x == $0.key })
            #expect(try m.delete(UInt32(3)))
            #expect(try !m.delete(UInt32(3)))
            #expect(try m.keys().count == 9)
            // Wrong sizes never reach the kernel.
            do {
                _ = try m.lookup(UInt64(1), as: Point.self)
                Issue.record("8-byte key accepted for a 4-byte-key map")
            } catch {
                guard case .mapMismatch(let name, let reason)? = bpfError(error) else { Issue.record("\(error)"); return }
                #expect(name == "points" && reason.contains("keys are 4"))
            }
            #expect(throws: BPFError.self) { _ = try m.lookup(UInt32(1), as: UInt64.self) }
            #expect(throws: BPFError.self) { try m.update([1, 2, 3], [UInt8](repeating: 0, count: 16)) }
            // Raw byte API.
            try m.update([9, 9, 0, 0], [UInt8](repeating: 0xab, count: 16))
            #expect(try m.lookup([9, 9, 0, 0]) == [UInt8](repeating: 0xab, count: 16))
        }
    }

    @Test("per-CPU array and hash: one value per possible CPU, 4-byte values in 8-byte slots")
    func perCPU() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let cpus = try CPUs.possible().count
        try withRuntimeLeakCheck { leaks in
            for type in [MapType.percpuArray, .percpuHash, .lruPercpuHash] {
                let m = try Map.create(type: type, keySize: 4, valueSize: 4, maxEntries: 4, name: "pcpu")
                leaks.track(m)
                #expect(m.perCPUSlotSize == 8)
                #expect(try m.valueBufferSize() == 8 * cpus)
                let values = (0..<cpus).map { UInt32(0xc0de_0000) + UInt32($0) }
                try m.updatePerCPU(UInt32(2), values)
                #expect(try m.lookupPerCPU(UInt32(2), as: UInt32.self) == values, "\(type)")
                let raw = try m.lookupPerCPU([2, 0, 0, 0])
                #expect(raw?.count == cpus && raw?.allSatisfy { $0.count == 4 } == true)
                let all = try m.entriesPerCPU()
                #expect(all.contains { $0.key == [2, 0, 0, 0] && $0.values.count == cpus })
                // The single-value API refuses, rather than handing back a buffer of the wrong shape.
                #expect(throws: BPFError.self) { _ = try m.lookup(UInt32(2), as: UInt32.self) }
                #expect(throws: BPFError.self) { try m.updatePerCPU(UInt32(2), [UInt32(1)] + values) }
            }
        }
    }

    @Test("batch update/lookup/delete on hash and array maps; fallback where the kernel has no batch ops")
    func batch() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        try withRuntimeLeakCheck { leaks in
            let h = try Map.create(type: .hash, keySize: 4, valueSize: 8, maxEntries: 2048, name: "bh")
            leaks.track(h)
            let keys = (0..<1500).map { le32(UInt32($0) * 7) }
            let values = (0..<1500).map { le64(UInt64($0) * 1000) }
            try h.updateBatch(keys: keys, values: values)
            #expect(!h.lastBatchFellBack)
            var got = try h.lookupBatch()
            #expect(!h.lastBatchFellBack)
            #expect(got.count == 1500)
            #expect(Dictionary(uniqueKeysWithValues: got.map { ($0.key, $0.value) }) == Dictionary(uniqueKeysWithValues: zip(keys, values)))
            #expect(try h.deleteBatch(keys: Array(keys.prefix(500))) == 500)
            got = try h.lookupBatch(andDelete: true)
            #expect(got.count == 1000)
            #expect(try h.keys().isEmpty)

            let a = try Map.create(type: .array, keySize: 4, valueSize: 8, maxEntries: 100, name: "ba")
            leaks.track(a)
            try a.updateBatch(keys: (0..<100).map { le32(UInt32($0)) }, values: (0..<100).map { le64(UInt64($0) + 1) })
            let arr = try a.lookupBatch()
            #expect(arr.count == 100)
            #expect(arr.allSatisfy { $0.value == le64(UInt64($0.key[0]) + 1) })

            // Per-CPU batch: values are the full per-CPU buffers.
            let cpus = try CPUs.possible().count
            let pc = try Map.create(type: .percpuHash, keySize: 4, valueSize: 8, maxEntries: 16, name: "bpc")
            leaks.track(pc)
            try pc.updateBatch(keys: [le32(1), le32(2)], values: [[UInt8](repeating: 1, count: 8 * cpus), [UInt8](repeating: 2, count: 8 * cpus)])
            #expect(try pc.lookupPerCPU(le32(2))?.allSatisfy { $0 == [UInt8](repeating: 2, count: 8) } == true)
            #expect(try pc.lookupBatch().count == 2)

            // Stack trace maps have no batch commands (ENOTSUPP): the walk falls back to keys + lookups.
            let traces = try Map.create(type: .stackTrace, keySize: 4, valueSize: 8 * 127, maxEntries: 16, name: "traces")
            leaks.track(traces)
            #expect(try traces.lookupBatch().isEmpty)
            #expect(traces.lastBatchFellBack)

            // LPM tries: batch where the kernel has it (6.x), element by element where not.
            let lpm = try Map(MapAttributes(type: .lpmTrie, keySize: 8, valueSize: 8, maxEntries: 16, flags: .noPrealloc, name: "lpm"))
            leaks.track(lpm)
            let lpmKeys = [le32(32) + [10, 0, 0, 1], le32(24) + [10, 0, 1, 0], le32(16) + [192, 168, 0, 0]]
            try lpm.updateBatch(keys: lpmKeys, values: [le64(1), le64(2), le64(3)])
            #expect(try lpm.lookupBatch().count == 3)
            #expect(try lpm.lookup(lpmKeys[1]) == le64(2))
            #expect(try lpm.deleteBatch(keys: lpmKeys) == 3)
            #expect(try lpm.keys().isEmpty)
        }
    }

    @Test("queue and stack: push, peek, pop; overwrite when full with .exist")
    func queueStack() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let q = try Map.create(type: .queue, keySize: 0, valueSize: 8, maxEntries: 4, name: "q")
            let s = try Map.create(type: .stack, keySize: 0, valueSize: 8, maxEntries: 4, name: "s")
            leaks.track(q); leaks.track(s)
            for v in UInt64(1)...4 { try q.push(v); try s.push(v) }
            #expect(throws: BPFError.self) { try q.push(UInt64(5)) }
            try q.push(UInt64(5), flags: .exist)                   // drops the oldest (1)
            #expect(try q.peek(as: UInt64.self) == 2)
            #expect(try s.peek(as: UInt64.self) == 4)
            var fromQueue: [UInt64] = [], fromStack: [UInt64] = []
            while let v = try q.pop(as: UInt64.self) { fromQueue.append(v) }
            while let v = try s.pop(as: UInt64.self) { fromStack.append(v) }
            #expect(fromQueue == [2, 3, 4, 5])
            #expect(fromStack == [4, 3, 2, 1])
            #expect(try q.pop() == nil)
            let h = try counterMap()
            leaks.track(h)
            #expect(throws: BPFError.self) { try h.push(UInt64(1)) }
        }
    }

    @Test("freeze, pin/unpin, Map(pinned:), Map(id:), Map(fd:)")
    func identityAndPinning() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard let dir = bpffsOrSkip() else { return }
        try withRuntimeLeakCheck { leaks in
            let m = try counterMap("pinme", slots: 4)
            leaks.track(m)
            try m.update(UInt32(1), UInt64(99))
            let path = "\(dir)/plumb_rt_map_\(getpid())"
            try m.pin(path)
            #expect(m.pinnedPath == path)
            do {
                let pinned = try Map(pinned: path)
                #expect(pinned.id == m.id && pinned.name == "pinme" && pinned.maxEntries == 4)
                #expect(try pinned.lookup(UInt32(1), as: UInt64.self) == 99)
            }
            try m.unpin()
            #expect(m.pinnedPath == nil)
            #expect(access(path, F_OK) != 0)
            #expect(throws: BPFError.self) { _ = try Map(pinned: path) }

            let byID = try Map(id: m.id)
            #expect(byID.valueSize == 8 && byID.type == .array)
            let byFD = try Map(fd: m.fd.duplicate())
            #expect(byFD.id == m.id)

            try m.freeze()
            do {
                try m.update(UInt32(1), UInt64(1))
                Issue.record("wrote to a frozen map")
            } catch {
                #expect(bpfError(error)?.errno == .notPermitted)
            }
            #expect(try m.lookup(UInt32(1), as: UInt64.self) == 99)
        }
    }

    @Test("mmapable array: values read and written in place, by us, by the syscall API and by a program")
    func mmapable() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let m = try Map.create(type: .array, keySize: 4, valueSize: 12, maxEntries: 3, flags: .mmapable, name: "globals")
            leaks.track(m)
            let mem = try m.mapMemory()
            #expect(mem.stride == 16)
            #expect(mem.bytes.count == Perf.pageSize)
            try mem.store(UInt32(0xfeed), 1, offset: 4)
            let viaSyscall = try m.lookup([1, 0, 0, 0])!
            #expect(viaSyscall[4..<8] == [0xed, 0xfe, 0, 0])
            try m.update([2, 0, 0, 0], [UInt8](repeating: 7, count: 12))
            #expect(try mem.load(2, offset: 8, as: UInt32.self) == 0x0707_0707)
            #expect(throws: BPFError.self) { _ = try mem.element(3) }
            #expect(throws: BPFError.self) { try mem.store(UInt64(1), 0, offset: 8) }

            // A program writes global data through BPF_PSEUDO_MAP_VALUE (only single-element arrays
            // allow that, as for .data/.bss); we see it in place.
            let globals = try Map.create(type: .array, keySize: 4, valueSize: 16, maxEntries: 1, flags: .mmapable, name: "data")
            leaks.track(globals)
            let data = try globals.mapMemory()
            var b = ProgramBuilder()
            b.emit(.loadMapValue(.r1, fd: globals.fd.rawValue, offset: 8))
            b.emit(.mov64(.r2, 4242))
            b.emit(.store(.r1, offset: 0, .r2, size: .doubleWord))
            b.emit(.mov64(.r0, 0))
            b.emit(.exit())
            let prog = try Program.load(ProgramAttributes(type: .socketFilter, instructions: try Asm.encode(b), name: "globals_w"))
            leaks.track(prog)
            _ = try prog.testRun(data: [UInt8](repeating: 0, count: 64))
            #expect(try data.load(0, offset: 8, as: UInt64.self) == 4242)
            try data.store(UInt64(7), 0, offset: 0)
            #expect(try globals.lookup([0, 0, 0, 0])?.prefix(8) == [7, 0, 0, 0, 0, 0, 0, 0])

            let plain = try counterMap()
            leaks.track(plain)
            #expect(throws: BPFError.self) { _ = try plain.mapMemory() }
        }
    }
}
