// libFuzzer target for the BPF object reader: ELF -> maps, globals, externs, programs
// (subprogram linking, relocations, .BTF.ext) and the dump of the result.
// Build and run: fuzz/run.sh object
import PlumbBPF
import PlumbELF
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzObject(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let elf = try? ELFFile(bytes: Bytes(UnsafeBufferPointer(start: data, count: size))) else { return 0 }
    guard let spec = try? ObjectSpec(elf: elf, path: "fuzz") else { return 0 }
    _ = spec.dump()
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzObject) }
}
