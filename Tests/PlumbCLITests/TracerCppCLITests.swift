import Foundation
import Testing
import TestSupport

/// `uprobe:PATH:cpp:"ns::Class::method"`: C++ functions by their demangled name, every overload
/// unless a parameter list picks one; counted exactly on a program of our own.
@Suite struct TracerCppCLITests {
    @Test func cppProbesByDemangledName() throws {
        guard TestEnv.kernelAvailable(bpfUsable()) else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-cpp-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("prog.cc"), binary = dir.appendingPathComponent("prog").path
        try """
        #include <unistd.h>
        namespace ns { struct C {
            __attribute__((noinline)) int m(int x) { return getpid() + x; }
            __attribute__((noinline)) int m(const char *s) { return s[0]; }
        }; }
        int main() { ns::C c; int s = 0; for (int i = 0; i < 3; i++) s += c.m(i) + c.m("a"); return s == 1; }
        """.write(to: source, atomically: true, encoding: .utf8)
        let cc = TestEnv.run("/usr/bin/g++", ["-g", "-O2", "-o", binary, source.path])
        try #require(cc.status == 0, "\(cc.stderr)")
        let all = plumb(["-e", "uprobe:\(binary):cpp:\"ns::C::m\" { @ = count(); }", "-c", binary])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(all.stdout.contains("Attaching 2 probes..."), "both overloads: \(all.stdout)")
        #expect(all.stdout.contains("@: 6"), "\(all.stdout)")
        let one = plumb(["-e", "uprobe:\(binary):cpp:\"ns::C::m(int)\" { @ = count(); }", "-c", binary])
        #expect(one.stdout.contains("@: 3"), "\(one.stdout)\(one.stderr)")
        let missing = plumb(["-e", "uprobe:\(binary):cpp:\"ns::C::nope\" { @ = count(); }"])
        #expect(missing.status != 0 && missing.stderr.contains("no C++ function named 'ns::C::nope'"), "\(missing.stderr)")
    }
}
