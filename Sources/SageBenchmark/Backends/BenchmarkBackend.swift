/// A backend the benchmark can measure (the seeds' client base class).
public protocol BenchmarkBackend: Sendable {
    /// A name for reports ("mock", "openai", "vllm", ...).
    var backendName: String { get }
    /// The model requests go to, when known.
    var modelName: String? { get }
    /// Sends one request and measures it. A failure is a result with `success == false`,
    /// never a thrown error. `runStart` anchors the time series; `scheduled` is when the
    /// request was due (for the schedule lag).
    func generate(_ request: BenchmarkRequest, runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant?) async
        -> BenchmarkResult
    /// Whether the backend answers now.
    func healthCheck() async -> Bool
    /// Backend-side figures over the run, taken before and after (KV cache, prefix cache).
    func serverSnapshot() async -> ServerSnapshot?
    /// Peak memory of the benchmarked process in MB, when it is local.
    func backendPeakMemoryMegabytes() async -> Double?
    /// Prompt lengths calibrated with the server's tokenizer, when it has one.
    func calibratedPrompts() async -> PromptFactory?
    /// Whether its results' prompt token counts are the engine's own (a server's `usage`, an
    /// in-process engine's count): without a tokenizer endpoint, a couple of requests before
    /// the measured ones then size the synthetic prompts (``LoadRunner``).
    var countsPromptTokens: Bool { get }
    func shutdown() async
}

/// Figures a server reports about itself, read before and after a run.
public struct ServerSnapshot: Sendable {
    /// KV-cache usage, 0...1, at the moment of reading.
    public var kvCacheUsage: Double?
    /// Prefix-cache queries and hits, in tokens, since the server started.
    public var prefixCacheQueries: Double?
    public var prefixCacheHits: Double?

    public init(kvCacheUsage: Double? = nil, prefixCacheQueries: Double? = nil, prefixCacheHits: Double? = nil) {
        self.kvCacheUsage = kvCacheUsage
        self.prefixCacheQueries = prefixCacheQueries
        self.prefixCacheHits = prefixCacheHits
    }
}

extension BenchmarkBackend {
    public func serverSnapshot() async -> ServerSnapshot? { nil }
    public func backendPeakMemoryMegabytes() async -> Double? { nil }
    public func calibratedPrompts() async -> PromptFactory? { nil }
    public var countsPromptTokens: Bool { false }

    /// Sends `requests`, at most `concurrent` at a time, and returns one result per request
    /// in input order. A request that takes longer than `timeout` is a failed result
    /// "Timeout after Xs"; failures stay in the results.
    public func generateBatch(_ requests: [BenchmarkRequest], concurrent: Int, timeout: Duration) async -> [BenchmarkResult] {
        let runStart = ContinuousClock.now
        var results = [BenchmarkResult?](repeating: nil, count: requests.count)
        await withTaskGroup(of: (Int, BenchmarkResult).self) { group in
            var next = 0
            func startNext() {
                let index = next
                next += 1
                group.addTask { (index, await self.generate(requests[index], runStart: runStart, timeout: timeout)) }
            }
            while next < min(max(1, concurrent), requests.count) { startNext() }
            for await (index, result) in group {
                results[index] = result
                if next < requests.count { startNext() }
            }
        }
        return zip(requests, results).map { request, result in
            result ?? .failure(request, error: "not run", kind: "cancelled")
        }
    }

    /// ``generate(_:runStart:scheduled:)`` bounded by `timeout`: past it the request is
    /// cancelled and reported as "Timeout after Xs".
    public func generate(
        _ request: BenchmarkRequest, runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant? = nil,
        timeout: Duration
    ) async -> BenchmarkResult {
        let started = ContinuousClock.now
        return await withTaskGroup(of: BenchmarkResult?.self) { group in
            group.addTask { await self.generate(request, runStart: runStart, scheduled: scheduled) }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return nil  // the request finished first and cancelled this timer
                }
                return nil
            }
            var outcome: BenchmarkResult?
            for await result in group {
                if let result {
                    outcome = result
                    group.cancelAll()
                    break
                }
                if ContinuousClock.now - started >= timeout {
                    group.cancelAll()
                    break
                }
            }
            if let outcome, outcome.errorKind != "cancelled" { return outcome }
            let seconds = timeout.seconds
            let text = Int(exactly: seconds).map(String.init) ?? String(seconds)
            return .failure(
                request, error: "Timeout after \(text)s", kind: "timeout", start: (started - runStart).seconds,
                end: (ContinuousClock.now - runStart).seconds,
                lag: scheduled.map { max(.zero, started - $0).milliseconds } ?? 0)
        }
    }
}
