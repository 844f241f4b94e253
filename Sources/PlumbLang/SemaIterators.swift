// iter:NAME probes (iter:task, iter:task_file, iter:task_vma, ...): a tracing program run by
// the kernel once per object of the iterator `bpf_iter_NAME`, `ctx` typed as
// `struct bpf_iter__NAME *` from BTF. As in bpftrace, an iterator probe runs once and then
// the tracer exits, so it cannot be mixed with any other probe, not even another iterator.
// `iter:NAME:PIN` pins the iterator instead (CodegenSeqPrintf.swift: printf writes to the pin file).
import PlumbBPF
import PlumbBTF

extension Compiler {
    func iterProbe(_ ap: AttachPoint) -> [Expansion] {
        let f = ap.fields
        guard let name = f.first, !name.isEmpty else { error("iter probes are written iter:NAME", ap.range); return [] }
        // iter:NAME:PIN pins the iterator at PIN, a path on bpffs or one relative to /sys/fs/bpf.
        var pin: String?
        if f.count > 1 {
            let path = f.dropFirst().joined(separator: ":")
            guard !path.isEmpty, !path.hasSuffix("/") else {
                error("iter:\(name): the pin is a file path on bpffs, absolute or relative to /sys/fs/bpf (iter:\(name):NAME)", ap.range)
                return []
            }
            pin = path.hasPrefix("/") ? path : "/sys/fs/bpf/" + path
            if let last = pin?.split(separator: "/").last, last.contains(".") {
                error("iter:\(name): bpffs file names cannot contain '.' ('\(last)')", ap.range)
                return []
            }
        }
        if name.contains("*") || name.contains("?") {
            error("iter probes take one iterator name, not a wildcard", ap.range)
            return []
        }
        let attachPoints = script.probes.reduce(0) { $0 + $1.attachPoints.count }
        if attachPoints > 1 {
            error("an iter probe cannot be mixed with other probes, not even BEGIN, END or another iter probe: the iteration runs once and the tracer exits", ap.range)
            return []
        }
        if let btf {
            if btf.firstID(named: "bpf_iter_" + name, kind: .function) == nil {
                let names = btf.ids.lazy.filter { btf.kind(of: $0) == .function }.map { btf.name(of: $0) }
                    .filter { $0.hasPrefix("bpf_iter_") }.map { String($0.dropFirst(9)) }
                error("iterator '\(name)' not found (no bpf_iter_\(name) in the kernel's BTF)", ap.range,
                      notes: nearest(name, in: Array(names)).map { [.init("did you mean 'iter:\($0)'?")] } ?? [])
                return []
            }
            if btf.firstID(named: "bpf_iter__" + name, kind: .struct) == nil {
                error("iterator '\(name)' has no context type (no struct bpf_iter__\(name) in the kernel's BTF)", ap.range)
                return []
            }
        }
        return [(.iter(name: name, pin: pin), ap.canonical, kind("iter/" + name), .none)]
    }
}
