import Synchronization

/// A source of time for the rate limiter; tests inject one that advances without sleeping.
public protocol RateLimiterClock: Sendable {
    /// Time since an arbitrary fixed start.
    func now() -> Duration
    /// Waits for `duration`; throws when the task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// The real clock.
public struct ContinuousRateLimiterClock: RateLimiterClock {
    private let start = ContinuousClock.now
    public init() {}
    public func now() -> Duration { ContinuousClock.now - start }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

/// A token bucket handing out reservations: a caller takes a token (going into debt when
/// none is left), then waits, outside any lock, until its debt is paid by the refill.
/// A caller cancelled while waiting gives its token back, so its place goes to the next one.
package final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Duration
    }
    /// Tokens per second.
    private let rate: Double
    private let capacity: Double
    private let clock: any RateLimiterClock
    private let bucket: Mutex<Bucket>

    /// - Parameters:
    ///   - perMinute: how many units (requests, or tokens) per minute.
    ///   - burst: how many may go at once after a quiet spell (default 1: evenly spaced).
    package init(perMinute: Int, burst: Int = 1, clock: any RateLimiterClock = ContinuousRateLimiterClock()) {
        rate = Double(perMinute) / 60
        capacity = Double(max(1, burst))
        self.clock = clock
        bucket = Mutex(Bucket(tokens: Double(max(1, burst)), updated: clock.now()))
    }

    /// Takes `cost` units and returns how long to wait before going.
    package func reserve(cost: Double = 1) -> Duration {
        let now = clock.now()
        return bucket.withLock { bucket in
            let elapsed = (now - bucket.updated).seconds
            bucket.tokens = min(capacity, bucket.tokens + max(0, elapsed) * rate)
            bucket.updated = now
            // A cost above the capacity could never be paid; it waits for a full bucket instead.
            bucket.tokens -= min(cost, capacity)
            return bucket.tokens >= 0 ? .zero : OutsideNumber.clampedDuration(seconds: -bucket.tokens / rate)
        }
    }

    /// Gives back `cost` units of a reservation that will not be used.
    package func cancel(cost: Double = 1) {
        bucket.withLock { $0.tokens = min(capacity, $0.tokens + min(cost, capacity)) }
    }

    /// Settles a reservation of `reserved` units that turned out to cost `used`: the
    /// difference is given back, or taken (later callers wait for it).
    package func settle(reserved: Double, used: Double) {
        bucket.withLock { $0.tokens = min(capacity, $0.tokens + min(reserved, capacity) - min(used, capacity)) }
    }

    /// The turn would come only after the caller's deadline; it was given back.
    package struct TurnAfterDeadline: Error {
        package let wait: Duration
    }

    /// Waits for a turn. When the task is cancelled while waiting, the turn is given back and
    /// the cancellation thrown. When the wait would last longer than `longest`, the turn is
    /// given back at once and ``TurnAfterDeadline`` thrown.
    package func acquire(cost: Double = 1, longest: Duration? = nil) async throws {
        let wait = reserve(cost: cost)
        guard wait > .zero else { return }
        if let longest, wait > longest {
            cancel(cost: cost)
            throw TurnAfterDeadline(wait: wait)
        }
        do {
            try await clock.sleep(for: wait)
        } catch {
            cancel(cost: cost)
            throw error
        }
    }
}
