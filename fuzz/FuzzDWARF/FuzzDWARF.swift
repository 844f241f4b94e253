// libFuzzer target for the DWARF reader: units, abbreviations, every form, the index, type
// conversion to BTF, location and range lists, line tables.
// Build and run: fuzz/run.sh dwarf
import PlumbDWARF
import PlumbELF
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDWARF(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Bytes(UnsafeBufferPointer(start: data, count: size))
    guard let elf = try? ELFFile(bytes: bytes), let d = try? DWARF(elf: elf) else { return 0 }
    d.exercise()
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzDWARF) }
}
