// Helpers shared by this target's tests (which import only Plumb, so not TestSupport).
import Glibc

/// A fixture object from .build/fixtures (built by Tests/Fixtures/build.sh when missing).
func fixturePath(_ name: String) -> String? {
    let file = String(#filePath), suffix = "/Tests/PlumbTests/Support.swift"
    guard file.hasSuffix(suffix) else { return nil }
    let root = String(file.dropLast(suffix.count))
    let dir = root + "/.build/fixtures"
    if access(dir + "/" + name, R_OK) != 0 {
        _ = system("/bin/bash '\(root)/Tests/Fixtures/build.sh' '\(dir)' >/dev/null 2>&1")
    }
    return access(dir + "/" + name, R_OK) == 0 ? dir + "/" + name : nil
}

/// The calling thread's id (gettid through the dynamic linker: not in every Glibc module map).
func threadID() -> UInt32 {
    typealias Fn = @convention(c) () -> Int32
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gettid") else { return 0 }
    return UInt32(bitPattern: unsafeBitCast(sym, to: Fn.self)())
}
