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
    /// 1. TTFT measured by the client against the simulator's own record (arrival to first chunk
    ///    written) for the same requests, at concurrency 256 over loopback;
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

    static func ttftAccuracy() async throws {
        try await ttftAccuracy(rate: 20, count: 200)
        try await ttftAccuracy(rate: 690, count: 2048)
        try await ttftAccuracyAgainstASeparateProcess(rate: 690, count: 2048)
    }

    /// The same comparison with the simulator in its own process (`sagellm simulate --record-timings`,
    /// built beside this program), so that client and server do not share event loops and threads.
    static func ttftAccuracyAgainstASeparateProcess(rate: Double, count: Int) async throws {
        let sagellm = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sagellm").path
        let port = try await withSimulatorServer { $0.port }  // free a moment ago
        let server = try await ManagedServer.start(
            [sagellm, "simulate", "--port", String(port), "--model", "acc", "--ttft-ms", "50", "--tbt-ms", "10", "--jitter", "0",
             "--prefill-tps", "0", "--max-batch", "512", "--record-timings"],
            root: "http://127.0.0.1:\(port)", startupTimeout: .seconds(30))
        let client = try VLLMClient(baseURL: server.baseURL, model: "acc")
        let workload = Workload(
            name: "accuracy", inputTokens: 64, outputTokens: 32, numPrompts: count,
            arrival: .rate(rate, burstiness: 1, maxConcurrency: nil), warmupRequests: min(256, count))
        let outcome = try await LoadRunner(client: client, seed: 1).run(workload)
        await client.close()
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/debug/request-timings")
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 64 << 20)
        await server.stop()
        guard case .object(let root) = try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView)),
            case .object(let timings)? = root["time_to_first_chunk_ms"]
        else {
            print("  separate process: no timings")
            return
        }
        var differences: [Double] = []
        for result in outcome.results where result.success {
            guard let ttft = result.ttftMilliseconds, case .double(let server)? = timings[result.requestID] else { continue }
            differences.append(ttft - server)
        }
        let metrics = RunMetrics(outcome, backend: "vllm", model: "acc")
        guard let stats = Statistics(differences) else { return }
        print("  TTFT, client minus simulator record, simulator in its own process, Poisson \(Int(rate)) req/s (max \(metrics.maxConcurrentRequests) in flight), \(differences.count) of \(outcome.results.count) requests:")
        print("    p50 \(fmt3(stats.p50)) ms, p90 \(fmt3(stats.p90)) ms, p99 \(fmt3(stats.p99)) ms, max \(fmt3(stats.max)) ms (min \(fmt3(stats.min)) ms)")
    }

    static func ttftAccuracy(rate: Double, count: Int) async throws {
        var configuration = SimulatedEngineConfiguration(
            model: "acc", ttft: .milliseconds(50), tbt: .milliseconds(10), prefillTokensPerSecond: 0, jitter: 0)
        configuration.maxBatch = 512
        try await withSimulatorServer(configuration: configuration) { simulator in
            simulator.ledger.recordTimings()
            let client = try VLLMClient(baseURL: simulator.baseURL, model: "acc")
            // Poisson arrivals at 690 req/s keep about 256 requests in flight (each takes 50 + 31 × 10 ms), without
            // the synchronized bursts of a closed loop, whose queueing in the server happens before its own clock
            // starts. The warm-up opens the connections, so that no measured request waits for a TCP handshake.
            let workload = Workload(
                name: "accuracy", inputTokens: 64, outputTokens: 32, numPrompts: count,
                arrival: .rate(rate, burstiness: 1, maxConcurrency: nil), warmupRequests: min(256, count))
            let outcome = try await LoadRunner(client: client, seed: 1).run(workload)
            await client.close()
            let timings = simulator.ledger.requestTimings
            var differences: [Double] = []
            for result in outcome.results where result.success {
                guard let ttft = result.ttftMilliseconds, let server = timings[result.requestID]?.timeToFirstChunk else { continue }
                differences.append(ttft - server.milliseconds)
            }
            let metrics = RunMetrics(outcome, backend: "vllm", model: "acc")
            guard let stats = Statistics(differences) else {
                print("  TTFT accuracy: no request matched the simulator's record")
                return
            }
            print("  TTFT, client minus simulator record, Poisson \(Int(rate)) req/s (max \(metrics.maxConcurrentRequests) in flight), \(differences.count) of \(outcome.results.count) requests:")
            print("    p50 \(fmt3(stats.p50)) ms, p90 \(fmt3(stats.p90)) ms, p99 \(fmt3(stats.p99)) ms, max \(fmt3(stats.max)) ms (min \(fmt3(stats.min)) ms)")
            print("    client median TTFT \(fmt3(metrics.ttft?.median ?? .nan)) ms, TPOT \(fmt3(metrics.tpot?.median ?? .nan)) ms (simulator: 50 and 10)")
        }
    }

    static func clientCeiling() async throws {
        var configuration = SimulatedEngineConfiguration.instant(model: "fast")
        configuration.maxBatch = 512
        try await withSimulatorServer(configuration: configuration) { simulator in
            let client = try VLLMClient(baseURL: simulator.baseURL, model: "fast")
            let workload = Workload(name: "ceiling", inputTokens: 32, outputTokens: 256, numPrompts: 4096, arrival: .concurrency(256))
            let cpuBefore = cpuSeconds()
            let outcome = try await LoadRunner(client: client, seed: 2).run(workload)
            let cpu = cpuSeconds() - cpuBefore
            await client.close()
            let metrics = RunMetrics(outcome, backend: "vllm", model: "fast")
            let chunks = outcome.results.reduce(0) { $0 + $1.eventSeconds.count }
            print("  Client ceiling, simulator TTFT = TBT = 0, concurrency 256, 4096 requests x 256 tokens (client and server share 2 cores):")
            print("    \(fmt(metrics.outputThroughput)) output tok/s, \(fmt(metrics.requestThroughput)) req/s, \(metrics.failed) failed")
            print("    process CPU \(fmt3(cpu)) s for \(chunks) chunks: \(fmt3(cpu / Double(chunks) * 1e6)) µs per chunk, client and server together")
        }
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
struct InstantClient: BenchmarkClient {
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
    func close() async {}
}
