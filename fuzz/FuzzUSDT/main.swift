// libFuzzer target for USDT notes and argument specs: the whole input as an ELF file (notes,
// prelink adjustment, file offsets, symbol lookups), as one note descriptor (both address
// sizes), and as an argument string. Build and run: fuzz/run.sh usdt
import PlumbELF
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUSDT(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Bytes(UnsafeBufferPointer(start: data, count: size))
    if let elf = try? ELFFile(bytes: bytes) {
        _ = try? USDT.probes(in: elf)
        return 0
    }
    let view = ByteView(bytes, order: .little)
    _ = try? USDT.parseNote(view, addressSize: 8)
    _ = try? USDT.parseNote(view, addressSize: 4)
    let text = String(decoding: UnsafeBufferPointer(start: data, count: min(size, 4096)), as: UTF8.self)
    _ = try? USDT.parseArguments(text, probe: "fuzz") { name in name.count > 3 ? 0x1000 : nil }
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzUSDT) }
}
