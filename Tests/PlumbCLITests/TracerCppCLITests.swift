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
        // A quoted demangled name without `cpp:` is taken as one too, as bpftrace 0.17 takes it.
        let bare = plumb(["-e", "uprobe:\(binary):\"ns::C::m(int)\" { @ = count(); }", "-c", binary])
        #expect(bare.stdout.contains("@: 3"), "\(bare.stdout)\(bare.stderr)")
        // `probe` shows a path as the script wrote it, as bpftrace does.
        let relative = TestEnv.run("/bin/sh", ["-c", "cd '\(dir.path)' && '\(TestEnv.plumb)' -c ./prog -e 'uprobe:./prog:main { printf(\"%s\\n\", probe); }'"])
        #expect(relative.stdout.contains("\nuprobe:./prog:main\n"), "\(relative.stdout)\(relative.stderr)")
        // usym() demangles, unless BPFTRACE_NO_CPP_DEMANGLE=1. (Built -no-pie: the keys print after
        // the process has exited, when only a fixed-address file still resolves.)
        let fixed = binary + "-nopie"
        let ccFixed = TestEnv.run("/usr/bin/g++", ["-g", "-O2", "-no-pie", "-o", fixed, source.path])
        try #require(ccFixed.status == 0, "\(ccFixed.stderr)")
        let script = "uprobe:\(fixed):\"ns::C::m(int)\" { @[usym(reg(\"ip\"))] = count(); }"
        let shown = plumb(["-e", script, "-c", fixed])
        #expect(shown.stdout.contains("@[ns::C::m(int)"), "\(shown.stdout)\(shown.stderr)")
        let raw = TestEnv.run("/usr/bin/env", ["BPFTRACE_NO_CPP_DEMANGLE=1", TestEnv.plumb, "-e", script, "-c", fixed])
        #expect(raw.stdout.contains("@[_ZN2ns1C1mEi") && !raw.stdout.contains("ns::C"), "\(raw.stdout)\(raw.stderr)")
        let missing = plumb(["-e", "uprobe:\(binary):cpp:\"ns::C::nope\" { @ = count(); }"])
        #expect(missing.status != 0 && missing.stderr.contains("no C++ function named 'ns::C::nope'"), "\(missing.stderr)")
    }
}

/// `plumb --check`: parse and type-check only; diagnostics and exit 1 on errors, silent 0 otherwise.
@Suite struct TracerCheckCLITests {
    @Test func checkReportsErrorsAndIsQuietOnSuccess() throws {
        let good = plumb(["--check", "-e", "BEGIN { @n = @n + 1; printf(\"%d\\n\", @n); exit(); }"])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.isEmpty && good.stderr.isEmpty, "\(good.stdout)\(good.stderr)")
        let bad = plumb(["--check", "-e", "BEGIN { printf(\"%d\\n\", $x); }"])
        #expect(bad.status == 1)
        #expect(bad.stdout.isEmpty)
        #expect(bad.stderr.contains("$x"), "\(bad.stderr)")
        let syntax = plumb(["--check", "-e", "BEGIN { @ = ; }"])
        #expect(syntax.status == 1 && syntax.stdout.isEmpty && !syntax.stderr.isEmpty)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plumb-check-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("ok.bt")
        try "BEGIN { printf(\"%s\\n\", strftime(\"%Y\", nsecs)); exit(); }\n".write(to: file, atomically: true, encoding: .utf8)
        let fromFile = plumb(["--check", file.path])
        #expect(fromFile.status == 0 && fromFile.stdout.isEmpty && fromFile.stderr.isEmpty, "\(fromFile.stderr)")
        let inline = plumb(["--check=\(file.path)"])
        #expect(inline.status == 0 && inline.stdout.isEmpty, "\(inline.stderr)")
        let missing = plumb(["--check", dir.appendingPathComponent("nope.bt").path])
        #expect(missing.status == 1 && missing.stderr.contains("failed to open"))
    }
}
