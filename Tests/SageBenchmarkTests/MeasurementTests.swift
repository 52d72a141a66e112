import Foundation
import SageBenchmark
import SageLLM
import SageSimulator
import Testing

/// The benchmark's numbers against the simulator, whose TTFT and TBT are known.
@Suite("Benchmark measurements")
struct MeasurementTests {
    static func simulator(ttftMs: Int = 40, tbtMs: Int = 8) -> SimulatedEngineConfiguration {
        SimulatedEngineConfiguration(
            model: "bench-model", ttft: .milliseconds(ttftMs), tbt: .milliseconds(tbtMs), prefillTokensPerSecond: 0, jitter: 0)
    }

    @Test func ttftAndTPOTMatchTheSimulatorAndTokensMatchItsUsage() async throws {
        try await withSimulatorServer(configuration: Self.simulator()) { simulator in
            let client = try VLLMBackend(baseURL: simulator.baseURL, model: "bench-model")
            let workload = Workload(name: "known", inputTokens: 100, outputTokens: 20, numPrompts: 6, arrival: .concurrency(3))
            let outcome = try await LoadRunner(client: client, seed: 7).run(workload)
            await client.shutdown()
            #expect(outcome.results.count == 6)
            let allSucceeded = outcome.results.allSatisfy(\.success)
            #expect(allSucceeded)
            let metrics = RunMetrics(outcome, backend: "vllm", model: "bench-model")
            let ttft = try #require(metrics.ttft)
            let tpot = try #require(metrics.tpot)
            // The simulator's TTFT is 40 ms and its TBT 8 ms, without jitter: no token can come sooner. (A late
            // reader gets several due tokens at once, so one gap, or TPOT, can be shorter than TBT.) How close
            // the figures come is measured by `sagellm-perf --only bench`, not here: the suite shares 2 cores.
            #expect(ttft.min >= 40, "min TTFT \(ttft.min) ms")
            let e2el = try #require(metrics.e2el)
            #expect(e2el.min >= 40 + 19 * 8, "the last of 20 tokens is due 40 + 19 × 8 ms after admission")
            #expect(tpot.median > 0, "median TPOT \(tpot.median) ms")
            #expect(!metrics.tokensApproximate)
            for result in outcome.results {
                #expect(result.outputTokens == 20, "usage.completion_tokens, not a chunk count")
                #expect(result.promptTokens == 100, "the synthetic prompt has the asked length as the server counts it")
                // 21 events with choices: the role chunk (sent with the first token, as vLLM does) and 20 tokens.
                #expect(result.itlMilliseconds.count == 20)
            }
            #expect(metrics.totalOutputTokens == 120)
            #expect(metrics.totalInputTokens == 600)
            #expect(metrics.prefixCacheHitRate != nil, "read from the server's /metrics")
        }
    }

    @Test func theInProcessEngineIsMeasuredTheSameWay() async throws {
        let engine = try SimulatedEngine(configuration: Self.simulator(ttftMs: 30, tbtMs: 5))
        let client = InProcessEngineBackend(engine: engine)
        let outcome = try await LoadRunner(client: client).run(
            Workload(name: "engine", inputTokens: 64, outputTokens: 10, numPrompts: 3))
        let metrics = RunMetrics(outcome, backend: "sagellm", model: "bench-model")
        #expect(metrics.completed == 3)
        let ttft = try #require(metrics.ttft)
        #expect(ttft.min >= 30, "min TTFT \(ttft.min) ms: the engine's TTFT is 30 ms")
        #expect(metrics.totalInputTokens == 3 * 64)
        #expect(metrics.backendPeakMemoryMegabytes != nil, "in this process, so measured")
    }

    @Test func aServerWithoutUsageIsFlaggedApproximate() {
        var timer = StreamTimer(runStart: .now)
        for word in ["a", " b", " c"] { timer.event(hasChoices: true, text: word) }
        let result = timer.success(requestID: "r", completionTokens: nil, promptTokens: nil)
        #expect(result.tokensApproximate)
        #expect(result.outputTokens == 3, "counted chunks, and said so")
        let outcome = LoadRunner.Outcome(
            workload: Workload(name: "w", inputTokens: 1, outputTokens: 3, numPrompts: 1), results: [result], duration: .seconds(1),
            before: nil, after: nil, backendPeakMemoryMegabytes: nil)
        let metrics = RunMetrics(outcome, backend: "openai", model: nil)
        #expect(metrics.tokensApproximate)
        #expect(metrics.entries.first { $0.key == "tokens_approximate" }?.value == .bool(true))
    }

    @Test func failuresAreCountedNotDropped() async throws {
        let client = try MockBackend(ttftMs: 1, tbtMs: 1, errorRate: 0.5, seed: 3)
        let outcome = try await LoadRunner(client: client).run(
            Workload(name: "flaky", inputTokens: 16, outputTokens: 4, numPrompts: 40, arrival: .concurrency(8)))
        #expect(outcome.results.count == 40)
        #expect(outcome.results.map(\.requestID) == (0..<40).map { "bench-flaky-\($0)" }, "in request order")
        let metrics = RunMetrics(outcome, backend: "mock", model: nil)
        #expect(metrics.failed > 5 && metrics.completed > 5)
        #expect(metrics.failed + metrics.completed == 40)
        #expect(metrics.errors == ["mock error": metrics.failed])
        #expect(metrics.errorRate == Double(metrics.failed) / 40)
    }

    /// The mock would take ten minutes: the time limit fails the test if the timeout does not
    /// cancel it (no tight wall-clock bound that a loaded machine could break).
    @Test(.timeLimit(.minutes(1))) func aSlowRequestBecomesATimeoutFailureInPlace() async throws {
        let client = try MockBackend(ttftMs: 600_000, tbtMs: 1)
        let requests = (0..<3).map { BenchmarkRequest(prompt: "hi", maxTokens: 2, requestID: "r\($0)") }
        let results = await client.generateBatch(requests, concurrent: 3, timeout: .milliseconds(100))
        #expect(results.map(\.requestID) == ["r0", "r1", "r2"])
        let timedOut = results.allSatisfy { !$0.success && $0.error == "Timeout after 0.1s" && $0.errorKind == "timeout" }
        #expect(timedOut, "\(results.map { $0.error ?? "ok" })")
    }

    @Test func openLoopArrivalsDoNotWaitForResponses() async throws {
        // Each response takes at least 3 s; 30 arrivals are due within about 0.6 s, which leaves
        // the pacing 2.4 s of slack on a machine loaded by the other tests.
        let client = try MockBackend(ttftMs: 3_000, tbtMs: 1, seed: 1)
        let workload = Workload(
            name: "open", inputTokens: 16, outputTokens: 2, numPrompts: 30, arrival: .rate(50, burstiness: 1, maxConcurrency: nil))
        let outcome = try await LoadRunner(client: client, seed: 9).run(workload)
        let lastStart = try #require(outcome.results.map(\.startSeconds).max())
        let firstEnd = try #require(outcome.results.map(\.endSeconds).min())
        #expect(lastStart < firstEnd, "every request was sent before any answer came back")
        let schedule = ArrivalSchedule(count: 30, rate: 50, burstiness: 1, seed: 9)
        for (result, due) in zip(outcome.results, schedule.offsets) {
            #expect(result.startSeconds >= due.seconds - 0.001, "\(result.requestID) went early")
        }
        let metrics = RunMetrics(outcome, backend: "mock", model: nil)
        #expect(metrics.maxConcurrentRequests == 30)
        #expect(metrics.scheduleLag != nil, "the lag behind the schedule is reported")
    }

    @Test func arrivalSchedulesHaveTheAskedRateAndBurstiness() {
        for (burstiness, coefficientOfVariation) in [(1.0, 1.0), (0.25, 2.0), (4.0, 0.5)] {
            let offsets = ArrivalSchedule(count: 20_001, rate: 100, burstiness: burstiness, seed: 5).offsets.map(\.seconds)
            let gaps = zip(offsets.dropFirst(), offsets).map { $0 - $1 }
            let mean = gaps.reduce(0, +) / Double(gaps.count)
            let std = (gaps.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(gaps.count)).squareRoot()
            #expect(abs(mean - 0.01) < 0.0005, "mean gap \(mean) for k=\(burstiness)")
            #expect(abs(std / mean - coefficientOfVariation) < 0.08, "CV \(std / mean) for k=\(burstiness)")
        }
        #expect(
            ArrivalSchedule(count: 10, rate: 5, burstiness: 1, seed: 1).offsets
                == ArrivalSchedule(count: 10, rate: 5, burstiness: 1, seed: 1).offsets, "seeded")
    }

    @Test func statisticsAreNumpys() throws {
        let stats = try #require(Statistics([4, 1, 3, 2]))
        #expect(stats.mean == 2.5)
        #expect(stats.median == 2.5)
        #expect(abs(stats.std - 1.118033988749895) < 1e-12, "population std")
        #expect(abs(stats.p90 - 3.7) < 1e-12)
        #expect(abs(stats.p99 - 3.97) < 1e-12)
        #expect(stats.min == 1 && stats.max == 4)
        #expect(Statistics([]) == nil, "no values: no statistics, not zeros")
    }

    @Test func goodputCountsOnlyRequestsMeetingEverySLO() throws {
        let slo = try GoodputSLO.parse("ttft:100,tpot:20")
        #expect(slo.ttftMilliseconds == 100 && slo.tpotMilliseconds == 20)
        #expect(throws: BenchmarkError.self) { try GoodputSLO.parse("ttft=100") }
        #expect(throws: BenchmarkError.self) { try GoodputSLO.parse("latency:5") }
    }
}

extension MeasurementTests {
    @Test func promptsAreCalibratedWithTheServersTokenizer() async throws {
        try await withSimulatorServer(configuration: Self.simulator(ttftMs: 1, tbtMs: 1)) { simulator in
            let client = try VLLMBackend(baseURL: simulator.baseURL, model: "bench-model")
            let factory = try #require(await client.calibratedPrompts())
            #expect(factory.tokensPerWord == 1)
            #expect(factory.templateTokens == 7, "the simulator's chat template: 4 per message + 3")
            let report = try await BenchmarkSession(
                client: client, workloads: [Workload(name: "calibrated", inputTokens: 300, outputTokens: 2, numPrompts: 2)],
                contracts: []
            ).run()
            await client.shutdown()
            #expect(report.runs.first?["total_input_tokens"] == .int(600))
            #expect(report.info["prompt_calibration"]?.stringValue?.hasPrefix("POST /tokenize with messages (vLLM)") == true)
        }
        let mock = try MockBackend()
        #expect(await mock.calibratedPrompts() == nil)
    }
}

extension MeasurementTests {
    @Test func withoutUsageTheServersTokenizerCounts() async throws {
        var configuration = Self.simulator(ttftMs: 1, tbtMs: 1)
        configuration.faults = FaultConfiguration(omitStreamUsage: true)
        try await withSimulatorServer(configuration: configuration) { simulator in
            let client = try VLLMBackend(baseURL: simulator.baseURL, model: "bench-model")
            let outcome = try await LoadRunner(client: client).run(
                Workload(name: "no-usage", inputTokens: 32, outputTokens: 12, numPrompts: 3))
            await client.shutdown()
            for result in outcome.results {
                #expect(result.success)
                #expect(result.promptTokens == nil, "the server did not say")
                #expect(result.outputTokens == 12, "counted by the server's /tokenize, not by chunks")
                #expect(!result.tokensApproximate)
            }
            let metrics = RunMetrics(outcome, backend: "vllm", model: nil)
            #expect(metrics.totalOutputTokens == 36)
        }
    }

    @Test func timesStartWhenTheRequestIsWrittenAndTheWaitBeforeIsLag() throws {
        let runStart = ContinuousClock.now
        let scheduled = runStart
        var timer = StreamTimer(runStart: runStart, scheduled: scheduled)
        let written = ContinuousClock.now + .milliseconds(30)
        timer.requestWritten(at: written)
        timer.event(at: written + .milliseconds(50), hasChoices: true, text: "a")
        timer.event(at: written + .milliseconds(60), hasChoices: true, text: "b")
        let result = timer.success(requestID: "r", completionTokens: 2, promptTokens: 1)
        let ttft = try #require(result.ttftMilliseconds)
        let e2el = try #require(result.e2elMilliseconds)
        #expect(abs(ttft - 50) < 0.001, "TTFT \(ttft) ms counts from the write")
        #expect(abs(e2el - 60) < 0.001, "E2EL \(e2el) ms counts from the write")
        #expect(result.scheduleLagMilliseconds >= 30, "the wait before the write is lag: \(result.scheduleLagMilliseconds) ms")
        #expect(abs(result.startSeconds - (written - runStart).seconds) < 1e-6)

        // In a closed loop the lag counts from taking the slot; a stamp after the first
        // chunk, or before the timer started, changes nothing.
        var closed = StreamTimer(runStart: runStart)
        let slot = ContinuousClock.now
        closed.requestWritten(at: slot + .milliseconds(5))
        closed.event(at: slot + .milliseconds(20), hasChoices: true, text: "a")
        closed.requestWritten(at: slot + .milliseconds(30))
        closed.requestWritten(at: runStart - .milliseconds(1))
        let measured = closed.success(requestID: "c", completionTokens: 1, promptTokens: 1)
        #expect(abs((measured.ttftMilliseconds ?? 0) - 15) < 0.001, "TTFT \(measured.ttftMilliseconds ?? -1) ms")
        #expect(measured.scheduleLagMilliseconds >= 5, "lag \(measured.scheduleLagMilliseconds) ms")
    }

    @Test func theRoleChunkIsNotCountedAsAToken() {
        var timer = StreamTimer(runStart: .now)
        timer.event(hasChoices: true, text: "")  // the role chunk
        timer.event(hasChoices: true, text: "a")
        timer.event(hasChoices: true, text: " b")
        let result = timer.success(requestID: "r", completionTokens: nil, promptTokens: nil)
        #expect(result.outputTokens == 2)
        #expect(result.tokensApproximate)
        #expect(result.itlMilliseconds.count == 2)
    }
}
