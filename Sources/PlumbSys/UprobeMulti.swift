import CPlumbSys
import Glibc

extension Sys {
    /// BPF_LINK_CREATE with BPF_TRACE_UPROBE_MULTI (6.6+): uprobes at every `offsets[i]` of
    /// `path`, each with its USDT semaphore's `refCounterOffsets[i]` (0: none) and `cookies[i]`,
    /// in one link. The program must have been loaded with expected attach type
    /// `.traceUprobeMulti`. `pid` > 0 limits the probes to that process.
    package static func linkCreateUprobeMulti(_ prog: borrowing OwnedFD, path: String, offsets: [UInt64],
                                             refCounterOffsets: [UInt64], cookies: [UInt64], pid: Int32 = -1,
                                             returnProbes: Bool = false) throws(SysError) -> OwnedFD {
        guard !offsets.isEmpty, offsets.count == refCounterOffsets.count, offsets.count == cookies.count,
              let count = UInt32(exactly: offsets.count) else {
            throw .invalidArgument("uprobe_multi needs as many ref counter offsets and cookies as offsets (\(offsets.count))")
        }
        var arena = Arena()
        func u64s(_ v: [UInt64]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }   // native byte order, as the kernel reads them
        var attr = cbpf_link_create_uprobe_multi_attr()
        attr.prog_fd = UInt32(bitPattern: prog.rawValue)
        attr.attach_type = AttachType.traceUprobeMulti.rawValue
        attr.path = arena.cString(path)
        attr.offsets = arena.copy(u64s(offsets))
        attr.ref_ctr_offsets = refCounterOffsets.allSatisfy { $0 == 0 } ? 0 : arena.copy(u64s(refCounterOffsets))
        attr.cookies = cookies.allSatisfy { $0 == 0 } ? 0 : arena.copy(u64s(cookies))
        attr.cnt = count
        attr.uprobe_multi_flags = returnProbes ? 1 : 0   // BPF_F_UPROBE_MULTI_RETURN
        attr.pid = pid > 0 ? UInt32(pid) : 0
        return try callFD(.linkCreate, &attr, context: "uprobe_multi link on \(path) (\(offsets.count) offsets; needs Linux 6.6+)")
    }
}
