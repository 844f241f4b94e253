// The live-state library (KernelObjects, attachAndPin, BTF-typed JSON) against the real kernel,
// with bpftool as the oracle where it has an answer.
import PlumbBPF
import PlumbBTF
import PlumbSys
import Foundation
import Glibc
import Testing
import TestSupport

@Suite(.serialized) struct KernelStateTests {
    func fixture(_ name: String) throws -> String {
        try TestEnv.fixtures().appendingPathComponent(name).path
    }

    @Test func pinnedObjectOutlivesItsLoaderUntilUnpinned() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let dir = try BPFFS.path() + "/plumb-pin-test-\(getpid())"
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        var programIDs: [UInt32] = []
        var linkIDs: [UInt32] = []
        do {
            let object = try Object(path: try fixture("basic.bpfel.o"))
            let pinned = try object.attachAndPin(under: dir)
            #expect(Set(pinned.links.keys) == ["on_getpid", "on_sys_enter"])
            #expect(pinned.maps["counts"] == dir + "/maps/counts")
            #expect(FileManager.default.fileExists(atPath: dir + "/progs/on_getpid"))
            programIDs = object.programs.values.map(\.id)
            // Link ids of our programs, from the kernel's list.
            linkIDs = try KernelObjects.links().filter { programIDs.contains($0.programID) }.map(\.id)
        } // the Object and its Links are released here: only the pins hold the kernel objects
        #expect(linkIDs.count == 2)
        let counts = try Map(pinned: dir + "/maps/counts")
        let me = UInt32(getpid())
        let before = try counts.lookup(me, as: UInt64.self) ?? 0
        for _ in 0..<5 { _ = getpid() }
        let after = try counts.lookup(me, as: UInt64.self) ?? 0
        #expect(after >= before + 5, "the pinned program still counts getpid: \(before) -> \(after)")

        // Tracepoint and raw tracepoint links have no BPF_LINK_DETACH: detach removes their pins.
        for id in linkIDs {
            let outcome = try KernelObjects.detach(linkID: id)
            guard case .unpinned(let paths) = outcome else { Issue.record("link \(id): \(outcome)"); continue }
            #expect(paths.count == 1 && paths[0].hasPrefix(dir + "/links/"))
        }
        // Unpinning drops the last reference, and the kernel frees the link from a workqueue:
        // counting stops soon after, not at once.
        var stoppedCounting = false
        for _ in 0..<100 where !stoppedCounting {
            let stopped = try counts.lookup(me, as: UInt64.self) ?? 0
            for _ in 0..<5 { _ = getpid() }
            stoppedCounting = try counts.lookup(me, as: UInt64.self) ?? 0 == stopped
            if !stoppedCounting { usleep(20_000) }
        }
        #expect(stoppedCounting, "detached: no more counting")
        // Removing the folder releases programs and maps.
        _ = consume counts
        try FileManager.default.removeItem(atPath: dir)
        var alive = programIDs
        for _ in 0..<200 where !alive.isEmpty {
            alive = try alive.filter { try Sys.exists(id: $0, kind: .program) }
            usleep(10_000)
        }
        #expect(alive.isEmpty, "programs left after rm -r: \(alive)")
    }

    @Test func pinningIntoANonBPFFSFolderLeavesNothing() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let dir = "/tmp/plumb-not-bpffs-\(getpid())"
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let object = try Object(path: try fixture("basic.bpfel.o"))
        #expect(throws: BPFError.self) { _ = try object.attachAndPin(under: dir) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/progs"))
    }

    @Test func btfListMatchesBpftool() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let object = try Object(path: try fixture("basic.bpfel.o"))
        guard let id = object.programs.values.first.map({ try? KernelObjects.program(id: $0.id) })??.info.btfID, id != 0 else {
            Issue.record("no program BTF")
            return
        }
        let ours = try KernelObjects.btfObjects()
        let r = TestEnv.run("/usr/sbin/bpftool", ["-j", "btf", "list"])
        let theirs = (try JSONSerialization.jsonObject(with: r.stdoutData) as? [[String: Any]]) ?? []
        for key in [UInt32(1), id] {
            guard let a = ours.first(where: { $0.id == key }), let b = theirs.first(where: { $0["id"] as? Int == Int(key) }) else {
                Issue.record("btf \(key) missing")
                continue
            }
            #expect(Int(a.size) == b["size"] as? Int)
            #expect(a.isKernel == b["kernel"] as? Bool)
            #expect(Set(a.programIDs.map(Int.init)) == Set(b["prog_ids"] as? [Int] ?? []))
            #expect(Set(a.mapIDs.map(Int.init)) == Set(b["map_ids"] as? [Int] ?? []))
        }
        // The program's BTF parses from the kernel's bytes and knows the object's types.
        let btf = try KernelObjects.btf(id: id)
        #expect((try? btf.lookup("event", kind: .struct)) != nil)
        #expect(try KernelObjects.btf(id: 1).count > 10_000)
    }

    @Test func translatedDumpNamesHelpersAndLines() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let object = try Object(path: try fixture("basic.bpfel.o"))
        let p = try object.program("on_getpid")
        let text = try KernelObjects.dumpTranslated(programID: p.id)
        #expect(text.hasPrefix("<on_getpid>:\n"))
        #expect(text.contains("call bpf_get_current_pid_tgid"))
        #expect(text.contains("call bpf_ringbuf_reserve"))
        #expect(text.contains("; bpf_get_current_comm(e->comm, sizeof(e->comm));"))
        #expect(text.contains("r1 = map[id:\(try object.map("counts").id)]"))
    }
}

@Suite struct KernelStateJSONTests {
    @Test func writerEscapesAndIndentsAsBpftool() {
        let v = JSONValue.object([("id", .uint(7)), ("name", .string("a\"b\\c\n\u{1}")), ("neg", .int(-3)),
                                  ("list", .array([.bool(true), .null])), ("empty", .array([])), ("o", .object([]))])
        #expect(v.text() == #"{"id":7,"name":"a\"b\\c\n\u0001","neg":-3,"list":[true,null],"empty":[],"o":{}}"#)
        #expect(v.text(pretty: true) == """
            {
                "id": 7,
                "name": "a\\"b\\\\c\\n\\u0001",
                "neg": -3,
                "list": [
                    true,
                    null
                ],
                "empty": [],
                "o": {}
            }
            """)
        // Foundation reads what we write.
        let parsed = try? JSONSerialization.jsonObject(with: Data(v.text().utf8)) as? [String: Any]
        #expect(parsed?["name"] as? String == "a\"b\\c\n\u{1}")
        #expect(v["id"] == .uint(7) && v["missing"] == nil)
    }

    @Test func mapWordsAreBytesOrTypedValues() throws {
        #expect(try KernelObjects.encodeWords(["0x01", "0", "010", "255"], size: 4, btf: nil, type: 0, what: "key") == [1, 0, 8, 255])
        #expect(try KernelObjects.encodeWords(["hex", "ff", "10"], size: 2, btf: nil, type: 0, what: "key") == [255, 16])
        #expect(try KernelObjects.encodeWords(["-2"], size: 4, btf: nil, type: 0, what: "value") == [0xfe, 0xff, 0xff, 0xff])
        #expect(try KernelObjects.encodeWords(["0x1234"], size: 2, btf: nil, type: 0, what: "value") == [0x34, 0x12])
        #expect(throws: BPFError.self) { try KernelObjects.encodeWords(["1", "2"], size: 4, btf: nil, type: 0, what: "key") }
        #expect(throws: BPFError.self) { try KernelObjects.encodeWords(["256"], size: 1, btf: nil, type: 0, what: "key") }
        #expect(throws: BPFError.self) { try KernelObjects.encodeWords(["70000"], size: 2, btf: nil, type: 0, what: "key") }
        #expect(throws: BPFError.self) { try KernelObjects.encodeWords([], size: 2, btf: nil, type: 0, what: "key") }
    }

    @Test func btfValuesAsBpftoolWritesThem() throws {
        let path = try TestEnv.fixtures().appendingPathComponent("basic.bpfel.o").path
        let spec = try ObjectSpec(path: path)
        guard let btf = spec.btf else { Issue.record("no BTF"); return }
        let event = try btf.lookup("event", kind: .struct)
        var bytes = [UInt8](repeating: 0, count: 32)
        bytes[0] = 42; bytes[4] = 1; bytes[8] = 0xff; bytes[9] = 0xff
        for (i, c) in "bash".utf8.enumerated() { bytes[16 + i] = c }
        let v = BTFJSON(btf: btf).value(bytes, type: event)
        #expect(v.text() == #"{"pid":42,"kind":1,"value":65535,"comm":"bash"}"#)
        // A char array that is not a string (no NUL inside) is a list of numbers.
        var full = bytes
        for i in 16..<32 { full[i] = 0x41 }
        #expect(BTFJSON(btf: btf).value(full, type: event)["comm"] == .array(Array(repeating: .int(65), count: 16)))
    }
}
