@testable import SageLLM
import SageTesting
import Synchronization
import MetricsTestKit
import Testing

/// The parts the resilient client is built from, each on its own: which errors are retried
/// and how long to wait, the token bucket (with a clock that advances without sleeping), the
/// fair semaphore, and the metrics tally.
@Suite("Resilience building blocks")
struct ResilienceBuildingBlocksTests {
    static func error(_ code: SageLLMError.Code, status: Int? = nil, head: Bool = false, partial: Bool = false)
        -> SageLLMError
    {
        var error = SageLLMError(code: code, reason: "test")
        error.status = status
        error.receivedResponseHead = head
        error.receivedPartialOutput = partial
        return error
    }

    @Test(arguments: [
        (error(.connectionFailed), true),
        (error(.timeout), true),
        (error(.timeout, head: true), false),
        (error(.httpStatus, status: 408), true),
        (error(.httpStatus, status: 429), true),
        (error(.httpStatus, status: 500), true),
        (error(.httpStatus, status: 503), true),
        (error(.httpStatus, status: 400), false),
        (error(.httpStatus, status: 401), false),
        (error(.httpStatus, status: 404), false),
        (error(.httpStatus, status: 422), false),
        (error(.streamInterrupted, partial: true), false),
        (error(.connectionFailed, partial: true), false),
        (error(.decoding), false),
        (error(.cancelled), false),
        (error(.invalidRequest), false),
    ])
    func whichErrorsAreRetried(error: SageLLMError, retried: Bool) {
        #expect(RetryPolicy.isRetryable(error) == retried, "\(error)")
    }

    @Test func backoffDoublesFromOneSecondUpToTheCap() {
        let policy = RetryPolicy()
        #expect(policy.delay(beforeRetry: 1, retryAfter: nil, random: 0.5) == .seconds(1))
        #expect(policy.delay(beforeRetry: 2, retryAfter: nil, random: 0.5) == .seconds(2))
        #expect(policy.delay(beforeRetry: 3, retryAfter: nil, random: 0.5) == .seconds(4))
        #expect(policy.delay(beforeRetry: 12, retryAfter: nil, random: 0.5) == .seconds(60))
        #expect(policy.delay(beforeRetry: 1, retryAfter: nil, random: 0) == .milliseconds(800), "jitter 20% down")
        #expect(policy.delay(beforeRetry: 1, retryAfter: nil, random: 0.999_999) <= .milliseconds(1200))
        #expect(policy.delay(beforeRetry: 12, retryAfter: nil, random: 0.999_999) <= .seconds(60), "never above the cap")
        #expect(policy.delay(beforeRetry: 1, retryAfter: .seconds(3), random: 0.5) == .seconds(3), "Retry-After wins")
        #expect(policy.delay(beforeRetry: 1, retryAfter: .seconds(600), random: 0.5) == .seconds(60), "capped")
    }

    @Test func badPoliciesAreRejected() {
        #expect(throws: SageLLMError.self) { try RetryPolicy(maxRetries: -1).validate() }
        #expect(throws: SageLLMError.self) { try RetryPolicy(multiplier: 0.5).validate() }
        #expect(throws: SageLLMError.self) { try RetryPolicy(jitter: 2).validate() }
    }

    @Test func aRateOf120PerMinuteSpacesRequestsHalfASecondApart() async throws {
        let clock = ManualClock()
        let limiter = RateLimiter(perMinute: 120, clock: clock)
        var starts: [Duration] = []
        for _ in 0..<5 {
            try await limiter.acquire()
            starts.append(clock.now.offset)
        }
        #expect(starts == [.zero, .milliseconds(500), .seconds(1), .milliseconds(1500), .seconds(2)])
    }

    @Test func aCancelledReservationGivesItsTurnBack() {
        let clock = ManualClock()
        let limiter = RateLimiter(perMinute: 60, clock: clock)
        #expect(limiter.reserve() == .zero)
        #expect(limiter.reserve() == .seconds(1))
        limiter.cancel()
        #expect(limiter.reserve() == .seconds(1), "the cancelled turn went to the next caller")
    }

    @Test func aBurstLetsThatManyGoAtOnce() {
        let limiter = RateLimiter(perMinute: 60, burst: 3, clock: ManualClock())
        #expect((0..<3).map { _ in limiter.reserve() } == [.zero, .zero, .zero])
        #expect(limiter.reserve() == .seconds(1))
    }

    @Test func theSemaphoreIsFIFOAndCancellationSafe() async throws {
        let semaphore = FairSemaphore(limit: 1)
        try await semaphore.acquire()
        let order = OrderLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            let cancelled = Task {
                try await semaphore.acquire()
                semaphore.release()
            }
            for index in 0..<3 {
                group.addTask {
                    try await semaphore.acquire()
                    order.items.withLock { $0.append(index) }
                    semaphore.release()
                }
                #expect(await eventually { semaphore.waiting == index + 2 })
            }
            cancelled.cancel()
            #expect(await eventually { semaphore.waiting == 3 }, "a cancelled waiter leaves the queue at once")
            semaphore.release()
            try await group.waitForAll()
            #expect(await cancelled.result.isFailure)
        }
        #expect(order.items.withLock { $0 } == [0, 1, 2])
        #expect(semaphore.running == 0)
    }

    @Test func metricsKeepPercentilesAndABoundedRecentList() throws {
        let emitted = TestMetrics()
        let metrics = ClientMetrics(endpoint: "http://127.0.0.1:9/v1", factory: emitted)
        for millisecond in 1...200 {
            let success = millisecond % 10 != 0
            metrics.record(
                success ? .success : .failure(.httpStatus), latency: .milliseconds(millisecond), tokens: success ? 10 : nil,
                timeToFirstToken: .milliseconds(5))
        }
        metrics.record(.cancelled, latency: .seconds(3), tokens: nil, timeToFirstToken: nil)
        metrics.recordRetry()
        let snapshot = metrics.snapshot()
        #expect(snapshot.totalRequests == 201)
        #expect(snapshot.failedRequests == 20)
        #expect(snapshot.cancelledRequests == 1)
        #expect(snapshot.successRate == 0.9)
        #expect(snapshot.totalTokens == 1800)
        #expect(snapshot.averageTokensPerRequest == 10)
        #expect(snapshot.failuresByCode == ["HTTP error status": 20])

        // The same figures through swift-metrics, with the endpoint's origin as the only varying dimension.
        let endpoint = ("endpoint", "http://127.0.0.1:9")
        #expect(emitted.counterTotal(label: "sagellm_client_requests_total", dimensions: [endpoint, ("outcome", "success")]) == 180)
        #expect(
            emitted.counterTotal(
                label: "sagellm_client_requests_total",
                dimensions: [endpoint, ("outcome", "failure"), ("error", "HTTP error status")]) == 20)
        #expect(emitted.counterTotal(label: "sagellm_client_requests_total", dimensions: [endpoint, ("outcome", "cancelled")]) == 1)
        #expect(emitted.counterTotal(label: "sagellm_client_retries_total", dimensions: [endpoint]) == 1)
        #expect(emitted.counterTotal(label: "sagellm_client_tokens_total", dimensions: [endpoint]) == 1800)
        #expect(try emitted.expectTimer("sagellm_client_request_duration_seconds", [endpoint]).values.count == 200)
        #expect(abs(snapshot.p50LatencyMilliseconds - 100) < 1)
        #expect(abs(snapshot.p99LatencyMilliseconds - 198) < 1)
        #expect(abs(snapshot.p50TimeToFirstTokenMilliseconds - 5) < 0.1)
        #expect(snapshot.retries == 1)
        #expect(snapshot.recentLatenciesMilliseconds.count == ClientMetrics.recentCapacity)
        #expect(snapshot.recentLatenciesMilliseconds.last == 200)
    }
}

final class OrderLog: Sendable {
    let items = Mutex<[Int]>([])
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
