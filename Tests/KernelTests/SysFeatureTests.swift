import PlumbBPF
import PlumbSys
import PlumbBTF
import PlumbAsm
import Glibc
import Testing
import TestSupport

@Suite("BPFSys feature probes", .serialized)
struct SysFeatureTests {
    @Test("probes answer for every program and map type; basics are supported")
    func table() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        for t in ProgramType.allCases { print("program \(t): \(Features.programType(t))") }
        for t in MapType.allCases { print("map \(t): \(Features.mapType(t))") }
        #expect(Features.programType(.socketFilter) == .supported)
        #expect(Features.programType(.tracepoint) == .supported)
        #expect(Features.programType(.rawTracepoint) == .supported)
        #expect(Features.programType(.unspec) != .supported)
        #expect(Features.mapType(.hash) == .supported)
        #expect(Features.mapType(.ringbuf) == .supported)
        #expect(Features.mapType(.hashOfMaps) == .supported)
        #expect(Features.helper(HelperID.ktimeGetNs, programType: .tracepoint) == .supported)
        #expect(Features.helper(HelperID.getStackID, programType: .socketFilter) != .supported)
        #expect(Features.helper(999_999, programType: .tracepoint) != .supported)
        #expect(Features.perfEventLinks() == .supported)
        #expect(Features.uprobes() == .supported)
        let kp = Features.kprobes(), fe = Features.fentry()
        print("kprobes: \(kp)\nfentry: \(fe)\ntracepoints: \(Features.tracepoints())")
        // This VM has neither; elsewhere they may exist, so only check the answer is explained.
        if !kp.isSupported { #expect(kp.description.contains("CONFIG_KPROBES")) }
        if !fe.isSupported { #expect(!fe.description.isEmpty) }
    }

    @Test("tp_btf program attached with LINK_CREATE(BPF_TRACE_RAW_TP) counts getpid")
    func tpBTF() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let btfID: UInt32
        do {
            guard let id = try BTF.kernel().firstID(named: "btf_trace_sys_enter", kind: .typedef) else {
                guard TestEnv.kernelAvailable("vmlinux BTF has no btf_trace_sys_enter") else { return }
                return
            }
            btfID = id
        } catch {
            guard TestEnv.kernelAvailable("vmlinux BTF: \(error)") else { return }
            return
        }
        try withLeakCheck { leaks in
            let counter = try makeCounter()
            try leaks.map(counter)
            let prog = try Sys.progLoad(ProgramAttributes(type: .tracing, instructions: Prog.counter(mapFD: counter.rawValue),
                                                          name: "count_tpbtf", expectedAttachType: .traceRawTP, attachBTFID: btfID))
            try leaks.prog(prog)
            #expect(try Sys.programInfo(prog).attachBTFID == btfID)
            let link = try Sys.linkCreateTracing(prog, attachType: .traceRawTP)
            try leaks.link(link)
            for _ in 0..<10 { rawGetpid() }
            #expect(try readCounter(counter) >= 10)
        }
    }
}
