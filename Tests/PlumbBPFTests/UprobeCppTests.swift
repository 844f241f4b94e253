import Foundation
import Testing
import PlumbBPF
import PlumbELF
import TestSupport

/// Uprobes by C++ source name: a small program of our own (g++ -g -O2) with overloads,
/// a const member, a template, a constructor and an anonymous namespace.
@Suite struct UprobeCppTests {
    static let source = """
    #include <cstdio>
    namespace shop {
    class Store {
    public:
        Store() : n(0) {}
        __attribute__((noipa)) int add(int id) { n += id; return n; }
        __attribute__((noipa)) int add(int id, const char *name) { n += id + (name ? name[0] : 0); return n; }
        __attribute__((noipa)) int count() const { return n; }
        template <typename T> __attribute__((noipa)) T scaled(T f) const { return T(n) * f; }
        int n;
    };
    }
    namespace { __attribute__((noipa)) int hidden(int x) { return x * 3; } }
    int main(int argc, char **) {
        shop::Store s;
        s.add(argc); s.add(2, "b");
        std::printf("%d %d %f %d\\n", s.count(), s.scaled(3), s.scaled(1.5), hidden(argc));
        return 0;
    }
    """

    static let binary: Result<String, FixtureError> = {
        let dir = TestEnv.root.appendingPathComponent(".build/fixtures/cpp").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let src = dir + "/store.cpp", out = dir + "/store"
        do { try source.write(toFile: src, atomically: true, encoding: .utf8) } catch {
            return .failure(FixtureError(message: "\(error)"))
        }
        let r = TestEnv.run("/usr/bin/env", ["g++", "-g", "-O2", "-o", out, src])
        return r.status == 0 ? .success(out) : .failure(FixtureError(message: r.stdout + r.stderr))
    }()

    struct FixtureError: Error { var message: String }

    func store() throws -> String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/g++") else { print("SKIP: no g++"); return nil }
        return try UprobeCppTests.binary.get()
    }

    @Test("ns::Class::method finds every overload; a parameter list picks one; addresses match nm")
    func overloads() throws {
        guard let bin = try store() else { return }
        let all = try UprobeResolver.cppFunctions(binary: bin, name: "shop::Store::add")
        #expect(Set(all.map(\.demangled)) == ["shop::Store::add(int)", "shop::Store::add(int, char const*)"])
        #expect(Set(all.map(\.mangled)) == ["_ZN4shop5Store3addEi", "_ZN4shop5Store3addEiPKc"])
        // nm agrees on the addresses.
        let nm = TestEnv.run("/usr/bin/nm", [bin]).stdout
        let nmAddress = Dictionary(nm.split(separator: "\n").compactMap { line -> (String, UInt64)? in
            let parts = line.split(separator: " ")
            guard parts.count == 3, let a = UInt64(parts[0], radix: 16) else { return nil }
            return (String(parts[2]), a)
        }, uniquingKeysWith: { a, _ in a })
        for m in all { #expect(nmAddress[m.mangled] == m.address, "\(m.mangled)") }
        let one = try UprobeResolver.resolveCpp(binary: bin, name: "shop::Store::add(int, char const*)")
        #expect(one.count == 1)
        #expect(one.first?.symbol == "shop::Store::add(int, char const*)")
        #expect(try UprobeResolver.resolveCpp(binary: bin, name: "shop::Store::add(int)").map(\.symbol) == ["shop::Store::add(int)"])
        // Both overloads as targets, each at its own file offset.
        let both = try UprobeResolver.resolveCpp(binary: bin, name: "shop::Store::add")
        #expect(Set(both.map(\.fileOffset)).count == 2)
    }

    @Test("const members, templates, anonymous namespaces and return types")
    func otherShapes() throws {
        guard let bin = try store() else { return }
        #expect(try UprobeResolver.cppFunctions(binary: bin, name: "shop::Store::count").map(\.demangled) == ["shop::Store::count() const"])
        #expect(try UprobeResolver.cppFunctions(binary: bin, name: "shop::Store::count() const").count == 1)
        #expect(try UprobeResolver.cppFunctions(binary: bin, name: "shop::Store::count()").isEmpty)
        // A template matches all its instances by plain name, one by its arguments.
        let scaled = try UprobeResolver.cppFunctions(binary: bin, name: "shop::Store::scaled")
        #expect(Set(scaled.map(\.demangled)) == ["int shop::Store::scaled<int>(int) const", "double shop::Store::scaled<double>(double) const"])
        #expect(try UprobeResolver.cppFunctions(binary: bin, name: "shop::Store::scaled<double>").count == 1)
        #expect(try UprobeResolver.cppFunctions(binary: bin, name: "(anonymous namespace)::hidden").count == 1)
    }

    @Test("ambiguity and absence are errors that list the overloads or say how names are written")
    func errors() throws {
        guard let bin = try store() else { return }
        do {
            _ = try UprobeResolver.resolveCpp(binary: bin, name: "shop::Store::add", allowOverloads: false)
            Issue.record("expected an ambiguity error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("shop::Store::add(int)") && text.contains("shop::Store::add(int, char const*)"), "\(text)")
        }
        do {
            _ = try UprobeResolver.resolveCpp(binary: bin, name: "shop::Store::remove")
            Issue.record("expected a not-found error")
        } catch {
            #expect("\(error)".contains("c++filt"), "\(error)")
        }
    }
}
