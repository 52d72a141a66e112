/// Summary statistics as `vllm bench serve` (numpy) computes them: mean, median, population
/// standard deviation, linearly interpolated percentiles, min and max. Empty input has none.
public struct Statistics: Sendable, Hashable, Codable {
    public var count: Int
    public var mean: Double
    public var median: Double
    public var std: Double
    public var p50: Double
    public var p90: Double
    public var p95: Double
    public var p99: Double
    public var min: Double
    public var max: Double

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        count = sorted.count
        mean = sorted.reduce(0, +) / Double(sorted.count)
        let m = mean
        std = (sorted.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(sorted.count)).squareRoot()
        median = Self.percentile(sorted, 50)
        p50 = median
        p90 = Self.percentile(sorted, 90)
        p95 = Self.percentile(sorted, 95)
        p99 = Self.percentile(sorted, 99)
        min = sorted[0]
        max = sorted[sorted.count - 1]
    }

    /// numpy's default ("linear"): the value at rank `p / 100 × (n - 1)`, interpolated.
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard sorted.count > 1 else { return sorted.first ?? 0 }
        let rank = p / 100 * Double(sorted.count - 1)
        let low = Int(rank.rounded(.down))
        let high = Swift.min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
    }
}
