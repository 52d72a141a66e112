import Foundation
import SageBenchmark
import SageLLM
import SageTesting
import Testing

/// Contracts and reports: missing figures fail, every format is well formed, runs read back.
@Suite("Benchmark contracts and reports")
struct ReportTests {
    static func session(errorRate: Double = 0) async throws -> BenchmarkReport {
        let client = try MockBackend(ttftMs: 5, tbtMs: 2, errorRate: errorRate, seed: 11)
        let workloads = [
            Workload(name: "short_input", inputTokens: 32, outputTokens: 8, numPrompts: 4),
            Workload(name: "stress_test", inputTokens: 32, outputTokens: 8, numPrompts: 8, arrival: .concurrency(4)),
        ]
        return try await BenchmarkSession(client: client, workloads: workloads, seed: 1, contracts: [.year1, .year3]).run()
    }

    static func temporaryDirectory() -> String {
        TestFiles.path("sagellm-bench")
    }

    @Test func aMissingFigureFailsItsCheckAndZeroIsNotAPass() {
        let empty = LoadRunner.Outcome(
            workload: .short, results: [], duration: .zero, before: nil, after: nil, backendPeakMemoryMegabytes: nil)
        let verdict = Contract.year1.check(RunMetrics(empty, backend: "openai", model: nil))
        #expect(!verdict.passed)
        let unmeasured = verdict.checks.allSatisfy { !$0.passed && $0.actual == nil }
        #expect(unmeasured, "\(verdict.checks)")
    }

    @Test func theMockMeasuresEveryY1FigureButNotY3s() async throws {
        let report = try await Self.session()
        let y1 = try #require(report.verdicts.first { $0.contract == "Y1" })
        // Whether they pass depends on this machine's load; that each is measured does not.
        let measured = y1.checks.allSatisfy { $0.actual != nil }
        #expect(measured, "\(y1.checks)")
        #expect(y1.passed == y1.checks.allSatisfy(\.passed))
        let y3 = try #require(report.verdicts.first { $0.contract == "Y3" })
        #expect(!y3.passed)
        #expect(y3.checks.first { $0.metric == "spec_accept_rate" }?.actual == nil)
        #expect(y3.checks.first { $0.metric == "prefix_cache_hit_rate" }?.passed == false)
    }

    @Test func everyFormatIsWellFormedAndARunReadsBack() async throws {
        let report = try await Self.session(errorRate: 0.3)
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }  // cleanup only
        let written = try report.write(to: directory)
        #expect(Set(written.map { ($0 as NSString).lastPathComponent }) == [
            "benchmark_summary.json", "short_input_metrics.json", "stress_test_metrics.json", "requests.jsonl", "REPORT.md", "REPORT.html",
        ])
        // JSON: vLLM's top-level keys, failures kept, a missing figure is null.
        let metrics = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: directory + "/stress_test_metrics.json"))) as? [String: Any]
        for key in ["completed", "failed", "duration", "total_input_tokens", "total_output_tokens", "request_throughput",
                    "output_throughput", "total_token_throughput", "mean_ttft_ms", "median_ttft_ms", "std_ttft_ms",
                    "p99_ttft_ms", "mean_tpot_ms", "mean_itl_ms", "p99_e2el_ms"] {
            #expect(metrics?[key] != nil, "missing \(key)")
        }
        #expect(metrics?["request_goodput"] is NSNull, "no SLO given: null, not 0")
        let completed = try #require(metrics?["completed"] as? Int)
        let failed = try #require(metrics?["failed"] as? Int)
        #expect(completed + failed == 8)
        let lines = try String(contentsOfFile: directory + "/requests.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 12, "every request, failures included")

        let back = try BenchmarkReport.read(directory)
        #expect(back.runs.count == 2)
        #expect(back.verdicts.map(\.contract) == ["Y1", "Y3"])
        #expect(back.requests["stress_test"]?.count == 8)

        let json = ReportFormat.json.render(back)
        #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil)
        let html = ReportFormat.html.render(back)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<svg") && html.contains("</html>"))
        #expect(!html.contains("src=") && !html.contains("href=") && !html.contains("<script"), "one self-contained file")
        let csv = ReportFormat.csv.render(back).split(separator: "\n")
        #expect(csv.count == 3)
        #expect(csv[0].hasPrefix("workload,backend,model,arrival,completed,failed,duration"))
        let markdown = ReportFormat.markdown.render(back)
        #expect(markdown.contains("| `mean_ttft_ms` |"))
        #expect(ReportFormat.table.render(back).contains("Y1: "))

        let comparison = ReportFormat.compare(back, back)
        #expect(comparison.contains("mean_ttft_ms"))
        #expect(comparison.contains("0%"))
    }

    @Test func unreadableInputsAreClearErrors() throws {
        let missing = #expect(throws: BenchmarkError.self) { try BenchmarkReport.read("/nonexistent/run") }
        #expect(missing?.file == "/nonexistent/run")
        let path = Self.temporaryDirectory() + ".json"
        try "[1, 2]".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }  // cleanup only
        let wrong = #expect(throws: BenchmarkError.self) { try BenchmarkReport.read(path) }
        #expect(wrong?.description.contains(path) == true)
        #expect(throws: BenchmarkError.self) { try Workload.named("huge") }
        #expect(throws: BenchmarkError.self) { try Dataset.load(path) }
    }

    @Test func datasetsInJSONLAndShareGPT() throws {
        let jsonl = Self.temporaryDirectory() + ".jsonl"
        try "{\"prompt\": \"one\"}\n\n{\"text\": \"two\"}\n".write(toFile: jsonl, atomically: true, encoding: .utf8)
        let sharegpt = Self.temporaryDirectory() + ".json"
        try #"[{"conversations": [{"from": "human", "value": "hello"}, {"from": "gpt", "value": "hi"}]}]"#
            .write(toFile: sharegpt, atomically: true, encoding: .utf8)
        defer {
            try? FileManager.default.removeItem(atPath: jsonl)  // cleanup only
            try? FileManager.default.removeItem(atPath: sharegpt)  // cleanup only
        }
        let lines = try Dataset.load(jsonl)
        #expect(lines == ["one", "two"])
        let conversations = try Dataset.load(sharegpt)
        #expect(conversations == ["hello"])
    }
}
