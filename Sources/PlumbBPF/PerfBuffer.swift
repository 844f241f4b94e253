import PlumbSys
import Glibc

/// Reads a BPF_MAP_TYPE_PERF_EVENT_ARRAY: one bpf-output perf event per CPU, each with an
/// mmap'd ring, stored into the map at the CPU's index so bpf_perf_event_output(...,
/// BPF_F_CURRENT_CPU, ...) lands in it.
///
/// Samples are handed over in place when contiguous; one that wraps around the end of its ring is
/// copied into a scratch buffer first. The raw size the kernel reports includes the padding it adds
/// to keep records 8-byte aligned, so a sample can be up to 7 bytes longer than what was sent.
///
/// Drops are never silent: the kernel writes a PERF_RECORD_LOST with the number of samples it
/// could not store; those sum into `lostCount` and go to the `lost` handler. The kernel emits that
/// record only once room frees up, i.e. with the next sample after the reader caught up.
///
/// One thread at a time: `poll`/`consume` mutate the reader's positions and counters.
public final class PerfBuffer: @unchecked Sendable {
    public typealias SampleHandler = (_ cpu: Int, _ data: UnsafeRawBufferPointer) -> Void
    public typealias LostHandler = (_ cpu: Int, _ count: UInt64) -> Void

    // struct perf_event_mmap_page: data_head/data_tail/data_offset/data_size (UAPI, stable since 4.1).
    static let dataHeadOffset = 1024, dataTailOffset = 1032, dataOffsetOffset = 1040, dataSizeOffset = 1048
    static let recordLost: UInt32 = 2, recordSample: UInt32 = 9

    final class CPURing {
        let cpu: Int
        let event: OwnedFD
        let region: MappedRegion
        let dataOffset: Int
        let dataSize: Int
        /// Where records that wrap around the ring end are stitched together (max record size: 64 KiB).
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 8)
        var delivered: UInt64 = 0
        var lost: UInt64 = 0

        init(cpu: Int, event: consuming OwnedFD, region: consuming MappedRegion, dataOffset: Int, dataSize: Int) {
            self.cpu = cpu
            self.event = event
            self.region = region
            self.dataOffset = dataOffset
            self.dataSize = dataSize
        }

        deinit { scratch.deallocate() }
    }

    public let map: Map
    public let pagesPerCPU: Int
    private let epoll: Epoll
    private var rings: [CPURing] = []
    private let onSample: SampleHandler
    private let onLost: LostHandler?

    /// Opens one ring of `pagesPerCPU` data pages (a power of two) on each online CPU (or `cpus`)
    /// and installs them into `map`. The reader wakes after every `wakeupEvents` samples.
    public init(map: Map, pagesPerCPU: Int = 8, wakeupEvents: UInt32 = 1, cpus: [Int]? = nil,
                sample: @escaping SampleHandler, lost: LostHandler? = nil) throws(BPFError) {
        guard map.type == .perfEventArray else {
            throw .mapMismatch(map: map.name, reason: "a perf buffer needs a perf_event_array map, this is \(map.type)\(map.type == .ringbuf ? " (use RingBuffer)" : "")")
        }
        guard pagesPerCPU > 0, pagesPerCPU & (pagesPerCPU - 1) == 0 else {
            throw .invalidArgument("pagesPerCPU must be a power of two, got \(pagesPerCPU)")
        }
        self.map = map
        self.pagesPerCPU = pagesPerCPU
        self.onSample = sample
        self.onLost = lost
        do { self.epoll = try Epoll() } catch { throw .system(error) }
        let list: [Int]
        do {
            if let cpus { list = cpus } else { list = try CPUs.online() }
        } catch { throw .system(error) }
        let page = Perf.pageSize
        for cpu in list {
            guard cpu >= 0, cpu < map.maxEntries, let c = Int32(exactly: cpu) else {
                throw .mapMismatch(map: map.name, reason: "CPU \(cpu) has no slot: the map has max_entries \(map.maxEntries); size it to the possible CPU count")
            }
            let event: OwnedFD
            do { event = try Perf.openBPFOutput(cpu: c, wakeupEvents: wakeupEvents) } catch { throw .system(error) }
            let region: MappedRegion
            do { region = try Perf.mapRing(event, dataPages: pagesPerCPU) } catch { throw .system(error) }
            // Kernels since 4.1 say where the data lives; older ones put it right after the first page.
            var dataOffset = Int(region.base.load(fromByteOffset: Self.dataOffsetOffset, as: UInt64.self))
            var dataSize = Int(region.base.load(fromByteOffset: Self.dataSizeOffset, as: UInt64.self))
            if dataOffset == 0 || dataSize == 0 { dataOffset = page; dataSize = pagesPerCPU * page }
            guard dataOffset + dataSize <= region.length, dataSize & (dataSize - 1) == 0 else {
                throw .malformedRecord("perf ring of CPU \(cpu): data at \(dataOffset)+\(dataSize) in a \(region.length)-byte mapping")
            }
            let index = rings.count
            do {
                try epoll.add(event.rawValue, token: UInt64(index))
                try Perf.enable(event)
            } catch { throw .system(error) }
            let ring = CPURing(cpu: cpu, event: event, region: region, dataOffset: dataOffset, dataSize: dataSize)
            rings.append(ring)
            try map.update(Map.bytes(of: UInt32(cpu)), Map.bytes(of: UInt32(bitPattern: ring.event.rawValue)))
        }
    }

    deinit {
        // Empty the slots we filled so the map no longer holds our events.
        for r in rings { _ = try? map.delete(Map.bytes(of: UInt32(r.cpu))) }
    }

    /// Samples delivered so far.
    public var delivered: UInt64 { rings.reduce(0) { $0 + $1.delivered } }

    /// Samples the kernel reported lost so far (PERF_RECORD_LOST), over all CPUs.
    public var lostCount: UInt64 { rings.reduce(0) { $0 + $1.lost } }

    /// The CPUs this reader has a ring on.
    public var cpus: [Int] { rings.map(\.cpu) }

    /// Waits up to `timeout` ms (-1: forever, 0: don't wait), then reads every ready ring.
    /// Returns the number of samples delivered.
    @discardableResult
    public func poll(timeout: Int32) throws(BPFError) -> Int {
        let ready: [UInt64]
        do { ready = try epoll.wait(timeout: timeout, max: rings.count) } catch { throw .system(error) }
        var total = 0
        for token in ready {
            let index = Int(truncatingIfNeeded: token)
            guard rings.indices.contains(index) else { continue }
            total += try read(rings[index])
        }
        return total
    }

    /// Reads every ring without waiting.
    @discardableResult
    public func consume() throws(BPFError) -> Int {
        var total = 0
        for r in rings { total += try read(r) }
        return total
    }

    private func read(_ r: CPURing) throws(BPFError) -> Int {
        let base = r.region.base
        let data = UnsafeRawPointer(base) + r.dataOffset
        let size = UInt64(r.dataSize)
        let head = SharedMemory.loadAcquire64(base + Self.dataHeadOffset)
        var tail = base.load(fromByteOffset: Self.dataTailOffset, as: UInt64.self)   // only we write it
        var count = 0
        defer { SharedMemory.storeRelease64(base + Self.dataTailOffset, tail) }
        while tail < head {
            let offset = Int(tail & (size - 1))
            // Records are 8-byte aligned and sized, so the 8-byte header never straddles the end.
            let type = (data + offset).loadUnaligned(as: UInt32.self)
            let recordSize = Int((data + offset + 6).loadUnaligned(as: UInt16.self))
            guard recordSize >= 8, UInt64(recordSize) <= head - tail else {
                throw .malformedRecord("perf ring of CPU \(r.cpu): record of \(recordSize) bytes at \(tail), head \(head)")
            }
            let record: UnsafeRawBufferPointer
            if offset + recordSize <= r.dataSize {
                record = UnsafeRawBufferPointer(start: data + offset, count: recordSize)
            } else {
                // Wraps around the end of the ring: stitch the two halves together.
                // (recordSize is a u16, so it always fits the 64 KiB scratch.)
                let first = r.dataSize - offset
                r.scratch.copyMemory(from: data + offset, byteCount: first)
                (r.scratch + first).copyMemory(from: data, byteCount: recordSize - first)
                record = UnsafeRawBufferPointer(start: r.scratch, count: recordSize)
            }
            switch type {
            case Self.recordSample:
                // PERF_SAMPLE_RAW: u32 size, then the bytes.
                guard recordSize >= 12 else { throw .malformedRecord("perf sample of \(recordSize) bytes on CPU \(r.cpu)") }
                let rawSize = Int(record.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
                guard 12 + rawSize <= recordSize else {
                    throw .malformedRecord("perf sample on CPU \(r.cpu) claims \(rawSize) raw bytes in a \(recordSize)-byte record")
                }
                onSample(r.cpu, UnsafeRawBufferPointer(rebasing: record[12 ..< 12 + rawSize]))
                r.delivered &+= 1
                count += 1
            case Self.recordLost:
                guard recordSize >= 24 else { throw .malformedRecord("perf lost record of \(recordSize) bytes on CPU \(r.cpu)") }
                let n = record.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
                r.lost &+= n
                onLost?(r.cpu, n)
            default:
                break   // throttle/unthrottle and friends carry nothing for us
            }
            tail &+= UInt64(recordSize)
        }
        return count
    }
}
