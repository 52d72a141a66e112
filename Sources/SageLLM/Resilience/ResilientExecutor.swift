import Logging
import Synchronization

/// The resilience layer every request of a client goes through: a slot under
/// `maxConcurrent`, a turn from the rate limiters for each attempt, retries with backoff,
/// and, when the request ends, the metrics and the health record.
///
/// Non-streamed requests use ``run(requestID:estimatedTokens:tokensUsed:attempt:)``; streams
/// drive the same steps one by one through a ``StreamAdmission``.
package final class ResilientExecutor: Sendable {
    package let configuration: ResilienceConfiguration
    package let metrics: ClientMetrics
    private let concurrency: FairSemaphore?
    private let requestLimiter: RateLimiter?
    private let tokenLimiter: RateLimiter?
    private let logger: Logger
    private let health = Mutex(HealthRecord())

    package struct HealthRecord: Sendable {
        package var lastSuccess: ContinuousClock.Instant?
        package var lastError: SageLLMError?
        package var lastErrorAt: ContinuousClock.Instant?
    }

    package init(configuration: ResilienceConfiguration, endpoint: String, logger: Logger) throws(SageLLMError) {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        metrics = ClientMetrics(endpoint: endpoint, factory: configuration.metricsFactory)
        concurrency = configuration.maxConcurrent.map { FairSemaphore(limit: $0) }
        requestLimiter = configuration.requestsPerMinute.map { RateLimiter(perMinute: $0, clock: configuration.clock) }
        tokenLimiter = configuration.tokensPerMinute.map {
            RateLimiter(perMinute: $0, burst: $0, clock: configuration.clock)
        }
    }

    package var healthRecord: HealthRecord { health.withLock { $0 } }
    /// Requests holding a `maxConcurrent` slot, and those waiting for one.
    package var slotsInUse: Int { concurrency?.running ?? 0 }
    package var slotsWaiting: Int { concurrency?.waiting ?? 0 }

    // MARK: Steps

    private static let cancelled = SageLLMError(code: .cancelled, reason: "the request was cancelled")

    /// Waits for a slot under `maxConcurrent` (in arrival order), until `deadline`.
    package func enter(until deadline: ContinuousClock.Instant, limit: Duration) async throws(SageLLMError) {
        guard let concurrency else { return }
        let acquired: Bool
        do {
            acquired = try await concurrency.acquire(until: deadline)
        } catch {
            throw Self.cancelled
        }
        if !acquired {
            throw Self.deadlinePassed(while: "it waited for a slot under maxConcurrent (\(concurrency.limit))", limit: limit)
        }
    }

    /// The request's one deadline passed (or would pass) before it could be sent.
    static func deadlinePassed(while waiting: String, limit: Duration) -> SageLLMError {
        var error = SageLLMError(code: .timeout, reason: "the request's deadline passed while \(waiting)")
        error.timeoutKind = .total
        error.timeoutLimit = limit
        return error
    }

    package func leave() { concurrency?.release() }

    /// Waits for the rate limiters' turn for one attempt costing `tokens`; a turn that would
    /// come after `deadline` is given back at once.
    package func pace(tokens: Int, until deadline: ContinuousClock.Instant, limit: Duration) async throws(SageLLMError) {
        do {
            if let requestLimiter { try await requestLimiter.acquire(longest: deadline - .now) }
            if let tokenLimiter {
                do {
                    try await tokenLimiter.acquire(cost: Double(tokens), longest: deadline - .now)
                } catch {
                    requestLimiter?.cancel()
                    throw error
                }
            }
        } catch let late as RateLimiter.TurnAfterDeadline {
            throw Self.deadlinePassed(
                while: "it waited for its rate-limit turn (due in \(SageLLMError.format(late.wait)))", limit: limit)
        } catch {
            throw Self.cancelled
        }
    }

    /// Corrects the token budget once the server's usage report says what an attempt cost.
    package func settle(reservedTokens: Int, usedTokens: Int?) {
        guard let tokenLimiter, let usedTokens else { return }
        tokenLimiter.settle(reserved: Double(reservedTokens), used: Double(usedTokens))
    }

    /// After attempt number `attempt` failed with `error`: whether to try again. When it
    /// retries, it has logged the attempt, counted the retry and waited out the backoff; when
    /// it does not, `error` says how many attempts were made.
    package func shouldRetry(after error: inout SageLLMError, attempt: Int, deadline: ContinuousClock.Instant)
        async throws(SageLLMError) -> Bool
    {
        error.attempts = attempt
        let policy = configuration.retry
        let retryable = policy.isRetryable(error)
        guard attempt <= policy.maxRetries, retryable else {
            if !retryable, policy.maxRetries > 0, error.requestSent, !error.receivedResponseHead,
                error.code == .timeout || error.code == .connectionFailed
            {
                error.notRetriedBecause =
                    "the request had been sent, so the server may already be working on it (set retriesAfterSend for requests that are safe to repeat)"
            }
            logger.debug(
                "attempt failed, not retried",
                metadata: [
                    "sage.request.id": "\(error.requestID ?? "-")", "sage.attempt": "\(attempt)",
                    "sage.error": "\(error.code)", "sage.retryable": "\(retryable)",
                ])
            return false
        }
        let delay = policy.delay(beforeRetry: attempt, retryAfter: error.retryAfter, random: Double.random(in: 0..<1))
        guard ContinuousClock.now + delay < deadline else {
            error.notRetriedBecause =
                "waiting \(SageLLMError.format(delay)) for another attempt would pass the request's deadline"
            return false
        }
        logger.debug(
            "attempt failed, retrying",
            metadata: [
                "sage.request.id": "\(error.requestID ?? "-")", "sage.attempt": "\(attempt)",
                "sage.error": "\(error.code)", "sage.status": "\(error.status.map(String.init) ?? "-")",
                "sage.backoff": "\(SageLLMError.format(delay))",
            ])
        metrics.recordRetry()
        do {
            if delay > .zero { try await configuration.clock.sleep(for: delay) }
        } catch {
            var cancelled = Self.cancelled
            cancelled.attempts = attempt
            throw cancelled
        }
        return true
    }

    /// Logs the start of an attempt at debug level.
    package func logAttempt(_ requestID: String, number: Int) {
        logger.debug("attempt", metadata: ["sage.request.id": "\(requestID)", "sage.attempt": "\(number)"])
    }

    /// Records how a request ended, for the metrics and the health check.
    package func finish(
        _ outcome: RequestOutcome, error: SageLLMError? = nil, started: ContinuousClock.Instant, tokens: Int?,
        timeToFirstToken: Duration? = nil
    ) {
        let now = ContinuousClock.now
        metrics.record(outcome, latency: now - started, tokens: tokens, timeToFirstToken: timeToFirstToken)
        switch outcome {
        case .success: health.withLock { $0.lastSuccess = now }
        case .failure:
            health.withLock {
                $0.lastError = error
                $0.lastErrorAt = now
            }
        case .cancelled: break
        }
    }

    /// Marks the endpoint as having answered now (a successful health probe).
    package func noteAnswer() { health.withLock { $0.lastSuccess = ContinuousClock.now } }

    // MARK: A whole non-streamed request

    /// The request id of attempt `attempt`: the caller's for the first, then `-retryN`, so a
    /// server never sees one id twice.
    package static func attemptID(_ requestID: String, attempt: Int) -> String {
        attempt == 1 ? requestID : "\(requestID)-retry\(attempt - 1)"
    }

    /// One try of a request.
    package struct Attempt: Sendable {
        /// The id to send (see ``attemptID(_:attempt:)``).
        package let requestID: String
        /// 1 for the first try.
        package let number: Int
        /// The deadline of the whole request, all attempts and waits included.
        package let deadline: ContinuousClock.Instant
    }

    /// Runs `attempt` under the limits, with retries, all within `timeout` from now.
    package func run<Result>(
        requestID: String, estimatedTokens: Int, timeout: Duration, tokensUsed: (Result) -> Int?,
        attempt: (Attempt) async throws(SageLLMError) -> Result
    ) async throws(SageLLMError) -> Result {
        let started = ContinuousClock.now
        let deadline = started + timeout
        do {
            try await enter(until: deadline, limit: timeout)
        } catch {
            finish(RequestOutcome(error), error: error, started: started, tokens: nil)
            throw error
        }
        defer { leave() }
        var number = 1
        while true {
            do {
                try await pace(tokens: estimatedTokens, until: deadline, limit: timeout)
            } catch {
                var failure = error
                failure.attempts = number - 1
                failure.elapsed = ContinuousClock.now - started
                finish(RequestOutcome(failure), error: failure, started: started, tokens: nil)
                throw failure
            }
            do {
                let current = Attempt(
                    requestID: Self.attemptID(requestID, attempt: number), number: number, deadline: deadline)
                logAttempt(current.requestID, number: number)
                let result = try await attempt(current)
                let used = tokensUsed(result)
                settle(reservedTokens: estimatedTokens, usedTokens: used)
                finish(.success, started: started, tokens: used)
                return result
            } catch {
                settle(reservedTokens: estimatedTokens, usedTokens: 0)
                var failure = error
                let retry: Bool
                do {
                    retry = try await shouldRetry(after: &failure, attempt: number, deadline: deadline)
                } catch {
                    failure = error
                    retry = false
                }
                if !retry {
                    // The whole call's time, over every attempt and wait, not the last attempt's.
                    failure.elapsed = ContinuousClock.now - started
                    finish(RequestOutcome(failure), error: failure, started: started, tokens: nil)
                    throw failure
                }
                number += 1
            }
        }
    }
}
