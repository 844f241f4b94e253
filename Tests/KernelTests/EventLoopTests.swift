// The trace loop against the kernel: records from a real ring buffer printed typed into a
// batched output, the readers' summary, and every map printed at the end.
import PlumbBPF
import PlumbSys
import Foundation
import Glibc
import Testing
import TestSupport

@Suite(.serialized) struct EventLoopTests {
    /// A temporary file: its fd and a reader of its text.
    func outputFile() throws -> (fd: Int32, read: () -> String, remove: () -> Void) {
        var template = Array((FileManager.default.temporaryDirectory.path + "/plumb-loop-XXXXXX").utf8CString)
        let fd = mkstemp(&template)
        try #require(fd >= 0)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (fd, { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }, { close(fd); unlink(path) })
    }

    @Test func printsTypedRecordsInOneWriteThenTheMaps() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard getpidTracepointOrSkip() != nil else { return }
        let file = try outputFile()
        defer { file.remove() }
        try withRuntimeLeakCheck { leaks in
            let spec = try ObjectSpec(path: try kernelFixture("basic.bpfel.o"))
            // This thread only (other tests call getpid too); seen_value through --set's encoder.
            let globals = try spec.globalValues(["target_pid=\(getpid())", "target_tid=\(currentTID())", "seen_value=0x2a"])
            let object = try spec.load(LoadOptions(globals: globals))
            leaks.track(object)
            let printer = try RecordPrinter(spec: object.spec, recordTypes: ["events": "event"])
            let output = OutputBuffer(fd: file.fd)
            let loop = try EventLoop(object: object, printer: printer, output: output)
            var link = try object.attach("on_getpid")
            for _ in 0 ..< 5 { rawGetpid() }
            try loop.run(until: EventLoop.now() + 0.3)
            link = nil
            _ = link
            let lines = file.read().split(separator: "\n")
            #expect(lines.count == 5, "\(lines)")
            #expect(lines.allSatisfy { $0.hasPrefix("events: { .pid = \(getpid()), .kind = 1, .value = 42, .comm = \"") })
            // Caught up, then idle: one write(2) for all five.
            #expect(output.writes == 1)
            try loop.finish()
            #expect(loop.summary == "ring buffers: 5 records delivered\n")
            #expect(loop.delivered == 5)
            let maps = MapPrinter(object: object).all()
            #expect(maps.contains("counts (hash, 1 entries):\n  \(getpid()): 5\n"), "\(maps)")
            #expect(maps.contains("  hits = 5\n"))
            #expect(maps.contains("  tag = \"plumb\"\n"))
            #expect(!maps.contains("events"), "ring buffers hold events, not entries")
        }
    }

    @Test func stopsOnRequestAndAtTheDeadline() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        let file = try outputFile()
        defer { file.remove() }
        try withRuntimeLeakCheck { leaks in
            let object = try Object(path: try kernelFixture("basic.bpfel.o"))
            leaks.track(object)
            let loop = try EventLoop(object: object, printer: try RecordPrinter(spec: object.spec), output: OutputBuffer(fd: file.fd))
            var start = EventLoop.now()
            try loop.run(until: start + 0.2)
            let waited = EventLoop.now() - start
            #expect(waited >= 0.2 && waited < 1.5, "\(waited) s")
            loop.requestStop()
            start = EventLoop.now()
            try loop.run()
            #expect(EventLoop.now() - start < 0.5)
        }
    }
}
