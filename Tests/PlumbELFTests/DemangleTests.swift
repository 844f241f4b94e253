import Foundation
import Testing
import PlumbELF
import TestSupport

/// Demangling: a fixed corpus (expected text from c++filt and `swift demangle --simplified`),
/// agreement with those tools on real symbol tables, and malformed input that must give nil.
@Suite struct DemangleTests {
    static let cxx: [(String, String)] = [
        ("_ZNSt8ios_base6xallocEv", "std::ios_base::xalloc()"),
        ("_ZNKSt7__cxx118messagesIwE7do_openERKNS_12basic_stringIcSt11char_traitsIcESaIcEEERKSt6locale", "std::__cxx11::messages<wchar_t>::do_open(std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > const&, std::locale const&) const"),
        ("_ZSt20_Rb_tree_rotate_leftPSt18_Rb_tree_node_baseRS0_", "std::_Rb_tree_rotate_left(std::_Rb_tree_node_base*, std::_Rb_tree_node_base*&)"),
        ("_ZNSsC1ENSs12__sv_wrapperERKSaIcE", "std::basic_string<char, std::char_traits<char>, std::allocator<char> >::basic_string(std::basic_string<char, std::char_traits<char>, std::allocator<char> >::__sv_wrapper, std::allocator<char> const&)"),
        ("_ZStrsIcSt11char_traitsIcESaIcEERSt13basic_istreamIT_T0_ES7_RSbIS4_S5_T1_E", "std::basic_istream<char, std::char_traits<char> >& std::operator>><char, std::char_traits<char>, std::allocator<char> >(std::basic_istream<char, std::char_traits<char> >&, std::basic_string<char, std::char_traits<char>, std::allocator<char> >&)"),
        ("_ZTSSt13basic_fstreamIcSt11char_traitsIcEE", "typeinfo name for std::basic_fstream<char, std::char_traits<char> >"),
        ("_ZZ4mainENKUliE_clEi", "main::{lambda(int)#1}::operator()(int) const"),
        ("_ZNSt6vectorIiSaIiEE12emplace_backIJiEEERiDpOT_", "int& std::vector<int, std::allocator<int> >::emplace_back<int>(int&&)"),
        ("_ZSt12__get_helperILm1ESt14default_deleteIN4shop3inv5StoreEEJEERT0_RSt11_Tuple_implIXT_EJS5_DpT1_EE", "std::default_delete<shop::inv::Store>& std::__get_helper<1ul, std::default_delete<shop::inv::Store>>(std::_Tuple_impl<1ul, std::default_delete<shop::inv::Store>>&)"),
        ("_ZN12_GLOBAL__N_16hiddenEi", "(anonymous namespace)::hidden(int)"),
        ("_Z2cbPFiiEi", "cb(int (*)(int), int)"),
        ("_Z14volatile_thingPViRA4_iRSt3mapINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEESt6vectorIiSaIiEESt4lessIS5_ESaISt4pairIKS5_S8_EEE", "volatile_thing(int volatile*, int (&) [4], std::map<std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >, std::vector<int, std::allocator<int> >, std::less<std::__cxx11::basic_string>, std::allocator<std::pair<std::__cxx11::basic_string const, std::allocator<char> > > >&)"),
        ("_ZNK4shop3inv5StoreeqERKS1_", "shop::inv::Store::operator==(shop::inv::Store const&) const"),
        ("_ZN4shop3inv5Store3addEiPKc", "shop::inv::Store::add(int, char const*)"),
        ("_ZN4shop3inv5StoreD2Ev", "shop::inv::Store::~Store()"),
        ("_ZTv0_n24_NSt13basic_fstreamIcSt11char_traitsIcEED0Ev", "virtual thunk to std::basic_fstream<char, std::char_traits<char> >::~basic_fstream()"),
        ("_ZGVZN12_GLOBAL__N_16hiddenEiE5calls", "guard variable for (anonymous namespace)::hidden(int)::calls"),
        ("_ZNKSt5ctypeIcE8do_widenEc", "std::ctype<char>::do_widen(char) const"),
        ("_ZdlPvm", "operator delete(void*, unsigned long)"),
        ("_ZnwmSt11align_val_t", "operator new(unsigned long, std::align_val_t)"),
        ("_Z1fM1AKFvvE", "f(void (A::*)() const)"),
        ("_Z1fPFPFivEvE", "f(int (*(*)())())"),
        ("_ZN1AcviEv", "A::operator int()"),
        ("_Z3fooILi3EEvv", "void foo<3>()"),
        ("_ZNSt9basic_iosIcSt11char_traitsIcEEC2Ev.cold", "std::basic_ios<char, std::char_traits<char> >::basic_ios() [clone .cold]"),
        ("_ZL3barv", "bar()"),
    ]
    static let swift: [(String, String)] = [
        ("$s4main3fooyyF", "foo()"),
        ("$s8PlumbBTF0B0C6kernelACyAA8BTFErrorOYKFZA2CSgzYuYTXEfU1_", "closure #3 in static BTF.kernel()"),
        ("$s9PlumbLang10DiagnosticV7messageSSvM", "Diagnostic.message.modify"),
        ("$s10PlumbTrace12ValuePrinterV4json__2atSS0A4Lang0C4TypeO_SWSitFSSAF5FieldVXEfU_TA", "partial apply for closure #1 in ValuePrinter.json(_:_:at:)"),
        ("$s8PlumbBPF12UprobeTargetV6symbolSSSgvg", "UprobeTarget.symbol.getter"),
        ("$s14ArgumentParser11JSONEncoderO6encodeySSxSERzlFZ", "static JSONEncoder.encode<A>(_:)"),
        ("$s10PlumbTrace7RuntimeC3runs5Int32VyAA0B5ErrorOYKF5drainL_yyF", "drain #1 () in Runtime.run()"),
        ("$s8PlumbSys8LinkTypeOwet", "getEnumTagSinglePayload for LinkType"),
        ("$s14ArgumentParser4TreeCA2A15ParsableCommand_pXpRszlE10firstChild7equalToACyAaD_pXpGSgAaD_pXp_tF", "Tree<A>.firstChild(equalTo:)"),
        ("$s15Synchronization5MutexVySDys6UInt64VSSGSgGWOh", "outlined destroy of Mutex<[UInt64 : String]?>"),
        ("$s8PlumbELF7ELFFileV6ET_DYNs6UInt16VvpZ", "static ELFFile.ET_DYN"),
        ("$sSXsE2teoiySbx_5BoundQztFZ", "static RangeExpression.~= infix(_:_:)"),
        ("_$s4main3fooyyF", "foo()"),
    ]

    @Test("C++ names demangle as c++filt prints them")
    func itaniumCorpus() {
        for (mangled, want) in DemangleTests.cxx {
            #expect(Demangler.displayName(mangled) == want, "\(mangled)")
        }
        // Versioned dynamic names keep their version; plain C names are left alone.
        #expect(Demangler.displayName("_ZNSt8ios_base6xallocEv@@GLIBCXX_3.4") == "std::ios_base::xalloc()@@GLIBCXX_3.4")
        #expect(Demangler.demangle("main") == nil)
        #expect(Demangler.displayName("main") == "main")
    }

    @Test("Swift names demangle as swift demangle --simplified prints them")
    func swiftCorpus() {
        for (mangled, want) in DemangleTests.swift {
            #expect(Demangler.displayName(mangled) == want, "\(mangled)")
        }
    }

    @Test("malformed, truncated, deep and huge names give nil, never a crash")
    func malformed() {
        for bad in ["_Z", "_ZN", "_ZNE", "_Z1", "_Z99999999999a", "_ZS9_", "_ZT_", "_Z1fIT5_E", "$s", "$s9", "$sA", "$sAZ", "$s0Z",
                    "_Z" + String(repeating: "P", count: 5000) + "i", "_Z1f" + String(repeating: "N1a", count: 3000),
                    "$s" + String(repeating: "Sa", count: 5000) + "G", String(repeating: "_Z", count: 20_000)] {
            let out = Demangler.demangle(bad)
            #expect(out == nil || out!.utf8.count <= Demangler.maxOutputLength, "\(bad.prefix(40))")
        }
        // Substitutions that nest at every step stay within the output bound.
        let nested = Demangler.demangle("_Z1f" + String(repeating: "PS_", count: 60) + "i")
        #expect(nested == nil || nested!.utf8.count <= Demangler.maxOutputLength)
        let doubling = Demangler.demangle("_Z1fIiE" + String(repeating: "St4pairIS_S_E", count: 1) + String(repeating: "S0_", count: 400))
        #expect(doubling == nil || doubling!.utf8.count <= Demangler.maxOutputLength)
        // Every corpus name, cut and mutated deterministically, stays within bounds.
        var rng = SplitMix(seed: 7)
        let alphabet = Array("_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz$.")
        for (mangled, _) in DemangleTests.cxx + DemangleTests.swift {
            var chars = Array(mangled)
            for _ in 0..<200 {
                var m = chars
                let edits = Int(rng.next() % 4) + 1
                for _ in 0..<edits where !m.isEmpty {
                    let at = Int(rng.next() % UInt64(m.count))
                    switch rng.next() % 3 {
                    case 0: m[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    case 1: m.remove(at: at)
                    default: m.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                    }
                }
                if let out = Demangler.demangle(String(m)) { #expect(out.utf8.count <= Demangler.maxOutputLength) }
                chars = rng.next() % 8 == 0 ? Array(mangled) : chars
            }
        }
    }

    /// Names of `lib` (nm's list) and the tool's text for them.
    func oracle(_ names: [String], tool: String, args: [String]) -> [String]? {
        // Through a file: a large stdin written up front would deadlock against the tool's output.
        let file = NSTemporaryDirectory() + "plumb-demangle-\(getpid())-\(names.count).txt"
        guard FileManager.default.createFile(atPath: file, contents: Data((names.joined(separator: "\n") + "\n").utf8)) else { return nil }
        defer { unlink(file) }
        let quoted = ([tool] + args).map { "'" + $0 + "'" }.joined(separator: " ")
        let r = TestEnv.run("/bin/sh", ["-c", quoted + " < '" + file + "'"])
        guard r.status == 0 else { return nil }
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return lines.count >= names.count ? Array(lines.prefix(names.count)) : nil
    }

    func symbols(_ path: String, dynamic: Bool, prefix: [String]) -> [String] {
        guard let elf = try? ELFFile(path: path), let syms = try? elf.symbols(dynamic: dynamic) else { return [] }
        return Array(Set(syms.map(\.name).filter { n in prefix.contains { n.hasPrefix($0) } })).sorted()
    }

    @Test("agreement with c++filt on libstdc++'s .dynsym is above 95%")
    func agreesWithCxxfilt() throws {
        let lib = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
        guard FileManager.default.fileExists(atPath: lib), FileManager.default.fileExists(atPath: "/usr/bin/c++filt") else {
            print("SKIP: no libstdc++ or c++filt"); return
        }
        let names = symbols(lib, dynamic: true, prefix: ["_Z"])
        guard names.count > 1000, let want = oracle(names, tool: "/usr/bin/c++filt", args: []) else {
            Issue.record("c++filt gave no answer"); return
        }
        let same = zip(names, want).filter { Demangler.displayName($0.0) == $0.1 }.count
        print("c++filt agreement on libstdc++ .dynsym: \(same)/\(names.count)")
        #expect(Double(same) / Double(names.count) > 0.95)
    }

    @Test("agreement with swift demangle --simplified on this test binary's function symbols")
    func agreesWithSwiftDemangle() throws {
        let tool = TestEnv.toolchainBin + "/swift-demangle"
        guard FileManager.default.isExecutableFile(atPath: tool) else { print("SKIP: no swift-demangle"); return }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        guard let elf = try? ELFFile(path: exe), let syms = try? elf.symbols() else { print("SKIP: cannot read \(exe)"); return }
        let names = Array(Set(syms.filter { $0.type == ELFSymbol.STT_FUNC && ($0.name.hasPrefix("$s") || $0.name.hasPrefix("_$s")) }.map(\.name))).sorted()
        guard names.count > 500, let want = oracle(names, tool: tool, args: ["--simplified"]) else {
            Issue.record("swift-demangle gave no answer"); return
        }
        let same = zip(names, want).filter { Demangler.displayName($0.0) == $0.1 }.count
        print("swift-demangle --simplified agreement on \(exe) functions: \(same)/\(names.count)")
        // Swift's own libraries in the test binary (Testing, async thunks) use more of the grammar than plumb does.
        #expect(Double(same) / Double(names.count) > 0.70)
    }
}
