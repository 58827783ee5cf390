// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package (Benchmarks/Package.swift) so that
// `swift build` and `swift test` here never build package-benchmark.
let package = Package(
    name: "pooler",
    products: [
        .executable(name: "pooler", targets: ["pooler"]),
        // For Benchmarks/, a separate package that depends on this one by path.
        .library(name: "PoolerWire", targets: ["PoolerWire"]),
        .library(name: "PoolerConfig", targets: ["PoolerConfig"]),
        .library(name: "PoolerCore", targets: ["PoolerCore"]),
        .library(name: "PoolerIO", targets: ["PoolerIO"]),
    ],
    targets: [
        .target(name: "CLinuxShims"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),
        .target(name: "PoolerWire", dependencies: ["COpenSSL"]),
        .target(name: "PoolerConfig"),
        .target(name: "PoolerCore", dependencies: ["PoolerWire", "PoolerConfig"]),
        .target(name: "PoolerIO", dependencies: ["CLinuxShims", "COpenSSL"]),
        .target(name: "PoolerAdmin"),
        .target(name: "PoolerRuntime",
                dependencies: ["PoolerWire", "PoolerConfig", "PoolerCore", "PoolerIO", "PoolerAdmin"]),
        .executableTarget(name: "pooler", dependencies: ["PoolerRuntime"]),

        .testTarget(name: "PoolerWireTests", dependencies: ["PoolerWire"]),
        .testTarget(name: "PoolerConfigTests", dependencies: ["PoolerConfig"]),
        .testTarget(name: "PoolerCoreTests", dependencies: ["PoolerCore"]),
        .testTarget(name: "PoolerAdminTests", dependencies: ["PoolerAdmin"]),
        .testTarget(name: "PoolerIOTests", dependencies: ["PoolerIO"]),
        .testTarget(name: "IntegrationTests", dependencies: ["CLibPQ", "pooler"]),
    ],
    swiftLanguageModes: [.v5]
)

// Release builds optimise across modules (generic pool state and buffers specialised into
// the runtime, not looked up as generic metadata per call) and skip the dynamic exclusivity
// checks (swift_beginAccess on every class
// property access was ~10% of the instructions per transaction); debug builds, which the
// tests use, keep them.
for target in package.targets where target.type == .regular && target.name.hasPrefix("Pooler") {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release)),
    ]
}
