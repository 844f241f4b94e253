// Thread-locals in var(): `__thread` / `thread_local` variables of the traced executable, read
// in the thread that hit the probe.
//
// x86-64 uses TLS variant II: the thread pointer (the fs base) points at the thread's control
// block, and the static TLS blocks lie below it, the executable's (module 1) first. glibc
// places it at tp - roundup(p_memsz, p_align) of the executable's PT_TLS segment (exactly what
// the linker assumes for local-exec `%fs:-N` accesses), so a variable at offset `o` in the
// block (DW_OP_form_tls_address's operand, or the STT_TLS symbol's value) is at
// tp - roundup(p_memsz, p_align) + o, PIE or not. The thread pointer is the task's
// thread.fsbase, read from the current task_struct; glibc sets it with clone(CLONE_SETTLS)
// or arch_prctl(ARCH_SET_FS), which both keep thread.fsbase current (a program that writes its
// own fs base with wrfsbase would make it stale until the next context switch).
//
// A shared library's block lies at an offset the dynamic loader picks at run time: with -p PID
// it is read from that process (UserLibraryThreadLocals.swift); elsewhere it is an error.
import PlumbAsm
import PlumbBTF
import PlumbELF

enum ExecutableTLS {
    static let PT_INTERP: UInt32 = 3, PT_TLS: UInt32 = 7
    static let DT_SONAME: UInt64 = 14
    static let STT_TLS: UInt8 = 6

    /// Whether `elf` is a program (not a shared library): ET_EXEC, or ET_DYN with an
    /// interpreter and no DT_SONAME (a PIE; libc.so.6 has an interpreter too, and a soname).
    static func isExecutable(_ elf: ELFFile) -> Bool {
        if elf.type == ELFFile.ET_EXEC { return true }
        guard elf.programHeaders.contains(where: { $0.type == PT_INTERP }) else { return false }
        guard let dynamic = elf.sections.first(where: { $0.name == ".dynamic" }) else { return true }
        let v = ByteView(elf.bytes, order: elf.order)
        var o = Int(clamping: dynamic.offset)
        let end = o &+ Int(clamping: dynamic.size)
        while o + 16 <= end, let tag = v.u64(o) {
            if tag == 0 { break }
            if tag == DT_SONAME { return false }
            o += 16
        }
        return true
    }

    /// Distance below the thread pointer of the executable's TLS block: roundup(p_memsz,
    /// p_align) of PT_TLS, with glibc's adjustment for a segment that does not start aligned.
    /// nil when the file has no PT_TLS segment or its header cannot be read.
    static func blockOffset(_ elf: ELFFile) -> UInt64? {
        // p_align is not in ELFProgramHeader: read it from the program header table.
        let v = ByteView(elf.bytes, order: elf.order)
        guard let phoff = v.u64(32), let entsize = v.u16(54), let count = v.u16(56), entsize >= 56,
              let base = Int(exactly: phoff) else { return nil }
        for i in 0..<Int(count) {
            let o = base &+ i &* Int(entsize)
            guard let type = v.u32(o), type == PT_TLS else { continue }
            guard let vaddr = v.u64(o + 16), let memsz = v.u64(o + 40), let align = v.u64(o + 48),
                  memsz < 1 << 40 else { return nil }
            let a = align == 0 ? 1 : align
            guard a & (a - 1) == 0 else { return nil }
            let firstbyte = (0 &- (vaddr & (a - 1))) & (a - 1)
            return (memsz &- firstbyte &+ a &- 1) / a * a &+ firstbyte
        }
        return nil
    }
}

extension Compiler {
    /// Emits r0 = the current thread's address of the thread-local at `offset` in the TLS
    /// block of `path`. false after reporting why it cannot be done.
    func userThreadLocalAddress(_ qualified: String, offset: UInt64, elf: ELFFile, path: String, _ e: Expr) -> Bool {
        // The current thread must be one of the program's: a user probe, or a traced process.
        var userProbe = false
        if case .registers(_, true) = context { userProbe = true }
        guard userProbe || options.pid != nil || options.childPID != nil else {
            error("'\(qualified)' is a thread-local: it can be read only in a thread of \(path); use it in a uprobe or usdt probe, or trace the program with -p PID or -c CMD", e.range)
            return false
        }
        let blockOffset: UInt64
        if ExecutableTLS.isExecutable(elf) {
            guard let o = ExecutableTLS.blockOffset(elf) else {
                error("'\(qualified)' is a thread-local, but \(path) has no readable PT_TLS segment", e.range)
                return false
            }
            blockOffset = o
        } else {
            // A library's block: found in the -p process's loader state (UserLibraryThreadLocals.swift).
            guard let pid = options.pid else {
                error("'\(qualified)' is a thread-local of the shared library \(path); its place is known only in a process: trace one with -p PID", e.range,
                      notes: [.init("the dynamic loader chooses a library's TLS block at run time and records it in its link_map (l_tls_offset), read from the process")])
                return false
            }
            do { blockOffset = try LibraryTLS.staticOffset(pid: pid, library: path) } catch {
                self.error("cannot find thread-local '\(qualified)' of \(path) in process \(pid): \(error)", e.range)
                return false
            }
        }
        guard let btf, let task = btf.firstID(named: "task_struct", kind: .struct),
              let thread = try? btf.findMember("thread", in: task),
              let threadStruct = try? btf.resolve(thread.type),
              let fsbase = try? btf.findMember("fsbase", in: threadStruct) else {
            error("reading thread-local '\(qualified)' needs the kernel's BTF for task_struct->thread.fsbase (the thread pointer), and it is not available", e.range)
            return false
        }
        let field = Int32(clamping: Int(thread.bitOffset / 8) + Int(fsbase.bitOffset / 8))
        // tp = current->thread.fsbase
        let slot = frame.allocate(8)
        b.emit(.call(helper: H.currentTask))
        b.emit(.mov64(.r3, .r0))
        b.emit(.add64(.r3, field))
        address(ofSlot: slot, into: .r1)
        b.emit(.mov64(.r2, 8))
        b.emit(.call(helper: H.readKernel))
        b.emit(.load(.r0, .r10, offset: Int16(clamping: slot), size: .doubleWord))
        b.emit(.loadImm64(.r1, Int64(bitPattern: offset &- blockOffset)))
        b.emit(.add64(.r0, .r1))
        return true
    }
}
