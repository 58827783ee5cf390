// swift-tools-version:6.1
import PackageDescription

// A package of its own so that `swift build` / `swift test` in the repository root
// never build package-benchmark. Run with `swift package benchmark` from this folder.
let package = Package(
    name: "PoolerBenchmarks",
    dependencies: [
        .package(name: "pooler", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1",
                 traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "FrameScannerBenchmark",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "PoolerWire", package: "pooler"),
            ],
            path: "FrameScannerBenchmark",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "package-benchmark"),
            ]
        ),
        .executableTarget(
            name: "ForwardingBenchmark",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "PoolerWire", package: "pooler"),
                .product(name: "PoolerConfig", package: "pooler"),
                .product(name: "PoolerCore", package: "pooler"),
                .product(name: "PoolerIO", package: "pooler"),
            ],
            path: "ForwardingBenchmark",
            // As the pooler's own targets in release (root Package.swift): the link
            // state lives in a class, as in ServerConnection, and production skips the
            // dynamic exclusivity check on each access to it.
            swiftSettings: [
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
            ],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "package-benchmark"),
            ]
        ),
        .executableTarget(
            name: "ScramLoginBenchmark",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "PoolerWire", package: "pooler"),
                .product(name: "PoolerConfig", package: "pooler"),
                .product(name: "PoolerCore", package: "pooler"),
            ],
            path: "ScramLoginBenchmark",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "package-benchmark"),
            ]
        ),
    ]
)
