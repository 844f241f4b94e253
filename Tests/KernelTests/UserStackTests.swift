import Foundation
import Testing
import PlumbAsm
import PlumbBPF
import PlumbSys
import PlumbTrace
import TestSupport

/// User stacks captured by a hand-built program (bpf_get_stackid with BPF_F_USER_STACK on a
/// uprobe) and symbolized: function names and the frames inlined at -O2, from DWARF.
@Suite struct UserStackTests {
    static let source = """
    #include <stdio.h>
    #include <unistd.h>
    __attribute__((noinline)) int leaf(int x) { volatile int v[4]; v[0] = x; return v[0] * 7 + 1; }
    static inline __attribute__((always_inline)) int helper(int x) {
        int r = leaf(x + 1);
        __asm__ volatile("" ::: "memory");
        return r * 3 + x;
    }
    __attribute__((noinline)) int outer(int x) {
        int a = helper(x);
        return a + 5;
    }
    int main(void) {
        printf("%d\\n", getpid());
        fflush(stdout);
        getchar();
        int s = 0;
        for (int i = 0; i < 10; i++) s += outer(i);
        printf("done %d\\n", s);
        fflush(stdout);
        getchar();
        return 0;
    }
    """

    func build() throws -> String {
        let dir = TestEnv.root.appendingPathComponent(".build/fixtures/ustack").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let src = dir + "/inline.c", out = dir + "/inline"
        try UserStackTests.source.write(toFile: src, atomically: true, encoding: .utf8)
        // Frame pointers: the kernel walks user stacks through them.
        let r = TestEnv.run("/usr/bin/env", ["cc", "-g", "-O2", "-fno-omit-frame-pointer", "-o", out, src])
        guard r.status == 0 else { throw FixtureBuildError(message: r.stdout + r.stderr) }
        return out
    }

    @Test("a uprobe's user stack symbolizes with the inlined frame: leaf, helper (inlined into outer at inline.c:10), outer, main")
    func inlineFrames() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        guard TestEnv.kernelAvailable(Features.uprobes().isSupported ? nil : "uprobes: \(Features.uprobes())") else { return }
        let binary = try build()
        try withRuntimeLeakCheck { leaks in
            let traces = try Map.create(type: .stackTrace, keySize: 4, valueSize: 8 * 127, maxEntries: 64, name: "ustacks")
            leaks.track(traces)
            var b = ProgramBuilder()
            let out = b.newLabel("out")
            // r1 = ctx (pt_regs); stackid = bpf_get_stackid(ctx, traces, BPF_F_USER_STACK)
            b.emit(.loadMapFD(.r2, fd: traces.fd.rawValue))
            b.emit(.mov64(.r3, 1 << 8))
            b.emit(.call(HelperID.getStackID))
            b.bind(out)
            b.emit(.mov64(.r0, 0))
            b.emit(.exit())
            let prog = try Program.load(ProgramAttributes(type: .kprobe, instructions: Instruction.encode(try b.finish()), name: "ustack"))
            leaks.track(prog)

            let child = Process()
            child.executableURL = URL(fileURLWithPath: binary)
            let input = Pipe(), output = Pipe()
            child.standardInput = input
            child.standardOutput = output
            try child.run()
            defer { if child.isRunning { child.terminate() } }
            let pidLine = readLine(output.fileHandleForReading)
            guard let pid = Int32(pidLine) else { Issue.record("child printed '\(pidLine)'"); return }
            // Past leaf's prologue (push %rbp; mov %rsp,%rbp): at the entry itself the frame-pointer
            // walk starts from the caller's frame and skips the caller.
            let entry = try UprobeResolver.resolve(binary: binary, symbol: "leaf")
            let code = [UInt8](try Data(contentsOf: URL(fileURLWithPath: binary)).dropFirst(Int(entry.fileOffset)).prefix(32))
            guard let mov = (0..<(code.count - 2)).first(where: { code[$0] == 0x48 && code[$0 + 1] == 0x89 && code[$0 + 2] == 0xe5 }) else {
                Issue.record("no frame setup in leaf: \(code)"); return
            }
            let link = try prog.attachUprobe(binary: binary, symbol: "leaf", offset: UInt64(mov + 3), pid: pid)
            leaks.track(link)
            input.fileHandleForWriting.write(Data("x".utf8))
            #expect(readLine(output.fileHandleForReading).hasPrefix("done"))

            // Symbolize while the process lives (its /proc/PID/maps places the PIE and libc).
            let symbols = SystemSymbols()
            var stacks: [[String]] = []
            for key in try traces.keys() {
                guard let value = try traces.lookup(key) else { continue }
                var lines: [String] = []
                for k in 0..<127 {
                    let ip = value[(k * 8)..<(k * 8 + 8)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
                    if ip == 0 { break }
                    // Frames past the first are return addresses: the call is the byte before.
                    lines += symbols.userFrames(ip, pid: pid, isReturnAddress: k > 0) ?? ["0x" + String(ip, radix: 16)]
                }
                stacks.append(lines)
            }
            input.fileHandleForWriting.write(Data("x".utf8))
            child.waitUntilExit()
            let text = stacks.map { $0.joined(separator: "\n") }.joined(separator: "\n--\n")
            print(text)
            #expect(!stacks.isEmpty)
            let found = stacks.contains { s in
                s.count >= 4 && s[0].hasPrefix("leaf+") && s[1].hasPrefix("helper+") && s[1].hasSuffix("(inlined into outer at inline.c:10)")
                    && s[2].hasPrefix("outer+") && s[3].hasPrefix("main+")
            }
            #expect(found, "stacks:\n\(text)")
        }
    }
}
