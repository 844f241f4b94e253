import PlumbBTF
import PlumbELF

/// The argument specs that libbpf's `<bpf/usdt.bpf.h>` helpers (`bpf_usdt_arg()`,
/// `bpf_usdt_arg_cnt()`, `BPF_USDT(...)`) read: an object that includes the header declares
/// `__bpf_usdt_specs` (ARRAY, key = spec id, value = `struct __bpf_usdt_spec`) and expects each
/// USDT site's BPF cookie to be the id of its spec. This fills that map, one entry per distinct
/// site spec, shared by all the object's USDT attachments, and attaches with those cookies.
///
/// Layout (libbpf 1.x): `struct __bpf_usdt_arg_spec { __u64 val_off; enum arg_type; short reg_off;
/// bool arg_signed; char arg_bitshift; }` and `struct __bpf_usdt_spec { args[12]; __u64 usdt_cookie;
/// short arg_cnt; }`; offsets are taken from the object's BTF and checked, not assumed.
/// `__bpf_usdt_ip_to_spec_id` is only read on kernels without BPF cookies (before 5.15) and is
/// not filled.
public final class LibbpfUSDTSpecs: @unchecked Sendable {
    public static let mapName = "__bpf_usdt_specs"
    /// libbpf's `enum __bpf_usdt_arg_type`.
    enum ArgType: UInt32 { case constant = 0, register = 1, registerDeref = 2 }

    struct Layout {
        var valueSize: Int
        var argsOffset: Int, argSize: Int, maxArgs: Int
        var cookieOffset: Int, countOffset: Int
        var valOff: Int, argType: Int, regOff: Int, signed: Int, bitshift: Int
    }

    let map: Map
    let layout: Layout
    /// Spec bytes -> id, so sites with the same arguments share one entry.
    private var ids: [[UInt8]: UInt32] = [:]

    /// nil when the object does not declare `__bpf_usdt_specs` (it reads no libbpf USDT specs).
    public init?(object: Object) throws(BPFError) {
        guard let map = object.maps[Self.mapName], let spec = object.spec.map(Self.mapName) else { return nil }
        guard let btf = object.spec.btf, spec.valueType != 0 else {
            throw .invalidArgument("\(Self.mapName) in \(object.spec.name) has no BTF value type; build the object with -g so its struct __bpf_usdt_spec layout is known")
        }
        do { layout = try Self.layout(btf, spec.valueType, valueSize: map.valueSize) } catch {
            throw .invalidArgument("\(Self.mapName) in \(object.spec.name): \(error); its layout is not libbpf's struct __bpf_usdt_spec (libbpf 1.x)")
        }
        guard map.type == .array, map.keySize == 4 else {
            throw .invalidArgument("\(Self.mapName) in \(object.spec.name) is a \(map.type) map with \(map.keySize)-byte keys; libbpf's is an ARRAY keyed by int")
        }
        self.map = map
    }

    struct LayoutError: Error, CustomStringConvertible { var description: String }

    static func layout(_ btf: BTF, _ id: TypeID, valueSize: Int) throws -> Layout {
        func members(_ id: TypeID, _ what: String) throws -> [String: (offset: Int, size: Int, type: TypeID)] {
            let t = try btf.type(try btf.resolve(id))
            guard t.kind == .struct else { throw LayoutError(description: "\(what) is not a struct") }
            var out: [String: (Int, Int, TypeID)] = [:]
            for m in t.members {
                guard m.bitfieldSize == 0, m.bitOffset % 8 == 0 else { throw LayoutError(description: "\(what).\(m.name) is a bitfield") }
                out[m.name] = (Int(m.bitOffset / 8), try btf.size(of: m.type), m.type)
            }
            return out
        }
        func need(_ ms: [String: (offset: Int, size: Int, type: TypeID)], _ name: String, _ sizes: Set<Int>, _ what: String) throws -> Int {
            guard let m = ms[name] else { throw LayoutError(description: "\(what) has no member \(name)") }
            guard sizes.contains(m.size) else { throw LayoutError(description: "\(what).\(name) is \(m.size) bytes") }
            return m.offset
        }
        let spec = try members(id, "the value type")
        guard let args = spec["args"] else { throw LayoutError(description: "the value type has no member args") }
        let arrayType = try btf.type(try btf.resolve(args.type))
        guard let array = arrayType.arrayInfo, array.count > 0 else { throw LayoutError(description: "args is not an array") }
        let argSize = try btf.size(of: array.elementType)
        let arg = try members(array.elementType, "the args element")
        let what = "struct __bpf_usdt_arg_spec"
        let layout = Layout(valueSize: valueSize, argsOffset: args.offset, argSize: argSize, maxArgs: Int(array.count),
                            cookieOffset: try need(spec, "usdt_cookie", [8], "the value type"),
                            countOffset: try need(spec, "arg_cnt", [2], "the value type"),
                            valOff: try need(arg, "val_off", [8], what), argType: try need(arg, "arg_type", [4], what),
                            regOff: try need(arg, "reg_off", [2], what), signed: try need(arg, "arg_signed", [1], what),
                            bitshift: try need(arg, "arg_bitshift", [1], what))
        guard layout.argsOffset + argSize * layout.maxArgs <= valueSize, layout.cookieOffset + 8 <= valueSize,
              layout.countOffset + 2 <= valueSize, [layout.valOff + 8, layout.argType + 4, layout.regOff + 2, layout.signed + 1, layout.bitshift + 1].allSatisfy({ $0 <= argSize }) else {
            throw LayoutError(description: "its members lie outside the \(valueSize)-byte value")
        }
        return layout
    }

    /// The spec value for one site, or an error naming the site and the argument form libbpf's
    /// helpers cannot read.
    func value(for probe: USDTProbe, path: String) throws(BPFError) -> [UInt8] {
        let site = "\(path):\(probe.qualifiedName) at 0x\(String(probe.address, radix: 16))"
        guard let args = probe.arguments else {
            throw .invalidArgument("USDT site \(site): arguments '\(probe.argumentText)' are not in x86-64 syntax; bpf_usdt_arg() cannot read them")
        }
        guard args.count <= layout.maxArgs else {
            throw .invalidArgument("USDT site \(site) has \(args.count) arguments; struct __bpf_usdt_spec holds \(layout.maxArgs)")
        }
        var v = [UInt8](repeating: 0, count: layout.valueSize)
        func put(_ x: UInt64, at o: Int, size: Int) {
            for i in 0..<size { v[o + i] = UInt8(truncatingIfNeeded: x >> (8 * UInt64(i))) }
        }
        for (i, a) in args.enumerated() {
            let base = layout.argsOffset + i * layout.argSize
            let type: ArgType
            var valOff: UInt64 = 0
            var regOff = 0
            var size = a.size
            switch a.location {
            case .constant(let c):
                type = .constant; valOff = UInt64(bitPattern: c)
            case .register(let r):
                // Sub-registers (%ah) start inside the 8-byte slot: libbpf reads 8 bytes there and
                // the bit shift drops what lies above the argument.
                type = .register; regOff = r.ptRegsLoadOffset; size = min(a.size, r.width)
            case .memory(let base, let offset) where base.width == 8 && base.byteShift == 0:
                type = .registerDeref; regOff = base.register.ptRegsOffset; valOff = UInt64(bitPattern: offset)
            default:
                // SIB, RIP-relative and symbol operands need a computed address or a memory read
                // libbpf 1.1's three forms (CONST, REG, REG_DEREF) cannot express.
                throw .invalidArgument("USDT site \(site): argument \(i + 1) '\(a.text)' has a form libbpf's bpf_usdt_arg() cannot read (only constants, registers and offset(%reg)); read this probe with plumb's tracer (usdt:...:\(probe.name) { arg\(i) }) or a program that does not use usdt.bpf.h")
            }
            put(valOff, at: base + layout.valOff, size: 8)
            put(UInt64(type.rawValue), at: base + layout.argType, size: 4)
            put(UInt64(regOff), at: base + layout.regOff, size: 2)
            v[base + layout.signed] = a.isSigned ? 1 : 0
            v[base + layout.bitshift] = UInt8(64 - 8 * max(1, min(size, 8)))
        }
        put(UInt64(args.count), at: layout.countOffset, size: 2)
        return v
    }

    /// Attaches `program` (a `SEC("usdt")` program using usdt.bpf.h) to every site of
    /// `provider:name` in `binary`: checks every site's arguments first, writes their specs to
    /// `__bpf_usdt_specs` and gives each site its spec id as cookie.
    public func attach(_ program: Program, binary: String, provider: String?, name: String, pid: Int32) throws(BPFError) -> USDTAttachment {
        let (path, all) = try USDTResolver.probes(binary: binary)
        var siteIDs: [UInt64: UInt32] = [:]   // site file offset -> spec id
        var pending: [(UInt32, [UInt8])] = []
        for p in USDTResolver.matching(all, provider: provider, name: name) {
            let v = try value(for: p, path: path)
            if let id = ids[v] { siteIDs[p.fileOffset] = id; continue }
            let id = UInt32(ids.count)
            guard id < map.maxEntries else {
                throw .invalidArgument("\(Self.mapName) holds \(map.maxEntries) specs and \(path):\(p.qualifiedName) needs more; build the object with a larger BPF_USDT_MAX_SPEC_CNT")
            }
            ids[v] = id
            siteIDs[p.fileOffset] = id
            pending.append((id, v))
        }
        for (id, v) in pending {
            try map.update(withUnsafeBytes(of: id.littleEndian) { Array($0) }, v)
        }
        return try program.attachUSDT(binary: binary, provider: provider, name: name, pid: pid) { _, p in
            UInt64(siteIDs[p.fileOffset] ?? 0)
        }
    }
}
