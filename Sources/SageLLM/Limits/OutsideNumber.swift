/// The one checked path from a number that came from outside (a server, a file, the
/// environment or a flag) to a Swift number. `Int(someDouble)` traps on NaN, infinities and
/// values beyond `Int`; so does `Duration.seconds(_:)`, and so does `a + b` on overflow. Every
/// such number goes through here instead.
///
/// Seconds are finite, not negative and at most ``maximumSeconds``; anything else is refused,
/// and the caller's error names the setting (``secondsProblem(_:setting:allowZero:maximum:)``).
package enum OutsideNumber {
    /// The longest time any setting, flag or server header may ask for: 1,000,000 s (about
    /// 11.6 days). Longer values are refused, not clamped, since they are typing mistakes.
    package static let maximumSeconds = Double(maximumWholeSeconds)
    /// ``maximumSeconds`` as a whole number, for messages and integer settings.
    package static let maximumWholeSeconds = 1_000_000

    /// `value` seconds as a `Duration`; nil for NaN, infinities, negatives, zero (unless
    /// `allowZero`) and values beyond `maximum`.
    package static func duration(seconds value: Double, allowZero: Bool = false, maximum: Double = maximumSeconds)
        -> Duration?
    {
        guard value.isFinite, allowZero ? value >= 0 : value > 0, value <= maximum else { return nil }
        // At most 1e6 s: the nanoseconds fit an Int64 with room to spare.
        let nanoseconds = Int64((value * 1e9).rounded())
        // A positive value below half a nanosecond is zero in effect: not "positive".
        guard allowZero || nanoseconds > 0 else { return nil }
        return .nanoseconds(nanoseconds)
    }

    /// `value` seconds as a `Duration` for a computed figure (a prediction from scraped
    /// metrics, say): NaN is zero, and the value is clamped to ±``maximumSeconds``.
    package static func clampedDuration(seconds value: Double) -> Duration {
        guard !value.isNaN else { return .zero }
        let seconds = max(-maximumSeconds, min(maximumSeconds, value))
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// Why `value` is not an accepted number of seconds, in words that name `setting`.
    package static func secondsProblem(_ value: Double, setting: String, allowZero: Bool, maximum: Double = maximumSeconds)
        -> String
    {
        let range = (allowZero ? "from 0" : "above 0") + " to \(Int(exactly: maximum).map(String.init) ?? String(maximum)) seconds"
        return "\(setting) must be a number of seconds \(range), got \(value)"
    }

    /// A TCP port from outside: 1-65535, else nil.
    package static func port(_ value: Int) -> Int? { (1...65_535).contains(value) ? value : nil }
}

extension Int {
    /// `self + other`, saturating at `Int.max` / `Int.min` instead of trapping.
    package func addingSaturating(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }
}
