// libFuzzer target for the C++ and Swift demanglers: any bytes, as a symbol name, must give a
// string or nil, within the length bounds. Build and run: fuzz/run.sh demangle
import PlumbELF
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDemangle(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    // Both grammars on every input, whatever its prefix says.
    for candidate in [text, "_Z" + text, "$s" + text] {
        if let out = Demangler.demangle(candidate) {
            precondition(out.utf8.count <= Demangler.maxOutputLength, "demangled text over the bound")
        }
        _ = Demangler.displayName(candidate)
    }
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzDemangle) }
}
