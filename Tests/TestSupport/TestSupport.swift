// Shared by every test target: running tools, finding fixtures, and the kernel-skip policy.
import Foundation
import Testing

public enum TestEnv {
    /// The repository root (two levels above this file).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static var fixturesSource: URL { root.appendingPathComponent("Tests/Fixtures") }

    /// The toolchain's own bin folder (clang with the BPF target, LLVM 21's llvm-objdump).
    public static let toolchainBin: String = {
        if let p = ProcessInfo.processInfo.environment["PLUMB_TOOLCHAIN_BIN"] { return p }
        let r = run("/bin/sh", ["-c", "dirname \"$(readlink -f \"$(command -v swift)\")\""])
        let dir = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return dir.isEmpty ? "/opt/swift/usr/bin" : dir
    }()

    public static var clang: String { toolchainBin + "/clang" }
    public static var llvmObjdump: String { toolchainBin + "/llvm-objdump" }

    /// Set by `.ci/run`: a test that would skip for want of kernel support fails instead.
    public static var skipsAreFailures: Bool {
        ProcessInfo.processInfo.environment["PLUMB_REQUIRE_KERNEL"] == "1"
    }

    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var stdoutData: Data
    }

    /// Runs a program to completion, capturing its output.
    @discardableResult
    public static func run(_ exe: String, _ args: [String], stdin: Data? = nil, cwd: URL? = nil) -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = cwd }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let inPipe = Pipe()
        p.standardInput = stdin == nil ? FileHandle.nullDevice : inPipe
        do { try p.run() } catch {
            return Result(status: -1, stdout: "", stderr: "cannot run \(exe): \(error)", stdoutData: Data())
        }
        if let stdin {
            inPipe.fileHandleForWriting.write(stdin)
            try? inPipe.fileHandleForWriting.close()
        }
        // Drain both pipes concurrently so a chatty child cannot block.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self), stdoutData: outData)
    }

    /// The `plumb` executable beside the test bundle (built by `swift build --build-tests`).
    public static var plumb: String {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [bundleDir, bundleDir.deletingLastPathComponent(), root.appendingPathComponent(".build/debug")] {
            let p = dir.appendingPathComponent("plumb").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return root.appendingPathComponent(".build/debug/plumb").path
    }

    /// The fixtures the deterministic malformed-input corpora start from: small, and between
    /// them every BTF kind, map kind, relocation kind and section kind (the fuzz targets in
    /// fuzz/ cover the rest over longer runs).
    public static let corpusSeeds = ["basic.bpfel.o", "objects.bpfeb.o", "btf_decls.bpfel.o", "core_fields.bpfel.o"]

    /// Builds the fixture objects (once per process) and returns their folder.
    public static func fixtures() throws -> URL {
        try fixtureBuild.get()
    }

    private static let fixtureBuild: Swift.Result<URL, FixtureError> = {
        let out = root.appendingPathComponent(".build/fixtures")
        let r = run("/bin/bash", [fixturesSource.appendingPathComponent("build.sh").path, out.path])
        if r.status != 0 { return .failure(FixtureError(message: r.stdout + r.stderr)) }
        return .success(out)
    }()

    public struct FixtureError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { "building fixtures failed:\n\(message)" }
    }

    /// Call at the top of a kernel test: returns false (and says why) when the test must skip.
    /// Under `.ci/run` (PLUMB_REQUIRE_KERNEL=1) a skip is recorded as a failure instead.
    public static func kernelAvailable(_ reason: String?, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        guard let reason else { return true }
        if skipsAreFailures {
            Issue.record("kernel support missing and PLUMB_REQUIRE_KERNEL=1: \(reason)", sourceLocation: sourceLocation)
        } else {
            print("SKIP: \(reason)")
        }
        return false
    }
}

/// A small deterministic generator (SplitMix64): mutation corpora are the same on every run.
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
