// The checker's types. Integers follow C (size, signedness, promotion); pointers remember
// what they point to (a BTF type of the kernel or a scalar) and which address space they
// live in, so dereferences pick the right read helper without guessing.
import PlumbBTF

/// Where a pointer points.
public enum AddressSpace: Sendable, Equatable {
    /// Kernel memory read with bpf_probe_read_kernel.
    case kernel
    /// User memory read with bpf_probe_read_user.
    case user
    /// A BTF-typed kernel pointer the verifier tracks (tp_btf/fentry args): direct loads.
    case btf
    /// A program context described by a BTF struct (iterators' `ctx`): its fields load
    /// directly, the pointers in it may be NULL and are read with the kernel helper.
    case context
}

extension AddressSpace {
    /// Where a computed address (pointer arithmetic, buffers) is read from: the verifier only
    /// allows direct loads at fixed offsets of the pointers it tracks.
    var readable: AddressSpace { self == .btf || self == .context ? .kernel : self }
}

public indirect enum SType: Sendable, Equatable, CustomStringConvertible {
    case none
    case int(size: Int, signed: Bool)
    case bool
    /// A NUL-terminated string in `size` bytes.
    case string(size: Int)
    case pointer(SType, space: AddressSpace)
    /// A struct/union of the kernel's BTF (`id`), by value (only as a pointee or member base).
    case record(id: TypeID, name: String, size: Int)
    case array(SType, count: Int)
    case tuple([SType])
    /// A stack id (kstack) / stack id and pid (ustack), printed in `mode` with at most `limit` frames.
    case kstack(mode: StackMode, limit: Int)
    case ustack(mode: StackMode, limit: Int)
    case ksym, usym, username, inet
    /// strerror(n): an errno printed as its message; macaddr(x): 6 bytes (in 8) printed as a MAC address.
    case strerror, macaddr
    /// strftime(fmt, ns): CLOCK_MONOTONIC nanoseconds the runtime prints as wall-clock time.
    case timestamp(format: String)
    case buffer(capacity: Int)
    /// The tracepoint/raw tracepoint `args` record: fields resolved on access.
    case args
    /// `args` as a whole value (printed, stored): every field at its offset (CodegenArgs.swift).
    case argsRecord([RecordMember], size: Int)
    /// The probe's context pointer.
    case ctx

    public static let u64 = SType.int(size: 8, signed: false)
    public static let i64 = SType.int(size: 8, signed: true)
    public static let u32 = SType.int(size: 4, signed: false)
    public static let i32 = SType.int(size: 4, signed: true)

    public var isInteger: Bool { if case .int = self { return true }; return self == .bool }
    public var isPointer: Bool { if case .pointer = self { return true }; return false }
    /// Values that fit a register.
    public var isScalar: Bool {
        switch self {
        case .int, .bool, .pointer, .ksym, .username, .ctx, .kstack, .timestamp, .strerror: return true
        default: return false
        }
    }
    public var isSigned: Bool { if case .int(_, let s) = self { return s }; return false }
    public var isString: Bool { if case .string = self { return true }; return false }

    /// Bytes the value occupies in a record or map.
    public var size: Int {
        switch self {
        case .none, .args: return 0
        case .int(let s, _): return s
        case .bool: return 1
        case .string(let s): return s
        case .pointer, .ctx, .ksym, .username, .kstack, .timestamp, .strerror, .macaddr: return 8
        case .usym, .ustack: return 16
        case .inet: return 24
        case .record(_, _, let s): return s
        case .array(let e, let n): return e.size * n
        case .tuple: return tupleLayout.size
        case .buffer(let c): return 4 + c
        case .argsRecord(_, let s): return s
        }
    }

    /// Tuple elements laid out as bpftrace lays them out: each element aligned to its own
    /// alignment (8 for 8-byte and larger values), the size a multiple of 8.
    public var tupleLayout: (offsets: [Int], size: Int) {
        guard case .tuple(let elems) = self else { return ([], size) }
        var offsets: [Int] = []
        var at = 0
        for e in elems {
            let a = e.alignment
            at = (at + a - 1) / a * a
            offsets.append(at)
            at += e.storageSize
        }
        return (offsets, (at + 7) / 8 * 8)
    }

    /// Bytes an element takes in a tuple/record field: scalars as their size, others whole.
    var storageSize: Int { size }
    var alignment: Int {
        switch self {
        case .int(let s, _): return s
        case .bool: return 1
        case .string: return 1
        default: return 8
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .int(let s, let signed): return (signed ? "int" : "unsigned int") + "\(s * 8)"
        case .bool: return "bool"
        case .string(let s): return "string[\(s)]"
        case .pointer(let p, _): return p.cSpelling + " *"
        case .record(_, let n, _): return n
        case .array(let e, let n): return "\(e.cSpelling)[\(n)]"
        case .tuple(let es): return "(" + es.map(\.description).joined(separator: ",") + ")"
        case .kstack(let m, let l): return m == .bpftrace && l == 127 ? "kstack" : "kstack(\(m.rawValue), \(l))"
        case .ustack(let m, let l): return m == .bpftrace && l == 127 ? "ustack" : "ustack(\(m.rawValue), \(l))"
        case .ksym: return "ksym"
        case .usym: return "usym"
        case .username: return "username"
        case .timestamp: return "timestamp"
        case .inet: return "inet"
        case .strerror: return "strerror"
        case .macaddr: return "macaddr"
        case .buffer(let c): return "buffer[\(c)]"
        case .args: return "args"
        case .argsRecord: return "struct args"
        case .ctx: return "ctx"
        }
    }

    var cSpelling: String {
        switch self {
        case .none: return "void"
        case .int(1, true): return "int8"
        case .pointer(let p, _): return p.cSpelling + " *"
        default: return description
        }
    }

    /// How the runtime prints it.
    func valueType(strlen: Int) -> ValueType {
        switch self {
        case .none, .args, .ctx: return .none
        case .int(let s, let signed): return .integer(size: s, signed: signed)
        case .bool: return .boolean
        case .string(let s): return .string(size: s)
        // bpftrace 0.17 prints pointers held in maps and records as signed integers (%p in
        // printf still formats them as hex).
        case .pointer: return .integer(size: 8, signed: true)
        case .record(let id, _, let s): return .record(type: id, size: s, inPlanBTF: false)
        case .array(let e, let n):
            if case .int = e { return .tuple((0..<n).map { Field(offset: $0 * e.size, type: e.valueType(strlen: strlen)) }, size: e.size * n) }
            return .none
        case .tuple(let es):
            let l = tupleLayout
            return .tuple(zip(l.offsets, es).map { Field(offset: $0, type: $1.valueType(strlen: strlen)) }, size: l.size)
        case .kstack(let m, let l): return .kernelStack(limit: l, mode: m)
        case .ustack(let m, let l): return .userStack(limit: l, mode: m)
        case .ksym: return .kernelSymbol
        case .usym: return .userSymbol
        case .username: return .username
        case .timestamp(let f): return .timestamp(format: f)
        case .inet: return .inet
        case .strerror: return .errorNumber
        case .macaddr: return .macAddress
        case .buffer(let c): return .buffer(capacity: c)
        // Printed through a struct of the plan's BTF (Compiler.printed).
        case .argsRecord: return .none
        }
    }
}

/// A member of an `argsRecord`: its name, where it is and what it holds.
public struct RecordMember: Sendable, Equatable {
    public var name: String
    public var offset: Int
    public var type: SType
    public init(name: String, offset: Int, type: SType) { self.name = name; self.offset = offset; self.type = type }
}

/// The usual arithmetic conversions as bpftrace applies them: arithmetic is 64-bit; an
/// unsigned 64-bit side makes it unsigned, otherwise it is signed when either side is.
func promote(_ a: SType, _ b: SType) -> SType {
    if case .int(8, false) = a { return .u64 }
    if case .int(8, false) = b { return .u64 }
    return a.isSigned || b.isSigned ? .i64 : .u64
}

/// Converts a kernel BTF type to the checker's, following typedefs and qualifiers. Char
/// arrays become strings (as bpftrace prints them).
func stype(fromBTF id: TypeID, btf: BTF, space: AddressSpace, depth: Int = 0) -> SType {
    guard depth < 16, let rid = try? btf.resolve(id), let t = try? btf.type(rid) else { return .none }
    switch t.kind {
    case .unknown: return .none
    case .int:
        if t.intInfo?.encoding.contains(.bool) == true { return .bool }
        let size = max(1, Int(t.size))
        return .int(size: size, signed: t.intInfo?.encoding.contains(.signed) ?? false)
    case .enum, .enum64:
        return .int(size: max(1, Int(t.size)), signed: t.isSignedEnum)
    case .pointer:
        let inner = stype(fromBTF: t.type, btf: btf, space: space, depth: depth + 1)
        // `__user` (a type tag) marks user memory; the verifier tracks only pointers to
        // structs as BTF pointers, anything else it loads is a plain number.
        if hasUserTag(t.type, btf: btf) { return .pointer(inner, space: .user) }
        if space == .btf, case .record = inner { return .pointer(inner, space: .btf) }
        return .pointer(inner, space: space == .btf ? .kernel : space)
    case .struct, .union:
        return .record(id: rid, name: btf.cTypeName(rid), size: Int(t.size))
    case .array:
        guard let a = t.arrayInfo else { return .none }
        let e = stype(fromBTF: a.elementType, btf: btf, space: space, depth: depth + 1)
        if case .int(1, _) = e { return .string(size: Int(a.count)) }
        return .array(e, count: Int(a.count))
    case .forward:
        return .record(id: rid, name: btf.cTypeName(rid), size: 0)
    case .functionProto, .function:
        return .none
    default:
        return .u64
    }
}

func hasUserTag(_ id: TypeID, btf: BTF) -> Bool {
    var id = id
    for _ in 0..<8 {
        guard let t = try? btf.type(id), t.kind.isModifier || t.kind == .typedef else { return false }
        if t.kind == .typeTag && t.name == "user" { return true }
        id = t.type
    }
    return false
}

/// Edit distance counting a swap of neighbours as one edit (`pdi` is one from `pid`), for
/// "did you mean" notes: typos swap letters more often than they replace them.
func suggestionDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.utf8), y = Array(b.utf8)
    if x.isEmpty || y.isEmpty { return max(x.count, y.count) }
    var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
    for i in 0...x.count { d[i][0] = i }
    for j in 0...y.count { d[0][j] = j }
    for i in 1...x.count {
        for j in 1...y.count {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
        }
    }
    return d[x.count][y.count]
}

/// The closest candidate within a distance that makes sense for the name's length.
func nearest(_ name: String, in candidates: [String]) -> String? {
    var best: (String, Int)?
    for c in candidates where !c.isEmpty {
        let d = suggestionDistance(name, c)
        if d <= max(2, name.count / 3), d < name.count, best == nil || d < best!.1 { best = (c, d) }
    }
    return best?.0
}
