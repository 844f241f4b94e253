// libFuzzer target for the ELF reader: headers, sections, symbols, relocations, notes.
// Build and run: fuzz/run.sh elf
import PlumbELF
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzELF(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Bytes(UnsafeBufferPointer(start: data, count: size))
    guard let elf = try? ELFFile(bytes: bytes) else { return 0 }
    _ = try? elf.symbols()
    _ = try? elf.symbols(dynamic: true)
    for s in elf.sections {
        if s.type == ELFSection.SHT_REL || s.type == ELFSection.SHT_RELA { _ = try? elf.relocations(in: s) }
        if s.type == ELFSection.SHT_NOTE { _ = try? elf.notes(in: s) }
        _ = elf.contents(of: s).toArray()
    }
    _ = elf.fileOffset(ofVirtualAddress: elf.entry)
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzELF) }
}
