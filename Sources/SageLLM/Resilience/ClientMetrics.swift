import DequeModule
import Histogram
import Synchronization

/// What a client has done so far: counts, tokens, latency and TTFT percentiles (HdrHistogram,
/// microsecond resolution up to one hour), retries, and the most recent latencies.
public struct ClientMetricsSnapshot: Sendable, Encodable {
    public var totalRequests: Int
    public var successfulRequests: Int
    public var failedRequests: Int
    /// successful / total (1 when nothing was sent).
    public var successRate: Double
    /// Prompt plus completion tokens, from the servers' usage reports.
    public var totalTokens: Int
    public var averageTokensPerRequest: Double
    /// Latencies of finished requests (success or failure), in milliseconds.
    public var averageLatencyMilliseconds: Double
    public var p50LatencyMilliseconds: Double
    public var p95LatencyMilliseconds: Double
    public var p99LatencyMilliseconds: Double
    /// Time to the first content token of streams, in milliseconds (0 without streams).
    public var p50TimeToFirstTokenMilliseconds: Double
    public var p95TimeToFirstTokenMilliseconds: Double
    public var p99TimeToFirstTokenMilliseconds: Double
    /// Attempts made after a first attempt failed.
    public var retries: Int
    /// The last latencies (at most ``ClientMetrics/recentCapacity``), oldest first, in milliseconds.
    public var recentLatenciesMilliseconds: [Double]

    private enum CodingKeys: String, CodingKey {
        case totalRequests = "total_requests", successfulRequests = "successful_requests",
            failedRequests = "failed_requests", successRate = "success_rate", totalTokens = "total_tokens",
            averageTokensPerRequest = "avg_tokens_per_request", averageLatencyMilliseconds = "avg_latency_ms",
            p50LatencyMilliseconds = "p50_latency_ms", p95LatencyMilliseconds = "p95_latency_ms",
            p99LatencyMilliseconds = "p99_latency_ms", p50TimeToFirstTokenMilliseconds = "p50_ttft_ms",
            p95TimeToFirstTokenMilliseconds = "p95_ttft_ms", p99TimeToFirstTokenMilliseconds = "p99_ttft_ms",
            retries, recentLatenciesMilliseconds = "recent_latencies_ms"
    }
}

/// The running tally behind ``ClientMetricsSnapshot``; bounded memory.
package final class ClientMetrics: Sendable {
    package static let recentCapacity = 100

    private struct State {
        var total = 0
        var successful = 0
        var failed = 0
        var tokens = 0
        var retries = 0
        var latencyMicroseconds = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        var ttftMicroseconds = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        var latencySum = 0.0
        var recent = Deque<Double>()
    }
    private let state = Mutex(State())

    package init() {}

    package func recordRetry() { state.withLock { $0.retries += 1 } }

    package func record(success: Bool, latency: Duration, tokens: Int?, timeToFirstToken: Duration?) {
        let microseconds = UInt64(max(0, min(latency.seconds * 1e6, 3.6e9)))
        state.withLock { state in
            state.total += 1
            if success { state.successful += 1 } else { state.failed += 1 }
            state.tokens += tokens ?? 0
            _ = state.latencyMicroseconds.record(microseconds)
            state.latencySum += latency.milliseconds
            if let timeToFirstToken {
                _ = state.ttftMicroseconds.record(UInt64(max(0, min(timeToFirstToken.seconds * 1e6, 3.6e9))))
            }
            state.recent.append(latency.milliseconds)
            if state.recent.count > Self.recentCapacity { state.recent.removeFirst() }
        }
    }

    package func snapshot() -> ClientMetricsSnapshot {
        state.withLock { state in
            func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double {
                histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
            }
            return ClientMetricsSnapshot(
                totalRequests: state.total, successfulRequests: state.successful, failedRequests: state.failed,
                successRate: state.total == 0 ? 1 : Double(state.successful) / Double(state.total),
                totalTokens: state.tokens,
                averageTokensPerRequest: state.total == 0 ? 0 : Double(state.tokens) / Double(state.total),
                averageLatencyMilliseconds: state.total == 0 ? 0 : state.latencySum / Double(state.total),
                p50LatencyMilliseconds: ms(state.latencyMicroseconds, 50),
                p95LatencyMilliseconds: ms(state.latencyMicroseconds, 95),
                p99LatencyMilliseconds: ms(state.latencyMicroseconds, 99),
                p50TimeToFirstTokenMilliseconds: ms(state.ttftMicroseconds, 50),
                p95TimeToFirstTokenMilliseconds: ms(state.ttftMicroseconds, 95),
                p99TimeToFirstTokenMilliseconds: ms(state.ttftMicroseconds, 99),
                retries: state.retries, recentLatenciesMilliseconds: Array(state.recent))
        }
    }
}
