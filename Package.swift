// swift-tools-version: 6.2
import PackageDescription

// Module names carry the project's prefix (as swift-nio's `NIOCore`, `NIOPosix`) so they cannot
// clash in a user's package graph; `Plumb` re-exports the library for one `import Plumb`.
let package = Package(
    name: "Plumb",
    products: [
        .library(name: "Plumb", targets: ["Plumb"]),
        .executable(name: "plumb", targets: ["PlumbCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C shim only: syscall wrappers and UAPI constants, no logic.
        .target(name: "CPlumbSys"),
        .target(name: "PlumbSys", dependencies: ["CPlumbSys"]),
        .target(name: "PlumbELF"),
        .target(name: "PlumbBTF", dependencies: ["PlumbELF"]),
        .target(name: "PlumbAsm", dependencies: ["PlumbELF"]),
        // zlib for compressed debug sections (C shim, no logic) and the DWARF reader (pure).
        .target(name: "CPlumbZlib", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "PlumbDWARF", dependencies: ["PlumbELF", "PlumbBTF", "CPlumbZlib"]),
        .target(name: "PlumbBPF", dependencies: ["PlumbELF", "PlumbBTF", "PlumbAsm", "PlumbSys"]),
        // The tracing language compiler (pure: source -> checked AST -> TracePlan with an ObjectSpec).
        .target(name: "PlumbLang", dependencies: ["PlumbBTF", "PlumbAsm", "PlumbBPF", "PlumbELF", "PlumbSys", "PlumbDWARF"]),
        // The tracer's runtime: load, attach, event loop, bpftrace-style output.
        .target(name: "PlumbTrace", dependencies: ["PlumbLang", "PlumbBPF", "PlumbBTF", "PlumbSys", "PlumbDWARF"]),
        .target(name: "Plumb", dependencies: ["PlumbELF", "PlumbBTF", "PlumbAsm", "PlumbSys", "PlumbBPF"]),
        .executableTarget(
            name: "PlumbCLI",
            dependencies: [
                "Plumb", "PlumbLang", "PlumbTrace",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/plumb"
        ),
        // libFuzzer targets (fuzz/run.sh); plain builds replay files given as arguments.
        .target(name: "FuzzSupport", path: "fuzz/FuzzSupport"),
        .executableTarget(name: "FuzzBTF", dependencies: ["PlumbBTF", "PlumbELF", "FuzzSupport"], path: "fuzz/FuzzBTF"),
        .executableTarget(name: "FuzzDWARF", dependencies: ["PlumbDWARF", "PlumbELF", "FuzzSupport"], path: "fuzz/FuzzDWARF"),
        .executableTarget(name: "FuzzELF", dependencies: ["PlumbELF", "FuzzSupport"], path: "fuzz/FuzzELF"),
        .executableTarget(name: "FuzzLang", dependencies: ["PlumbLang", "FuzzSupport"], path: "fuzz/FuzzLang"),
        .executableTarget(name: "FuzzUSDT", dependencies: ["PlumbELF", "FuzzSupport"], path: "fuzz/FuzzUSDT"),
        .executableTarget(name: "FuzzDemangle", dependencies: ["PlumbELF", "FuzzSupport"], path: "fuzz/FuzzDemangle"),
        .executableTarget(name: "FuzzObject", dependencies: ["PlumbBPF", "PlumbELF", "FuzzSupport"], path: "fuzz/FuzzObject"),
        // Benchmarks beside libbpf (bench/*.sh print the ratios).
        .executableTarget(name: "BenchBTF", dependencies: ["PlumbBTF"], path: "bench/BenchBTF"),
        .executableTarget(name: "BenchDWARF", dependencies: ["PlumbDWARF"], path: "bench/BenchDWARF"),
        .executableTarget(name: "BenchRingbuf", dependencies: ["PlumbBPF", "PlumbSys", "PlumbBTF"], path: "bench/BenchRingbuf"),
        .executableTarget(name: "BenchUSDT", dependencies: ["PlumbBPF", "PlumbAsm", "PlumbSys"], path: "bench/BenchUSDT"),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "PlumbELFTests", dependencies: ["PlumbELF", "TestSupport"]),
        // PlumbBPF for the CO-RE differential tests: PlumbBTF decides, PlumbBPF applies to [Instruction].
        .testTarget(name: "PlumbBTFTests", dependencies: ["PlumbBTF", "PlumbELF", "PlumbAsm", "PlumbBPF", "TestSupport"]),
        .testTarget(name: "PlumbDWARFTests", dependencies: ["PlumbDWARF", "PlumbBTF", "PlumbELF", "TestSupport"]),
        .testTarget(name: "PlumbAsmTests", dependencies: ["PlumbAsm", "TestSupport"]),
        .testTarget(name: "PlumbBPFTests", dependencies: ["PlumbBPF", "PlumbBTF", "PlumbELF", "PlumbAsm", "TestSupport"]),
        .testTarget(name: "PlumbLangTests", dependencies: ["PlumbLang", "PlumbBTF", "PlumbBPF", "PlumbAsm", "TestSupport"]),
        .testTarget(name: "PlumbTraceTests", dependencies: ["PlumbTrace", "PlumbLang", "PlumbBPF", "PlumbBTF", "PlumbSys", "TestSupport"]),
        .testTarget(name: "PlumbCLITests", dependencies: ["PlumbSys", "TestSupport"]),
        // Only the product module: what `import Plumb` gives a user is enough to load, attach and read.
        .testTarget(name: "PlumbTests", dependencies: ["Plumb"]),
        .testTarget(name: "KernelTests", dependencies: ["PlumbBPF", "PlumbSys", "PlumbBTF", "PlumbAsm", "PlumbLang", "PlumbTrace", "TestSupport"]),
    ]
)
