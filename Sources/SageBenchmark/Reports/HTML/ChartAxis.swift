/// One axis of a chart: its range rounded out to "nice" ticks (steps of 1, 2 or 5 times a
/// power of ten), its title with the unit, and the tick labels.
struct ChartAxis: Sendable {
    var title: String
    var low: Double
    var high: Double
    var ticks: [Double]
    var step: Double

    /// An axis over `values` (non-finite ones ignored); `fromZero` starts it at 0 when every
    /// value is positive (counts, rates), and `minimumHigh` keeps an all-zero axis visible.
    /// `wholeNumbers` (counts) never puts a tick between two integers.
    init(_ title: String, values: [Double], fromZero: Bool = true, wholeNumbers: Bool = false, minimumHigh: Double = 1, targetTicks: Int = 5) {
        self.title = title
        let finite = values.filter(\.isFinite)
        var low = finite.min() ?? 0
        var high = finite.max() ?? minimumHigh
        if fromZero && low > 0 { low = 0 }
        if high - low < 1e-12 { high = low + max(minimumHigh, abs(low) * 0.1) }
        var step = Self.niceStep((high - low) / Double(max(targetTicks, 1)))
        if wholeNumbers { step = max(step, 1) }
        low = (low / step).rounded(.down) * step
        high = (high / step).rounded(.up) * step
        self.low = low
        self.high = high
        self.step = step
        // At most 20 ticks even if the rounding above is off by one step.
        self.ticks = (0...20).map { low + Double($0) * step }.filter { $0 <= high + step * 1e-6 }
    }

    /// 1, 2 or 5 times a power of ten, at least `rough`.
    static func niceStep(_ rough: Double) -> Double {
        guard rough.isFinite, rough > 0 else { return 1 }
        guard rough >= 1e-12 else { return 1e-12 }  // finer than any figure a report shows
        var power = 1.0
        while power * 10 <= rough { power *= 10 }
        while power > rough { power /= 10 }
        for factor in [1.0, 2, 5, 10] where power * factor >= rough { return power * factor }
        return power * 10
    }

    /// Where `value` falls between `start` and `end` (pixels), clamped to the axis.
    func position(_ value: Double, from start: Double, to end: Double) -> Double {
        let fraction = high > low ? (value - low) / (high - low) : 0
        return start + (end - start) * min(max(fraction.isFinite ? fraction : 0, 0), 1)
    }

    /// A tick's label with as many decimals as the step needs.
    func label(_ value: Double) -> String { Self.format(value, step: step) }

    /// `value` to the precision of `step`: "1,500" for thousands, "0.25" for quarters.
    static func format(_ value: Double, step: Double) -> String {
        guard value.isFinite else { return "n/a" }
        var decimals = 0
        var scale = 1.0
        while decimals < 6, abs((step * scale).rounded() - step * scale) > 1e-6 * step * scale || step * scale < 1 {
            decimals += 1
            scale *= 10
        }
        let rounded = (value * scale).rounded() / scale
        if abs(rounded) >= 1e15 { return String(rounded) }
        if decimals == 0 { return grouped(Int(rounded)) }  // below 1e15 in magnitude, so it fits
        let whole = Int(rounded.rounded(.towardZero))
        let fraction = Int((abs(rounded - Double(whole)) * scale).rounded())
        let digits = String(fraction)
        let padded = String(repeating: "0", count: max(decimals - digits.count, 0)) + digits
        return (rounded < 0 && whole == 0 ? "-" : "") + grouped(whole) + "." + padded
    }

    static func grouped(_ number: Int) -> String {
        let digits = String(number.magnitude)
        guard digits.count > 4 else { return (number < 0 ? "-" : "") + digits }
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out += "," }
            out.append(character)
        }
        return (number < 0 ? "-" : "") + out
    }
}
