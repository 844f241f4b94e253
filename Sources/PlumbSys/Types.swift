// Kernel ABI numbers for bpf(2). Values are the kernel's; names follow <linux/bpf.h>.

/// bpf(2) commands (`enum bpf_cmd`).
public enum BPFCommand: UInt32, Sendable, CustomStringConvertible {
    case mapCreate = 0, mapLookupElem, mapUpdateElem, mapDeleteElem, mapGetNextKey
    case progLoad = 5, objPin, objGet, progAttach, progDetach, progTestRun
    case progGetNextID = 11, mapGetNextID, progGetFDByID, mapGetFDByID, objGetInfoByFD
    case progQuery = 16, rawTracepointOpen, btfLoad, btfGetFDByID, taskFDQuery
    case mapLookupAndDeleteElem = 21, mapFreeze, btfGetNextID
    case mapLookupBatch = 24, mapLookupAndDeleteBatch, mapUpdateBatch, mapDeleteBatch
    case linkCreate = 28, linkUpdate, linkGetFDByID, linkGetNextID, enableStats, iterCreate, linkDetach
    case progBindMap = 35, tokenCreate

    public var description: String {
        switch self {
        case .mapCreate: "BPF_MAP_CREATE"
        case .mapLookupElem: "BPF_MAP_LOOKUP_ELEM"
        case .mapUpdateElem: "BPF_MAP_UPDATE_ELEM"
        case .mapDeleteElem: "BPF_MAP_DELETE_ELEM"
        case .mapGetNextKey: "BPF_MAP_GET_NEXT_KEY"
        case .progLoad: "BPF_PROG_LOAD"
        case .objPin: "BPF_OBJ_PIN"
        case .objGet: "BPF_OBJ_GET"
        case .progAttach: "BPF_PROG_ATTACH"
        case .progDetach: "BPF_PROG_DETACH"
        case .progTestRun: "BPF_PROG_TEST_RUN"
        case .progGetNextID: "BPF_PROG_GET_NEXT_ID"
        case .mapGetNextID: "BPF_MAP_GET_NEXT_ID"
        case .progGetFDByID: "BPF_PROG_GET_FD_BY_ID"
        case .mapGetFDByID: "BPF_MAP_GET_FD_BY_ID"
        case .objGetInfoByFD: "BPF_OBJ_GET_INFO_BY_FD"
        case .progQuery: "BPF_PROG_QUERY"
        case .rawTracepointOpen: "BPF_RAW_TRACEPOINT_OPEN"
        case .btfLoad: "BPF_BTF_LOAD"
        case .btfGetFDByID: "BPF_BTF_GET_FD_BY_ID"
        case .taskFDQuery: "BPF_TASK_FD_QUERY"
        case .mapLookupAndDeleteElem: "BPF_MAP_LOOKUP_AND_DELETE_ELEM"
        case .mapFreeze: "BPF_MAP_FREEZE"
        case .btfGetNextID: "BPF_BTF_GET_NEXT_ID"
        case .mapLookupBatch: "BPF_MAP_LOOKUP_BATCH"
        case .mapLookupAndDeleteBatch: "BPF_MAP_LOOKUP_AND_DELETE_BATCH"
        case .mapUpdateBatch: "BPF_MAP_UPDATE_BATCH"
        case .mapDeleteBatch: "BPF_MAP_DELETE_BATCH"
        case .linkCreate: "BPF_LINK_CREATE"
        case .linkUpdate: "BPF_LINK_UPDATE"
        case .linkGetFDByID: "BPF_LINK_GET_FD_BY_ID"
        case .linkGetNextID: "BPF_LINK_GET_NEXT_ID"
        case .enableStats: "BPF_ENABLE_STATS"
        case .iterCreate: "BPF_ITER_CREATE"
        case .linkDetach: "BPF_LINK_DETACH"
        case .progBindMap: "BPF_PROG_BIND_MAP"
        case .tokenCreate: "BPF_TOKEN_CREATE"
        }
    }
}

/// `enum bpf_map_type`.
public enum MapType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case unspec = 0, hash, array, progArray, perfEventArray, percpuHash, percpuArray, stackTrace
    case cgroupArray, lruHash, lruPercpuHash, lpmTrie, arrayOfMaps, hashOfMaps, devmap, sockmap
    case cpumap, xskmap, sockhash, cgroupStorage, reuseportSockarray, percpuCgroupStorage
    case queue, stack, skStorage, devmapHash, structOps, ringbuf, inodeStorage, taskStorage
    case bloomFilter, userRingbuf, cgrpStorage, arena

    /// Per-CPU maps read and write one value slot per possible CPU.
    public var isPerCPU: Bool {
        switch self {
        case .percpuHash, .percpuArray, .lruPercpuHash, .percpuCgroupStorage: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .unspec: "unspec"
        case .hash: "hash"
        case .array: "array"
        case .progArray: "prog_array"
        case .perfEventArray: "perf_event_array"
        case .percpuHash: "percpu_hash"
        case .percpuArray: "percpu_array"
        case .stackTrace: "stack_trace"
        case .cgroupArray: "cgroup_array"
        case .lruHash: "lru_hash"
        case .lruPercpuHash: "lru_percpu_hash"
        case .lpmTrie: "lpm_trie"
        case .arrayOfMaps: "array_of_maps"
        case .hashOfMaps: "hash_of_maps"
        case .devmap: "devmap"
        case .sockmap: "sockmap"
        case .cpumap: "cpumap"
        case .xskmap: "xskmap"
        case .sockhash: "sockhash"
        case .cgroupStorage: "cgroup_storage"
        case .reuseportSockarray: "reuseport_sockarray"
        case .percpuCgroupStorage: "percpu_cgroup_storage"
        case .queue: "queue"
        case .stack: "stack"
        case .skStorage: "sk_storage"
        case .devmapHash: "devmap_hash"
        case .structOps: "struct_ops"
        case .ringbuf: "ringbuf"
        case .inodeStorage: "inode_storage"
        case .taskStorage: "task_storage"
        case .bloomFilter: "bloom_filter"
        case .userRingbuf: "user_ringbuf"
        case .cgrpStorage: "cgrp_storage"
        case .arena: "arena"
        }
    }
}

/// `enum bpf_prog_type`.
public enum ProgramType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case unspec = 0, socketFilter, kprobe, schedCls, schedAct, tracepoint, xdp, perfEvent
    case cgroupSkb, cgroupSock, lwtIn, lwtOut, lwtXmit, sockOps, skSkb, cgroupDevice, skMsg
    case rawTracepoint, cgroupSockAddr, lwtSeg6local, lircMode2, skReuseport, flowDissector
    case cgroupSysctl, rawTracepointWritable, cgroupSockopt, tracing, structOps, ext, lsm
    case skLookup, syscall, netfilter

    public var description: String {
        switch self {
        case .unspec: "unspec"
        case .socketFilter: "socket_filter"
        case .kprobe: "kprobe"
        case .schedCls: "sched_cls"
        case .schedAct: "sched_act"
        case .tracepoint: "tracepoint"
        case .xdp: "xdp"
        case .perfEvent: "perf_event"
        case .cgroupSkb: "cgroup_skb"
        case .cgroupSock: "cgroup_sock"
        case .lwtIn: "lwt_in"
        case .lwtOut: "lwt_out"
        case .lwtXmit: "lwt_xmit"
        case .sockOps: "sock_ops"
        case .skSkb: "sk_skb"
        case .cgroupDevice: "cgroup_device"
        case .skMsg: "sk_msg"
        case .rawTracepoint: "raw_tracepoint"
        case .cgroupSockAddr: "cgroup_sock_addr"
        case .lwtSeg6local: "lwt_seg6local"
        case .lircMode2: "lirc_mode2"
        case .skReuseport: "sk_reuseport"
        case .flowDissector: "flow_dissector"
        case .cgroupSysctl: "cgroup_sysctl"
        case .rawTracepointWritable: "raw_tracepoint_writable"
        case .cgroupSockopt: "cgroup_sockopt"
        case .tracing: "tracing"
        case .structOps: "struct_ops"
        case .ext: "ext"
        case .lsm: "lsm"
        case .skLookup: "sk_lookup"
        case .syscall: "syscall"
        case .netfilter: "netfilter"
        }
    }
}

/// `enum bpf_attach_type`: open-ended (new kernels add values), so a struct, not an enum.
public struct AttachType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let cgroupInet4Connect = AttachType(rawValue: 10)
    public static let cgroupGetsockopt = AttachType(rawValue: 21)
    public static let cgroupSetsockopt = AttachType(rawValue: 22)
    public static let traceRawTP = AttachType(rawValue: 23)
    public static let traceFentry = AttachType(rawValue: 24)
    public static let traceFexit = AttachType(rawValue: 25)
    public static let modifyReturn = AttachType(rawValue: 26)
    public static let lsmMac = AttachType(rawValue: 27)
    public static let traceIter = AttachType(rawValue: 28)
    public static let skLookup = AttachType(rawValue: 36)
    public static let perfEvent = AttachType(rawValue: 41)
    public static let traceKprobeMulti = AttachType(rawValue: 42)
    public static let netfilter = AttachType(rawValue: 45)
    public static let traceUprobeMulti = AttachType(rawValue: 48)
}

/// `enum bpf_link_type`.
package enum LinkType: UInt32, Sendable, CaseIterable {
    case unspec = 0, rawTracepoint, tracing, cgroup, iter, netns, xdp, perfEvent, kprobeMulti
    case structOps, netfilter, tcx, uprobeMulti, netkit, sockmap
}

/// The kinds of kernel objects that have ids.
package enum ObjectKind: Sendable, CaseIterable, CustomStringConvertible {
    case program, map, link, btf

    var nextIDCommand: BPFCommand {
        switch self {
        case .program: .progGetNextID
        case .map: .mapGetNextID
        case .link: .linkGetNextID
        case .btf: .btfGetNextID
        }
    }

    var fdByIDCommand: BPFCommand {
        switch self {
        case .program: .progGetFDByID
        case .map: .mapGetFDByID
        case .link: .linkGetFDByID
        case .btf: .btfGetFDByID
        }
    }

    package var description: String {
        switch self {
        case .program: "program"
        case .map: "map"
        case .link: "link"
        case .btf: "btf"
        }
    }
}

/// Flags for element updates (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, `BPF_F_LOCK`).
public struct UpdateFlags: OptionSet, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let any: UpdateFlags = []
    public static let noExist = UpdateFlags(rawValue: 1)
    public static let exist = UpdateFlags(rawValue: 2)
    public static let lock = UpdateFlags(rawValue: 4)
}

/// `map_flags` for BPF_MAP_CREATE.
public struct MapFlags: OptionSet, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let noPrealloc = MapFlags(rawValue: 1 << 0)
    public static let noCommonLRU = MapFlags(rawValue: 1 << 1)
    public static let numaNode = MapFlags(rawValue: 1 << 2)
    public static let rdonly = MapFlags(rawValue: 1 << 3)
    public static let wronly = MapFlags(rawValue: 1 << 4)
    public static let stackBuildID = MapFlags(rawValue: 1 << 5)
    public static let zeroSeed = MapFlags(rawValue: 1 << 6)
    public static let rdonlyProg = MapFlags(rawValue: 1 << 7)
    public static let wronlyProg = MapFlags(rawValue: 1 << 8)
    public static let clone = MapFlags(rawValue: 1 << 9)
    public static let mmapable = MapFlags(rawValue: 1 << 10)
    public static let preserveElems = MapFlags(rawValue: 1 << 11)
    public static let innerMap = MapFlags(rawValue: 1 << 12)
}

/// `prog_flags` for BPF_PROG_LOAD.
public struct ProgramFlags: OptionSet, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let strictAlignment = ProgramFlags(rawValue: 1 << 0)
    public static let anyAlignment = ProgramFlags(rawValue: 1 << 1)
    public static let testRandHi32 = ProgramFlags(rawValue: 1 << 2)
    public static let testStateFreq = ProgramFlags(rawValue: 1 << 3)
    public static let sleepable = ProgramFlags(rawValue: 1 << 4)
    public static let xdpHasFrags = ProgramFlags(rawValue: 1 << 5)
}
