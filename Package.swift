// swift-tools-version:6.1
import PackageDescription

/// Settings shared by every target: Swift 6 language mode plus the upcoming
/// features the Swift server ecosystem uses (explicit `any`, imports that say
/// what a file really uses).
let sharedSwiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "sagellm-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SageLLM", targets: ["SageLLM"]),
        .library(name: "SageCurl", targets: ["SageCurl"]),
        .library(name: "SageSimulator", targets: ["SageSimulator"]),
        .executable(name: "sagellm", targets: ["sagellm"]),
        .executable(name: "sagellm-perf", targets: ["SagePerformance"]),
        .library(name: "SageBenchmark", targets: ["SageBenchmark"]),
        .library(name: "SageControlPlane", targets: ["SageControlPlane"]),
        .executable(name: "sagellm-benchmark", targets: ["sagellm-benchmark"]),
    ],
    traits: [
        // libcurl as a third HTTP engine (`http.transport: curl`): proxies from the environment,
        // mTLS, HTTP/2, Unix sockets. Off by default, so the default build needs no system
        // package; `swift build --traits Curl` needs libcurl4-openssl-dev.
        .trait(name: "Curl", description: "The libcurl HTTP engine (needs libcurl4-openssl-dev)"),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: ["YAML"]),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // SHA-256 for the gateway's API keys (already in the graph through swift-nio-extras).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // The libcurl engine's tests serve https with a client certificate, HTTP/2 and a proxy (trait Curl;
        // both are already in the graph through AsyncHTTPClient).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
    ],
    targets: [
        // Utilities the modules share (seeded generator, binary heap, waiting room, HTTP dates); not a product.
        .target(
            name: "SageSupport",
            dependencies: [
                .product(name: "DequeModule", package: "swift-collections"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // Helpers that only the tests use (loopback servers that misbehave, a refused port, a
        // clock that does not sleep, `eventually`); not a product.
        .target(
            name: "SageTesting",
            dependencies: [
                "SageLLM",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The https server and CONNECT proxy of the libcurl engine's tests.
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["Curl"])),
                .product(name: "NIOHTTP2", package: "swift-nio-http2", condition: .when(traits: ["Curl"])),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // Layer 1: the base client. No server framework, no higher layer.
        .target(
            name: "SageLLM",
            dependencies: [
                "SageSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // libcurl, as the system has it (pkg-config libcurl); only built with the trait Curl.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // Layer 1: the libcurl engine behind the base client's transport. Without the trait Curl
        // it compiles to nothing and links nothing, so `import SageLLM` never links libcurl.
        .target(
            name: "SageCurl",
            dependencies: [
                "SageLLM",
                .target(name: "CCurl", condition: .when(traits: ["Curl"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // Layer 2: the control plane over many instances (optional; the base never imports it).
        .target(
            name: "SageControlPlane",
            dependencies: [
                "SageLLM",
                "SageSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // Layer 3: the simulated engine, in-process and over HTTP.
        .target(
            name: "SageSimulator",
            dependencies: [
                "SageLLM",
                "SageSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // Layer 3: the gateway, an OpenAI-compatible HTTP server over the control plane (`sagellm serve`).
        .target(
            name: "SageGateway",
            dependencies: [
                "SageLLM",
                "SageSupport",
                "SageControlPlane",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // Layer 4: the benchmark toolkit.
        .target(
            name: "SageBenchmark",
            dependencies: [
                "SageLLM",
                "SageSupport",
                "SageSimulator",
                "SageControlPlane",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // Layer 5: the benchmark's commands, shared by `sagellm bench` and `sagellm-benchmark`.
        .target(
            name: "SageBenchmarkCommands",
            dependencies: [
                "SageLLM",
                "SageSimulator",
                "SageBenchmark",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        .executableTarget(
            name: "sagellm-benchmark",
            dependencies: ["SageBenchmarkCommands", "SageCurl", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: sharedSwiftSettings
        ),
        // Layer 5: the command line.
        .executableTarget(
            name: "sagellm",
            dependencies: [
                "SageLLM",
                "SageSimulator",
                "SageControlPlane",
                "SageGateway",
                "SageBenchmark",
                "SageBenchmarkCommands",
                "SageCurl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // Benchmark programs (run by Scripts/perf.sh in release mode; not part of the tests).
        .executableTarget(
            name: "SagePerformance",
            dependencies: [
                "SageLLM",
                "SageCurl",
                "SageSimulator",
                "SageBenchmark",
                "SageControlPlane",
                "SageTesting",  // the fake Kubernetes API of the discovery benchmark
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        // The fuzz target of the streaming decoders: replays Fuzz/Corpus in a plain build, and is
        // libFuzzer's target when Scripts/fuzz.sh builds it with -sanitize=fuzzer -DFUZZING.
        .executableTarget(
            name: "SageFuzz",
            dependencies: ["SageLLM"],
            swiftSettings: sharedSwiftSettings
        ),
        .testTarget(
            name: "SageLLMTests",
            dependencies: [
                "SageTesting",
                "SageLLM",
                "SageCurl",
                "SageSupport",
                "SageSimulator",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            exclude: ["Fixtures"],  // recorded server responses, read by path
            swiftSettings: sharedSwiftSettings
        ),
        .testTarget(
            name: "SageControlPlaneTests",
            dependencies: [
                "SageTesting", "SageLLM", "SageSimulator", "SageControlPlane",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        .testTarget(
            name: "SageGatewayTests",
            dependencies: [
                "SageTesting", "SageLLM", "SageSimulator", "SageControlPlane", "SageGateway", "SageBenchmark",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        .testTarget(
            name: "SageBenchmarkTests",
            dependencies: [
                "SageTesting", "SageLLM", "SageSimulator", "SageBenchmark",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
        .testTarget(
            name: "SageCommandLineTests",
            dependencies: ["sagellm", "SageBenchmarkCommands", "SageBenchmark", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: sharedSwiftSettings
        ),
        .testTarget(
            name: "SageSimulatorTests",
            dependencies: [
                "SageTesting",
                "SageLLM",
                "SageSimulator",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: sharedSwiftSettings
        ),
    ]
)
