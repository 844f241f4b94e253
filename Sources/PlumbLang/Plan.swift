// What the compiler hands the runtime: the object to load (built in memory, loaded through
// the same API as clang's objects), where each program attaches, what each ring-buffer
// record means, and how each @map is laid out so it can be printed as bpftrace prints it.
//
// Contracts between generated code and the runtime (both sides follow them):
// - Async records travel on the ring buffer map named `TracePlan.eventsMap`. Each record
//   starts with a little-endian u64 action id (an index into `TracePlan.actions`); the
//   action's arguments follow at the offsets its `Field`s give (offsets count from the record
//   start, so the first argument is at offset 8 or later).
// - A map with no keys uses one u64 key of value 0.
// - Key elements are laid out in order, each at its `Field.offset` (ints are 8 bytes,
//   zero- or sign-extended; strings their full length; offsets 8-aligned where the element is
//   8 bytes or more).
// - count/sum: per-CPU hash, 8-byte value (u64 for count, i64 or u64 for sum); the runtime adds
//   the CPUs' values.
// - min/max: per-CPU hash, 16-byte value `{ i64 or u64 value; u64 isSet }`; the runtime takes
//   the min/max over CPUs whose isSet is nonzero.
// - avg/stats: per-CPU hash, 16-byte value `{ i64 total; u64 count }`.
// - hist/lhist: per-CPU hash; the key is the user's key followed by a u64 bucket index at
//   offset `keySize - 8`; the value is a u64 count. hist buckets: 0 for negative values, 1 for
//   0, then `2 + floor(log2(v))` for v >= 1 (so 1 -> 2, 2..3 -> 3, 4..7 -> 4). lhist buckets:
//   0 below `min`, `1 + (v - min) / step` inside, and `1 + (max - min) / step` at or above `max`.
// - value: a plain (not per-CPU) hash whose value is the assigned value's bytes.

import PlumbBPF
import PlumbBTF

/// How a value's bytes are printed (by printf, print, map keys and values, JSON).
public indirect enum ValueType: Sendable, Equatable {
    case none
    /// An integer of `size` bytes (1, 2, 4, 8).
    case integer(size: Int, signed: Bool)
    case boolean
    /// A NUL-terminated string in a buffer of `size` bytes.
    case string(size: Int)
    /// `buf()`: a u32 length then `capacity` bytes of data; printed as `\x..` escapes (`%r`).
    case buffer(capacity: Int)
    /// A pointer printed as hex (`0xffff...`).
    case pointer
    /// A kernel address symbolized as `function+offset` when printed with ksym.
    case kernelSymbol
    /// A user address (u64) plus the pid (u64) whose maps symbolize it.
    case userSymbol
    /// A kernel stack id (u64) into the `kstack` stack-trace map with this many frames.
    case kernelStack(limit: Int, mode: StackMode)
    /// A user stack: stack id (u64) then pid (u64).
    case userStack(limit: Int, mode: StackMode)
    /// A uid printed as the user's name.
    case username
    /// `ntop()`: u64 address family then 16 address bytes.
    case inet
    /// `strerror(n)`: an errno (u64) printed as strerror(3)'s message.
    case errorNumber
    /// `macaddr(x)`: 6 bytes (in an 8-byte slot) printed as `AA:BB:CC:DD:EE:FF`.
    case macAddress
    /// A tuple; each element at its offset within the tuple, the tuple `size` bytes long.
    case tuple([Field], size: Int)
    /// A struct/union/array/enum from BTF (`btf` says whose: the kernel's or the plan's own),
    /// printed as bpftrace prints records: `{ .a = 1, .b = 2 }`.
    case record(type: TypeID, size: Int, inPlanBTF: Bool)
    /// An enum value printed with its enumerator name when one matches.
    case enumeration(type: TypeID, size: Int, inPlanBTF: Bool)
    /// `strftime(fmt, ns)`: u64 nanoseconds of CLOCK_MONOTONIC (as `nsecs`), printed as local
    /// wall-clock time through strftime(fmt).
    case timestamp(format: String)

    /// Bytes the value occupies.
    public var size: Int {
        switch self {
        case .none: return 0
        case .integer(let s, _): return s
        case .boolean: return 1
        case .string(let s): return s
        case .buffer(let c): return 4 + c
        case .pointer, .kernelSymbol, .username, .timestamp, .errorNumber, .macAddress: return 8
        case .userSymbol: return 16
        case .kernelStack: return 8
        case .userStack: return 16
        case .inet: return 24
        case .tuple(_, let s): return s
        case .record(_, let s, _), .enumeration(_, let s, _): return s
        }
    }
}

public enum StackMode: String, Sendable, Equatable { case bpftrace, perf, raw }

/// A value at an offset in a record, key or tuple.
public struct Field: Sendable, Equatable {
    public var offset: Int
    public var type: ValueType
    public init(offset: Int, type: ValueType) { self.offset = offset; self.type = type }
}

/// What a map's values are, which fixes its kernel layout (see the contracts above).
public enum MapValue: Sendable, Equatable {
    case count
    case sum(signed: Bool)
    case min(signed: Bool)
    case max(signed: Bool)
    case avg(signed: Bool)
    case stats(signed: Bool)
    case hist
    case lhist(min: Int64, max: Int64, step: Int64)
    case value(ValueType)
}

/// One @map as the script sees it.
public struct PlannedMap: Sendable, Equatable {
    /// As written, with the `@`: `@`, `@bytes`.
    public var name: String
    /// The kernel map's name in `TracePlan.object`.
    public var mapName: String
    /// Key elements in order (empty: the one u64 zero key).
    public var keys: [Field]
    public var keySize: Int
    public var value: MapValue
    public init(name: String, mapName: String, keys: [Field], keySize: Int, value: MapValue) {
        self.name = name; self.mapName = mapName; self.keys = keys; self.keySize = keySize; self.value = value
    }
}

/// Where one generated program attaches.
public enum ProbeTarget: Sendable, Equatable {
    /// Run once before every other probe attaches / once after all detach (BPF_PROG_TEST_RUN).
    case begin
    case end
    case tracepoint(category: String, name: String)
    case rawTracepoint(name: String)
    /// A BTF-typed tracepoint (tp_btf): direct pointer access to its arguments.
    case btfTracepoint(name: String)
    case kprobe(function: String, offset: UInt64, isReturn: Bool)
    case fentry(function: String, isReturn: Bool)
    case uprobe(path: String, symbol: String?, address: UInt64, isReturn: Bool, pid: Int32?)
    case usdt(path: String, provider: String, name: String, pid: Int32?)
    /// cpu-clock on one CPU every `periodNanoseconds` (interval probes).
    case interval(periodNanoseconds: UInt64)
    /// On every CPU: `frequency` samples/s (hz) or one sample every `periodNanoseconds`.
    case profile(frequency: UInt64?, periodNanoseconds: UInt64?)
    /// A software or hardware perf event (`perf_event_attr.config` by name) every `count` events.
    case software(event: String, count: UInt64)
    case hardware(event: String, count: UInt64)
    case watchpoint(address: UInt64, length: Int, mode: String, isAsync: Bool)
    /// An iterator run once as plumb reads it, or, with `pin` (a bpffs path), pinned there for
    /// others to read (`cat PIN`) after plumb exits; its printf then writes to that file.
    case iter(name: String, pin: String? = nil)
    /// `process:begin` / `process:end`: run by the runtime (BPF_PROG_TEST_RUN) per tracked
    /// process, its context a `ProcessProbeContext`.
    case processBegin
    case processEnd
}

public struct PlannedProbe: Sendable, Equatable {
    /// The program's name in `TracePlan.object`.
    public var program: String
    public var target: ProbeTarget
    /// As `probe` prints it: `tracepoint:syscalls:sys_enter_openat`.
    public var name: String
    /// Where the probe was written, for attach-time errors.
    public var range: SourceRange
    public init(program: String, target: ProbeTarget, name: String, range: SourceRange) {
        self.program = program; self.target = target; self.name = name; self.range = range
    }
}

/// What a ring-buffer record asks the runtime to do.
public enum AsyncAction: Sendable, Equatable {
    /// printf with bpftrace's format syntax; arguments in format order.
    case printf(format: String, args: [Field])
    /// `print(@map)`, `print(@map, top, div)`.
    case printMap(map: String, top: Int, divisor: Int)
    /// `print(value)` of a non-map value.
    case printValue(Field)
    case clear(map: String)
    case zero(map: String)
    case exit
    /// `time(fmt)`: strftime of the wall clock when the record arrives.
    case time(format: String)
    /// `cat(fmt, args)`: the file's contents printed.
    case cat(format: String, args: [Field])
    /// `system(fmt, args)` (only with --unsafe).
    case system(format: String, args: [Field])
    /// `join(arr, delim)`: an array of `count` strings of `size` bytes at offset 8.
    case join(delimiter: String, count: Int, size: Int)
    /// -k/-kk: `helper` failed at `location` (bpftrace's `stdin:1:14-15`); the record holds its
    /// result at offset 8. `excerpt` is the script line and tildes under the site.
    case helperError(helper: String, location: String, line: Int, column: Int, excerpt: String)
}

/// The compiler's output.
public struct TracePlan: Sendable {
    public var object: ObjectSpec
    public var probes: [PlannedProbe]
    public var maps: [PlannedMap]
    public var actions: [AsyncAction]
    /// The ring buffer carrying async records ("" when the script has none).
    public var eventsMap: String
    /// The plan's own BTF (records, script structs) for `ValueType.record(inPlanBTF: true)`.
    public var btf: BTF?
    /// The stack-trace maps kstack/ustack ids refer to (empty when unused).
    public var kernelStackMap: String
    public var userStackMap: String
    /// Maps whose updates can fail when full, and the counter map the programs bump on
    /// failures (map update failed, probe read failed, ring buffer full), for -k style reports.
    public var errorCounterMap: String
    public init(object: ObjectSpec, probes: [PlannedProbe], maps: [PlannedMap], actions: [AsyncAction],
                eventsMap: String, btf: BTF? = nil, kernelStackMap: String = "", userStackMap: String = "",
                errorCounterMap: String = "") {
        self.object = object; self.probes = probes; self.maps = maps; self.actions = actions
        self.eventsMap = eventsMap; self.btf = btf; self.kernelStackMap = kernelStackMap
        self.userStackMap = userStackMap; self.errorCounterMap = errorCounterMap
    }
}

/// Counters in `TracePlan.errorCounterMap` (an array map of u64, one slot each).
public enum RuntimeCounter: UInt32, Sendable, CaseIterable {
    case ringBufferFull = 0
    case mapUpdateFailed = 1
    case probeReadFailed = 2
    case helperFailed = 3
}
