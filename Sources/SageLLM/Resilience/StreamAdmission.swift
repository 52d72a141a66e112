/// One stream's passage through the ``ResilientExecutor``: it holds a `maxConcurrent` slot
/// from the first read until the stream ends, takes a rate-limit turn per attempt, and
/// records how the stream ended exactly once, also when the consumer stops reading and
/// drops it (counted as cancelled).
package final class StreamAdmission: @unchecked Sendable {
    // Safety: driven by one stream consumer at a time (a stream's `next()` calls never
    // overlap); `deinit` runs after the last of them.
    private let executor: ResilientExecutor
    private let requestID: String
    private let estimatedTokens: Int
    /// The whole stream's time limit, all attempts and waits included.
    private let timeout: Duration
    private var started: ContinuousClock.Instant?
    private var holdsSlot = false
    private var ended = false
    private var timeToFirstToken: Duration?
    /// Attempts made so far.
    private(set) var attempts = 0
    /// Chunks handed to the consumer.
    private(set) var deliveredChunks = 0

    package init(executor: ResilientExecutor, requestID: String, estimatedTokens: Int, timeout: Duration) {
        self.executor = executor
        self.requestID = requestID
        self.estimatedTokens = estimatedTokens
        self.timeout = timeout
    }

    /// The deadline of the whole stream (set when the first attempt begins).
    package var deadline: ContinuousClock.Instant { (started ?? .now) + timeout }

    /// Waits for the slot (first call only) and the rate limiters' turn; returns the
    /// attempt's request id.
    package func beginAttempt() async throws(SageLLMError) -> String {
        if started == nil {
            started = ContinuousClock.now
            do {
                try await executor.enter(until: deadline, limit: timeout)
            } catch {
                end(RequestOutcome(error), error: error, tokens: nil)
                throw error
            }
            holdsSlot = true
        }
        do {
            try await executor.pace(tokens: estimatedTokens, until: deadline, limit: timeout)
        } catch {
            var failure = error
            failure.attempts = attempts
            end(RequestOutcome(failure), error: failure, tokens: nil)
            throw failure
        }
        attempts += 1
        let id = ResilientExecutor.attemptID(requestID, attempt: attempts)
        executor.logAttempt(id, number: attempts)
        return id
    }

    /// A chunk is about to reach the consumer.
    package func deliver(carriesText: Bool) {
        deliveredChunks += 1
        if carriesText, timeToFirstToken == nil, let started { timeToFirstToken = ContinuousClock.now - started }
    }

    /// After a failed attempt: true when it may be tried again (only while nothing reached
    /// the consumer) and the backoff is over; otherwise the stream has ended with `error`,
    /// which then says how many attempts were made.
    package func retry(after error: inout SageLLMError) async -> Bool {
        executor.settle(reservedTokens: estimatedTokens, usedTokens: 0)
        if deliveredChunks > 0 {
            error.attempts = attempts
            error.receivedPartialOutput = true
        } else {
            do {
                if try await executor.shouldRetry(after: &error, attempt: attempts, deadline: deadline) { return true }
            } catch {
                end(.cancelled, error: nil, tokens: nil)
                return false
            }
        }
        if let started { error.elapsed = ContinuousClock.now - started }
        end(RequestOutcome(error), error: error, tokens: nil)
        return false
    }

    /// The stream ended normally; `usage` is the server's final report, if it sent one.
    package func succeed(usage: Usage?) {
        guard !ended else { return }
        executor.settle(reservedTokens: estimatedTokens, usedTokens: usage?.totalTokens)
        end(.success, error: nil, tokens: usage?.totalTokens)
    }

    private func end(_ outcome: RequestOutcome, error: SageLLMError?, tokens: Int?) {
        guard !ended else { return }
        ended = true
        if holdsSlot {
            holdsSlot = false
            executor.leave()
        }
        if let started {
            executor.finish(outcome, error: error, started: started, tokens: tokens, timeToFirstToken: timeToFirstToken)
        }
    }

    deinit {
        // The consumer stopped reading before the end.
        end(.cancelled, error: nil, tokens: nil)
    }
}
