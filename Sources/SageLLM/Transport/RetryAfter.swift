import SageSupport

/// Reads a `Retry-After` header: delay seconds or an HTTP date.
package enum RetryAfter {
    package static func parse(_ value: String, now: Double? = nil) -> Duration? {
        let trimmed = value.trimmingWhitespace()
        // A server's number: NaN, infinite or negative is ignored; beyond the maximum is capped
        // there (the retry policy's own deadline decides whether such a wait fits).
        if let seconds = Double(trimmed) {
            guard seconds.isFinite, seconds >= 0 else { return nil }
            return OutsideNumber.duration(seconds: min(seconds, OutsideNumber.maximumSeconds), allowZero: true)
        }
        guard let date = HTTPDate.parse(trimmed) else { return nil }
        let current = now ?? HTTPDate.nowSecondsSince1970()
        let wait = date - current
        guard wait.isFinite else { return nil }
        return OutsideNumber.duration(seconds: min(max(0, wait), OutsideNumber.maximumSeconds), allowZero: true)
    }
}
