// PLUMB_TIMINGS=1: the start-up phases (exec to attached) printed to stderr with their
// times, to see where the milliseconds go (bench/tracer.sh measures the total).
import Glibc

package enum Timings {
    /// Read once; marks cost one branch when the variable is unset.
    package static let enabled: Bool = getenv("PLUMB_TIMINGS") != nil
    nonisolated(unsafe) private static var last: Double = 0

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1_000_000
    }

    /// Prints the time since the previous mark. The first mark has no predecessor (the exec's
    /// time is not at hand in-process): it prints the CPU time used so far, which is the
    /// dynamic loader's and the Swift runtime's start-up.
    package static func mark(_ phase: String) {
        guard enabled else { return }
        let t = now()
        var line: String
        if last == 0 {
            var usage = rusage()
            getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
            let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000
                + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
            line = "plumb timings: \(phase): first mark, \(format(cpu)) ms of CPU since exec (loader, Swift runtime)\n"
        } else {
            line = "plumb timings: \(phase): +\(format(t - last)) ms\n"
        }
        last = t
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    private static func format(_ ms: Double) -> String {
        let hundredths = Int((ms * 100).rounded())
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
    }
}
