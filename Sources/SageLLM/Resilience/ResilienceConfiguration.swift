public import Metrics

/// What the client does around each request: retries, rate limits, a concurrency bound and
/// the health window. Everything is off or harmless by default except retries (3).
///
/// ```swift
/// var configuration = LLMClientConfiguration(baseURL: "https://api.example.com/v1", apiKey: "...")
/// configuration.resilience.retry.maxRetries = 5
/// configuration.resilience.requestsPerMinute = 120
/// configuration.resilience.maxConcurrent = 8
/// ```
public struct ResilienceConfiguration: Sendable {
    /// When a failed request is tried again and how long to wait first.
    public var retry: RetryPolicy
    /// Requests per minute, evenly spaced (a token bucket of one); nil for no limit. Every
    /// attempt, retries included, takes a turn.
    public var requestsPerMinute: Int?
    /// Tokens per minute (prompt estimate plus `max_tokens`, corrected by the reported usage
    /// afterwards); nil for no limit. A full minute's budget may be spent at once.
    public var tokensPerMinute: Int?
    /// Requests in flight at once, waiting in a fair FIFO queue beyond that; nil for no bound
    /// (the connection pool still bounds connections).
    public var maxConcurrent: Int?
    /// Open the pool's connections when the client is made (`createAuto` calls
    /// ``IntelligentLLMClient/warmUp(connections:timeout:)``) rather than on demand. Default false.
    public var eagerInit: Bool
    /// A successful answer within this window makes ``IntelligentLLMClient/healthCheck(probeTimeout:)``
    /// healthy without a probe. Default 30 s.
    public var healthWindow: Duration
    /// The time source of the rate limiters and the backoff waits (tests inject one that
    /// does not sleep).
    public var clock: any Clock<Duration>
    /// Where the swift-metrics figures go; nil for the backend bootstrapped for the process.
    public var metricsFactory: (any MetricsFactory)?

    public init(
        retry: RetryPolicy = RetryPolicy(), requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil,
        maxConcurrent: Int? = nil, eagerInit: Bool = false, healthWindow: Duration = .seconds(30),
        clock: any Clock<Duration> = ContinuousClock(), metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.metricsFactory = metricsFactory
        self.retry = retry
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.maxConcurrent = maxConcurrent
        self.eagerInit = eagerInit
        self.healthWindow = healthWindow
        self.clock = clock
    }

    /// The rate the seed's `rate_limit` defaults to; applied to endpoints that are not on
    /// this machine when nothing else is configured (see ``SageSettings``).
    public static let defaultRequestsPerMinute = 60

    /// Checks every value; the error names the field and what is expected.
    public func validate() throws(SageLLMError) {
        try retry.validate()
        for (field, value) in [
            ("requestsPerMinute", requestsPerMinute), ("tokensPerMinute", tokensPerMinute), ("maxConcurrent", maxConcurrent),
        ] {
            if let value, value < 1 {
                throw .invalidConfiguration(field: field, "\(field) must be at least 1 (or nil for no limit), got \(value)")
            }
        }
        if healthWindow <= .zero {
            throw .invalidConfiguration(field: "healthWindow", "healthWindow must be positive")
        }
    }
}
