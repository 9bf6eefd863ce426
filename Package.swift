// swift-tools-version:6.0
import PackageDescription

// Dependencies point one way:
//   CNUMA <- Topology <- PageAllocator <- StressHarness <- pagestorm
//   TOMLReader <- StressHarness
//   CSQLite (the system libsqlite3) <- StressHarness
// PageAllocator never imports the harness; TOMLReader imports nothing.
let package = Package(
    name: "pagestorm",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pagestorm", targets: ["pagestorm"]),
        .library(name: "PageAllocator", targets: ["PageAllocator"]),
        .library(name: "StressHarness", targets: ["StressHarness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .target(
            name: "CNUMA",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("numa")]
        ),
        .target(name: "Topology", dependencies: ["CNUMA"]),
        .target(name: "PageAllocator", dependencies: ["CNUMA", "Topology"]),
        .target(name: "TOMLReader"),
        // The system SQLite, for the results history (results/history.sqlite).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(
            name: "StressHarness",
            dependencies: [
                "PageAllocator", "Topology", "CNUMA", "TOMLReader", "CSQLite",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            plugins: ["RevisionStamp", "EmbedWorkloads"]
        ),
        // Writes `BuildStamp` (the git revision, with a dirty mark) before every build.
        .plugin(name: "RevisionStamp", capability: .buildTool()),
        // Embeds Workloads/default.toml and the `bench --peers` shapes (one copy: the files in Workloads/).
        .plugin(name: "EmbedWorkloads", capability: .buildTool()),
        .executableTarget(
            name: "pagestorm",
            dependencies: [
                "StressHarness", "PageAllocator", "Topology",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TopologyTests", dependencies: ["Topology"]),
        .testTarget(name: "TOMLReaderTests", dependencies: ["TOMLReader"]),
        .testTarget(name: "PageAllocatorTests", dependencies: ["PageAllocator", "Topology", "CNUMA"]),
        .testTarget(
            name: "StressHarnessTests",
            dependencies: ["StressHarness", "PageAllocator", "Topology"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
