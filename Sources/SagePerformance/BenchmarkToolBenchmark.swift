import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SageBenchmark
import SageLLM
import SageSimulator

extension SagePerformance {
    /// How accurate and how cheap the benchmark toolkit itself is:
    /// 1. TTFT measured by the client (request written to first chunk read, at its socket)
    ///    against the simulator's own record (request head read to first chunk written, at its
    ///    socket) for the same requests, at about 256 in flight;
    /// 2. the most output tokens per second the client sustains against the simulator with
    ///    TTFT = TBT = 0, at concurrency 256, and the client's cost per streamed chunk;
    /// 3. open-loop pacing: the achieved dispatch rate and schedule lag at 1,000 req/s.
    static func benchmarkToolBenchmark() async throws {
        print("Benchmark toolkit: accuracy and cost")
        try await ttftAccuracy()
        try await clientCeiling()
        try await pacing()
        print("")
    }

    /// How the benchmark client sends its streams: the direct SwiftNIO connections it uses
    /// for `http://`, or AsyncHTTPClient, measured in the same run as the baseline.
    /// `engine` is any one engine, for the engines' side-by-side run.
    enum ClientPath {
        case direct, asyncHTTPClient
        case engine(TransportConfiguration.Engine)

        static let allCases: [ClientPath] = [.direct, .asyncHTTPClient]

        var rawValue: String {
            switch self {
            case .direct: "direct connections"
            case .asyncHTTPClient: "AsyncHTTPClient (baseline)"
            case .engine(let engine): "engine \(engine.settingName)"
            }
        }

        func run<Result>(_ body: () async throws -> Result) async throws -> Result {
            let engine: TransportConfiguration.Engine =
                switch self {
                case .direct: .automatic
                case .asyncHTTPClient: .asyncHTTPClient
                case .engine(let engine): engine
                }
            return try await HTTPTransport.$automaticEngine.withValue(engine) { try await body() }
        }
    }

    static func ttftAccuracy() async throws {
        for path in ClientPath.allCases {
            try await ttftAccuracy(
                tbtMs: 10, arrival: .rate(20, burstiness: 1, maxConcurrency: nil), count: 200, separateProcess: false, path: path)
        }
        // About 256 in flight: each request takes 50 + 31 × TBT ms, so the rate is 256 / that.
        // TBT 50 ms is a decode step at batch 256 on a real GPU; 20 and 10 ms load the 2 cores
        // that client and simulator share 2.5 and 5 times as much. The two client paths
        // alternate, so that the machine's drift hits both alike.
        for (tbt, rate, count) in [(50, 160.0, 800), (20, 382.0, 1400), (10, 690.0, 2048)] {
            for separateProcess in [false, true] {
                for _ in 0..<2 {
                    for path in ClientPath.allCases {
                        try await ttftAccuracy(
                            tbtMs: tbt, arrival: .rate(rate, burstiness: 1, maxConcurrency: nil), count: count,
                            separateProcess: separateProcess, path: path)
                    }
                }
            }
        }
        // Concurrency 256 as `vllm bench serve --max-concurrency 256` runs it: a closed loop whose
        // first 256 requests leave together and whose later ones leave as others finish. The
        // simulator's ±10% jitter keeps the finishes from staying in lockstep.
        for separateProcess in [false, true] {
            for _ in 0..<2 {
                for path in ClientPath.allCases {
                    try await ttftAccuracy(
                        tbtMs: 50, arrival: .concurrency(256), count: 1024, separateProcess: separateProcess, jitter: 0.1, path: path)
                }
            }
        }
    }

    /// Client TTFT against the simulator's own record (request head read to first chunk
    /// written, at its socket) for the same requests. Poisson arrivals keep the asked number
    /// in flight without the synchronized bursts of a closed loop; a closed loop also reports
    /// the requests after its first wave apart. The warm-up opens the connections, so that no
    /// measured request waits for a TCP handshake.
    static func ttftAccuracy(
        tbtMs: Int, arrival: Workload.Arrival, count: Int, separateProcess: Bool, jitter: Double = 0, path: ClientPath
    ) async throws {
        var configuration = SimulatedEngineConfiguration(
            model: "acc", ttft: .milliseconds(50), tbt: .milliseconds(tbtMs), prefillTokensPerSecond: 0, jitter: jitter)
        configuration.maxBatch = 512
        let workload = Workload(
            name: "accuracy", inputTokens: 64, outputTokens: 32, numPrompts: count, arrival: arrival, warmupRequests: min(256, count))
        let outcome: LoadRunner.Outcome
        let serverMilliseconds: [String: Double]
        if separateProcess {
            (outcome, serverMilliseconds) = try await runAgainstASeparateProcess(workload, tbtMs: tbtMs, jitter: jitter, path: path)
        } else {
            (outcome, serverMilliseconds) = try await withSimulatorServer(configuration: configuration) { simulator in
                simulator.ledger.recordTimings()
                let client = try VLLMBackend(baseURL: simulator.baseURL, model: "acc")
                let outcome = try await path.run { try await LoadRunner(client: client, seed: 1).run(workload) }
                await client.shutdown()
                return (outcome, simulator.ledger.requestTimings.compactMapValues { $0.timeToFirstChunk?.milliseconds })
            }
        }
        var differences: [Double] = []
        var afterFirstWave: [Double] = []
        var server: [Double] = []
        let firstWave = if case .concurrency(let concurrency) = arrival { concurrency } else { 0 }
        for (index, result) in outcome.results.enumerated() where result.success {
            guard let ttft = result.ttftMilliseconds, let record = serverMilliseconds[result.requestID] else { continue }
            differences.append(ttft - record)
            if index >= firstWave { afterFirstWave.append(ttft - record) }
            server.append(record)
        }
        let metrics = RunMetrics(outcome, backend: "vllm", model: "acc")
        guard let stats = Statistics(differences), let own = Statistics(server) else {
            print("  TTFT accuracy: no request matched the simulator's record")
            return
        }
        let placement = separateProcess ? "simulator in its own process" : "simulator in this process"
        let load: String
        switch arrival {
        case .rate(let rate, _, _): load = "Poisson \(Int(rate)) req/s (max \(metrics.maxConcurrentRequests) in flight)"
        case .concurrency(let concurrency): load = "closed loop, concurrency \(concurrency), jitter \(jitter)"
        }
        print("  TTFT, client minus simulator record, TBT \(tbtMs) ms, \(load), \(placement), \(path.rawValue), \(differences.count) of \(outcome.results.count) requests:")
        print("    p50 \(fmt3(stats.p50)) ms, p90 \(fmt3(stats.p90)) ms, p99 \(fmt3(stats.p99)) ms, max \(fmt3(stats.max)) ms (min \(fmt3(stats.min)) ms); simulator's own TTFT median \(fmt3(own.median)) ms for 50 configured")
        if let lag = Statistics(outcome.results.map(\.scheduleLagMilliseconds)) {
            print("    schedule lag (due to written): p50 \(fmt3(lag.p50)) ms, p99 \(fmt3(lag.p99)) ms, max \(fmt3(lag.max)) ms")
        }
        if firstWave > 0, let later = Statistics(afterFirstWave) {
            print("    after the first \(firstWave) (which leave together): p50 \(fmt3(later.p50)) ms, p90 \(fmt3(later.p90)) ms, p99 \(fmt3(later.p99)) ms, max \(fmt3(later.max)) ms")
        }
    }

    /// Runs `workload` against `sagellm simulate --record-timings` (built beside this program)
    /// and reads the simulator's record from `/debug/request-timings`.
    static func runAgainstASeparateProcess(
        _ workload: Workload, tbtMs: Int, jitter: Double, path: ClientPath
    ) async throws -> (LoadRunner.Outcome, [String: Double]) {
        let sagellm = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sagellm").path
        let port = try await withSimulatorServer { $0.port }  // free a moment ago
        let server = try await ManagedServer.start(
            [sagellm, "simulate", "--port", String(port), "--model", "acc", "--ttft-ms", "50", "--tbt-ms", String(tbtMs), "--jitter", String(jitter),
             "--prefill-tps", "0", "--max-batch", "512", "--record-timings"],
            root: "http://127.0.0.1:\(port)", startupTimeout: .seconds(30))
        let client = try VLLMBackend(baseURL: server.baseURL, model: "acc")
        let outcome = try await path.run { try await LoadRunner(client: client, seed: 1).run(workload) }
        await client.shutdown()
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/debug/request-timings")
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 64 << 20)
        await server.stop()
        guard case .object(let root) = try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView)),
            case .object(let timings)? = root["time_to_first_chunk_ms"]
        else { return (outcome, [:]) }
        return (outcome, timings.compactMapValues { if case .double(let value) = $0 { value } else { nil } })
    }

    static func clientCeiling() async throws {
        var configuration = SimulatedEngineConfiguration.instant(model: "fast")
        configuration.maxBatch = 512
        for path in ClientPath.allCases {
            try await withSimulatorServer(configuration: configuration) { simulator in
                let client = try VLLMBackend(baseURL: simulator.baseURL, model: "fast")
                let workload = Workload(name: "ceiling", inputTokens: 32, outputTokens: 256, numPrompts: 4096, arrival: .concurrency(256))
                let cpuBefore = cpuSeconds()
                let outcome = try await path.run { try await LoadRunner(client: client, seed: 2).run(workload) }
                let cpu = cpuSeconds() - cpuBefore
                await client.shutdown()
                let metrics = RunMetrics(outcome, backend: "vllm", model: "fast")
                let chunks = outcome.results.reduce(0) { $0 + $1.eventSeconds.count }
                print("  Client ceiling, \(path.rawValue), simulator TTFT = TBT = 0, concurrency 256, 4096 requests x 256 tokens (client and server share 2 cores):")
                print("    \(fmt(metrics.outputThroughput)) output tok/s, \(fmt(metrics.requestThroughput)) req/s, \(metrics.failed) failed")
                print("    process CPU \(fmt3(cpu)) s for \(chunks) chunks: \(fmt3(cpu / Double(chunks) * 1e6)) µs per chunk, client and server together")
            }
        }
        for path in ClientPath.allCases {
            try await costPerRequestAndChunk(path: path)
        }
    }

    /// What one request and one separately written chunk cost in CPU, client and server
    /// together in this process: requests of 1 token (each its own request and response),
    /// then requests of 33 tokens 2 ms apart (each chunk its own write and read).
    static func costPerRequestAndChunk(path: ClientPath) async throws {
        func cpu(tbtMs: Int, outputTokens: Int, count: Int, concurrency: Int) async throws -> Double {
            var configuration = SimulatedEngineConfiguration(
                model: "cost", ttft: .zero, tbt: .milliseconds(tbtMs), prefillTokensPerSecond: 0, jitter: 0)
            configuration.maxBatch = 512
            return try await withSimulatorServer(configuration: configuration) { simulator in
                let client = try VLLMBackend(baseURL: simulator.baseURL, model: "cost")
                let runner = LoadRunner(client: client, seed: 4)
                let workload = Workload(
                    name: "cost", inputTokens: 64, outputTokens: outputTokens, numPrompts: count, arrival: .concurrency(concurrency))
                let (outcome, spent) = try await path.run {
                    // Opens the connections first, outside the measured CPU time.
                    _ = try await runner.run(
                        Workload(name: "warm-up", inputTokens: 64, outputTokens: 1, numPrompts: concurrency, arrival: .concurrency(concurrency)))
                    let before = cpuSeconds()
                    let outcome = try await runner.run(workload)
                    return (outcome, cpuSeconds() - before)
                }
                await client.shutdown()
                guard outcome.results.allSatisfy(\.success) else { throw BenchmarkError(.backendUnavailable, "a cost request failed") }
                return spent
            }
        }
        let requests = 4096
        let perRequest = try await cpu(tbtMs: 0, outputTokens: 1, count: requests, concurrency: 16) / Double(requests)
        let streamed = 1024
        let spent = try await cpu(tbtMs: 2, outputTokens: 33, count: streamed, concurrency: 32)
        let perChunk = (spent - perRequest * Double(streamed)) / Double(streamed * 32)
        print("  \(path.rawValue): CPU per request (1 token, concurrency 16, \(requests) requests), client and server together: \(fmt3(perRequest * 1e6)) µs")
        print("  \(path.rawValue): CPU per further chunk written and read on its own (33 tokens 2 ms apart, concurrency 32), client and server together: \(fmt3(perChunk * 1e6)) µs")
    }

    static func pacing() async throws {
        let client = InstantClient()
        for rate in [100.0, 1000.0] {
            let count = Int(rate * 5)
            let workload = Workload(
                name: "pacing", inputTokens: 8, outputTokens: 1, numPrompts: count, arrival: .rate(rate, burstiness: 1, maxConcurrency: nil))
            let outcome = try await LoadRunner(client: client, seed: 3).run(workload)
            let starts = outcome.results.map(\.startSeconds).sorted()
            let achieved = Double(starts.count - 1) / ((starts.last ?? 0) - (starts.first ?? 0))
            let scheduled = ArrivalSchedule(count: count, rate: rate, burstiness: 1, seed: 3).offsets.map(\.seconds)
            let planned = Double(scheduled.count - 1) / ((scheduled.last ?? 0) - (scheduled.first ?? 0))
            let lag = Statistics(outcome.results.map(\.scheduleLagMilliseconds))
            print("  Open-loop pacing, Poisson \(Int(rate)) req/s, \(count) requests to a client that answers at once:")
            print("    achieved \(fmt3(achieved)) req/s for a schedule of \(fmt3(planned)) req/s (\(fmt3((achieved / planned - 1) * 100))%), lag p50 \(fmt3(lag?.p50 ?? .nan)) ms, p99 \(fmt3(lag?.p99 ?? .nan)) ms, max \(fmt3(lag?.max ?? .nan)) ms")
        }
    }

    static func fmt3(_ value: Double) -> String { String(format: "%.3f", value) }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

/// A backend that answers at once, to measure the load generator alone.
struct InstantClient: BenchmarkBackend {
    var backendName: String { "instant" }
    var modelName: String? { nil }
    func generate(_ request: BenchmarkRequest, runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant?) async
        -> BenchmarkResult
    {
        var timer = StreamTimer(runStart: runStart, scheduled: scheduled)
        timer.event(hasChoices: true, text: "x")
        return timer.success(requestID: request.requestID, completionTokens: 1, promptTokens: 8)
    }
    func healthCheck() async -> Bool { true }
    func shutdown() async {}
}
