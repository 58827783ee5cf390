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
    ]
)
