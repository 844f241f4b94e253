import CPlumbSys
import Glibc

/// Everything BPF_PROG_LOAD takes.
public struct ProgramAttributes: Sendable {
    public var type: ProgramType
    /// Raw instructions, 8 bytes each, in host byte order.
    public var instructions: [UInt8]
    public var license: String
    /// At most 15 characters of [A-Za-z0-9_.].
    public var name: String
    public var expectedAttachType: AttachType?
    public var attachBTFID: UInt32
    /// BTF object (kernel module) holding `attachBTFID`; nil means vmlinux.
    public var attachBTFObjFD: Int32?
    /// Target program for freplace (ext) programs; shares the attr slot with attachBTFObjFD.
    public var attachProgFD: Int32?
    public var kernelVersion: UInt32
    public var flags: ProgramFlags
    public var btfFD: Int32?
    /// bpf_func_info records, back to back.
    public var funcInfo: [UInt8]
    public var funcInfoRecordSize: UInt32
    /// bpf_line_info records, back to back.
    public var lineInfo: [UInt8]
    public var lineInfoRecordSize: UInt32
    /// Map/BTF fds referenced by index from ld_imm64 instructions (BPF_PSEUDO_MAP_IDX).
    public var fdArray: [Int32]
    /// 0: no log unless loading fails (then we retry at level 1). 1: verifier path, 2: every instruction.
    public var logLevel: UInt32
    /// Initial log buffer size; grown automatically when the kernel says it was too small.
    public var logSize: Int

    public init(type: ProgramType, instructions: [UInt8], license: String = "GPL", name: String = "",
                expectedAttachType: AttachType? = nil, attachBTFID: UInt32 = 0, attachBTFObjFD: Int32? = nil,
                attachProgFD: Int32? = nil, kernelVersion: UInt32 = 0, flags: ProgramFlags = [],
                btfFD: Int32? = nil, funcInfo: [UInt8] = [], funcInfoRecordSize: UInt32 = 0,
                lineInfo: [UInt8] = [], lineInfoRecordSize: UInt32 = 0, fdArray: [Int32] = [],
                logLevel: UInt32 = 0, logSize: Int = 64 * 1024) {
        self.type = type
        self.instructions = instructions
        self.license = license
        self.name = name
        self.expectedAttachType = expectedAttachType
        self.attachBTFID = attachBTFID
        self.attachBTFObjFD = attachBTFObjFD
        self.attachProgFD = attachProgFD
        self.kernelVersion = kernelVersion
        self.flags = flags
        self.btfFD = btfFD
        self.funcInfo = funcInfo
        self.funcInfoRecordSize = funcInfoRecordSize
        self.lineInfo = lineInfo
        self.lineInfoRecordSize = lineInfoRecordSize
        self.fdArray = fdArray
        self.logLevel = logLevel
        self.logSize = logSize
    }
}

/// Result of PROG_TEST_RUN.
public struct TestRunResult: Sendable {
    public var returnValue: UInt32
    /// Average nanoseconds per run.
    public var duration: UInt32
    public var dataOut: [UInt8]
    public var contextOut: [UInt8]
}

extension Sys {
    /// Largest log buffer we grow to; every kernel since 5.2 accepts 16 MiB.
    static let maxLogSize = 16 * 1024 * 1024

    /// BPF_PROG_LOAD. On rejection the error carries the verifier log: a load without a log
    /// is retried with one, and a log that did not fit (ENOSPC) is retried with a bigger buffer.
    package static func progLoad(_ a: ProgramAttributes) throws(SysError) -> OwnedFD {
        var log = ""
        return try progLoad(a, log: &log)
    }

    /// BPF_PROG_LOAD, also returning the verifier log of a successful load when `logLevel` > 0.
    package static func progLoad(_ a: ProgramAttributes, log: inout String) throws(SysError) -> OwnedFD {
        guard a.instructions.count % 8 == 0, !a.instructions.isEmpty else {
            throw .invalidArgument("program '\(a.name)' has \(a.instructions.count) instruction bytes; need a non-zero multiple of 8")
        }
        guard let insnCount = UInt32(exactly: a.instructions.count / 8) else {
            throw .invalidArgument("program '\(a.name)' is too long")
        }
        if a.attachBTFObjFD != nil && a.attachProgFD != nil {
            throw .invalidArgument("attachBTFObjFD and attachProgFD share one field; set only one")
        }
        var arena = Arena()
        var attr = cbpf_prog_load_attr()
        attr.prog_type = a.type.rawValue
        attr.insn_cnt = insnCount
        attr.insns = arena.copy(a.instructions)
        attr.license = arena.cString(a.license)
        attr.kern_version = a.kernelVersion
        attr.prog_flags = a.flags.rawValue
        try setObjectName(&attr.prog_name, a.name)
        attr.expected_attach_type = a.expectedAttachType?.rawValue ?? 0
        if let fd = a.btfFD { attr.prog_btf_fd = UInt32(bitPattern: fd) }
        if !a.funcInfo.isEmpty {
            guard a.funcInfoRecordSize > 0 else { throw .invalidArgument("funcInfo given without a record size") }
            attr.func_info_rec_size = a.funcInfoRecordSize
            attr.func_info = arena.copy(a.funcInfo)
            attr.func_info_cnt = UInt32(a.funcInfo.count / Int(a.funcInfoRecordSize))
        }
        if !a.lineInfo.isEmpty {
            guard a.lineInfoRecordSize > 0 else { throw .invalidArgument("lineInfo given without a record size") }
            attr.line_info_rec_size = a.lineInfoRecordSize
            attr.line_info = arena.copy(a.lineInfo)
            attr.line_info_cnt = UInt32(a.lineInfo.count / Int(a.lineInfoRecordSize))
        }
        attr.attach_btf_id = a.attachBTFID
        if let fd = a.attachBTFObjFD ?? a.attachProgFD { attr.attach_prog_fd = UInt32(bitPattern: fd) }
        if !a.fdArray.isEmpty {
            attr.fd_array = a.fdArray.withUnsafeBytes { arena.copy($0) }
        }

        let (result, text) = loadRetryingLog(level: a.logLevel, size: a.logLevel > 0 ? min(max(a.logSize, 4096), maxLogSize) : 0,
                                             retrySize: min(max(a.logSize, 64 * 1024), maxLogSize)) { level, buffer in
            var attempt = attr
            attempt.log_level = level
            attempt.log_size = UInt32(buffer.count)
            attempt.log_buf = buffer.count > 0 ? address(buffer.baseAddress) : 0
            return (call(.progLoad, &attempt), attempt.log_true_size)
        }
        switch result {
        case .success(let fd):
            log = text
            guard let fd32 = Int32(exactly: fd) else { throw .malformedKernelOutput("BPF_PROG_LOAD returned fd \(fd)") }
            return OwnedFD(taking: fd32)
        case .failure(let e):
            throw .verifierRejected(errno: e, program: a.name.isEmpty ? "\(a.type)" : a.name,
                                    log: text, truncated: e == .noSpace)
        }
    }

    /// The log handling both loads share: run `attempt` with a log buffer of `size` bytes at
    /// `level`; when it fails without a log, run it again at level 1 so the error can say
    /// why; when the log did not fit (ENOSPC), grow the buffer to what the kernel asked for.
    /// A load interrupted by a signal (EAGAIN) is retried too, as libbpf does.
    static func loadRetryingLog(level: UInt32, size: Int, retrySize: Int,
                                _ attempt: (UInt32, UnsafeMutableRawBufferPointer) -> (SysResult, trueSize: UInt32))
        -> (SysResult, log: String) {
        var level = level, size = size
        var attempts = 0
        while true {
            attempts += 1
            var buffer = [UInt8](repeating: 0, count: size)
            let (result, trueSize) = buffer.withUnsafeMutableBytes { attempt(level, $0) }
            let text = cString(buffer)
            guard case .failure(let e) = result else { return (result, text) }
            if e == .resourceTemporarilyUnavailable && attempts < 5 { continue }
            if e == .noSpace && size > 0 && size < maxLogSize {
                size = min(max(size * 4, Int(trueSize) + 1), maxLogSize)
                continue
            }
            if level == 0 && e != .notPermitted && attempts < 8 {
                level = 1
                size = retrySize
                continue
            }
            return (result, text)
        }
    }

    /// BPF_BTF_LOAD. A rejected blob is retried with a log so the error says why.
    package static func btfLoad(_ blob: [UInt8], logLevel: UInt32 = 0) throws(SysError) -> OwnedFD {
        var log = ""
        return try btfLoad(blob, logLevel: logLevel, log: &log)
    }

    package static func btfLoad(_ blob: [UInt8], logLevel: UInt32, log: inout String) throws(SysError) -> OwnedFD {
        guard let blobSize = UInt32(exactly: blob.count), !blob.isEmpty else { throw .invalidArgument("BTF blob of \(blob.count) bytes") }
        var arena = Arena()
        var attr = cbpf_btf_load_attr()
        attr.btf = arena.copy(blob)
        attr.btf_size = blobSize
        let (result, text) = loadRetryingLog(level: logLevel, size: logLevel > 0 ? 64 * 1024 : 0, retrySize: 64 * 1024) { level, buffer in
            var attempt = attr
            attempt.btf_log_level = level
            attempt.btf_log_size = UInt32(buffer.count)
            attempt.btf_log_buf = buffer.count > 0 ? address(buffer.baseAddress) : 0
            return (call(.btfLoad, &attempt), attempt.btf_log_true_size)
        }
        switch result {
        case .success(let fd):
            log = text
            guard let fd32 = Int32(exactly: fd) else { throw .malformedKernelOutput("BPF_BTF_LOAD returned fd \(fd)") }
            return OwnedFD(taking: fd32)
        case .failure(let e):
            throw .btfRejected(errno: e, log: text)
        }
    }

    /// BPF_PROG_TEST_RUN: runs the program in the kernel on `data`/`context` without attaching it.
    package static func progTestRun(_ prog: borrowing OwnedFD, data: [UInt8] = [], dataOutSize: Int = 0,
                                   context: [UInt8] = [], contextOutSize: Int = 0, repeat count: UInt32 = 0,
                                   flags: UInt32 = 0, cpu: UInt32 = 0) throws(SysError) -> TestRunResult {
        var arena = Arena()
        var attr = cbpf_test_run_attr()
        attr.prog_fd = UInt32(bitPattern: prog.rawValue)
        attr.data_in = arena.copy(data)
        attr.data_size_in = UInt32(clamping: data.count)
        let dataOut = arena.zeroed(dataOutSize)
        attr.data_out = dataOutSize > 0 ? address(dataOut.baseAddress) : 0
        attr.data_size_out = UInt32(clamping: dataOutSize)
        attr.ctx_in = arena.copy(context)
        attr.ctx_size_in = UInt32(clamping: context.count)
        let ctxOut = arena.zeroed(contextOutSize)
        attr.ctx_out = contextOutSize > 0 ? address(ctxOut.baseAddress) : 0
        attr.ctx_size_out = UInt32(clamping: contextOutSize)
        attr.repeat = count
        attr.flags = flags
        attr.cpu = cpu
        if case .failure(let e) = call(.progTestRun, &attr) {
            if e.isNotSupported {
                throw .unsupported(command: .progTestRun, errno: e, context: "this program type cannot be test-run")
            }
            throw .syscall(command: .progTestRun, errno: e, context: "prog fd \(prog.rawValue)")
        }
        // The kernel reports the full output size even when it truncated; copy only what fits.
        let dn = min(Int(attr.data_size_out), dataOutSize)
        let cn = min(Int(attr.ctx_size_out), contextOutSize)
        return TestRunResult(returnValue: attr.retval, duration: attr.duration,
                             dataOut: Array(dataOut.prefix(dn)), contextOut: Array(ctxOut.prefix(cn)))
    }
}

/// Text up to the first NUL (the kernel's logs are C strings).
func cString(_ bytes: [UInt8]) -> String {
    let end = bytes.firstIndex(of: 0) ?? bytes.count
    return String(decoding: bytes[..<end], as: UTF8.self)
}
