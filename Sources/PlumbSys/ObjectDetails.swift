import CPlumbSys
import Glibc

// The variable-length parts of BPF_OBJ_GET_INFO_BY_FD (map ids, translated instructions,
// func_info/line_info, a BTF object's bytes): asked for in a second call once the first
// has said how many there are, as bpftool does.

/// One `struct bpf_line_info` record of a loaded program (offsets into its BTF's strings).
package struct KernelLineInfo: Sendable, Equatable {
    package var instructionOffset: UInt32
    package var fileNameOffset: UInt32
    package var lineOffset: UInt32
    package var line: UInt32
    package var column: UInt32
}

/// One `struct bpf_func_info` record: a subprogram's first slot and its BTF FUNC type id.
package struct KernelFuncInfo: Sendable, Equatable {
    package var instructionOffset: UInt32
    package var typeID: UInt32
}

package struct ProgramDetails: Sendable {
    package var mapIDs: [UInt32]
    /// The translated (post-verifier) instructions; empty without CAP_SYS_ADMIN or when the
    /// kernel hides them (kernel.kptr_restrict / bpf_dump_raw_ok).
    package var xlated: [UInt8]
    package var funcInfo: [KernelFuncInfo]
    package var lineInfo: [KernelLineInfo]
}

/// What a link is attached to, as far as the link type's info says.
package struct LinkTarget: Sendable {
    package var tracepointName: String?
    package var attachType: UInt32?
    package var targetObjectID: UInt32?
    package var targetBTFID: UInt32?
}

extension Sys {
    private static func infoCall(_ fd: Int32, _ p: UnsafeMutableRawBufferPointer, what: String) throws(SysError) {
        var attr = cbpf_info_attr()
        attr.bpf_fd = UInt32(bitPattern: fd)
        attr.info_len = UInt32(p.count)
        attr.info = address(p.baseAddress)
        if case .failure(let e) = call(.objGetInfoByFD, &attr) {
            throw .syscall(command: .objGetInfoByFD, errno: e, context: "\(what) fd \(fd)")
        }
    }

    /// Map ids, translated instructions, func_info and line_info of a loaded program.
    package static func programDetails(_ prog: borrowing OwnedFD) throws(SysError) -> ProgramDetails {
        let fd = prog.rawValue
        var first = cbpf_prog_info()
        try withUnsafeMutableBytes(of: &first) { (b) throws(SysError) in try infoCall(fd, b, what: "program") }
        // Counts come from the kernel: cap them so a bad answer cannot ask for gigabytes.
        let nMaps = Int(min(first.nr_map_ids, 1 << 16))
        let xlatedLen = Int(min(first.xlated_prog_len, 1 << 24))
        let funcRec = Int(first.func_info_rec_size), lineRec = Int(first.line_info_rec_size)
        let nFunc = funcRec >= 8 ? Int(min(first.nr_func_info, 1 << 20)) : 0
        let nLine = lineRec >= 16 ? Int(min(first.nr_line_info, 1 << 20)) : 0

        var maps = [UInt32](repeating: 0, count: nMaps)
        var xlated = [UInt8](repeating: 0, count: xlatedLen)
        var funcs = [UInt8](repeating: 0, count: nFunc * funcRec)
        var lines = [UInt8](repeating: 0, count: nLine * lineRec)
        var second = cbpf_prog_info()
        let r: Result<Void, SysError> = maps.withUnsafeMutableBytes { mb in
            xlated.withUnsafeMutableBytes { xb in
                funcs.withUnsafeMutableBytes { fb in
                    lines.withUnsafeMutableBytes { lb in
                        second.nr_map_ids = UInt32(nMaps)
                        second.map_ids = address(mb.baseAddress)
                        second.xlated_prog_len = UInt32(xlatedLen)
                        second.xlated_prog_insns = address(xb.baseAddress)
                        second.nr_func_info = UInt32(nFunc)
                        second.func_info_rec_size = UInt32(funcRec)
                        second.func_info = address(fb.baseAddress)
                        second.nr_line_info = UInt32(nLine)
                        second.line_info_rec_size = UInt32(lineRec)
                        second.line_info = address(lb.baseAddress)
                        return withUnsafeMutableBytes(of: &second) { b in
                            do throws(SysError) { try infoCall(fd, b, what: "program"); return .success(()) } catch { return .failure(error) }
                        }
                    }
                }
            }
        }
        try r.get()
        // The kernel may report fewer than asked (objects freed in between) but never more.
        maps = Array(maps.prefix(Int(min(second.nr_map_ids, UInt32(nMaps)))))
        if second.xlated_prog_insns == 0 { xlated = [] }
        else { xlated = Array(xlated.prefix(Int(min(second.xlated_prog_len, UInt32(xlatedLen))))) }
        func u32(_ a: [UInt8], _ at: Int) -> UInt32 {
            UInt32(a[at]) | UInt32(a[at + 1]) << 8 | UInt32(a[at + 2]) << 16 | UInt32(a[at + 3]) << 24
        }
        let fi = (0..<nFunc).map { i in KernelFuncInfo(instructionOffset: u32(funcs, i * funcRec), typeID: u32(funcs, i * funcRec + 4)) }
        let li = (0..<nLine).map { i -> KernelLineInfo in
            let b = i * lineRec
            let lc = u32(lines, b + 12)
            return KernelLineInfo(instructionOffset: u32(lines, b), fileNameOffset: u32(lines, b + 4),
                                  lineOffset: u32(lines, b + 8), line: lc >> 10, column: lc & 0x3ff)
        }
        return ProgramDetails(mapIDs: maps, xlated: xlated, funcInfo: fi, lineInfo: li)
    }

    /// The raw bytes of a loaded BTF object (as `bpftool btf dump id N` reads them).
    package static func btfData(_ btf: borrowing OwnedFD) throws(SysError) -> [UInt8] {
        let fd = btf.rawValue
        var first = cbpf_btf_info()
        try withUnsafeMutableBytes(of: &first) { (b) throws(SysError) in try infoCall(fd, b, what: "btf") }
        let size = Int(min(first.btf_size, 1 << 28))
        var data = [UInt8](repeating: 0, count: size)
        var second = cbpf_btf_info()
        let r: Result<Void, SysError> = data.withUnsafeMutableBytes { db in
            second.btf = address(db.baseAddress)
            second.btf_size = UInt32(size)
            return withUnsafeMutableBytes(of: &second) { b in
                do throws(SysError) { try infoCall(fd, b, what: "btf"); return .success(()) } catch { return .failure(error) }
            }
        }
        try r.get()
        return Array(data.prefix(Int(min(second.btf_size, UInt32(size)))))
    }

    /// The type-specific half of a link's info (raw tracepoint name; tracing attach type and target).
    package static func linkTarget(_ link: borrowing OwnedFD, type: LinkType?) throws(SysError) -> LinkTarget {
        let fd = link.rawValue
        var out = LinkTarget()
        switch type {
        case .rawTracepoint?:
            var name = [UInt8](repeating: 0, count: 256)
            var i = cbpf_link_info()
            let r: Result<Void, SysError> = name.withUnsafeMutableBytes { nb in
                i.raw_tracepoint.tp_name = address(nb.baseAddress)
                i.raw_tracepoint.tp_name_len = UInt32(nb.count)
                return withUnsafeMutableBytes(of: &i) { b in
                    do throws(SysError) { try infoCall(fd, b, what: "link"); return .success(()) } catch { return .failure(error) }
                }
            }
            try r.get()
            out.tracepointName = cString(name)
        case .tracing?:
            var i = cbpf_link_info()
            try withUnsafeMutableBytes(of: &i) { (b) throws(SysError) in try infoCall(fd, b, what: "link") }
            out.attachType = i.tracing.attach_type
            out.targetObjectID = i.tracing.target_obj_id
            out.targetBTFID = i.tracing.target_btf_id
        default:
            break
        }
        return out
    }
}
