import PlumbSys
import PlumbBTF

/// What the running kernel supports, probed the way bpftool does (load the smallest real
/// program, create the smallest real map), for `plumb features` and for clear errors.
public struct FeatureReport: Sendable {
    public var programTypes: [(ProgramType, FeatureSupport)]
    public var mapTypes: [(MapType, FeatureSupport)]
    public var attachKinds: [(String, FeatureSupport)]
    /// Per program type: the helpers it may call (by name), when probed.
    public var helpers: [(ProgramType, [String])]

    /// Probes everything; `helpersFor` names the program types whose helpers are listed
    /// (each helper costs one program load).
    public static func probe(helpersFor: [ProgramType] = [.kprobe, .tracepoint, .rawTracepoint, .perfEvent, .tracing]) -> FeatureReport {
        let programs = ProgramType.allCases.filter { $0 != .unspec }.map { ($0, probeProgramType($0)) }
        let maps = MapType.allCases.filter { $0 != .unspec }.map { ($0, Features.mapType($0)) }
        var attach: [(String, FeatureSupport)] = [
            ("tracepoint", Features.tracepoints()),
            ("raw_tracepoint", Features.programType(.rawTracepoint)),
            ("tp_btf", tpBTF()),
            ("uprobe/uretprobe", Features.uprobes()),
            ("perf_event (software)", Features.programType(.perfEvent)),
            ("perf_event links", Features.perfEventLinks()),
            ("kprobe/kretprobe", Features.kprobes()),
            ("fentry/fexit", fentry()),
        ]
        attach.append(("ring buffer", Features.mapType(.ringbuf)))
        var helpers: [(ProgramType, [String])] = []
        let names = helperNames()
        for type in helpersFor where programs.contains(where: { $0.0 == type && $0.1.isSupported }) {
            var available: [String] = []
            for (id, name) in names {
                if Features.helper(id, programType: type).isSupported { available.append(name) }
            }
            helpers.append((type, available))
        }
        return FeatureReport(programTypes: programs, mapTypes: maps, attachKinds: attach, helpers: helpers)
    }

    /// Tracing programs need an attach target; probe with the one that exists here.
    public static func probeProgramType(_ type: ProgramType) -> FeatureSupport {
        switch type {
        case .tracing: return fentry()
        case .lsm:
            guard let btf = try? BTF.kernel(), let id = btf.firstID(named: "bpf_lsm_file_open", kind: .function) else {
                return .unknown("no bpf_lsm_file_open in the kernel's BTF to probe with")
            }
            return Features.programType(.lsm, attachBTFID: id)
        default: return Features.programType(type)
        }
    }

    /// fentry: a tracing program attached (by BTF id) to a kernel function.
    public static func fentry() -> FeatureSupport {
        guard let btf = try? BTF.kernel() else { return .unknown("no kernel BTF (/sys/kernel/btf/vmlinux)") }
        guard let id = btf.firstID(named: "bpf_fentry_test1", kind: .function) ?? btf.firstID(named: "do_nanosleep", kind: .function) else {
            return .unknown("no probe target function in the kernel's BTF")
        }
        return Features.tracingLoad(attachType: .traceFentry, attachBTFID: id)
    }

    /// tp_btf: a tracing program attached to `btf_trace_sys_enter`.
    public static func tpBTF() -> FeatureSupport {
        guard let btf = try? BTF.kernel() else { return .unknown("no kernel BTF (/sys/kernel/btf/vmlinux)") }
        guard let id = btf.firstID(named: "btf_trace_sys_enter", kind: .typedef) else {
            return .unknown("no btf_trace_sys_enter in the kernel's BTF")
        }
        return Features.tracingLoad(attachType: .traceRawTP, attachBTFID: id)
    }

    /// Helper ids and names, from the kernel's own `enum bpf_func_id` (BPF_FUNC_x -> bpf_x).
    public static func helperNames() -> [(UInt32, String)] {
        guard let btf = try? BTF.kernel(), let id = btf.firstID(named: "bpf_func_id", kind: .enum), let t = try? btf.type(id) else {
            return []
        }
        return t.enumerators.compactMap { e in
            guard e.name.hasPrefix("BPF_FUNC_"), e.value > 0, !e.name.hasSuffix("MAX_ID") else { return nil }
            return (UInt32(truncatingIfNeeded: e.value), "bpf_" + e.name.dropFirst("BPF_FUNC_".count))
        }
    }

    /// The report as a text table.
    public func table() -> String {
        func rows(_ title: String, _ items: [(String, FeatureSupport)]) -> String {
            let width = max(title.count, items.map(\.0.count).max() ?? 0) + 2
            func pad(_ t: String) -> String { t + String(repeating: " ", count: max(0, width - t.count)) }
            var s = pad(title) + "SUPPORTED\n"
            for (name, support) in items { s += pad(name) + support.description + "\n" }
            return s
        }
        var out = rows("PROGRAM TYPE", programTypes.map { ("\($0.0)", $0.1) }) + "\n"
        out += rows("MAP TYPE", mapTypes.map { ("\($0.0)", $0.1) }) + "\n"
        out += rows("ATTACH KIND", attachKinds)
        for (type, names) in helpers {
            out += "\nHELPERS FOR \(type) PROGRAMS (\(names.count))\n"
            var line = ""
            for n in names {
                if line.count + n.count > 100 { out += line + "\n"; line = "" }
                line += (line.isEmpty ? "  " : " ") + n
            }
            if !line.isEmpty { out += line + "\n" }
        }
        return out
    }
}
