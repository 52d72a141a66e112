import ArgumentParser
import SageLLM

/// Numbers from command-line flags, checked before use: a flag's `Double` may be NaN, an
/// infinity or far beyond any sensible time, and `Duration` traps on those. The error names
/// the flag and the accepted range.
package enum FlagNumber {
    /// `value` seconds (above 0, or from 0 when `allowZero`, up to ``OutsideNumber/maximumSeconds``).
    package static func seconds(_ value: Double, _ flag: String, allowZero: Bool = false) throws -> Duration {
        guard let duration = OutsideNumber.duration(seconds: value, allowZero: allowZero) else {
            throw ValidationError(OutsideNumber.secondsProblem(value, setting: flag, allowZero: allowZero))
        }
        return duration
    }

    /// `value` milliseconds, from 0 up to the same maximum.
    package static func milliseconds(_ value: Double, _ flag: String) throws -> Duration {
        guard value.isFinite, let duration = OutsideNumber.duration(seconds: value / 1000, allowZero: true) else {
            throw ValidationError(
                "\(flag) must be a number of milliseconds from 0 to \(OutsideNumber.maximumWholeSeconds * 1000), got \(value)")
        }
        return duration
    }

    /// A rate per second that is finite and above 0, at most `maximum`.
    package static func rate(_ value: Double, _ flag: String, maximum: Double = 1_000_000) throws -> Double {
        guard value.isFinite, value > 0, value <= maximum else {
            throw ValidationError("\(flag) must be above 0 and at most \(Int(maximum)) per second, got \(value)")
        }
        return value
    }
}
