import Histogram

/// Finished requests summed up: latency, time to first token and queue-wait percentiles
/// (HdrHistogram, microseconds), SLO compliance per priority, and goodput. Plain data with no
/// clock or lock, shared by the live ``ControlPlaneMetrics`` and the ``ClusterSimulation``.
struct OutcomeTally: Sendable {
    private(set) var completed = 0
    private(set) var failed = 0
    private(set) var latency = Self.histogram()
    private(set) var timeToFirstToken = Self.histogram()
    private(set) var queueWait = Self.histogram()
    private(set) var latencySumMilliseconds = 0.0
    /// Requests with a deadline, by priority: how many met it, of how many.
    private(set) var withDeadline: [RequestPriority: (met: Int, total: Int)] = [:]
    /// Completed requests that met their deadline or had none.
    private(set) var good = 0

    static func histogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    /// A request that finished; a failed one with a deadline counts as a missed deadline when
    /// `failuresMissDeadlines` (the cluster simulation's view: a shed request did not meet its SLO).
    mutating func record(
        succeeded: Bool, latency: Duration, timeToFirstToken: Duration?, queueWait: Duration?, priority: RequestPriority,
        deadline: Duration?, failuresMissDeadlines: Bool = false
    ) {
        guard succeeded else {
            failed += 1
            if failuresMissDeadlines, deadline != nil { withDeadline[priority, default: (0, 0)].total += 1 }
            return
        }
        completed += 1
        _ = self.latency.record(Self.microseconds(latency))
        latencySumMilliseconds += latency.seconds * 1000
        if let timeToFirstToken { _ = self.timeToFirstToken.record(Self.microseconds(timeToFirstToken)) }
        if let queueWait { _ = self.queueWait.record(Self.microseconds(queueWait)) }
        let met = deadline.map { latency <= $0 }
        if let met {
            var entry = withDeadline[priority] ?? (0, 0)
            entry.total += 1
            if met { entry.met += 1 }
            withDeadline[priority] = entry
        }
        if met ?? true { good += 1 }
    }

    static func microseconds(_ duration: Duration) -> UInt64 { UInt64(max(0, min(duration.seconds * 1e6, 3.6e9))) }

    /// The `percentile` of `histogram` in milliseconds; nil when it is empty.
    static func milliseconds(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double? {
        histogram.totalCount == 0 ? nil : Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    var averageLatencyMilliseconds: Double? { completed == 0 ? nil : latencySumMilliseconds / Double(completed) }

    /// Requests with a deadline that met it, over all that had one; nil when none had one.
    var sloCompliance: Double? {
        let total = withDeadline.values.reduce(0) { $0 + $1.total }
        return total == 0 ? nil : Double(withDeadline.values.reduce(0) { $0 + $1.met }) / Double(total)
    }

    var sloComplianceByPriority: [String: Double] {
        Dictionary(uniqueKeysWithValues: withDeadline.map { ($0.key.description, Double($0.value.met) / Double(max($0.value.total, 1))) })
    }
}
