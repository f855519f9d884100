// swift-tools-version:6.1
import Foundation
import PackageDescription

/// Sample event files beside the functions (`Functions/<Name>/events/*.json`) are not sources, and
/// neither are functions in other languages (folders without Swift files, such as `py-echo`).
let functionNonSources: [String] = {
    let fileManager = FileManager.default
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Functions")
    let folders = (try? fileManager.contentsOfDirectory(atPath: root.path)) ?? []
    return folders.sorted().flatMap { folder -> [String] in
        let files = (try? fileManager.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)) ?? []
        guard !files.isEmpty else { return [] }
        if !files.contains(where: { $0.hasSuffix(".swift") }) { return [folder] }
        return files.contains("events") ? ["\(folder)/events"] : []
    }
}()

let package = Package(
    name: "galley",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "galley", targets: ["galley"]),
        .library(name: "Galley", targets: ["Galley"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // What a function author imports.
        .target(
            name: "Galley",
            dependencies: ["CZlib", .product(name: "Logging", package: "swift-log")]
        ),
        // zlib, for CloudWatch Logs events (gzip, then base64).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The key-value store: SQLite on a local file, and in memory.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "GalleyStore", dependencies: ["Galley", "CSQLite"]),
        // The store, queue and schedules on PostgreSQL, for several hosts serving one application.
        .target(
            name: "GalleyPostgres",
            dependencies: [
                "Galley", "GalleyStore", "GalleyHost",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Linux calls Swift's Glibc module does not declare (pipe2, prlimit, posix_spawn extensions).
        .target(name: "CGalleySystem"),
        // The runtime: configuration, dispatcher, environments, HTTP host.
        .target(
            name: "GalleyHost",
            dependencies: [
                "Galley", "GalleyStore", "CGalleySystem", "CSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // AWS SAM templates read as deployments (Yams, and with it the whole of Foundation).
        .target(
            name: "GalleyTemplates",
            dependencies: ["Galley", "GalleyHost", .product(name: "Yams", package: "Yams")]
        ),
        // The user's functions and the catalog that registers them by name.
        .target(name: "Functions", dependencies: ["Galley"], path: "Functions", exclude: functionNonSources),
        // The command line, shared by both executables.
        .target(
            name: "GalleyCLI",
            dependencies: [
                "GalleyHost", "GalleyStore", "Galley", "Functions",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `galley`: lean, for a one-shot invoke's and a worker's start. It hands a command whose
        // store is in PostgreSQL, or that reads a SAM template, to `galley-full` beside it (`swift
        // build` builds both; a dependency would link PostgreSQL's and YAML's code into this binary too).
        .executableTarget(
            name: "galley",
            dependencies: ["GalleyCLI"],
            // A release build links the Swift runtime and Foundation statically: no dynamic symbol
            // binding at start, a third less start-up for every `galley invoke` and every worker.
            // And not position-independent: the loader then applies none of the 71,000 relative
            // relocations of Swift's metadata at every start (0.8 ms of a one-shot invoke's 7.2); the
            // shared libraries, heap and stack are still placed at random (README, Threat model).
            linkerSettings: [
                .unsafeFlags(["-static-stdlib", "-Xclang-linker", "-no-pie"], .when(configuration: .release)),
                // What the static FoundationEssentials needs beside it (SwiftPM's --static-swift-stdlib adds them too).
                .linkedLibrary("_FoundationCollections", .when(configuration: .release)),
                .linkedLibrary("_FoundationCShims", .when(configuration: .release)),
            ]
        ),
        // `galley` with what needs the whole of Foundation: the PostgreSQL store (postgres-nio) and
        // SAM templates (Yams).
        .executableTarget(
            name: "galley-full",
            dependencies: [
                "GalleyCLI", "GalleyHost", "GalleyPostgres", "GalleyTemplates",
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: [
                .unsafeFlags(["-static-stdlib"], .when(configuration: .release)),
                .linkedLibrary("_FoundationCollections", .when(configuration: .release)),
                .linkedLibrary("_FoundationCShims", .when(configuration: .release)),
                .linkedLibrary("CoreFoundation", .when(configuration: .release)),
                .linkedLibrary("_FoundationICU", .when(configuration: .release)),
            ]
        ),
        // Benchmarks: `swift run -c release galley-bench`.
        .executableTarget(
            name: "galley-bench",
            dependencies: [
                "galley", "galley-full", "bench-echo", "bench-hummingbird", "Galley", "GalleyStore", "GalleyHost",
                "Functions",
                "CSQLite", "GalleyPostgres", "TestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        // The baseline for HTTP: a bare Hummingbird server doing the same JSON work.
        .executableTarget(
            name: "bench-hummingbird",
            dependencies: [
                "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The baseline for start-up: decode stdin JSON, re-encode it, nothing else.
        .executableTarget(name: "bench-echo", dependencies: []),
        // What the test targets share: a temporary folder per test, a seeded generator.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "GalleyTests",
            dependencies: ["Galley", "GalleyHost", "TestSupport"]
        ),
        // Unit tests of the functions themselves (`galley new` adds one per function).
        .testTarget(
            name: "FunctionsTests",
            dependencies: ["Functions", "Galley"]
        ),
        .testTarget(
            name: "GalleyStoreTests",
            dependencies: [
                "Galley", "GalleyStore", "GalleyPostgres", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "GalleyHostTests",
            dependencies: [
                "GalleyHost", "GalleyTemplates", "GalleyPostgres", "Functions", "GalleyStore", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["galley", "galley-full", "GalleyStore", "TestSupport"]
        ),
    ]
)
