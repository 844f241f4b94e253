// Tracepoint facts from the kernel's BTF, for when tracefs cannot be read (an unprivileged
// `plumb --check`): tracefs is mode 0700, /sys/kernel/btf/vmlinux is world-readable.
//
// What BTF tells, and what it cannot:
// - Every tracepoint has a `btf_trace_<event>` typedef (a pointer to `void (void *, proto...)`).
//   Bare tracepoints (DECLARE_TRACE: raw tracepoints with no trace event) also have their own
//   `__bpf_trace_<name>` function but no `struct trace_event_raw_<name>`; they are not events.
// - An event's record is `struct trace_event_raw_<class>`: the event's own name for TRACE_EVENT,
//   the template's for DEFINE_EVENT. BTF keeps no link from an event to its class, but the
//   compiler checked that the event's prototype is the class's (`__bpf_trace_<class>`): the class
//   is the one whose prototype equals the event's, when exactly one does (or when all that do
//   have the same record). When several with different records do, the args cannot be known.
// - Categories (TRACE_SYSTEM) are not in BTF at all: only `syscalls` is known (by its names).
// - Syscall events (syscalls:sys_enter_X/sys_exit_X) are made per SYSCALL_DEFINE: they exist
//   when `__x64_sys_X` or `__do_sys_X` does (a superset: compat-only syscalls have them too);
//   the argument names and types are `__do_sys_X`'s parameters when BTF has that function
//   (often inlined away, then unknown); the record layout is fixed (8-byte slots from 16).
import PlumbBTF
import PlumbSys
import Synchronization
import Glibc

public final class TracepointBTF: Sendable {
    /// What BTF says of one event's `args`.
    public enum Args: Sendable, Equatable {
        case fields([TracefsField])
        /// The event exists but its record cannot be known from BTF: the fields every possible
        /// record has alike (checkable whichever it is), and why the others are unknown.
        case partial(known: [TracefsField], why: String)
    }

    public let btf: BTF
    /// Trace events other than syscalls, by name (category unknown).
    private let events: [String: EventRecord]
    /// Syscalls with an event pair: name -> `__do_sys_<name>` prototype id, if BTF has it.
    private let syscalls: [String: TypeID?]
    /// Sorted event names, for wildcards and "did you mean".
    public let eventNames: [String]
    public let syscallNames: [String]

    enum EventRecord: Sendable {
        case record(TypeID)
        case candidates([TypeID], why: String)
        case unknown(String)
    }

    public init(btf: BTF) {
        self.btf = btf
        var tracepointProtos: [String: TypeID] = [:]   // event -> FUNC_PROTO of btf_trace_<event>
        var records: [String: [TypeID]] = [:]          // class -> struct trace_event_raw_<class>
        var bpfTrace: [String: TypeID] = [:]           // class or bare tracepoint -> FUNC_PROTO
        var sys: [String: TypeID?] = [:]
        for id in btf.ids {
            switch btf.kind(of: id) {
            case .typedef:
                let n = btf.name(of: id)
                guard n.hasPrefix("btf_trace_"), let ptr = try? btf.type(id), let proto = try? btf.type(ptr.type),
                      proto.kind == .pointer, btf.kind(of: proto.type) == .functionProto else { continue }
                tracepointProtos[String(n.dropFirst(10))] = proto.type
            case .struct:
                let n = btf.name(of: id)
                if n.hasPrefix("trace_event_raw_") { records[String(n.dropFirst(16)), default: []].append(id) }
            case .function:
                let n = btf.name(of: id)
                if n.hasPrefix("__bpf_trace_"), let f = try? btf.type(id) {
                    bpfTrace[String(n.dropFirst(12))] = f.type
                } else if n.hasPrefix("__x64_sys_") {
                    let s = String(n.dropFirst(10))
                    if sys[s] == nil { sys[s] = .some(nil) }
                } else if n.hasPrefix("__do_sys_"), let f = try? btf.type(id) {
                    sys[String(n.dropFirst(9))] = f.type
                }
            default:
                continue
            }
        }
        // Classes by prototype signature (the context parameter dropped).
        var classesBySignature: [String: [(name: String, record: TypeID)]] = [:]
        for (cls, ids) in records {
            guard let proto = bpfTrace[cls], let sig = Self.signature(btf, proto) else { continue }
            for id in ids { classesBySignature[sig, default: []].append((cls, id)) }
        }
        var events: [String: EventRecord] = [:]
        for (event, proto) in tracepointProtos {
            let own = records[event] ?? []
            // A bare tracepoint: its own __bpf_trace_ function and no record of its own.
            if own.isEmpty, bpfTrace[event] != nil { continue }
            let sig = Self.signature(btf, proto)
            if own.count == 1, let p = bpfTrace[event], Self.signature(btf, p) == sig {
                events[event] = .record(own[0])
                continue
            }
            let candidates = sig.flatMap { classesBySignature[$0] } ?? []
            let layouts = Set(candidates.map { Self.fields(btf, record: $0.record) })
            if let first = candidates.first, layouts.count == 1 {
                events[event] = .record(first.record)
            } else if candidates.isEmpty {
                events[event] = .unknown("no event class in the kernel's BTF has the prototype of btf_trace_\(event)")
            } else {
                let names = Array(Set(candidates.map(\.name))).sorted()
                let shown = names.prefix(4).joined(separator: ", ") + (names.count > 4 ? ", ..." : "")
                events[event] = .candidates(candidates.map(\.record),
                                            why: "its prototype is that of \(names.count) event classes with different records (\(shown)), "
                                                + "and the kernel's BTF does not say which one it uses")
            }
        }
        self.events = events
        self.syscalls = sys
        eventNames = events.keys.sorted()
        syscallNames = sys.keys.sorted()
    }

    /// Every event as (category, name): `syscalls` for syscalls, nil where BTF does not know it.
    public var tracepoints: [(category: String?, name: String)] {
        syscallNames.flatMap { [("syscalls", "sys_enter_" + $0), ("syscalls", "sys_exit_" + $0)] }
            + eventNames.map { (nil, $0) }
    }

    /// The args of trace event `name` (any category but syscalls), nil when there is no such event.
    public func event(_ name: String) -> Args? {
        switch events[name] {
        case nil: nil
        case .record(let id): .fields(Self.fields(btf, record: id))
        case .unknown(let why): .partial(known: [], why: why)
        case .candidates(let ids, let why):
            // A field every candidate record has alike is right whichever record is the event's.
            { () -> Args in
                let layouts = ids.map { Self.fields(btf, record: $0) }
                let common = (layouts.first ?? []).filter { f in layouts.allSatisfy { $0.contains(f) } }
                return .partial(known: common, why: why)
            }()
        }
    }

    /// The args of `sys_enter_X` / `sys_exit_X`, nil when there is no such syscall.
    public func syscallEvent(_ name: String) -> Args? {
        let nr = TracefsField(type: "int", name: "__syscall_nr", offset: 8, size: 4, signed: true, arrayLength: nil)
        if name.hasPrefix("sys_exit_") {
            guard syscalls[String(name.dropFirst(9))] != nil else { return nil }
            return .fields([nr, TracefsField(type: "long", name: "ret", offset: 16, size: 8, signed: true, arrayLength: nil)])
        }
        guard name.hasPrefix("sys_enter_") else { return nil }
        let syscall = String(name.dropFirst(10))
        guard let entry = syscalls[syscall] else { return nil }
        guard let protoID = entry, let proto = try? btf.type(protoID) else {
            return .partial(known: [nr], why: "the kernel's BTF has no prototype of the syscall (no __do_sys_\(syscall))")
        }
        var params = proto.params
        // SYSCALL_DEFINE0 on x86-64: `__do_sys_X(const struct pt_regs *__unused)`, no arguments.
        if params.count == 1, params[0].name == "__unused" { params = [] }
        var out = [nr]
        for (i, p) in params.enumerated() {
            // Every argument is an unsigned long slot in the record (tracefs says signed:0 for all).
            out.append(TracefsField(type: Self.spelling(btf, p.type), name: p.name, offset: 16 + 8 * i, size: 8, signed: false, arrayLength: nil))
        }
        return .fields(out)
    }

    /// The fields of a `trace_event_raw_*` record as tracefs lists them (common fields dropped).
    static func fields(_ btf: BTF, record: TypeID) -> [TracefsField] {
        guard let t = try? btf.type(record) else { return [] }
        var out: [TracefsField] = []
        for (i, m) in t.members.enumerated() {
            // `struct trace_entry ent` holds the common_* fields; `char __data[]` the dynamic data.
            if i == 0 && m.name == "ent" { continue }
            if i == t.members.count - 1 && m.name == "__data" { continue }
            let offset = Int(m.bitOffset / 8)
            // __string/__dynamic_array: a u32 `__data_loc_NAME` (offset | length << 16). The element
            // type is not in BTF; tracefs would name it, but strings and arrays are read the same.
            if m.name.hasPrefix("__data_loc_") {
                out.append(TracefsField(type: "__data_loc char[]", name: String(m.name.dropFirst(11)), offset: offset, size: 4, signed: false, arrayLength: nil))
                continue
            }
            if m.name.hasPrefix("__rel_loc_") {
                out.append(TracefsField(type: "__rel_loc char[]", name: String(m.name.dropFirst(10)), offset: offset, size: 4, signed: false, arrayLength: nil))
                continue
            }
            let size = (try? btf.size(of: m.type)) ?? 0
            var arrayLength: Int?
            var scalar = m.type
            if let bare = try? btf.skipModifiers(m.type), let a = try? btf.type(bare), a.kind == .array, let info = a.arrayInfo {
                arrayLength = Int(info.count)
                scalar = info.elementType
            }
            out.append(TracefsField(type: Self.spelling(btf, m.type), name: m.name, offset: offset, size: size,
                                    signed: isSigned(btf, scalar), arrayLength: arrayLength))
        }
        return out
    }

    /// A type as C (and tracefs) spells it without a declarator: `const char *`, `char *const *`,
    /// `u8[6]`, `struct sock *`. Type tags (`__user`) are dropped as sparse's words are in tracefs.
    static func spelling(_ btf: BTF, _ id: TypeID, depth: Int = 0) -> String {
        guard depth < 32, id != 0, let t = try? btf.type(id) else { return id == 0 ? "void" : "?" }
        switch t.kind {
        case .const, .volatile:
            let word = t.kind == .const ? "const" : "volatile"
            // A qualified pointer is `T *const`; a qualified anything else `const T`.
            if let inner = try? btf.skipModifiers(t.type), btf.kind(of: inner) == .pointer, btf.kind(of: t.type) != .typeTag {
                return spelling(btf, t.type, depth: depth + 1) + word
            }
            return word + " " + spelling(btf, t.type, depth: depth + 1)
        case .typeTag, .restrict:
            return spelling(btf, t.type, depth: depth + 1)
        case .pointer:
            let inner = spelling(btf, t.type, depth: depth + 1)
            return inner.hasSuffix("*") ? inner + "*" : inner + " *"
        case .array:
            guard let a = t.arrayInfo else { return "?" }
            return spelling(btf, a.elementType, depth: depth + 1) + "[\(a.count)]"
        default:
            return btf.cTypeName(id)
        }
    }

    /// tracefs's `signed:` (the kernel's is_signed_type): signed integers and signed enums.
    static func isSigned(_ btf: BTF, _ id: TypeID) -> Bool {
        guard let r = try? btf.resolve(id), let t = try? btf.type(r) else { return false }
        switch t.kind {
        case .int: if case .int(let i) = t.payload { return i.encoding.contains(.signed) }; return false
        case .enum, .enum64: return t.kindFlag
        default: return false
        }
    }

    /// A prototype's parameters (the context dropped) as text that is equal exactly when C would
    /// call the types the same: typedefs resolved, qualifiers kept, records by name.
    static func signature(_ btf: BTF, _ proto: TypeID) -> String? {
        guard let t = try? btf.type(proto), t.kind == .functionProto, !t.params.isEmpty else { return nil }
        var out = ""
        for p in t.params.dropFirst() {
            guard let s = typeText(btf, p.type, depth: 0) else { return nil }
            out += s + ","
        }
        return out
    }

    private static func typeText(_ btf: BTF, _ id: TypeID, depth: Int) -> String? {
        guard depth < 32 else { return nil }
        if id == 0 { return "void" }
        guard let t = try? btf.type(id) else { return nil }
        switch t.kind {
        case .typedef, .typeTag, .restrict: return typeText(btf, t.type, depth: depth + 1)
        case .const: return typeText(btf, t.type, depth: depth + 1).map { "const " + $0 }
        case .volatile: return typeText(btf, t.type, depth: depth + 1).map { "volatile " + $0 }
        case .pointer: return typeText(btf, t.type, depth: depth + 1).map { $0 + "*" }
        case .int:
            guard case .int(let i) = t.payload else { return nil }
            return "i\(t.size)/\(i.encoding.rawValue)/\(i.bits)"
        case .float: return "f\(t.size)"
        case .struct: return t.name.isEmpty ? "struct#\(id)" : "struct " + t.name
        case .union: return t.name.isEmpty ? "union#\(id)" : "union " + t.name
        case .forward: return (t.kindFlag ? "union " : "struct ") + t.name
        case .enum, .enum64: return t.name.isEmpty ? "enum#\(id)" : "enum " + t.name
        case .array:
            guard let a = t.arrayInfo else { return nil }
            return typeText(btf, a.elementType, depth: depth + 1).map { $0 + "[\(a.count)]" }
        case .functionProto:
            var s = "fn("
            for p in t.params {
                guard let x = typeText(btf, p.type, depth: depth + 1) else { return nil }
                s += x + ","
            }
            guard let r = typeText(btf, t.type, depth: depth + 1) else { return nil }
            return s + ")" + r
        default:
            return nil
        }
    }

    // MARK: - The running system

    private static let systemSource = Mutex<TracepointBTF??>(nil)

    /// The BTF source when tracefs cannot be read (not mounted, or mode 0700 and we are not root);
    /// nil when tracefs answers (it is exact) or the kernel has no BTF. Built once per process.
    public static func whenTracefsUnreadable(_ kernelBTF: () -> BTF?) -> TracepointBTF? {
        systemSource.withLock { cached in
            if let c = cached { return c }
            var made: TracepointBTF?
            let root = try? Tracefs.path(mount: false)
            if root.map({ access($0 + "/available_events", R_OK) != 0 }) ?? true, let btf = kernelBTF() {
                made = TracepointBTF(btf: btf)
            }
            cached = .some(made)
            return made
        }
    }
}
