import Metrics
import DequeModule
import Foundation
import Histogram
import Synchronization

/// What a client has done so far: counts, tokens, latency and TTFT percentiles (HdrHistogram,
/// microsecond resolution up to one hour), retries, and the most recent latencies.
///
/// A request counts once, when it ends, however many attempts it took. Latency is what the
/// caller waited: queueing for a slot or a rate-limit turn, every attempt and every backoff.
public struct ClientMetricsSnapshot: Sendable, Encodable {
    /// Successful, failed and cancelled requests.
    public var totalRequests: Int
    public var successfulRequests: Int
    public var failedRequests: Int
    /// Requests the caller cancelled (or streams it stopped reading) before they ended.
    public var cancelledRequests: Int
    /// successful / (successful + failed); 1 when none has ended.
    public var successRate: Double
    /// Prompt plus completion tokens, from the servers' usage reports.
    public var totalTokens: Int
    /// Tokens per successful request.
    public var averageTokensPerRequest: Double
    /// Latencies of ended requests (success or failure), in milliseconds.
    public var averageLatencyMilliseconds: Double
    public var p50LatencyMilliseconds: Double
    public var p95LatencyMilliseconds: Double
    public var p99LatencyMilliseconds: Double
    /// Streams: time to the first chunk carrying text, in milliseconds (0 without streams).
    public var p50TimeToFirstTokenMilliseconds: Double
    public var p95TimeToFirstTokenMilliseconds: Double
    public var p99TimeToFirstTokenMilliseconds: Double
    /// Attempts made after a first attempt failed.
    public var retries: Int
    /// Failures by ``SageLLMError/Code`` description.
    public var failuresByCode: [String: Int]
    /// The last latencies (at most ``ClientMetrics/recentCapacity``), oldest first, in milliseconds.
    public var recentLatenciesMilliseconds: [Double]

    private enum CodingKeys: String, CodingKey {
        case totalRequests = "total_requests", successfulRequests = "successful_requests",
            failedRequests = "failed_requests", cancelledRequests = "cancelled_requests", successRate = "success_rate",
            totalTokens = "total_tokens", averageTokensPerRequest = "avg_tokens_per_request",
            averageLatencyMilliseconds = "avg_latency_ms", p50LatencyMilliseconds = "p50_latency_ms",
            p95LatencyMilliseconds = "p95_latency_ms", p99LatencyMilliseconds = "p99_latency_ms",
            p50TimeToFirstTokenMilliseconds = "p50_ttft_ms", p95TimeToFirstTokenMilliseconds = "p95_ttft_ms",
            p99TimeToFirstTokenMilliseconds = "p99_ttft_ms", retries, failuresByCode = "failures_by_code",
            recentLatenciesMilliseconds = "recent_latencies_ms"
    }
}

/// How a request ended, for the metrics.
package enum RequestOutcome: Sendable {
    case success
    case failure(SageLLMError.Code)
    case cancelled

    package init(_ error: SageLLMError) {
        self = error.code == .cancelled ? .cancelled : .failure(error.code)
    }
}

/// The running tally behind ``ClientMetricsSnapshot`` (bounded memory), also emitted through
/// swift-metrics. Dimensions are bounded: the endpoint's scheme, host and port, the outcome,
/// and the error code.
package final class ClientMetrics: Sendable {
    package static let recentCapacity = 100

    private struct State {
        var successful = 0
        var failed = 0
        var cancelled = 0
        var tokens = 0
        var retries = 0
        var failuresByCode: [String: Int] = [:]
        var latencyMicroseconds = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        var ttftMicroseconds = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        var latencySum = 0.0
        var recent = Deque<Double>()
    }
    private let state = Mutex(State())
    private let emitted: EmittedMetrics

    /// - Parameters:
    ///   - endpoint: the base URL; only its origin becomes a dimension.
    ///   - factory: the swift-metrics backend; nil uses the one bootstrapped for the process.
    package init(endpoint: String, factory: (any MetricsFactory)? = nil) {
        emitted = EmittedMetrics(origin: Self.origin(of: endpoint), factory: factory ?? MetricsSystem.factory)
    }

    /// `http://host:port` of a URL (no path), so the dimension has one value per server.
    static func origin(of url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        return String(url[..<schemeEnd.upperBound]) + String(rest.prefix(while: { $0 != "/" }))
    }

    package func recordRetry() {
        state.withLock { $0.retries += 1 }
        emitted.retries.increment()
    }

    package func record(_ outcome: RequestOutcome, latency: Duration, tokens: Int?, timeToFirstToken: Duration?) {
        let microseconds = Self.microseconds(latency)
        let milliseconds = Double(microseconds) / 1000
        state.withLock { state in
            switch outcome {
            case .success: state.successful += 1
            case .failure(let code):
                state.failed += 1
                state.failuresByCode[code.description, default: 0] += 1
            case .cancelled: state.cancelled += 1
            }
            // A server's count: a negative one adds nothing, a huge one saturates.
            state.tokens = state.tokens.addingSaturating(max(0, tokens ?? 0))
            if case .cancelled = outcome { return }
            _ = state.latencyMicroseconds.record(microseconds)
            state.latencySum += milliseconds
            if let timeToFirstToken { _ = state.ttftMicroseconds.record(Self.microseconds(timeToFirstToken)) }
            state.recent.append(milliseconds)
            if state.recent.count > Self.recentCapacity { state.recent.removeFirst() }
        }
        emitted.record(outcome, latency: latency, tokens: tokens, timeToFirstToken: timeToFirstToken)
    }

    private static func microseconds(_ duration: Duration) -> UInt64 {
        // A negative duration under a second has seconds 0 and negative attoseconds.
        guard duration > .zero else { return 0 }
        let (seconds, attoseconds) = duration.components
        return UInt64(min(seconds, 3600)) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000)
    }

    package func snapshot() -> ClientMetricsSnapshot {
        state.withLock { state in
            func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double {
                histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
            }
            let ended = state.successful + state.failed
            return ClientMetricsSnapshot(
                totalRequests: ended + state.cancelled, successfulRequests: state.successful,
                failedRequests: state.failed, cancelledRequests: state.cancelled,
                successRate: ended == 0 ? 1 : Double(state.successful) / Double(ended),
                totalTokens: state.tokens,
                averageTokensPerRequest: state.successful == 0 ? 0 : Double(state.tokens) / Double(state.successful),
                averageLatencyMilliseconds: ended == 0 ? 0 : state.latencySum / Double(ended),
                p50LatencyMilliseconds: ms(state.latencyMicroseconds, 50),
                p95LatencyMilliseconds: ms(state.latencyMicroseconds, 95),
                p99LatencyMilliseconds: ms(state.latencyMicroseconds, 99),
                p50TimeToFirstTokenMilliseconds: ms(state.ttftMicroseconds, 50),
                p95TimeToFirstTokenMilliseconds: ms(state.ttftMicroseconds, 95),
                p99TimeToFirstTokenMilliseconds: ms(state.ttftMicroseconds, 99),
                retries: state.retries, failuresByCode: state.failuresByCode,
                recentLatenciesMilliseconds: Array(state.recent))
        }
    }
}

/// The swift-metrics side: made once per client, so recording costs no lookups.
private struct EmittedMetrics: Sendable {
    let successes: Counter
    let cancellations: Counter
    let retries: Counter
    let tokens: Counter
    let latency: Timer
    let timeToFirstToken: Timer
    let origin: String
    let factory: any MetricsFactory

    init(origin: String, factory: any MetricsFactory) {
        let endpoint = [("endpoint", origin)]
        self.origin = origin
        self.factory = factory
        successes = Counter(label: "sagellm_client_requests_total", dimensions: endpoint + [("outcome", "success")], factory: factory)
        cancellations = Counter(label: "sagellm_client_requests_total", dimensions: endpoint + [("outcome", "cancelled")], factory: factory)
        retries = Counter(label: "sagellm_client_retries_total", dimensions: endpoint, factory: factory)
        tokens = Counter(label: "sagellm_client_tokens_total", dimensions: endpoint, factory: factory)
        latency = Timer(label: "sagellm_client_request_duration_seconds", dimensions: endpoint, factory: factory)
        timeToFirstToken = Timer(label: "sagellm_client_time_to_first_token_seconds", dimensions: endpoint, factory: factory)
    }

    func record(_ outcome: RequestOutcome, latency duration: Duration, tokens count: Int?, timeToFirstToken ttft: Duration?) {
        switch outcome {
        case .success: successes.increment()
        case .cancelled: cancellations.increment()
        case .failure(let code):
            // Failures are rare; the counter for the code is made when needed (eight codes at most).
            Counter(
                label: "sagellm_client_requests_total",
                dimensions: [("endpoint", origin), ("outcome", "failure"), ("error", code.description)], factory: factory
            ).increment()
        }
        if let count, count > 0 { tokens.increment(by: count) }
        if case .cancelled = outcome { return }
        latency.recordNanoseconds(duration.nanoseconds)
        if let ttft { timeToFirstToken.recordNanoseconds(ttft.nanoseconds) }
    }
}
