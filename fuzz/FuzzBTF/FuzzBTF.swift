// libFuzzer target for the BTF parser and every query on its result.
// Build and run: fuzz/run.sh btf   (plain builds get a main that replays files given as arguments)
import PlumbBTF
import PlumbELF
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBTF(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Bytes(UnsafeBufferPointer(start: data, count: size))
    guard let btf = try? BTF(bytes: bytes) else { return 0 }
    var out = ""
    try? btf.rawDump(into: &out)
    for id in btf.ids {
        _ = try? btf.size(of: id)
        _ = try? btf.alignment(of: id)
        _ = try? btf.resolve(id)
        _ = btf.cTypeName(id)
    }
    _ = try? btf.encode()
    _ = try? btf.cDump()
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzBTF) }
}
