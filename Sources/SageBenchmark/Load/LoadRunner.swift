import SageLLM
import SageSupport

/// Runs a workload against a client: builds the requests, sends the warm-up, then the
/// measured requests in a closed loop (fixed concurrency) or an open loop (an absolute
/// arrival schedule), and returns every result, failures included, in request order.
public struct LoadRunner: Sendable {
    public var client: any BenchmarkBackend
    public var seed: UInt64
    /// A request taking longer is a failed result "Timeout after Xs".
    public var timeout: Duration
    public var prompts: PromptFactory
    /// Called as requests finish.
    public var progress: (@Sendable (RunProgress) -> Void)?

    public init(
        client: any BenchmarkBackend, seed: UInt64 = 0, timeout: Duration = .seconds(600), prompts: PromptFactory = PromptFactory(),
        progress: (@Sendable (RunProgress) -> Void)? = nil
    ) {
        self.client = client
        self.seed = seed
        self.timeout = timeout
        self.prompts = prompts
        self.progress = progress
    }

    /// What a run produced: the results in request order and the measured duration.
    public struct Outcome: Sendable {
        public var workload: Workload
        public var results: [BenchmarkResult]
        /// From just before the first dispatch until the last request completed.
        public var duration: Duration
        public var before: ServerSnapshot?
        public var after: ServerSnapshot?
        public var backendPeakMemoryMegabytes: Double?
        /// How the synthetic prompts were sized (nil for a dataset's prompts).
        public var prompts: PromptFactory?

        public init(
            workload: Workload, results: [BenchmarkResult], duration: Duration, before: ServerSnapshot? = nil,
            after: ServerSnapshot? = nil, backendPeakMemoryMegabytes: Double? = nil
        ) {
            self.workload = workload
            self.results = results
            self.duration = duration
            self.before = before
            self.after = after
            self.backendPeakMemoryMegabytes = backendPeakMemoryMegabytes
        }
    }

    /// The request number `index` of `workload` (the same for the same seed).
    public func request(_ index: Int, of workload: Workload, model: String?) -> BenchmarkRequest {
        var random = SeededGenerator(seed: seed &+ 0x5EED &+ UInt64(index))
        func spread(_ length: Int) -> Int {
            guard workload.rangeRatio > 0 else { return length }
            let low = Double(length) * (1 - workload.rangeRatio)
            let high = Double(length) * (1 + workload.rangeRatio)
            return max(1, Int(random.uniform(in: low...high).rounded()))
        }
        let input = spread(workload.inputTokens)
        let output = spread(workload.outputTokens)
        if let dataset = workload.prompts, !dataset.isEmpty {
            return BenchmarkRequest(
                prompt: dataset[index % dataset.count], maxTokens: output, requestID: "bench-\(workload.name)-\(index)",
                model: model, stream: workload.stream)
        }
        var request = BenchmarkRequest(
            prompt: prompts.prompt(tokens: input, index: index, seed: seed, prefix: min(workload.sharedPrefixTokens, input - 1)),
            maxTokens: output, requestID: "bench-\(workload.name)-\(index)", model: model, stream: workload.stream)
        request.targetPromptTokens = input
        return request
    }

    /// Sends `request` and keeps the length it asked for beside the result.
    private func send(_ request: BenchmarkRequest, start: ContinuousClock.Instant, scheduled: ContinuousClock.Instant?) async -> BenchmarkResult {
        var result = await client.generate(request, runStart: start, scheduled: scheduled, timeout: timeout)
        result.targetPromptTokens = request.targetPromptTokens
        return result
    }

    /// Requests sent before the measured ones only to size synthetic prompts, when the server
    /// has no tokenizer endpoint and the workload no warm-up.
    static let sizingRequests = 2

    /// Runs the warm-up, then the measured requests. Synthetic prompts not fully calibrated by
    /// the server's tokenizer are corrected first by what the warm-up's usage reported (with no
    /// warm-up, by ``sizingRequests`` short requests to a server that reports usage).
    public func run(_ workload: Workload) async throws(BenchmarkError) -> Outcome {
        try workload.validate()
        var runner = self
        let needsSizing = workload.prompts == nil && !prompts.templateMeasured
        let count = workload.warmupRequests > 0 ? workload.warmupRequests : (needsSizing && client.countsPromptTokens ? Self.sizingRequests : 0)
        if count > 0 {
            let warmup = (0..<count).map {
                var request = request(1_000_000 + $0, of: workload, model: client.modelName)
                request.requestID = workload.warmupRequests > 0 ? "bench-warmup-\($0)" : "bench-sizing-\($0)"
                if workload.warmupRequests == 0 { request.maxTokens = 1 }
                return request
            }
            let answered = await client.generateBatch(warmup, concurrent: count, timeout: timeout)
            if needsSizing {
                let samples = zip(warmup, answered).compactMap { request, result -> (asked: Int, reported: Int)? in
                    guard let asked = request.targetPromptTokens, let reported = result.promptTokens else { return nil }
                    return (asked, reported)
                }
                if let adjusted = prompts.adjusted(by: samples) { runner.prompts = adjusted }
            }
        }
        return await runner.measure(workload)
    }

    private func measure(_ workload: Workload) async -> Outcome {
        let model = client.modelName
        let before = await client.serverSnapshot()
        let start = ContinuousClock.now
        let deadline = workload.durationSeconds.map { start + .nanoseconds(Int64($0 * 1e9)) }
        let total = workload.numPrompts
        let tally = ProgressTally(
            total: workload.durationSeconds == nil ? total : nil,
            duration: workload.durationSeconds.map { .milliseconds(Int64(($0 * 1000).rounded())) }, report: progress)
        var results: [(Int, BenchmarkResult)]
        switch workload.arrival {
        case .concurrency(let concurrency):
            results = await closedLoop(workload, model: model, concurrency: concurrency, start: start, deadline: deadline, tally: tally)
        case .rate(let rate, let burstiness, let cap):
            results = await openLoop(
                workload, model: model, rate: rate, burstiness: burstiness, cap: cap, start: start, deadline: deadline, tally: tally)
        }
        let duration = ContinuousClock.now - start
        results.sort { $0.0 < $1.0 }
        var outcome = Outcome(
            workload: workload, results: results.map(\.1), duration: duration, before: before, after: await client.serverSnapshot(),
            backendPeakMemoryMegabytes: await client.backendPeakMemoryMegabytes())
        outcome.prompts = workload.prompts == nil ? prompts : nil
        return outcome
    }

    private func closedLoop(
        _ workload: Workload, model: String?, concurrency: Int, start: ContinuousClock.Instant, deadline: ContinuousClock.Instant?,
        tally: ProgressTally
    ) async -> [(Int, BenchmarkResult)] {
        let counter = IndexCounter(limit: workload.numPrompts)
        return await withTaskGroup(of: [(Int, BenchmarkResult)].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine: [(Int, BenchmarkResult)] = []
                    while !Task.isCancelled, deadline.map({ ContinuousClock.now < $0 }) ?? true, let index = counter.next() {
                        let result = await send(request(index, of: workload, model: model), start: start, scheduled: nil)
                        tally.add(result)
                        mine.append((index, result))
                    }
                    return mine
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
    }

    private func openLoop(
        _ workload: Workload, model: String?, rate: Double, burstiness: Double, cap: Int?, start: ContinuousClock.Instant,
        deadline: ContinuousClock.Instant?, tally: ProgressTally
    ) async -> [(Int, BenchmarkResult)] {
        // With a duration instead of a count, plan enough arrivals to cover it.
        let count = workload.numPrompts ?? Int((workload.durationSeconds ?? 0) * rate * 1.5) + 16
        let schedule = ArrivalSchedule(count: count, rate: rate, burstiness: burstiness, seed: seed)
        let slots = cap.map { FairSemaphore(limit: $0) }
        return await withTaskGroup(of: (Int, BenchmarkResult).self) { group in
            for (index, offset) in schedule.offsets.enumerated() {
                let due = start + offset
                if let deadline, due >= deadline { break }
                do {
                    try await Task.sleep(until: due, clock: .continuous)
                } catch {
                    break  // cancelled: stop dispatching; what was sent is still collected
                }
                group.addTask {
                    if let slots {
                        do {
                            try await slots.acquire()
                        } catch {
                            let request = request(index, of: workload, model: model)
                            return (index, .failure(request, error: "cancelled before it was sent", kind: "cancelled"))
                        }
                    }
                    defer { slots?.release() }
                    let result = await send(request(index, of: workload, model: model), start: start, scheduled: due)
                    tally.add(result)
                    return (index, result)
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }
}
