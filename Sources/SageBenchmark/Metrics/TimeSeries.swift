/// A run's figures over time, from the per-request results.
enum TimeSeries {
    /// Output tokens in each 1-second bucket.
    static func outputPerSecond(_ results: [BenchmarkResult]) -> [(Double, Double)] {
        var buckets: [Int: Double] = [:]
        for result in results where !result.eventSeconds.isEmpty {
            let perEvent = Double(result.outputTokens ?? 0) / Double(result.eventSeconds.count)
            // Times come from requests.jsonl when a report is read back: one outside the first
            // 11 days (or not a number) is a damaged line, not a bucket to allocate up to.
            for time in result.eventSeconds where time >= 0 && time < maxSeconds { buckets[Int(time), default: 0] += perEvent }
        }
        guard let last = buckets.keys.max() else { return [] }
        return (0...last).map { (Double($0), buckets[$0] ?? 0) }
    }

    static let maxSeconds = 1_000_000.0

    /// Requests in flight at 200 moments spread over the run (at most every 10 ms).
    static func inFlight(_ results: [BenchmarkResult]) -> [(Double, Double)] {
        guard let end = results.map(\.endSeconds).max() else { return [] }
        return stride(from: 0.0, through: end, by: max(end / 200, 0.01)).map { time in
            (time, Double(results.count { $0.startSeconds <= time && time < $0.endSeconds }))
        }
    }
}
