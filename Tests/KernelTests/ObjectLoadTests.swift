// Objects read from ELF, loaded into the running kernel, attached by section name, and
// checked through their maps.
import PlumbBPF
import PlumbSys
import PlumbBTF
import Foundation
import Glibc
import Testing
import TestSupport

func kernelFixture(_ name: String) throws -> String {
    try TestEnv.fixtures().appendingPathComponent(name).path
}

@Suite(.serialized) struct ObjectLoadTests {
    @Test func basicObjectLoadsAttachesAndCounts() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let me = UInt32(getpid())
            // This process and this thread: other tests in the process call getpid too.
            let object = try Object(path: try kernelFixture("basic.bpfel.o"),
                                       options: LoadOptions(globals: ["target_pid": bytes(me), "target_tid": bytes(UInt32(currentTID()))]))
            leaks.track(object)
            #expect(Set(object.programs.keys) == ["on_getpid", "on_sys_enter"])
            let link = try object.program("on_getpid").attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
            for _ in 0..<25 { _ = getpid() }
            withExtendedLifetime(link) {}
            let counts = try object.map("counts")
            let mine = try counts.lookup(me, as: UInt64.self)
            #expect(mine == 25)
            // Only our pid counted: target_pid was set before load.
            #expect(try counts.keys(as: UInt32.self) == [me])
            // Globals: .bss `hits` counted too, readable through the map.
            let (bss, hits) = try #require(object.global("hits"))
            let value = try #require(try bss.lookup([0, 0, 0, 0]))
            #expect(value[Int(hits.offset)..<Int(hits.offset) + 8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == 25)
            // .rodata is frozen: user space cannot change it any more.
            let (rodata, _) = try #require(object.global("target_pid"))
            #expect(throws: BPFError.self) { try rodata.update([0, 0, 0, 0], [0, 0, 0, 0]) }
        }
    }

    @Test func objectsFixtureLoadsEveryMapKindAndLinkedPrograms() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let pinDirectory = try makeTempBPFFSDir()
            defer { rmdir(pinDirectory) }
            let object = try Object(path: try kernelFixture("objects.bpfel.o"),
                                       options: LoadOptions(pinDirectory: pinDirectory))
            leaks.track(object)
            #expect(object.programs.count == 3)
            #expect(object.maps.count == object.spec.maps.count)
            // Map-in-map initial values were stored.
            let outer = try object.map("m_outer")
            #expect(try outer.lookup(UInt32(0), as: UInt32.self) != nil)
            #expect(try outer.lookup(UInt32(1), as: UInt32.self) == nil)
            // .kconfig: LINUX_KERNEL_VERSION filled from uname.
            let (kconfig, v) = try #require(object.global("LINUX_KERNEL_VERSION"))
            let bytes = try #require(try kconfig.lookup([0, 0, 0, 0]))
            let version = bytes[Int(v.offset)..<Int(v.offset) + 4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            #expect(version == KernelInfo.versionCode && version > 0x60000)
            let link = try object.program("first_prog").attachTracepoint(category: "syscalls", name: "sys_enter_getpid")
            for _ in 0..<3 { _ = getpid() }
            withExtendedLifetime(link) {}
            // first_prog: v = add_twice(v, 1000) + sum(0..3) + version + CONFIG_HZ on each hit.
            let arr = try object.map("m_array")
            #expect(try (arr.lookup(UInt32(0), as: UInt64.self) ?? 0) > 0)
            // Pinned by name, as the map asks: there until unpinned.
            #expect(access(pinDirectory + "/m_lru", F_OK) == 0)
            try object.maps["m_lru"]?.unpin()
        }
    }

    @Test func verifierRejectionNamesTheSourceLine() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let spec = try ObjectSpec(path: try kernelFixture("bad_verifier.bpfel.o"))
        do {
            _ = try spec.load()
            Issue.record("the verifier should have refused the program")
        } catch {
            let text = error.description
            #expect(text.contains("loading program 'unchecked'"))
            #expect(text.contains("invalid mem access") || text.contains("R0"))
            #expect(text.contains("bad_verifier.bpf.c:18:"), "names the source line: \(text.suffix(300))")
            #expect(text.contains("*v += 1;"))
            // The log itself, one step away, and the errno by name.
            #expect(error.verifierLog?.contains("invalid mem access") == true || error.verifierLog?.contains("R0") == true)
            #expect(error.errno == .permissionDenied)
            guard case .programLoad(let program, _, let line) = error else { Issue.record("\(error)"); return }
            #expect(program == "unchecked" && line?.contains("*v += 1;") == true)
        }
    }

    @Test func bigEndianObjectsAreRefusedClearly() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let path = try kernelFixture("basic.bpfeb.o")
        do {
            _ = try Object(path: path)
            Issue.record("a big-endian object loaded")
        } catch {
            guard case .wrongByteOrder(path, .big) = error else { Issue.record("\(error)"); return }
            #expect(error.description.contains("big-endian"))
        }
    }
}

/// A value's bytes, for LoadOptions.globals.
func bytes<T: BitwiseCopyable>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
}

/// A fresh folder on bpffs for pinned maps.
func makeTempBPFFSDir() throws -> String {
    let root = try BPFFS.path()
    let dir = "\(root)/plumb-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    mkdir(dir, 0o700)
    return dir
}

/// Every attach kind, from one clang-built object, attached by section name.
@Suite(.serialized) struct ObjectAttachTests {
    enum Slot: UInt32 { case tracepoint, rawTP, tpBTF, uprobeLibc, uretprobeLibc, uprobeBinary, perfEvent }

    func hits(_ object: Object, _ slot: Slot) throws -> UInt64 {
        try object.map("hits").lookup(slot.rawValue, as: UInt64.self) ?? 0
    }

    @Test func everyKindFiresFromAFixtureObject() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let object = try Object(path: try kernelFixture("attach.bpfel.o"),
                                       options: LoadOptions(globals: ["target_tid": bytes(UInt32(currentTID()))]))
            leaks.track(object)
            var links: [Link] = []
            for name in ["on_tracepoint", "on_raw_tp", "on_tp_btf", "on_uprobe_libc", "on_uretprobe_libc", "on_perf_event"] {
                let link = try #require(try object.attach(name, options: AttachOptions(perfRate: .frequency(1000))), "\(name) did not attach")
                leaks.track(link)
                links.append(link)
            }
            // A section without a target does not auto-attach; the caller names the target.
            #expect(try object.attach("on_uprobe_binary") == nil)
            #expect(links[3].description.contains("libc.so.6:getppid"))
            for _ in 0..<7 { _ = getppid() }
            spin(milliseconds: 300) // cpu-clock samples this thread
            #expect(try hits(object, .tracepoint) == 7)
            #expect(try hits(object, .rawTP) == 7)
            #expect(try hits(object, .tpBTF) == 7)
            #expect(try hits(object, .uprobeLibc) == 7)
            #expect(try hits(object, .uretprobeLibc) == 7)
            #expect(try hits(object, .perfEvent) > 0)
            links.removeAll()
            // Detached: nothing counts any more.
            for _ in 0..<3 { _ = getppid() }
            #expect(try hits(object, .tracepoint) == 7)
        }
    }

    @Test func loadedProgramsAttachWhereTheirSectionSays() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let object = try Object(path: try kernelFixture("attach.bpfel.o"),
                                    options: LoadOptions(globals: ["target_tid": bytes(UInt32(currentTID()))]))
            leaks.track(object)
            // The section is parsed once, at read time; the loaded program keeps what it said.
            let tracepoint = try object.program("on_tracepoint")
            #expect(tracepoint.kind?.attachPoint == .tracepoint(category: "syscalls", name: "sys_enter_getppid"))
            #expect(try object.program("on_raw_tp").kind?.attachPoint == .rawTracepoint("sys_enter"))
            let links = [try tracepoint.attach(), try object.program("on_raw_tp").attach(),
                         try object.program("on_tp_btf").attach(),
                         try object.program("on_perf_event").attach(AttachOptions(perfRate: .frequency(1000)))]
            for l in links { leaks.track(l) }
            for _ in 0..<4 { _ = getppid() }
            spin(milliseconds: 100)
            #expect(try hits(object, .tracepoint) == 4)
            #expect(try hits(object, .rawTP) == 4)
            #expect(try hits(object, .tpBTF) == 4)
            #expect(try hits(object, .perfEvent) > 0)
            // SEC("uprobe") names no target: attach() says so (object.attach skips it).
            do {
                _ = try object.program("on_uprobe_binary").attach()
                Issue.record("a section without a target attached")
            } catch {
                guard case .programMismatch? = bpfError(error) else { Issue.record("\(error)"); return }
                #expect("\(error)".contains("names no attach target"))
            }
        }
    }

    @Test func uprobeOnATestBinaryCountsExactly() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let binary = try uprobeTarget(pie: true)
        // The target runs as a child; the program filters on its tgid.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["321"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        let pidLine = output.fileHandleForReading.availableData
        // Single-threaded: its thread id is its pid.
        let tid = try #require(UInt32(String(decoding: pidLine, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        try withRuntimeLeakCheck { leaks in
            let object = try Object(path: try kernelFixture("attach.bpfel.o"),
                                       options: LoadOptions(programs: ["on_uprobe_binary"],
                                                            globals: ["target_tid": bytes(tid)]))
            leaks.track(object)
            let link = try object.program("on_uprobe_binary").attachUprobe(binary: binary, symbol: "plumb_target")
            leaks.track(link)
            input.fileHandleForWriting.write(Data([1]))
            p.waitUntilExit()
            #expect(try hits(object, .uprobeBinary) == 321)
        }
    }
}
