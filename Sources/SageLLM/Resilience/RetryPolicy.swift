/// When and how long to wait before trying a request again.
///
/// One rule (`Docs/CONFIGURATION.md`, "Retries"): a request is sent again only when nothing of
/// the response arrived and the server cannot have acted on it.
/// - Retried with backoff: failures to connect (refused, DNS, TLS, connect timeout), and the
///   statuses 408, 429 and 5xx, whose server said to try again.
/// - Resent at once, on another connection, without counting an attempt: a request that
///   could not be written, or whose reused keep-alive connection the server had closed before
///   answering (the transport does this itself; no server saw the request).
/// - Not retried unless ``retriesAfterSend`` is set: a timeout or a closed connection after
///   the request was written and before any answer, since the server may be generating it.
/// - Never retried: a failure after the response head arrived, other 4xx, undecodable
///   answers, cancellations, invalid settings or requests, and a stream that has already
///   delivered part of its answer.
public struct RetryPolicy: Sendable, Hashable {
    /// Retries after the first attempt (0 turns retrying off). Default 3.
    public var maxRetries: Int
    /// The first backoff. Default 1 s.
    public var baseDelay: Duration
    /// Each further backoff is this many times the previous one. Default 2.
    public var multiplier: Double
    /// No backoff is longer than this. Default 60 s.
    public var maxDelay: Duration
    /// Each backoff is scaled by a random factor in `1 - jitter ... 1 + jitter`. Default 0.2.
    public var jitter: Double
    /// Wait as long as the server's `Retry-After` asks (capped at ``maxDelay``). Default true.
    public var honorsRetryAfter: Bool
    /// Also retry a timeout or a closed connection after the request was written and before
    /// any answer. Only for requests that are safe to repeat: the server may already be
    /// generating the first one. Default false.
    public var retriesAfterSend: Bool = false

    public init(
        maxRetries: Int = 3, baseDelay: Duration = .seconds(1), multiplier: Double = 2, maxDelay: Duration = .seconds(60),
        jitter: Double = 0.2, honorsRetryAfter: Bool = true
    ) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.multiplier = multiplier
        self.maxDelay = maxDelay
        self.jitter = jitter
        self.honorsRetryAfter = honorsRetryAfter
    }

    /// No retries.
    public static let none = RetryPolicy(maxRetries: 0)

    public func validate() throws(SageLLMError) {
        if maxRetries < 0 { throw .invalidConfiguration(field: "maxRetries", "maxRetries must not be negative, got \(maxRetries)") }
        if baseDelay < .zero { throw .invalidConfiguration(field: "baseDelay", "baseDelay must not be negative") }
        if !(multiplier >= 1) { throw .invalidConfiguration(field: "multiplier", "multiplier must be at least 1, got \(multiplier)") }
        if maxDelay < baseDelay { throw .invalidConfiguration(field: "maxDelay", "maxDelay must be at least baseDelay") }
        if !(0...1).contains(jitter) { throw .invalidConfiguration(field: "jitter", "jitter must be in [0, 1], got \(jitter)") }
    }

    /// Whether `error` may be retried: the request surely had no effect the caller saw, and
    /// trying again can help.
    public static func isRetryable(_ error: SageLLMError) -> Bool {
        RetryPolicy().isRetryable(error)
    }

    /// Whether `error` may be retried under this policy (see the rule above).
    public func isRetryable(_ error: SageLLMError) -> Bool {
        if error.receivedPartialOutput || error.receivedResponseHead { return false }
        switch error.code {
        case .connectionFailed, .timeout: return !error.requestSent || retriesAfterSend
        case .httpStatus:
            guard let status = error.status else { return false }
            return status == 408 || status == 429 || (500...599).contains(status)
        default: return false
        }
    }

    /// The wait before retry number `retry` (1 for the first retry), given the server's
    /// `Retry-After` and a random number in 0..<1.
    public func delay(beforeRetry retry: Int, retryAfter: Duration?, random: Double) -> Duration {
        if honorsRetryAfter, let retryAfter { return min(retryAfter, maxDelay) }
        var seconds = baseDelay.seconds
        for _ in 1..<max(1, retry) { seconds *= multiplier }
        seconds = min(seconds, maxDelay.seconds)
        seconds *= 1 + jitter * (2 * random - 1)
        return OutsideNumber.duration(seconds: max(0, min(seconds, maxDelay.seconds)), allowZero: true) ?? maxDelay
    }
}
