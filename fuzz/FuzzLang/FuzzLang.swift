// libFuzzer target for the tracing language front end: lexer, parser and (where it needs no
// kernel) the checker. Build and run: fuzz/run.sh lang
import PlumbLang
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLang(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let file = SourceFile(name: "fuzz.bt", text: text)
    _ = file.location(of: size / 2)
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzLang) }
}
