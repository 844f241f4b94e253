// Tracepoint facts from BTF (for unprivileged --check) against the exact answer, tracefs's
// format files: every event BTF claims to know must match tracefs field for field.
import PlumbSys
import Foundation
import PlumbBTF
@testable import PlumbLang
import Testing

@Suite("Tracepoints from BTF")
struct TracepointBTFTests {
    static let tracefs = "/sys/kernel/tracing"
    static let source: TracepointBTF? = (try? BTF.kernel()).map { TracepointBTF(btf: $0) }

    static func available() -> [(category: String, name: String)]? {
        // tracefs files say size 0: read to the end, not by the size.
        guard let text = try? readText(tracefs + "/available_events"), !text.isEmpty else { return nil }
        return text.split(separator: "\n").compactMap { line -> (category: String, name: String)? in
            let parts = line.split(separator: ":", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
    }

    static func format(_ c: String, _ n: String) -> [TracefsField]? {
        (try? readText("\(tracefs)/events/\(c)/\(n)/format")).map(TracefsFormat.parse)
    }

    /// Names, offsets, sizes and signedness: what BTF can know of a field (the __data_loc element
    /// type it cannot), and the parts of the type text the checker reads (pointees, char arrays);
    /// integer spellings differ (`long unsigned int` is tracefs's `unsigned long`) and do not matter.
    static func facts(_ fields: [TracefsField]) -> [String] {
        fields.map { f in
            var shape = ""
            if f.isDataLoc { shape = " loc" }
            else if f.isPointer {
                let pointee = String(f.type.replacingConst.dropLast()).trimmingSpaces
                shape = pointee.hasPrefix("struct ") || pointee == "void" || pointee.hasSuffix("char") ? " *" + pointee : " *int"
            } else if f.arrayLength != nil, f.type.replacingConst.hasPrefix("char") { shape = " chars" }
            return "\(f.name)@\(f.offset)+\(f.size)\(f.signed ? "s" : "u")\(f.arrayLength.map { "[\($0)]" } ?? "")\(shape)"
        }
    }

    static var requireKernel: Bool { ProcessInfo.processInfo.environment["PLUMB_REQUIRE_KERNEL"] == "1" }

    @Test("every trace event BTF types matches its tracefs format; BTF finds every tracefs event it should")
    func eventsMatchTracefs() throws {
        guard let source = Self.source, let events = Self.available() else {
            #expect(!Self.requireKernel, "needs the kernel's BTF and a readable tracefs (run as root)")
            return
        }
        var typed = 0, partial = 0, mismatches: [String] = []
        var missing: [String] = []
        for (c, n) in events where c != "syscalls" {
            guard let expected = Self.format(c, n) else { continue }
            switch source.event(n) {
            case nil:
                missing.append("\(c):\(n)")
            case .fields(let got)?:
                typed += 1
                if Self.facts(got) != Self.facts(expected) {
                    mismatches.append("\(c):\(n): BTF \(Self.facts(got)) tracefs \(Self.facts(expected))")
                }
            case .partial(let known, _)?:
                partial += 1
                for k in known where !expected.contains(where: { Self.facts([$0]) == Self.facts([k]) }) {
                    mismatches.append("\(c):\(n): common field \(k.name) is not tracefs's")
                }
            }
        }
        print("tracepoints from BTF: \(typed) events typed, \(partial) partly, \(missing.count) tracefs events not in BTF")
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches: \(mismatches.prefix(10).joined(separator: "\n"))")
        // Events that are not tracepoints (ftrace's own, kprobe/uprobe events created at run time)
        // have no btf_trace_ typedef; everything else must be found.
        #expect(missing.filter { !$0.hasPrefix("ftrace:") && !$0.hasPrefix("kprobes:") && !$0.hasPrefix("uprobes:") }.count <= 10,
                "missing: \(missing.prefix(20))")
        #expect(typed > 1000)
        // BTF's events are events: none is a bare tracepoint (those have no format file).
        let names = Set(events.map(\.name))
        let extra = source.eventNames.filter { !names.contains($0) }
        #expect(extra.count <= 10, "BTF events tracefs does not have: \(extra.prefix(20))")
    }

    @Test("syscall events: every tracefs one exists in BTF; typed ones match the format file")
    func syscallsMatchTracefs() throws {
        guard let source = Self.source, let events = Self.available() else {
            #expect(!Self.requireKernel, "needs the kernel's BTF and a readable tracefs (run as root)")
            return
        }
        var typed = 0, mismatches: [String] = []
        for (c, n) in events where c == "syscalls" {
            guard let expected = Self.format(c, n) else { continue }
            switch source.syscallEvent(n) {
            case nil: mismatches.append("\(n) not found")
            case .fields(let got)?:
                typed += 1
                if Self.facts(got) != Self.facts(expected) {
                    mismatches.append("\(n): BTF \(got.map { "\($0.type) \($0.name)" }) tracefs \(expected.map { "\($0.type) \($0.name)" })")
                }
            case .partial(let known, _)?:
                #expect(Self.facts(known) == Self.facts(Array(expected.prefix(1))))
            }
        }
        print("syscall events from BTF: \(typed) typed")
        #expect(mismatches.isEmpty, "\(mismatches.count): \(mismatches.prefix(10).joined(separator: "\n"))")
        #expect(typed >= 360)  // every sys_exit_ and the sys_enter_ BTF has a __do_sys_ for
    }

    @Test("a sample of well-known events, whatever tracefs says")
    func sample() throws {
        guard let source = Self.source else { return }
        guard case .fields(let exec)? = source.event("sched_process_exec") else { Issue.record("sched_process_exec not typed"); return }
        #expect(exec.map(\.name) == ["filename", "pid", "old_pid"])
        #expect(exec[0].isDataLoc && exec[1].type == "pid_t" && exec[1].signed && exec[1].size == 4)
        guard case .fields(let sw)? = source.event("sched_switch") else { Issue.record("sched_switch not typed"); return }
        #expect(sw.first?.name == "prev_comm" && sw.first?.arrayLength == 16 && sw.first?.type == "char[16]")
        // A DEFINE_EVENT: its own record does not exist, its class's does.
        #expect(source.event("sched_process_free") != nil)
        // Bare tracepoints (raw only) are not events.
        #expect(source.event("sched_update_nr_running_tp") == nil)
        #expect(source.event("no_such_event_at_all") == nil)
        guard case .fields(let exit)? = source.syscallEvent("sys_exit_openat") else { Issue.record("sys_exit_openat"); return }
        #expect(exit.map(\.name) == ["__syscall_nr", "ret"])
        #expect(source.syscallEvent("sys_enter_no_such_syscall") == nil)
        #expect(source.syscallEvent("sys_enter_getpid") == .fields([exit[0]]))
    }

    // The compiler's side: a world whose tracefs is unreadable.
    func compileWithoutTracefs(_ text: String) -> (ok: Bool, diagnostics: String) {
        guard let source = Self.source else { return (true, "") }
        var env = ProbeEnvironment.empty(btf: source.btf)
        env.tracepointBTF = { source }
        let file = SourceFile(name: "t.bt", text: text)
        let (script, _) = parse(file)
        let (plan, diags) = compile(script, file: file, environment: env, options: CompileOptions())
        return (plan != nil && !diags.contains { $0.severity == .error }, DiagnosticPrinter(file: file).render(diags))
    }

    @Test("the checker types args from BTF, warns of the unchecked category, and says why args cannot be typed")
    func compiler() {
        guard Self.source != nil else { return }
        var r = compileWithoutTracefs("tracepoint:sched:sched_process_exec { printf(\"%s %d\\n\", str(args.filename), args.pid); }")
        #expect(r.ok, "\(r.diagnostics)")
        #expect(r.diagnostics.contains("warning: the category 'sched' of tracepoint 'sched_process_exec' is not checked"))
        r = compileWithoutTracefs("tracepoint:sched:sched_process_exec { @[args.pidd] = count(); }")
        #expect(!r.ok && r.diagnostics.contains("has no field named 'pidd'") && r.diagnostics.contains("did you mean 'pid'"))
        r = compileWithoutTracefs("tracepoint:syscalls:sys_exit_read { @ = hist(args.ret); }")
        #expect(r.ok && r.diagnostics.isEmpty, "\(r.diagnostics)")
        r = compileWithoutTracefs("tracepoint:syscalls:sys_enter_opnat { }")
        #expect(!r.ok && r.diagnostics.contains("did you mean 'tracepoint:syscalls:sys_enter_openat'"), "\(r.diagnostics)")
        r = compileWithoutTracefs("tracepoint:sched:sched_swich { }")
        #expect(!r.ok && r.diagnostics.contains("did you mean 'tracepoint:sched:sched_switch'"), "\(r.diagnostics)")
        r = compileWithoutTracefs("tracepoint:syscalls:sys_enter_open* { @[probe] = count(); }")
        #expect(r.ok, "\(r.diagnostics)")
        r = compileWithoutTracefs("tracepoint:sched:* { @[probe] = count(); }")
        #expect(!r.ok && r.diagnostics.contains("cannot expand 'tracepoint:sched:*' without tracefs"), "\(r.diagnostics)")
        // A syscall whose __do_sys_ BTF lacks: the record is unknown, said where args is used.
        if case .partial? = Self.source?.syscallEvent("sys_enter_openat") {
            r = compileWithoutTracefs("tracepoint:syscalls:sys_enter_openat { @[args.__syscall_nr] = count(); printf(\"%s\\n\", str(args.filename)); }")
            #expect(!r.ok && r.diagnostics.contains("error: 'args.filename' of tracepoint 'syscalls:sys_enter_openat' cannot be typed without tracefs: the kernel's BTF has no prototype of the syscall (no __do_sys_openat)"), "\(r.diagnostics)")
            #expect(!r.diagnostics.contains("__syscall_nr' of"))
        }
    }
}
