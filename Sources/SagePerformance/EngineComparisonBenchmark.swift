import Foundation
import SageBenchmark
import SageCurl
import SageLLM
import SageSimulator

extension SagePerformance {
    /// Every HTTP engine behind the transport side by side, against one simulated engine in its
    /// own process (TTFT = TBT = 0), in one run: whole requests per second and this process's
    /// CPU per request at concurrency 1 and 64, streamed chunks per second at concurrency 64,
    /// and the benchmark client's TTFT against the simulator's own record. The engines take
    /// turns twice, so that the machine's drift hits each alike.
    static func engineComparisonBenchmark(duration: Duration) async throws {
        CurlTransport.install()
        var engines: [TransportConfiguration.Engine] = [.swiftNIO, .asyncHTTPClient]
        if CurlTransport.isAvailable { engines.append(.curl) }
        print("HTTP engines side by side (simulator in its own process, TTFT = TBT = 0)\(CurlTransport.isAvailable ? "" : "; libcurl not in this build (--traits Curl)")")
        let sagellm = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sagellm").path
        let port = try await withSimulatorServer { $0.port }  // free a moment ago
        let server = try await ManagedServer.start(
            [sagellm, "simulate", "--port", String(port), "--model", "eng", "--ttft-ms", "0", "--tbt-ms", "0", "--jitter", "0", "--max-batch", "1024"],
            root: "http://127.0.0.1:\(port)", startupTimeout: .seconds(30))
        do {
            try await compareEngines(engines, baseURL: server.baseURL, duration: duration)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
        for engine in engines {
            try await ttftAccuracy(
                tbtMs: 10, arrival: .rate(20, burstiness: 1, maxConcurrency: nil), count: 200, separateProcess: true, path: .engine(engine))
        }
        print("")
    }

    static func compareEngines(_ engines: [TransportConfiguration.Engine], baseURL: String, duration: Duration) async throws {
        struct Figures { var requestsPerSecond: [Double] = []; var cpuMicroseconds: [Double] = [] }
        var whole: [String: Figures] = [:]
        var chunks: [String: [Double]] = [:]
        for _ in 0..<2 {
            for engine in engines {
                let client = try IntelligentLLMClient(
                    configuration: LLMClientConfiguration(
                        baseURL: baseURL, model: "eng", transport: TransportConfiguration(maximumConnectionsPerHost: 64, engine: engine),
                        resilience: ResilienceConfiguration(retry: .none)))
                let options = ChatOptions(model: "eng", maxTokens: 4)
                for concurrency in [1, 64] {
                    let cpuBefore = cpuSeconds()
                    let started = ContinuousClock.now
                    let latencies = try await concurrentLatencies(concurrency: concurrency, duration: duration) {
                        let begun = ContinuousClock.now
                        _ = try await client.chat("engine probe", options: options)
                        return (ContinuousClock.now - begun).seconds * 1e6
                    }
                    let wall = (ContinuousClock.now - started).seconds
                    let key = "\(engine.settingName) c\(concurrency)"
                    whole[key, default: Figures()].requestsPerSecond.append(Double(latencies.count) / wall)
                    whole[key, default: Figures()].cpuMicroseconds.append((cpuSeconds() - cpuBefore) / Double(max(latencies.count, 1)) * 1e6)
                }
                let streamOptions = ChatOptions(model: "eng", maxTokens: 64)
                let counted = Counter()
                let started = ContinuousClock.now
                _ = try await concurrentLatencies(concurrency: 64, duration: duration) {
                    var pieces = 0
                    for try await chunk in client.streamChat("engine probe", options: streamOptions) where !chunk.contentDelta.isEmpty { pieces += 1 }
                    counted.add(pieces)
                    return 0
                }
                chunks[engine.settingName, default: []].append(Double(counted.value) / (ContinuousClock.now - started).seconds)
                try await client.shutdown()
            }
        }
        print("  engine           | whole c1 req/s | CPU µs/req | whole c64 req/s | CPU µs/req | stream c64 chunks/s")
        for engine in engines {
            let name = engine.settingName
            func mean(_ values: [Double]) -> String { fmt1(values.reduce(0, +) / Double(max(values.count, 1))) }
            let one = whole["\(name) c1"] ?? Figures(), many = whole["\(name) c64"] ?? Figures()
            print("  \(name.padding(toLength: 16, withPad: " ", startingAt: 0)) | \(mean(one.requestsPerSecond)) | \(mean(one.cpuMicroseconds)) | \(mean(many.requestsPerSecond)) | \(mean(many.cpuMicroseconds)) | \(mean(chunks[name] ?? []))")
        }
    }

    final class Counter: @unchecked Sendable {
        // Safety: guarded by the lock.
        private let lock = NSLock()
        private var total = 0
        func add(_ count: Int) { lock.withLock { total += count } }
        var value: Int { lock.withLock { total } }
    }

    static func fmt1(_ value: Double) -> String { String((value * 10).rounded() / 10) }
}
