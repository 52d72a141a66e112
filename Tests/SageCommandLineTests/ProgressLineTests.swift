import SageBenchmark
import Testing

@testable import SageBenchmarkCommands

struct ProgressLineTests {
    @Test func theBarShowsDoneOfTotalTheRateTheFailuresByKindAndTheTimeLeft() {
        let progress = RunProgress(
            workload: "short", completed: 38, failed: 2, total: 100, duration: nil, elapsed: .seconds(4),
            errors: ["timeout": 1, "http 503": 1])
        let line = ProgressLine.render(progress, width: 10)
        #expect(line.hasPrefix("[short]  ████░░░░░░  40/100  10.0 req/s  2 failed ("), "\(line)")
        #expect(line.contains("timeout 1") && line.contains("http 503 1"))
        #expect(line.hasSuffix("~6 s left"), "60 left at 10 per second: \(line)")
    }

    @Test func aRunByDurationShowsElapsedOfTheDuration() {
        let progress = RunProgress(workload: "soak", completed: 50, failed: 0, total: nil, duration: .seconds(20), elapsed: .seconds(5), errors: [:])
        let line = ProgressLine.render(progress, width: 4)
        #expect(line == "[soak]  █░░░  5/20 s, 50 done  10.0 req/s  ~15 s left", "\(line)")
    }
}
