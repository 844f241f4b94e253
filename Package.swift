// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "Plumb",
    products: [
        .library(name: "Plumb", targets: ["ELF", "BTF", "BPFAsm", "BPF", "BPFSys"]),
        .executable(name: "plumb", targets: ["plumb"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C shim only: syscall wrappers and UAPI constants, no logic.
        .target(name: "CBPFSys"),
        .target(name: "BPFSys", dependencies: ["CBPFSys"]),
        .target(name: "ELF"),
        .target(name: "BTF", dependencies: ["ELF"]),
        .target(name: "BPFAsm", dependencies: ["ELF"]),
        .target(name: "BPF", dependencies: ["ELF", "BTF", "BPFAsm", "BPFSys"]),
        .executableTarget(
            name: "plumb",
            dependencies: [
                "ELF", "BTF", "BPFAsm", "BPF", "BPFSys",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // libFuzzer targets (fuzz/run.sh); plain builds replay files given as arguments.
        .target(name: "FuzzSupport", path: "fuzz/FuzzSupport"),
        .executableTarget(name: "FuzzBTF", dependencies: ["BTF", "ELF", "FuzzSupport"], path: "fuzz/FuzzBTF"),
        .executableTarget(name: "FuzzELF", dependencies: ["ELF", "FuzzSupport"], path: "fuzz/FuzzELF"),
        .executableTarget(name: "FuzzObject", dependencies: ["BPF", "ELF", "FuzzSupport"], path: "fuzz/FuzzObject"),
        // Benchmarks beside libbpf (bench/*.sh print the ratios).
        .executableTarget(name: "BenchBTF", dependencies: ["BTF"], path: "bench/BenchBTF"),
        .executableTarget(name: "BenchRingbuf", dependencies: ["BPF", "BPFSys", "BTF"], path: "bench/BenchRingbuf"),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ELFTests", dependencies: ["ELF", "TestSupport"]),
        .testTarget(name: "BTFTests", dependencies: ["BTF", "ELF", "TestSupport"]),
        .testTarget(name: "BPFAsmTests", dependencies: ["BPFAsm", "TestSupport"]),
        .testTarget(name: "BPFTests", dependencies: ["BPF", "BTF", "ELF", "BPFAsm", "TestSupport"]),
        .testTarget(name: "PlumbCLITests", dependencies: ["BPFSys", "TestSupport"]),
        .testTarget(name: "KernelTests", dependencies: ["BPF", "BPFSys", "BTF", "BPFAsm", "TestSupport"]),
    ]
)
