// Hands control to libFuzzer's driver (linked in by -sanitize=fuzzer), so SwiftPM's own
// executable entry point can stay in place.
import Glibc

public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>, Int) -> Int32

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: FuzzCallback) -> Int32

public func runFuzzer(_ callback: FuzzCallback) -> Int32 {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}
#endif

/// The whole `main` of a fuzz target: hand over to libFuzzer when built for fuzzing,
/// otherwise run the target once on each file named on the command line (replay).
public func fuzzMain(_ callback: FuzzCallback) {
    #if FUZZING
    exit(runFuzzer(callback))
    #else
    for path in CommandLine.arguments.dropFirst() {
        guard let f = fopen(path, "rb") else { perror(path); exit(1) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            data += buf[0..<n]
        }
        fclose(f)
        _ = data.withUnsafeBufferPointer { callback($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
    }
    #endif
}
