/// The seeds' demo contracts: thresholds on a run's averages. A figure that was not
/// measured fails its check; zero is not a pass.
public struct Contract: Sendable, Hashable {
    public var name: String
    public var maxTTFTMilliseconds: Double
    public var maxTBTMilliseconds: Double
    public var maxTPOTMilliseconds: Double
    public var minOutputThroughput: Double
    public var maxErrorRate: Double
    public var maxPeakMemoryMegabytes: Double
    public var minPrefixHitRate: Double?
    public var minSpeculativeAcceptRate: Double?

    public static let year1 = Contract(
        name: "Y1", maxTTFTMilliseconds: 100, maxTBTMilliseconds: 20, maxTPOTMilliseconds: 20, minOutputThroughput: 50,
        maxErrorRate: 0.05, maxPeakMemoryMegabytes: 32768)
    public static let year2 = Contract(
        name: "Y2", maxTTFTMilliseconds: 50, maxTBTMilliseconds: 10, maxTPOTMilliseconds: 10, minOutputThroughput: 100,
        maxErrorRate: 0.02, maxPeakMemoryMegabytes: 24576, minPrefixHitRate: 0.7)
    public static let year3 = Contract(
        name: "Y3", maxTTFTMilliseconds: 30, maxTBTMilliseconds: 5, maxTPOTMilliseconds: 5, minOutputThroughput: 200,
        maxErrorRate: 0.01, maxPeakMemoryMegabytes: 16384, minPrefixHitRate: 0.85, minSpeculativeAcceptRate: 0.6)
    public static let all = [year1, year2, year3]

    /// One threshold and what the run measured.
    public struct Check: Sendable, Codable, Hashable {
        public var metric: String
        /// "<=" or ">=".
        public var comparison: String
        public var threshold: Double
        /// nil: not measured (the check fails).
        public var actual: Double?
        public var passed: Bool
    }

    public struct Verdict: Sendable, Codable, Hashable {
        public var contract: String
        public var passed: Bool
        public var checks: [Check]
    }

    /// Checks `metrics`. Peak memory is the benchmarked process's (the backend's when it is
    /// local); it is missing for a remote server, so a remote run cannot pass blindly.
    public func check(_ metrics: RunMetrics) -> Verdict {
        func atMost(_ metric: String, _ actual: Double?, _ limit: Double) -> Check {
            Check(metric: metric, comparison: "<=", threshold: limit, actual: actual, passed: actual.map { $0 <= limit } ?? false)
        }
        func atLeast(_ metric: String, _ actual: Double?, _ limit: Double) -> Check {
            Check(metric: metric, comparison: ">=", threshold: limit, actual: actual, passed: actual.map { $0 >= limit } ?? false)
        }
        var checks = [
            atMost("mean_ttft_ms", metrics.ttft?.mean, maxTTFTMilliseconds),
            atMost("mean_tbt_ms", metrics.tbt?.mean, maxTBTMilliseconds),
            atMost("mean_tpot_ms", metrics.tpot?.mean, maxTPOTMilliseconds),
            atLeast("output_throughput", metrics.completed > 0 ? metrics.outputThroughput : nil, minOutputThroughput),
            atMost("error_rate", metrics.completed + metrics.failed > 0 ? metrics.errorRate : nil, maxErrorRate),
            atMost("backend_peak_memory_mb", metrics.backendPeakMemoryMegabytes, maxPeakMemoryMegabytes),
        ]
        if let minPrefixHitRate { checks.append(atLeast("prefix_cache_hit_rate", metrics.prefixCacheHitRate, minPrefixHitRate)) }
        if let minSpeculativeAcceptRate {
            // No backend reports speculative decoding yet: the check is honest about it.
            checks.append(atLeast("spec_accept_rate", nil, minSpeculativeAcceptRate))
        }
        return Verdict(contract: name, passed: checks.allSatisfy(\.passed), checks: checks)
    }

    public static func named(_ name: String) throws(BenchmarkError) -> Contract {
        switch name.uppercased() {
        case "Y1", "YEAR1": year1
        case "Y2", "YEAR2": year2
        case "Y3", "YEAR3": year3
        default: throw BenchmarkError(.invalidArgument, "unknown contract '\(name)'; use Y1, Y2 or Y3", field: "contract")
        }
    }
}
