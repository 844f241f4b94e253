// libFuzzer target for the BPF object reader: ELF -> maps, globals, externs, programs
// (subprogram linking, relocations, .BTF.ext) and the dump of the result.
// Build and run: fuzz/run.sh object
import BPF
import ELF
import FuzzSupport
#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzObject(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let elf = try? ELFFile(bytes: Bytes(UnsafeBufferPointer(start: data, count: size))) else { return 0 }
    guard let spec = try? ObjectSpec(elf: elf, path: "fuzz") else { return 0 }
    _ = spec.dump()
    return 0
}

@main struct Main {
    static func main() throws {
        #if FUZZING
        exit(runFuzzer(fuzzObject))
        #else
        // Replay: run the target once on each file named on the command line.
        for path in CommandLine.arguments.dropFirst() {
            let b = try Bytes.read(path: path)
            _ = fuzzObject(b.base.assumingMemoryBound(to: UInt8.self), b.count)
        }
        #endif
    }
}
