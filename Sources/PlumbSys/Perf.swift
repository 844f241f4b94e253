import CPlumbSys
import Glibc

/// perf_event_open(2) and what hangs off a perf event fd.
public enum Perf {
    /// PERF_FLAG_FD_CLOEXEC: perf fds must not leak into children we spawn.
    static let flagCloexec: UInt = 8

    /// Software event configs (`enum perf_sw_ids`).
    public enum SoftwareEvent: UInt64, Sendable {
        case cpuClock = 0, taskClock, pageFaults, contextSwitches, cpuMigrations
        case pageFaultsMin, pageFaultsMaj, alignmentFaults, emulationFaults, dummy, bpfOutput
    }

    /// Opens an event from a filled-in `perf_event_attr` (size is set here).
    package static func open(_ attr: inout perf_event_attr, pid: Int32, cpu: Int32, groupFD: Int32 = -1,
                            flags: UInt = 0, context: @autoclosure () -> String) throws(SysError) -> OwnedFD {
        attr.size = cbpf_perf_event_attr_size()
        while true {
            let fd = cbpf_perf_event_open(&attr, pid, cpu, groupFD, flags | flagCloexec)
            if fd >= 0 { return OwnedFD(taking: fd) }
            let e = Errno.current
            if e == .interrupted { continue }
            throw .perfEventOpen(errno: e, context: context())
        }
    }

    /// A tracepoint event (id from `Tracefs.tracepointID`). BPF programs see every task's hits
    /// whatever pid/cpu says, so pid -1 on CPU 0 (libbpf's choice) is the usual call.
    package static func openTracepoint(id: UInt32, pid: Int32 = -1, cpu: Int32 = 0) throws(SysError) -> OwnedFD {
        var attr = perf_event_attr()
        attr.type = PERF_TYPE_TRACEPOINT.rawValue
        attr.config = UInt64(id)
        attr.sample_period = 1
        attr.wakeup_events = 1
        return try open(&attr, pid: pid, cpu: cpu, context: "tracepoint id \(id)")
    }

    /// A software event sampling at `frequency` Hz (e.g. cpu-clock profiling), one CPU or one task.
    package static func openSoftware(_ event: SoftwareEvent, frequency: UInt64, pid: Int32 = -1, cpu: Int32) throws(SysError) -> OwnedFD {
        var attr = perf_event_attr()
        attr.type = PERF_TYPE_SOFTWARE.rawValue
        attr.config = event.rawValue
        attr.freq = 1
        attr.sample_freq = frequency
        return try open(&attr, pid: pid, cpu: cpu, context: "software event \(event) at \(frequency) Hz on cpu \(cpu)")
    }

    /// A software event sampling once every `period` occurrences (nanoseconds for the clocks).
    package static func openSoftware(_ event: SoftwareEvent, period: UInt64, pid: Int32 = -1, cpu: Int32) throws(SysError) -> OwnedFD {
        var attr = perf_event_attr()
        attr.type = PERF_TYPE_SOFTWARE.rawValue
        attr.config = event.rawValue
        attr.sample_period = period
        return try open(&attr, pid: pid, cpu: cpu, context: "software event \(event) every \(period) on cpu \(cpu)")
    }

    /// The event behind one slot of a BPF_MAP_TYPE_PERF_EVENT_ARRAY: bpf_perf_event_output()
    /// samples (PERF_SAMPLE_RAW) on `cpu`, waking the reader every `wakeupEvents` samples.
    package static func openBPFOutput(cpu: Int32, wakeupEvents: UInt32 = 1) throws(SysError) -> OwnedFD {
        var attr = perf_event_attr()
        attr.type = PERF_TYPE_SOFTWARE.rawValue
        attr.config = SoftwareEvent.bpfOutput.rawValue
        attr.sample_type = UInt64(PERF_SAMPLE_RAW.rawValue)
        attr.sample_period = 1
        attr.wakeup_events = max(wakeupEvents, 1)
        return try open(&attr, pid: -1, cpu: cpu, context: "bpf-output event on cpu \(cpu)")
    }

    /// The dynamic PMU type of the uprobe (or kprobe) PMU, from sysfs.
    package static func pmuType(_ pmu: String) throws(SysError) -> UInt32 {
        let file = "/sys/bus/event_source/devices/\(pmu)/type"
        let text = try readText(file)
        guard let t = UInt32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw .malformedKernelOutput("\(file): '\(text)'")
        }
        return t
    }

    /// The config bit a PMU format file names, e.g. "config:0" → 0.
    package static func pmuFormatBit(_ pmu: String, _ field: String) throws(SysError) -> Int {
        let file = "/sys/bus/event_source/devices/\(pmu)/format/\(field)"
        let text = try readText(file).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("config:"), let bit = Int(text.dropFirst("config:".count).split(separator: "-")[0]),
              bit >= 0, bit < 64 else {
            throw .malformedKernelOutput("\(file): '\(text)'")
        }
        return bit
    }

    /// A uprobe/uretprobe on `path` at file `offset` via the uprobe PMU (no tracefs writes, nothing
    /// left behind when the fd closes). `refCounterOffset` is the USDT semaphore's file offset.
    package static func openUprobe(path: String, offset: UInt64, retprobe: Bool = false, refCounterOffset: UInt64 = 0,
                                  pid: Int32 = -1, cpu: Int32 = 0) throws(SysError) -> OwnedFD {
        let type = try pmuType("uprobe")
        var config: UInt64 = 0
        if retprobe { config |= 1 << UInt64(try pmuFormatBit("uprobe", "retprobe")) }
        if refCounterOffset != 0 {
            // ref_ctr_offset occupies config bits 32..63 ("config:32-63").
            guard refCounterOffset <= UInt64(UInt32.max) else { throw .invalidArgument("ref counter offset too large") }
            config |= refCounterOffset << UInt64(try pmuFormatBit("uprobe", "ref_ctr_offset"))
        }
        let what = "\(retprobe ? "uretprobe" : "uprobe") \(path)+0x\(String(offset, radix: 16))"
        return try openProbe(pmu: type, config: config, target: path, offset: offset, pid: pid, cpu: cpu, context: what)
    }

    /// A uprobe or kprobe PMU event: config1 points at the path or symbol, config2 is the offset.
    private static func openProbe(pmu: UInt32, config: UInt64, target: String, offset: UInt64, pid: Int32, cpu: Int32,
                                  context: String) throws(SysError) -> OwnedFD {
        var arena = Arena()
        var attr = perf_event_attr()
        attr.type = pmu
        attr.config = config
        attr.config1 = arena.cString(target)
        attr.config2 = offset
        attr.sample_period = 1
        attr.wakeup_events = 1
        return try open(&attr, pid: pid, cpu: cpu, context: context)
    }

    /// A kprobe via the kprobe PMU (absent on kernels without CONFIG_KPROBES).
    package static func openKprobe(symbol: String, offset: UInt64 = 0, retprobe: Bool = false,
                                  pid: Int32 = -1, cpu: Int32 = 0) throws(SysError) -> OwnedFD {
        let type: UInt32
        do { type = try pmuType("kprobe") } catch {
            throw .perfEventOpen(errno: .noSuchDevice, context: "kprobe \(symbol): no kprobe PMU (kernel built without CONFIG_KPROBES?)")
        }
        var config: UInt64 = 0
        if retprobe { config |= 1 << UInt64(try pmuFormatBit("kprobe", "retprobe")) }
        return try openProbe(pmu: type, config: config, target: symbol, offset: offset, pid: pid, cpu: cpu,
                             context: "kprobe \(symbol)+\(offset)")
    }

    package static func enable(_ event: borrowing OwnedFD) throws(SysError) {
        if cbpf_perf_event_enable(event.rawValue) != 0 { throw .ioctl(request: "PERF_EVENT_IOC_ENABLE", errno: .current) }
    }

    package static func disable(_ event: borrowing OwnedFD) throws(SysError) {
        if cbpf_perf_event_disable(event.rawValue) != 0 { throw .ioctl(request: "PERF_EVENT_IOC_DISABLE", errno: .current) }
    }

    /// Attaches `prog` to the event (the pre-5.15 way; the attachment lives as long as the event fd).
    package static func setBPF(_ event: borrowing OwnedFD, program: borrowing OwnedFD) throws(SysError) {
        if cbpf_perf_event_set_bpf(event.rawValue, program.rawValue) != 0 {
            throw .ioctl(request: "PERF_EVENT_IOC_SET_BPF", errno: .current)
        }
    }

    /// The kernel's id of this event.
    package static func id(_ event: borrowing OwnedFD) throws(SysError) -> UInt64 {
        var id: UInt64 = 0
        if cbpf_perf_event_id(event.rawValue, &id) != 0 { throw .ioctl(request: "PERF_EVENT_IOC_ID", errno: .current) }
        return id
    }

    package static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// Maps a perf ring: one metadata page plus `dataPages` (a power of two) of samples.
    package static func mapRing(_ event: borrowing OwnedFD, dataPages: Int) throws(SysError) -> MappedRegion {
        guard dataPages > 0, dataPages & (dataPages - 1) == 0 else {
            throw .invalidArgument("perf ring data pages must be a power of two, got \(dataPages)")
        }
        return try MappedRegion(fd: event.rawValue, length: (dataPages + 1) * pageSize, writable: true, offset: 0)
    }
}

/// An mmap'd region (perf ring, ring buffer map, mmapable array), unmapped when released.
package struct MappedRegion: ~Copyable, @unchecked Sendable {
    package let base: UnsafeMutableRawPointer
    package let length: Int

    /// Maps `length` bytes of `fd` at `offset` (shared).
    package init(fd: Int32, length: Int, writable: Bool, offset: Int) throws(SysError) {
        let prot = PROT_READ | (writable ? PROT_WRITE : 0)
        let p = mmap(nil, length, prot, MAP_SHARED, fd, off_t(offset))
        guard let p, p != MAP_FAILED else { throw .mmap(errno: .current, length: length) }
        base = p
        self.length = length
    }

    package var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: length) }

    deinit { munmap(base, length) }
}
