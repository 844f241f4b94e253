// Times opening a binary's DWARF (separate debug file lookup, decompression, the unit headers
// and the one-pass name index) and a few first queries: bench/BenchDWARF [binary] [function] [type]
import PlumbDWARF
import Glibc

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// CPU time: on a busy machine wall time says more about the neighbours than about us.
func cpu() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let args = CommandLine.arguments
let binary = args.count > 1 ? args[1] : "/lib/x86_64-linux-gnu/libc.so.6"
let function = args.count > 2 ? args[2] : "malloc"
let typeName = args.count > 3 ? args[3] : "struct malloc_state"
do {
    for round in 1...3 {
        let t0 = now(), c0 = cpu()
        let d = try DWARF.load(binary: binary)
        let t1 = now(), c1 = cpu()
        let f = try d.function(named: function)
        let t = try d.typeID(named: typeName)
        let btf = try d.btf()
        let t2 = now(), c2 = cpu()
        print("round \(round): load \(Int((t1 - t0) * 1000)) ms wall, \(Int((c1 - c0) * 1000)) ms cpu; queries \(Int((c2 - c1) * 1000)) ms cpu (\(d.timings)); \(function) + \(typeName) + BTF \(Int((t2 - t1) * 1_000_000)) us; \(btf.count - 1) BTF types; \(f.name) at 0x\(String(f.lowPC, radix: 16)), type id \(t)")
    }
} catch {
    print("error: \(error)")
    exit(1)
}
