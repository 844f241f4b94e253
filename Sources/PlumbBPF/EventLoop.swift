import PlumbSys
import Glibc
import Synchronization

/// A trace's main loop: reads every ring buffer and perf event array of a loaded object and
/// prints their records (`RecordPrinter`) into an `OutputBuffer`, until a deadline passes or
/// a stop is requested (`StopSignal`, `requestStop()`).
///
/// Output is written in large pieces: the buffer is flushed when it is full, whenever the
/// buffers have nothing more to read (before the loop blocks: so a quiet trace shows each
/// record at once, and a flood is written 64 KiB at a time), on stop and in `finish()`.
public final class EventLoop: @unchecked Sendable {
    public let object: Object
    public let output: OutputBuffer
    private var ring: RingBuffer?
    /// Per ring index of `ring`: how its records print.
    private var ringFormats: [RecordFormat] = []
    /// With `json`: per ring index, its records as NDJSON (then `ringFormats` is unused).
    private var ringJSON: [JSONRecordFormat]?
    private var perfs: [PerfBuffer] = []
    private let stop = Atomic<Bool>(false)

    /// Opens a reader on every ring buffer and perf event array of `object`. Perf buffer
    /// drops print as `MAP: lost N records on CPU C` lines. `json`: records print as NDJSON
    /// (`JSONRecordFormat`), drops as `{"map":M,"cpu":C,"lost":N}`.
    public init(object: Object, printer: RecordPrinter, output: OutputBuffer, json: Bool = false) throws(BPFError) {
        self.object = object
        self.output = output
        if json { ringJSON = [] }
        for m in object.spec.maps {
            guard let map = object.maps[m.name] else { continue }
            let format = printer.format(forMap: m.name)
            let jsonFormat = json ? printer.jsonFormat(forMap: m.name) : nil
            if m.type == .ringbuf {
                if ring == nil { ring = try RingBuffer() }
                // Records are read through poll's non-escaping body, not this handler.
                try ring?.add(map) { _ in }
                ringFormats.append(format)
                if let jsonFormat { ringJSON?.append(jsonFormat) }
            } else if m.type == .perfEventArray {
                let name = m.name
                perfs.append(try PerfBuffer(map: map, sample: { [output] cpu, data in
                    if let jsonFormat { jsonFormat.append(data, cpu: cpu, to: output) } else { format.append(data, to: output) }
                }, lost: { [output] cpu, n in
                    if json {
                        output.append(JSONValue.object([("map", .string(name)), ("cpu", .int(Int64(cpu))), ("lost", .uint(UInt64(n)))]).text() + "\n")
                    } else {
                        output.append("\(name): lost \(n) records on CPU \(cpu)\n")
                    }
                }))
            }
        }
    }

    /// True when the object has no ring buffer or perf event array (the loop only waits).
    public var isEmpty: Bool { ring == nil && perfs.isEmpty }

    /// Makes `run` return after its current round (from any thread).
    public func requestStop() { stop.store(true, ordering: .relaxed) }

    /// Prints records until `deadline` (`EventLoop.now()` seconds) passes, a stop signal
    /// arrives or `requestStop()` is called. Flushes the output before returning.
    public func run(until deadline: Double? = nil) throws(BPFError) {
        defer { output.flush() }
        while !StopSignal.isRequested && !stop.load(ordering: .relaxed) {
            let now = EventLoop.now()
            if let deadline, now >= deadline { break }
            // Wake at least every 100 ms: a signal that lands just before epoll_wait does not
            // interrupt it, and the deadline must be seen.
            let wait = deadline.map { Int32(max(0, min(100, ($0 - now) * 1000))) } ?? 100
            if try poll(timeout: 0) == 0 {
                output.flush()   // caught up: let the reader see everything before we block
                try poll(timeout: wait)
            }
        }
    }

    /// Prints whatever is left in the buffers without waiting, then flushes.
    public func finish() throws(BPFError) {
        defer { output.flush() }
        try drain()
    }

    /// `finish()`, then the readers' counts: `ring buffers: N records delivered` and one
    /// `perf buffer MAP: N records delivered, M lost` line per perf event array.
    public var summary: String {
        var s = ""
        if let ring { s += "ring buffers: \(ring.delivered) records delivered\n" }
        for p in perfs { s += "perf buffer \(p.map.name): \(p.delivered) records delivered, \(p.lostCount) lost\n" }
        return s
    }

    /// Records delivered so far, over all readers.
    public var delivered: UInt64 { (ring?.delivered ?? 0) + perfs.reduce(0) { $0 + $1.delivered } }

    /// One round over every reader, waiting up to `timeout` ms for the first. Returns the
    /// number of records printed.
    @discardableResult
    func poll(timeout: Int32) throws(BPFError) -> Int {
        let formats = ringFormats
        let output = self.output
        var total = 0
        if let ring {
            // With perf buffers too, the wait is split so neither side waits long.
            let t = perfs.isEmpty ? timeout : min(timeout, 10)
            if let json = ringJSON {
                total += try ring.poll(timeout: t) { index, record in json[index].append(record, cpu: nil, to: output) }
            } else {
                total += try ring.poll(timeout: t) { index, record in
                    formats[index].append(record, to: output)
                }
            }
        }
        for p in perfs {
            let t = ring == nil ? timeout / Int32(perfs.count) : 0
            total += try p.poll(timeout: total > 0 ? 0 : t)
        }
        if isEmpty && timeout > 0 { usleep(useconds_t(timeout) * 1000) }
        return total
    }

    func drain() throws(BPFError) {
        let formats = ringFormats
        let output = self.output
        if let ring {
            if let json = ringJSON {
                try ring.consume { index, record in json[index].append(record, cpu: nil, to: output) }
            } else {
                try ring.consume { index, record in
                    formats[index].append(record, to: output)
                }
            }
        }
        for p in perfs { try p.consume() }
    }

    /// Monotonic seconds, for deadlines.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// SIGINT and SIGTERM as requests to stop, for tools that must detach and print a summary
/// instead of dying. `install()` first thing in main (a signal that arrives before is fatal);
/// code between steps checks `isRequested`; `EventLoop.run` returns on it.
public enum StopSignal {
    /// Installs the handlers and unblocks both signals (a parent may have blocked them). No
    /// SA_RESTART: a blocked epoll_wait returns at once.
    public static func install() {
        // Touch the globals here: their lazy initialisation must not run in a signal handler.
        _ = stopSignalNumber.load(ordering: .relaxed)
        _ = stopSignalFatal.load(ordering: .relaxed)
        let handler: @convention(c) (Int32) -> Void = { signal in
            stopSignalNumber.store(signal, ordering: .relaxed)
            if stopSignalFatal.load(ordering: .relaxed) {
                // The default action: end the process as the signal says.
                Glibc.signal(signal, SIG_DFL)
                raise(signal)
            }
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = handler
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &set, nil)
    }

    /// A stop was requested.
    public static var isRequested: Bool { stopSignalNumber.load(ordering: .relaxed) != 0 }

    /// The signal that requested the stop (0: none yet).
    public static var signal: Int32 { stopSignalNumber.load(ordering: .relaxed) }

    /// For commands with nothing to clean up: from now on SIGINT and SIGTERM end the process
    /// as by default, and one that already arrived does so now.
    public static func makeFatal() {
        stopSignalFatal.store(true, ordering: .relaxed)
        let pending = stopSignalNumber.load(ordering: .relaxed)
        if pending != 0 {
            Glibc.signal(pending, SIG_DFL)
            raise(pending)
        }
    }
}

private let stopSignalNumber = Atomic<Int32>(0)
private let stopSignalFatal = Atomic<Bool>(false)
