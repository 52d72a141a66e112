import SageLLM

/// Service-level objectives for goodput: a request counts only if it meets every one given.
public struct GoodputSLO: Sendable, Hashable, Codable {
    public var ttftMilliseconds: Double?
    public var tpotMilliseconds: Double?
    public var e2elMilliseconds: Double?

    public init(ttftMilliseconds: Double? = nil, tpotMilliseconds: Double? = nil, e2elMilliseconds: Double? = nil) {
        self.ttftMilliseconds = ttftMilliseconds
        self.tpotMilliseconds = tpotMilliseconds
        self.e2elMilliseconds = e2elMilliseconds
    }

    /// `ttft:100,tpot:20,e2el:5000` (milliseconds), as `vllm bench serve --goodput` takes it.
    public static func parse(_ text: String) throws(BenchmarkError) -> GoodputSLO {
        var slo = GoodputSLO()
        for part in text.split(separator: ",") {
            let pair = part.split(separator: ":", maxSplits: 1).map { $0.trimmingWhitespace() }
            guard pair.count == 2, let value = Double(pair[1]), value >= 0 else {
                throw BenchmarkError(.invalidArgument, "a goodput SLO is NAME:MILLISECONDS, got '\(part)'", field: "goodput")
            }
            switch pair[0].lowercased() {
            case "ttft": slo.ttftMilliseconds = value
            case "tpot": slo.tpotMilliseconds = value
            case "e2el": slo.e2elMilliseconds = value
            default:
                throw BenchmarkError(.invalidArgument, "unknown goodput SLO '\(pair[0])'; use ttft, tpot or e2el", field: "goodput")
            }
        }
        return slo
    }

    func isMet(by result: BenchmarkResult) -> Bool {
        guard result.success else { return false }
        if let limit = ttftMilliseconds, !((result.ttftMilliseconds ?? .infinity) <= limit) { return false }
        if let limit = tpotMilliseconds, let tpot = result.tpotMilliseconds, tpot > limit { return false }
        if let limit = e2elMilliseconds, !((result.e2elMilliseconds ?? .infinity) <= limit) { return false }
        return true
    }
}

/// The figures of one run, named as `vllm bench serve` names them where it has a name.
/// A figure that could not be measured is nil and written as `null`, never as 0.
public struct RunMetrics: Sendable {
    public var workload: String
    public var backend: String
    public var model: String?
    public var arrival: String
    public var completed: Int
    public var failed: Int
    /// Seconds from just before the first dispatch until the last request completed.
    public var duration: Double
    public var totalInputTokens: Int
    public var totalOutputTokens: Int
    public var requestThroughput: Double
    /// Requests per second meeting every SLO; nil without SLOs.
    public var requestGoodput: Double?
    public var outputThroughput: Double
    public var totalTokenThroughput: Double
    public var maxOutputTokensPerSecond: Double?
    public var maxConcurrentRequests: Int
    public var errorRate: Double
    /// Failures by kind ("timeout", "http 503", ...).
    public var errors: [String: Int]
    /// Some output token counts are chunk counts (the server sent no usage).
    public var tokensApproximate: Bool
    public var ttft: Statistics?
    public var ttftContent: Statistics?
    public var tpot: Statistics?
    public var itl: Statistics?
    public var e2el: Statistics?
    /// Per-request mean inter-token gap (the seeds' TBT; the mean of each request's ITL).
    public var tbt: Statistics?
    public var scheduleLag: Statistics?
    public var clientPeakMemoryMegabytes: Double?
    public var backendPeakMemoryMegabytes: Double?
    public var kvCacheUsage: Double?
    /// Prefix-cache hits / queries over the run (deltas of the server's counters).
    public var prefixCacheHitRate: Double?
    /// How far the server's `usage.prompt_tokens` was from the length asked for (synthetic
    /// prompts), as a fraction of it: the mean and the largest over the requests.
    public var promptLengthError: (mean: Double, max: Double)?
    /// How the synthetic prompts were sized (the server's tokenizer, the warm-up's usage, or
    /// assumed).
    public var promptCalibration: String?

    public init(_ outcome: LoadRunner.Outcome, backend: String, model: String?, goodput: GoodputSLO? = nil) {
        let results = outcome.results
        let ok = results.filter(\.success)
        let seconds = max(outcome.duration.seconds, 1e-9)
        workload = outcome.workload.name
        self.backend = backend
        self.model = model
        arrival = outcome.workload.arrival.description
        completed = ok.count
        failed = results.count - ok.count
        duration = outcome.duration.seconds
        totalInputTokens = ok.reduce(0) { $0 + ($1.promptTokens ?? 0) }
        totalOutputTokens = ok.reduce(0) { $0 + ($1.outputTokens ?? 0) }
        requestThroughput = Double(completed) / seconds
        requestGoodput = goodput.map { slo in Double(ok.count { slo.isMet(by: $0) }) / seconds }
        outputThroughput = Double(totalOutputTokens) / seconds
        totalTokenThroughput = Double(totalInputTokens + totalOutputTokens) / seconds
        errorRate = results.isEmpty ? 0 : Double(failed) / Double(results.count)
        errors = results.filter { !$0.success }.reduce(into: [:]) { $0[$1.errorKind ?? "other", default: 0] += 1 }
        tokensApproximate = ok.contains(where: \.tokensApproximate)
        ttft = Statistics(ok.compactMap(\.ttftMilliseconds))
        ttftContent = Statistics(ok.compactMap(\.ttftContentMilliseconds))
        tpot = Statistics(ok.compactMap(\.tpotMilliseconds))
        itl = Statistics(ok.flatMap(\.itlMilliseconds))
        e2el = Statistics(ok.compactMap(\.e2elMilliseconds))
        tbt = Statistics(ok.compactMap(\.tbtMilliseconds))
        scheduleLag = Statistics(results.map(\.scheduleLagMilliseconds))
        maxConcurrentRequests = Self.maxConcurrency(results)
        maxOutputTokensPerSecond = Self.peakOutputRate(ok)
        clientPeakMemoryMegabytes = ProcessMemory.peakMegabytes()
        backendPeakMemoryMegabytes = outcome.backendPeakMemoryMegabytes
        kvCacheUsage = outcome.after?.kvCacheUsage
        promptLengthError = Self.promptLengthError(ok)
        if let prompts = outcome.prompts {
            promptCalibration = prompts.calibration ?? "none: one token per word assumed (no tokenizer endpoint, no usage in the warm-up)"
        }
        if let queriesAfter = outcome.after?.prefixCacheQueries, let hitsAfter = outcome.after?.prefixCacheHits {
            let queries = queriesAfter - (outcome.before?.prefixCacheQueries ?? 0)
            let hits = hitsAfter - (outcome.before?.prefixCacheHits ?? 0)
            prefixCacheHitRate = queries > 0 ? hits / queries : nil
        }
    }

    /// The mean and largest relative distance between the asked and the reported prompt lengths.
    static func promptLengthError(_ results: [BenchmarkResult]) -> (mean: Double, max: Double)? {
        let errors = results.compactMap { result -> Double? in
            guard let asked = result.targetPromptTokens, asked > 0, let reported = result.promptTokens else { return nil }
            return abs(Double(reported) - Double(asked)) / Double(asked)
        }
        guard let largest = errors.max() else { return nil }
        return (errors.reduce(0, +) / Double(errors.count), largest)
    }

    /// The most requests in flight at one moment (a sweep over starts and ends).
    static func maxConcurrency(_ results: [BenchmarkResult]) -> Int {
        var events: [(time: Double, change: Int)] = []
        for result in results {
            events.append((result.startSeconds, 1))
            events.append((result.endSeconds, -1))
        }
        // At the same instant an end comes before a start: back-to-back requests do not overlap.
        events.sort { $0.time == $1.time ? $0.change < $1.change : $0.time < $1.time }
        var current = 0
        var peak = 0
        for (_, change) in events {
            current += change
            peak = max(peak, current)
        }
        return peak
    }

    /// The most output tokens in one 1-second bucket of the run (each request's tokens
    /// spread evenly over its `choices` events).
    static func peakOutputRate(_ results: [BenchmarkResult]) -> Double? {
        TimeSeries.outputPerSecond(results).map(\.1).max()
    }

    /// Every figure under its key, in report order: vLLM's names, then ours.
    public var entries: [(key: String, value: JSONValue)] {
        func number(_ value: Double?) -> JSONValue { value.map { .double(($0 * 1000).rounded() / 1000) } ?? .null }
        var list: [(String, JSONValue)] = []
        list.append(("workload", .string(workload)))
        list.append(("backend", .string(backend)))
        list.append(("model", model.map { .string($0) } ?? .null))
        list.append(("arrival", .string(arrival)))
        list.append(("completed", .int(completed)))
        list.append(("failed", .int(failed)))
        list.append(("duration", number(duration)))
        list.append(("total_input_tokens", .int(totalInputTokens)))
        list.append(("total_output_tokens", .int(totalOutputTokens)))
        list.append(("request_throughput", number(requestThroughput)))
        list.append(("request_goodput", number(requestGoodput)))
        list.append(("output_throughput", number(outputThroughput)))
        list.append(("total_token_throughput", number(totalTokenThroughput)))
        list.append(("max_output_tokens_per_s", number(maxOutputTokensPerSecond)))
        list.append(("max_concurrent_requests", .int(maxConcurrentRequests)))
        let series: [(String, Statistics?)] = [
            ("ttft", ttft), ("tpot", tpot), ("itl", itl), ("e2el", e2el), ("tbt", tbt), ("ttft_content", ttftContent),
        ]
        for (name, statistics) in series {
            list.append(("mean_\(name)_ms", number(statistics?.mean)))
            list.append(("median_\(name)_ms", number(statistics?.median)))
            list.append(("std_\(name)_ms", number(statistics?.std)))
            let percentiles: [(String, Double?)] = [
                ("p50", statistics?.p50), ("p90", statistics?.p90), ("p95", statistics?.p95), ("p99", statistics?.p99),
            ]
            for (label, value) in percentiles { list.append(("\(label)_\(name)_ms", number(value))) }
            list.append(("min_\(name)_ms", number(statistics?.min)))
            list.append(("max_\(name)_ms", number(statistics?.max)))
        }
        list.append(("mean_schedule_lag_ms", number(scheduleLag?.mean)))
        list.append(("max_schedule_lag_ms", number(scheduleLag?.max)))
        list.append(("error_rate", number(errorRate)))
        list.append(("errors", .object(errors.mapValues { .int($0) })))
        list.append(("tokens_approximate", .bool(tokensApproximate)))
        list.append(("client_peak_memory_mb", number(clientPeakMemoryMegabytes)))
        list.append(("backend_peak_memory_mb", number(backendPeakMemoryMegabytes)))
        list.append(("kv_cache_usage", number(kvCacheUsage)))
        list.append(("prefix_cache_hit_rate", number(prefixCacheHitRate)))
        list.append(("prompt_length_error_mean", number(promptLengthError?.mean)))
        list.append(("prompt_length_error_max", number(promptLengthError?.max)))
        list.append(("prompt_calibration", promptCalibration.map { .string($0) } ?? .null))
        return list
    }
}
