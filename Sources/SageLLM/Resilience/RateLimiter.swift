import Synchronization

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
    /// Time since the limiter was made, on its clock.
    private let elapsed: @Sendable () -> Duration
    private let sleep: @Sendable (Duration) async throws -> Void
    private let bucket: Mutex<Bucket>

    /// - Parameters:
    ///   - perMinute: how many units (requests, or tokens) per minute.
    ///   - burst: how many may go at once after a quiet spell (default 1: evenly spaced).
    ///   - clock: the time source (tests pass one that does not sleep).
    package init(perMinute: Int, burst: Int = 1, clock: any Clock<Duration> = ContinuousClock()) {
        rate = Double(perMinute) / 60
        capacity = Double(max(1, burst))
        (elapsed, sleep) = Self.timing(clock)
        bucket = Mutex(Bucket(tokens: Double(max(1, burst)), updated: .zero))
    }

    /// Reading and sleeping on `clock`, whatever its instant type.
    private static func timing<C: Clock<Duration>>(_ clock: C) -> (@Sendable () -> Duration, @Sendable (Duration) async throws -> Void) {
        let start = clock.now
        return ({ start.duration(to: clock.now) }, { try await clock.sleep(for: $0) })
    }

    /// Takes `cost` units and returns how long to wait before going.
    package func reserve(cost: Double = 1) -> Duration {
        let now = elapsed()
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
            try await sleep(wait)
        } catch {
            cancel(cost: cost)
            throw error
        }
    }
}
