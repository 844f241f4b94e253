// perf_event programs on hardware counters (PERF_TYPE_HARDWARE) and on hardware breakpoints
// (PERF_TYPE_BREAKPOINT: watchpoints). Machines without a PMU (most VMs) have no hardware
// counters; the error says so and points at the software events.
import CPlumbSys
import PlumbSys
import Glibc

extension Perf {
    /// Hardware counter configs (`enum perf_hw_id`).
    public enum HardwareEvent: UInt64, Sendable, CaseIterable {
        case cpuCycles = 0, instructions, cacheReferences, cacheMisses, branchInstructions, branchMisses
        case busCycles, stalledCyclesFrontend, stalledCyclesBackend, refCPUCycles

        /// bpftrace's name for the counter (what `-l` lists).
        public var name: String {
            switch self {
            case .cpuCycles: "cpu-cycles"
            case .instructions: "instructions"
            case .cacheReferences: "cache-references"
            case .cacheMisses: "cache-misses"
            case .branchInstructions: "branch-instructions"
            case .branchMisses: "branch-misses"
            case .busCycles: "bus-cycles"
            case .stalledCyclesFrontend: "frontend-stalls"
            case .stalledCyclesBackend: "backend-stalls"
            case .refCPUCycles: "ref-cycles"
            }
        }

        /// Other names bpftrace and perf accept.
        static let aliases: [String: HardwareEvent] = [
            "cycles": .cpuCycles, "branches": .branchInstructions, "stalled-cycles-frontend": .stalledCyclesFrontend,
            "stalled-cycles-backend": .stalledCyclesBackend, "ref-cpu-cycles": .refCPUCycles,
        ]

        /// bpftrace's names (and perf's aliases) for each counter.
        public init?(name: String) {
            guard let event = Self.allCases.first(where: { $0.name == name }) ?? Self.aliases[name] else { return nil }
            self = event
        }
    }

    /// What a hardware breakpoint fires on (HW_BREAKPOINT_R/W/RW/X).
    public enum BreakpointAccess: UInt32, Sendable {
        case read = 1, write = 2, readWrite = 3, execute = 4

        /// bpftrace's mode letters: r, w, rw (any order), x.
        public init?(mode: String) {
            switch String(mode.sorted()) {
            case "r": self = .read
            case "w": self = .write
            case "rw": self = .readWrite
            case "x": self = .execute
            default: return nil
            }
        }
    }
}

extension Program {
    /// Attaches a perf_event program to a hardware counter on every online CPU (or `cpus`),
    /// sampling once every `period` counts.
    public func attachHardwareEvent(_ event: Perf.HardwareEvent, period: UInt64, cpus: [Int]? = nil, cookie: UInt64 = 0) throws(BPFError) -> Link {
        try require([.perfEvent], for: "a hardware perf event")
        let list: [Int]
        if let cpus { list = cpus } else {
            do { list = try CPUs.online() } catch { throw failure(error) }
        }
        guard !list.isEmpty else { throw .invalidArgument("no CPUs to attach to") }
        let link = Link(kind: .perfEvent, program: self, description: "perf_event hardware \(event) every \(period) on \(list.count) CPU\(list.count == 1 ? "" : "s")")
        for cpu in list {
            guard let c = Int32(exactly: cpu) else { throw .invalidArgument("cpu \(cpu)") }
            var attr = perf_event_attr()
            attr.type = PERF_TYPE_HARDWARE.rawValue
            attr.config = event.rawValue
            attr.sample_period = max(period, 1)
            let ev: OwnedFD
            do {
                ev = try Perf.open(&attr, pid: -1, cpu: c, context: "hardware event \(event) on cpu \(c)")
            } catch {
                // ENOENT/EOPNOTSUPP: no PMU (virtual machines) or no such counter on this CPU.
                if let e = error.errno, e == .noSuchFileOrDirectory || e == .noSuchDevice || e.isNotSupported {
                    throw .unsupported(feature: "hardware perf events", reason: "perf_event_open failed with \(e.name): this machine's CPU exposes no such counter (no hardware PMU under a hypervisor?)",
                                       suggestion: "use a software event instead, e.g. software:cpu-clock")
                }
                throw failure(error)
            }
            try attachPerf(ev, to: link, cookie: cookie)
        }
        return link
    }

    /// Attaches a perf_event program to a hardware breakpoint: `length` bytes (1, 2, 4 or 8) at
    /// `address` in process `pid` (all its threads, followed across exec), or on every CPU for
    /// kernel addresses with `pid` -1.
    public func attachBreakpoint(address: UInt64, length: Int, access: Perf.BreakpointAccess, pid: Int32, cookie: UInt64 = 0) throws(BPFError) -> Link {
        try require([.perfEvent], for: "a hardware breakpoint")
        guard [1, 2, 4, 8].contains(length) else { throw .invalidArgument("breakpoint length \(length): use 1, 2, 4 or 8") }
        guard access != .execute || length == MemoryLayout<Int>.size else {
            throw .invalidArgument("an execute breakpoint covers \(MemoryLayout<Int>.size) bytes")
        }
        let cpus: [Int32]
        if pid >= 0 { cpus = [-1] } else {
            do { cpus = try CPUs.online().compactMap { Int32(exactly: $0) } } catch { throw failure(error) }
        }
        let hex = "0x" + String(address, radix: 16)
        let link = Link(kind: .perfEvent, program: self, description: "perf_event breakpoint \(access) \(length) bytes at \(hex)\(pid >= 0 ? " in pid \(pid)" : "")")
        for cpu in cpus {
            var attr = perf_event_attr()
            attr.type = PERF_TYPE_BREAKPOINT.rawValue
            attr.bp_type = access.rawValue
            attr.bp_addr = address
            attr.bp_len = UInt64(length)
            attr.sample_period = 1
            attr.wakeup_events = 1
            attr.precise_ip = 2
            let ev: OwnedFD
            do {
                ev = try Perf.open(&attr, pid: pid, cpu: cpu, context: "breakpoint at \(hex)")
            } catch {
                if let e = error.errno, e == .noSpace {
                    throw .unsupported(feature: "another hardware breakpoint", reason: "every debug register is in use (ENOSPC)",
                                       suggestion: "watch fewer addresses at once")
                }
                throw failure(error)
            }
            try attachPerf(ev, to: link, cookie: cookie)
        }
        return link
    }
}
