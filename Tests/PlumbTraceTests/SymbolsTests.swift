import Foundation
import Glibc
import Testing
@testable import PlumbTrace

/// User symbols of this very process: C++ names from libstdc++ come out demangled, as
/// bpftrace's usym/ustack print them.
@Suite struct SymbolsTests {
    @Test("usym of a libstdc++ function mapped here is demangled, with its offset")
    func demangledUserSymbol() throws {
        guard let lib = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD) ?? dlopen("libstdc++.so.6", RTLD_NOW) else {
            print("SKIP: no libstdc++ in this process"); return
        }
        guard let f = dlsym(lib, "_ZNSt8ios_base6xallocEv") else { Issue.record("no std::ios_base::xalloc"); return }
        let address = UInt64(UInt(bitPattern: f))
        let symbols = SystemSymbols()
        #expect(symbols.userSymbol(address, pid: getpid(), withOffset: false) == "std::ios_base::xalloc()")
        #expect(symbols.userSymbol(address + 1, pid: getpid(), withOffset: true) == "std::ios_base::xalloc()+1")
        // No debug info for the system library: the frame is the symbol alone.
        #expect(symbols.userFrames(address, pid: getpid()) == ["std::ios_base::xalloc()+0"])
    }

    @Test("callers in inline frames are named without parameters")
    func shortNames() {
        #expect(SystemSymbols.shortName("ns::Store::add(int, char const*) const") == "ns::Store::add")
        #expect(SystemSymbols.shortName("ns::f<int (*)(int)>(int)") == "ns::f<int (*)(int)>")
        #expect(SystemSymbols.shortName("ns::S::operator()(int)") == "ns::S::operator()")
        #expect(SystemSymbols.shortName("outer") == "outer")
    }
}
