// swift-tools-version: 6.1
import Foundation
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "parley",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "parley", targets: ["parley"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // The chat domain: no NIO, no sockets, no wire formats.
        .target(name: "ParleyCore", swiftSettings: upcoming),
        // Wire formats: line framing, the text and JSON-lines codecs.
        .target(
            name: "ParleyProtocols",
            dependencies: [
                "ParleyCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: upcoming
        ),
        // What the TLS server and client share: certificate fingerprints. (Apart, so that the fuzz targets, which
        // build the wire formats only, do not build swift-crypto.)
        .target(name: "ParleyTLS", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: upcoming),
        // The terminal client's pure parts: keys, the line editor, the client's view of the chat, the screen.
        .target(name: "ParleyTerminal", dependencies: ["ParleyCore"], swiftSettings: upcoming),
        // The terminal client: its connection, line mode and full-screen mode.
        .target(
            name: "ParleyClient",
            dependencies: [
                "ParleyCore",
                "ParleyProtocols",
                "ParleyTerminal",
                "ParleyTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
        // Storage, embedded: the core's `ChatStorage` in one SQLite file in the data folder.
        .target(
            name: "ParleySQLite",
            dependencies: [
                "ParleyCore",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        // Storage, shared: the core's `ChatStorage` in a PostgreSQL database, for one node or several.
        .target(
            name: "ParleyPostgres",
            dependencies: [
                "ParleyCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        // The NIO server: listener, connections, fan-out, the HTTP and WebSocket doors, metrics, admin console,
        // services.
        .target(
            name: "ParleyServer",
            dependencies: [
                "ParleyCore",
                "ParleyProtocols",
                "ParleyTerminal",
                "ParleyTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            // The web client, compiled into the executable as bytes (`PackageResources`): nothing to deploy.
            resources: [
                .embedInCode("Web/index.html"), .embedInCode("Web/app.js"), .embedInCode("Web/style.css"),
                .embedInCode("Web/favicon.svg"),
            ],
            swiftSettings: upcoming
        ),
        // `parley serve`'s settings from flags, the environment and a TOML file, merged with where each came from.
        .target(name: "ParleySettings", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")], swiftSettings: upcoming),
        // `parley bench`: the load generator, for any server that speaks text, JSON lines or IRC.
        .target(
            name: "ParleyBench",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "parley",
            dependencies: [
                "ParleyCore",
                "ParleyProtocols",
                "ParleyServer",
                "ParleyClient",
                "ParleyTerminal",
                "ParleySQLite",
                "ParleyPostgres",
                "ParleyBench",
                "ParleyTLS",
                "ParleySettings",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(name: "ParleyCoreTests", dependencies: ["ParleyCore"], swiftSettings: upcoming),
        .testTarget(name: "ParleySettingsTests", dependencies: ["ParleySettings"], swiftSettings: upcoming),
        .testTarget(
            name: "ParleyBenchTests",
            dependencies: ["ParleyBench", .product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: upcoming
        ),
        .testTarget(name: "ParleyTerminalTests", dependencies: ["ParleyTerminal", "ParleyCore"], swiftSettings: upcoming),
        .testTarget(
            name: "ParleyProtocolsTests",
            dependencies: [
                "ParleyProtocols",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "ParleyServerTests",
            dependencies: [
                "ParleyClient",
                "ParleyCore",
                "ParleyProtocols",
                "ParleyServer",
                "ParleySQLite",
                "ParleyPostgres",
                "ParleyTLS",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
    ]
)

// Fuzz targets (scripts/fuzz): one per parser a stranger can reach, built only when asked for, with
// `-sanitize=fuzzer,address`, since libFuzzer brings its own `main`.
if ProcessInfo.processInfo.environment["PARLEY_FUZZ"] != nil {
    let fuzzed: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzLineFramer", ["ParleyProtocols", .product(name: "NIOCore", package: "swift-nio")]),
        ("FuzzIRCMessage", ["ParleyProtocols", "ParleyCore"]),
        ("FuzzJSONCodec", ["ParleyProtocols", "ParleyCore", .product(name: "NIOCore", package: "swift-nio")]),
        ("FuzzTextCommands", ["ParleyCore"]),
        ("FuzzKeyDecoder", ["ParleyTerminal"]),
    ]
    package.targets.append(.target(name: "FuzzDriver", path: "Fuzz/FuzzDriver", swiftSettings: upcoming))
    for (name, dependencies) in fuzzed {
        package.targets.append(
            .executableTarget(name: name, dependencies: dependencies + ["FuzzDriver"], path: "Fuzz/\(name)", swiftSettings: upcoming)
        )
        package.products.append(.executable(name: name, targets: [name]))
    }
}
