import PlumbSys
import PlumbBTF
import PlumbELF
import Glibc

// What `bpftool feature probe` prints beyond program and map types: the system block (JIT
// sysctls, unprivileged BPF, the kernel's CONFIG_BPF* options), map types whose creation needs
// BTF (probed for real with the BTF they need, as libbpf does), and a JSON form of the report.

/// bpftool's "system" section.
public struct SystemFeatures: Sendable {
    /// /proc/sys/... values by sysctl name (nil when unreadable, e.g. without CONFIG_BPF_JIT).
    public var sysctls: [(String, Int?)]
    /// The kernel options bpftool reports, with their values (nil: not set or config unreadable).
    public var config: [(String, String?)]

    /// The options `bpftool feature probe` lists.
    public static let configNames = [
        "CONFIG_BPF", "CONFIG_BPF_SYSCALL", "CONFIG_HAVE_EBPF_JIT", "CONFIG_BPF_JIT", "CONFIG_BPF_JIT_ALWAYS_ON",
        "CONFIG_DEBUG_INFO_BTF", "CONFIG_DEBUG_INFO_BTF_MODULES", "CONFIG_CGROUPS", "CONFIG_CGROUP_BPF",
        "CONFIG_CGROUP_NET_CLASSID", "CONFIG_SOCK_CGROUP_DATA", "CONFIG_BPF_EVENTS", "CONFIG_KPROBE_EVENTS",
        "CONFIG_UPROBE_EVENTS", "CONFIG_TRACING", "CONFIG_FTRACE_SYSCALLS", "CONFIG_FUNCTION_ERROR_INJECTION",
        "CONFIG_BPF_KPROBE_OVERRIDE", "CONFIG_NET", "CONFIG_XDP_SOCKETS", "CONFIG_LWTUNNEL_BPF", "CONFIG_NET_ACT_BPF",
        "CONFIG_NET_CLS_BPF", "CONFIG_NET_CLS_ACT", "CONFIG_NET_SCH_INGRESS", "CONFIG_XFRM", "CONFIG_IP_ROUTE_CLASSID",
        "CONFIG_IPV6_SEG6_BPF", "CONFIG_BPF_LIRC_MODE2", "CONFIG_BPF_STREAM_PARSER", "CONFIG_NETFILTER_XT_MATCH_BPF",
        "CONFIG_BPFILTER", "CONFIG_BPFILTER_UMH", "CONFIG_TEST_BPF", "CONFIG_HZ", "CONFIG_BPF_LSM",
        "CONFIG_BPF_PRELOAD", "CONFIG_BPF_UNPRIV_DEFAULT_OFF",
    ]

    public static let sysctlPaths = [
        ("unprivileged_bpf_disabled", "/proc/sys/kernel/unprivileged_bpf_disabled"),
        ("bpf_jit_enable", "/proc/sys/net/core/bpf_jit_enable"),
        ("bpf_jit_harden", "/proc/sys/net/core/bpf_jit_harden"),
        ("bpf_jit_kallsyms", "/proc/sys/net/core/bpf_jit_kallsyms"),
        ("bpf_jit_limit", "/proc/sys/net/core/bpf_jit_limit"),
    ]

    public static func probe() -> SystemFeatures {
        let sysctls = sysctlPaths.map { name, path in
            (name, KernelObjects.readText(path).flatMap { Int($0.split(separator: "\n").first ?? "") })
        }
        let kernel = KernelInfo.config()
        return SystemFeatures(sysctls: sysctls, config: configNames.map { ($0, kernel[$0]) })
    }

    /// bpftool's wording for each sysctl value.
    public static func describe(_ name: String, _ value: Int?) -> String {
        guard let value else { return "\(name) is unreadable (not root, or the kernel lacks it)" }
        switch name {
        case "unprivileged_bpf_disabled":
            switch value {
            case 0: return "bpf() syscall for unprivileged users is enabled"
            case 1: return "bpf() syscall restricted to privileged users (without recovery)"
            case 2: return "bpf() syscall restricted to privileged users (admin can change)"
            default: return "bpf() syscall restriction has unknown value \(value)"
            }
        case "bpf_jit_enable":
            switch value {
            case 0: return "JIT compiler is disabled"
            case 1: return "JIT compiler is enabled"
            case 2: return "JIT compiler is enabled with debugging traces in kernel logs"
            default: return "JIT compiler status has unknown value \(value)"
            }
        case "bpf_jit_harden":
            switch value {
            case 0: return "JIT compiler hardening is disabled"
            case 1: return "JIT compiler hardening is enabled for unprivileged users"
            case 2: return "JIT compiler hardening is enabled for all users"
            default: return "JIT hardening status has unknown value \(value)"
            }
        case "bpf_jit_kallsyms":
            switch value {
            case 0: return "JIT compiler kallsyms exports are disabled"
            case 1: return "JIT compiler kallsyms exports are enabled for root"
            default: return "JIT kallsyms exports status has unknown value \(value)"
            }
        case "bpf_jit_limit": return "Global memory limit for JIT compiler for unprivileged users is \(value) bytes"
        default: return "\(name) is \(value)"
        }
    }
}

extension Features {
    /// Map types whose creation needs BTF (local storage, struct_ops) or special flags (arena),
    /// probed by creating one with the BTF libbpf's probes build; other types use `mapType`.
    public static func mapTypeWithBTF(_ type: MapType) -> FeatureSupport {
        switch type {
        case .skStorage, .inodeStorage, .taskStorage, .cgrpStorage:
            // int; struct bpf_spin_lock { int val; }; struct val { int cnt; struct bpf_spin_lock l; }
            var b = BTFBuilder()
            let int = b.add(BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32))))
            let lock = b.add(BTFType(kind: .struct, name: "bpf_spin_lock", sizeOrType: 4, payload: .members([BTFMember(name: "val", type: int, bitOffset: 0)])))
            let val = b.add(BTFType(kind: .struct, name: "val", sizeOrType: 8, payload: .members([
                BTFMember(name: "cnt", type: int, bitOffset: 0), BTFMember(name: "l", type: lock, bitOffset: 32)])))
            let btf: OwnedFD
            do { btf = try Sys.btfLoad(b.encode()) } catch {
                return .unknown("loading the BTF a \(type) map needs: \(error)")
            }
            var a = MapAttributes(type: type, keySize: 4, valueSize: 8, maxEntries: 0, flags: .noPrealloc)
            a.btfFD = btf.rawValue
            a.btfKeyTypeID = int
            a.btfValueTypeID = val
            do {
                _ = try Sys.mapCreate(a)
                return .supported
            } catch {
                return error.errno == .notPermitted ? .unknown("\(type) map create: permission denied (EPERM)")
                    : .unsupported("\(type) map create rejected with \(error.errno.map(\.description) ?? "\(error)")")
            }
        case .structOps:
            // A bogus vmlinux value type id: kernels that know struct_ops answer ENOTSUPP (524)
            // for it; kernels that do not reject the map type with EINVAL.
            var a = MapAttributes(type: .structOps, keySize: 4, valueSize: 4, maxEntries: 1)
            a.btfVmlinuxValueTypeID = 1
            do {
                _ = try Sys.mapCreate(a)
                return .supported
            } catch {
                if error.errno == .kernelNotSupported { return .supported }
                return error.errno == .notPermitted ? .unknown("struct_ops map create: permission denied (EPERM)")
                    : .unsupported("struct_ops map create rejected with \(error.errno.map(\.description) ?? "\(error)")")
            }
        case .arena:
            let a = MapAttributes(type: .arena, keySize: 0, valueSize: 0, maxEntries: 1, flags: .mmapable)
            do {
                _ = try Sys.mapCreate(a)
                return .supported
            } catch {
                return .unsupported("arena map create rejected with \(error.errno.map(\.description) ?? "\(error)")")
            }
        default:
            return mapType(type)
        }
    }
}

extension FeatureReport {
    /// Every map type probed, BTF-valued ones included (replaces the `.unknown` answers of `probe`).
    public mutating func probeBTFMapTypes() {
        mapTypes = mapTypes.map { type, support in
            if case .unknown = support { return (type, Features.mapTypeWithBTF(type)) }
            return (type, support)
        }
    }

    /// Whether NAME=VALUE holds: prog_type=NAME, map_type=NAME, helper=NAME (for any probed
    /// program type, or `helper=NAME@PROG_TYPE`), attach=NAME. Nil when the name is unknown.
    public func has(_ query: String) -> Bool? {
        let parts = query.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        let value = parts[1]
        switch parts[0] {
        case "prog_type", "program_type":
            return programTypes.first { "\($0.0)" == value }?.1.isSupported
        case "map_type":
            return mapTypes.first { "\($0.0)" == value }?.1.isSupported
        case "attach":
            return attachKinds.first { $0.0 == value }?.1.isSupported
        case "helper":
            let hp = value.split(separator: "@", maxSplits: 1).map(String.init)
            let name = hp[0].hasPrefix("bpf_") ? hp[0] : "bpf_" + hp[0]
            guard Features.helperNames().contains(where: { $0.1 == name }) else { return nil }
            let lists = hp.count == 2 ? helpers.filter { "\($0.0)" == hp[1] } : helpers
            if hp.count == 2 && lists.isEmpty { return programTypes.first { "\($0.0)" == hp[1] } == nil ? nil : false }
            return lists.contains { $0.1.contains(name) }
        default:
            return nil
        }
    }

    /// The report as JSON, in bpftool's `feature probe -j` sections.
    public func json(system: SystemFeatures) -> JSONValue {
        var sys: [(String, JSONValue)] = []
        for (name, value) in system.sysctls { sys.append((name, value.map { .int(Int64($0)) } ?? .null)) }
        // bpftool keeps the config options in the same flat object as the sysctls.
        for (name, value) in system.config { sys.append((name, value.map { .string($0) } ?? .null)) }
        let progs = JSONValue.object(programTypes.map { ("have_\($0.0)_prog_type", .bool($0.1.isSupported)) })
        let maps = JSONValue.object(mapTypes.map { ("have_\($0.0)_map_type", .bool($0.1.isSupported)) })
        let attach = JSONValue.object(attachKinds.map { ($0.0, .bool($0.1.isSupported)) })
        let helperLists = JSONValue.object(helpers.map { ("\($0.0)_available_helpers", .array($0.1.map { .string($0) })) })
        return .object([("system_config", .object(sys)), ("program_types", progs), ("map_types", maps),
                        ("attach_kinds", attach), ("helpers", helperLists)])
    }
}
