import Synchronization

/// A clock whose sleeps advance its time at once, remembering each sleep: timing behaviour
/// (rate limits, backoff, a simulated engine's pace) is tested without waiting.
package final class ManualClock: Clock, Sendable {
    package struct Instant: InstantProtocol {
        package var offset: Duration
        package init(offset: Duration) { self.offset = offset }
        package func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        package func duration(to other: Instant) -> Duration { other.offset - offset }
        package static func < (left: Instant, right: Instant) -> Bool { left.offset < right.offset }
    }

    package let time = Mutex<Duration>(.zero)
    package let sleeps = Mutex<[Duration]>([])

    package init() {}

    package var now: Instant { Instant(offset: time.withLock { $0 }) }
    package var minimumResolution: Duration { .zero }

    package func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try Task.checkCancellation()
        let duration = time.withLock { time in
            defer { time = max(time, deadline.offset) }
            return deadline.offset - time
        }
        sleeps.withLock { $0.append(duration) }
    }
}
