// Measures what bench/btf_parse.c measures for libbpf: parse the kernel's BTF from the file
// and find struct task_struct, N times; prints the mean milliseconds per iteration.
import PlumbBTF
import Glibc

@main struct BenchBTF {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) * 1e3 + Double(ts.tv_nsec) / 1e6
    }

    static func main() throws {
        let args = CommandLine.arguments
        let n = args.count > 1 ? Int(args[1]) ?? 50 : 50
        let path = args.count > 2 ? args[2] : "/sys/kernel/btf/vmlinux"
        var found: TypeID = 0
        // One warm-up run, not timed (page cache, dynamic linking).
        _ = try BTF(path: path).firstID(named: "task_struct", kind: .struct)
        let t0 = now()
        for _ in 0..<n {
            let btf = try BTF(path: path)
            found = btf.firstID(named: "task_struct", kind: .struct) ?? 0
        }
        let t1 = now()
        guard found != 0 else { fatalError("task_struct not found") }
        print(String(format: "%.3f", (t1 - t0) / Double(n)))
    }
}

#if canImport(Foundation)
import Foundation
#endif
