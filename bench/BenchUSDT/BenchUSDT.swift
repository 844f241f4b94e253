// Attaches one counting program to every USDT site of a binary (as bpftrace's
// `usdt:BINARY:* { @[probe] = count(); }` does), prints "attached" when all are in, waits for
// SIGINT, detaches, prints the counts' total and exits: bench/usdt.sh times it from outside
// exactly as it times bpftrace. The library's own figures go to stderr:
//   attach <ms> detach <ms> sites <n> links <n>
// Usage: BenchUSDT BINARY [multi|perf]
//   multi: one uprobe_multi link for all sites (Linux 6.6+); perf: one perf-event link a site.
import PlumbBPF
import PlumbAsm
import PlumbSys
import Glibc
import Foundation

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func fail(_ message: String) -> Never {
    let line = "BenchUSDT: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

let args = CommandLine.arguments
guard args.count >= 2 else { fail("usage: BenchUSDT BINARY [multi|perf]") }
let binary = args[1]
let multi = args.count < 3 || args[2] == "multi"

// SIGINT is waited for, not handled: block it before any thread starts.
var set = sigset_t()
sigemptyset(&set)
sigaddset(&set, SIGINT)
pthread_sigmask(SIG_BLOCK, &set, nil)

do {
    let sites = try USDTResolver.probes(binary: binary).probes.count
    let counts = try Map.create(type: .array, keySize: 4, valueSize: 8, maxEntries: max(sites, 1), name: "usdt_counts")
    // counts[cookie] += 1: a site's cookie is its index, so the count is per site (per probe
    // name once summed), as bpftrace's @[probe] map is.
    var b = ProgramBuilder()
    let done = b.newLabel()
    b.emit(.call(.getAttachCookie))
    b.emit(.store(.r10, offset: -4, .r0, size: .word))
    b.emit(.loadMapFD(.r1, fd: counts.fd.rawValue))
    b.emit(.mov64(.r2, .r10))
    b.emit(.add64(.r2, -4))
    b.emit(.call(.mapLookupElem))
    b.jump(.jeq, .r0, imm: 0, to: done)
    b.emit(.mov64(.r1, 1))
    b.emit(.atomic(.add, .r0, offset: 0, .r1, size: .doubleWord))
    b.bind(done)
    b.emit(.mov64(.r0, 0))
    b.emit(.exit())
    let t0 = now()
    let program = try Program.load(ProgramAttributes(type: .kprobe, instructions: Instruction.encode(try b.finish()), name: "usdt_count",
                                                     expectedAttachType: multi ? .traceUprobeMulti : nil))
    let attachment = try program.attachUSDT(binary: binary, name: "*")
    let t1 = now()
    // write(2) straight away: stdout is a pipe, and the timer outside waits for this line.
    _ = "attached\n".withCString { write(1, $0, strlen($0)) }
    var signal: Int32 = 0
    sigwait(&set, &signal)
    let t2 = now()
    try attachment.detach()
    let t3 = now()
    var total: UInt64 = 0
    for i in 0..<sites { total &+= (try counts.lookup(UInt32(i), as: UInt64.self)) ?? 0 }
    _ = "hits \(total)\n".withCString { write(1, $0, strlen($0)) }
    let line = String(format: "attach %.1f detach %.1f sites %d links %d\n", (t1 - t0) * 1000, (t3 - t2) * 1000,
                      attachment.sites.count, attachment.links.count)
    _ = line.withCString { write(2, $0, strlen($0)) }
} catch {
    fail("\(error)")
}
