import SageBenchmark
import SageLLM
import SageSimulator
import Testing

struct SweepTests {
    /// An engine that runs 4 sequences at once, 10 ms a token: throughput grows up to
    /// concurrency 4, then only latency does. The knee is at 4.
    @Test func theSweepRunsEveryPointAndFindsTheKneeWhereTheEngineSaturates() async throws {
        var configuration = SimulatedEngineConfiguration(
            model: "bench-model", ttft: .milliseconds(5), tbt: .milliseconds(10), prefillTokensPerSecond: 0, jitter: 0)
        configuration.maxBatch = 4
        let engine = try SimulatedEngine(configuration: configuration)
        let sweep = try Sweep.parse("concurrency=1,2,4,8,16")
        let workloads = sweep.workloads([Workload(name: "knee", inputTokens: 16, outputTokens: 10, numPrompts: 16)])
        #expect(workloads.map(\.name) == ["knee@c1", "knee@c2", "knee@c4", "knee@c8", "knee@c16"])
        let report = try await BenchmarkSession(client: InProcessEngineBackend(engine: engine), workloads: workloads, contracts: []).run()
        let points = try #require(sweep.points(report.runs)["knee"])
        #expect(points.map(\.load) == [1, 2, 4, 8, 16])
        let throughputs = points.compactMap(\.requestThroughput)
        #expect(throughputs[2] > throughputs[0] * 3, "4 at once is about 4 times 1 at once: \(throughputs)")
        #expect(throughputs[4] < throughputs[2] * 1.3, "beyond the batch, no more throughput: \(throughputs)")
        #expect(Sweep.knee(points)?.load == 4)
        let summary = sweep.summary(report.runs)
        #expect(summary.contains("knee: concurrency 4"), "\(summary)")
        #expect(summary.contains("TTFT p50/p99 ms"))
        // The report draws the throughput-latency curve with the knee circled.
        var withSweep = report
        withSweep.info["sweep"] = .string("concurrency=1,2,4,8,16")
        let html = ReportFormat.html.render(withSweep)
        try HTMLCheck.wellFormed(html)
        try HTMLCheck.everyChartHasAxes(html, atLeast: 3 + 5 * 4)
        #expect(html.contains("Sweep of knee over concurrency") && html.contains("knee at concurrency 4"))
        #expect(html.contains("TTFT against throughput") && html.contains("request throughput (req/s)"))
        #expect(html.contains("class=\"highlight\""), "the knee is circled")
        #expect(html.contains(">c16<"), "each point says its load")
    }

    @Test func sweepsAreParsedAndRefusedClearly() throws {
        let rates = try Sweep.parse("rate=0.5, 1, 2")
        #expect(rates.axis == .rate && rates.values == [0.5, 1, 2])
        #expect(rates.workloads([Workload(name: "w", inputTokens: 8, outputTokens: 8, numPrompts: 4)], burstiness: 0.5, maxConcurrency: 8).map(\.name)
            == ["w@r0.5", "w@r1", "w@r2"])
        for wrong in ["concurrency", "speed=1,2", "concurrency=4", "concurrency=1,2.5", "concurrency=4,2", "rate=1,nan", "rate=0,1", "concurrency=1,1e300"] {
            #expect(throws: BenchmarkError.self, "\(wrong)") { try Sweep.parse(wrong) }
        }
    }
}
