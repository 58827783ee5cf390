// swift-tools-version:6.1
import PackageDescription

// libFuzzer harnesses for pooler's parsers. Build and run with ./run.sh (see README.md).
// PoolerWire comes from the main package (its only library product). PoolerAdmin and the two
// PoolerCore scanners are not exported, so their source files are symlinked into local
// targets (Sources/FuzzPoolerAdmin, Sources/PoolerCoreScanners) and compiled here as they are.
let package = Package(
    name: "pooler-fuzz",
    dependencies: [
        .package(name: "pooler", path: ".."),
    ],
    targets: [
        .target(name: "CFuzzerDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver"]),
        .target(name: "FuzzPoolerAdmin"),
        .target(name: "PoolerCoreScanners", path: "Sources/PoolerCoreScanners"),
        .executableTarget(name: "FuzzFrames", dependencies: ["FuzzSupport", .product(name: "PoolerWire", package: "pooler")]),
        .executableTarget(name: "FuzzStartup", dependencies: ["FuzzSupport", .product(name: "PoolerWire", package: "pooler")]),
        .executableTarget(name: "FuzzSCRAMServer", dependencies: ["FuzzSupport", .product(name: "PoolerWire", package: "pooler")]),
        .executableTarget(name: "FuzzSCRAMClient", dependencies: ["FuzzSupport", .product(name: "PoolerWire", package: "pooler")]),
        .executableTarget(name: "FuzzAdmin", dependencies: ["FuzzSupport", "FuzzPoolerAdmin"]),
        .executableTarget(name: "FuzzSession", dependencies: ["FuzzSupport", "PoolerCoreScanners"]),
    ],
    swiftLanguageModes: [.v5]
)
