import SageLLM
import SageSupport
import Synchronization

/// An in-process backend with no network: it sleeps a jittered TTFT, then emits one token
/// per jittered TBT (never faster than `throughputTps` allows), and fails `errorRate` of the
/// requests. Its metrics are measured from this simulated stream like any other client's,
/// so they include the real scheduling delays of this machine.
public final class MockBackend: BenchmarkBackend {
    public let ttft: Duration
    public let tbt: Duration
    public let throughputTps: Double
    public let errorRate: Double
    public let timeout: Duration
    public var backendName: String { "mock" }
    public var modelName: String? { "mock-model" }
    private let random: Mutex<SeededGenerator>

    /// The seeds' defaults: TTFT 50 ms, TBT 15 ms, 80 tokens/s, no errors, 60 s timeout.
    /// Each wait is scaled by a seeded random factor in 0.8...1.2.
    public init(
        ttftMs: Double = 50, tbtMs: Double = 15, throughputTps: Double = 80, errorRate: Double = 0, timeout: Double = 60,
        seed: UInt64 = 42
    ) throws(BenchmarkError) {
        guard ttftMs >= 0, tbtMs >= 0 else {
            throw BenchmarkError(.invalidArgument, "the mock's TTFT and TBT must not be negative", field: "ttftMs/tbtMs")
        }
        guard throughputTps > 0 else {
            throw BenchmarkError(.invalidArgument, "throughputTps must be positive, got \(throughputTps)", field: "throughputTps")
        }
        guard (0...1).contains(errorRate) else {
            throw BenchmarkError(.invalidArgument, "errorRate must be in 0...1, got \(errorRate)", field: "errorRate")
        }
        guard timeout > 0 else { throw BenchmarkError(.invalidArgument, "timeout must be positive", field: "timeout") }
        ttft = .microseconds(Int64(ttftMs * 1000))
        tbt = .microseconds(Int64(tbtMs * 1000))
        self.throughputTps = throughputTps
        self.errorRate = errorRate
        self.timeout = .microseconds(Int64(timeout * 1_000_000))
        random = Mutex(SeededGenerator(seed: seed))
    }

    /// The gap between tokens before jitter: TBT, or longer when the throughput cap says so.
    var tokenInterval: Duration { max(tbt, .microseconds(Int64(1_000_000 / throughputTps))) }

    private func jittered(_ duration: Duration) -> Duration {
        duration * random.withLock { $0.uniform(in: 0.8...1.2) }
    }

    public func generate(_ request: BenchmarkRequest, runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant?)
        async -> BenchmarkResult
    {
        var timer = StreamTimer(runStart: runStart, scheduled: scheduled)
        let fails = random.withLock { $0.nextUnit() < errorRate }
        let words = ["the", "model", "says", "hello", "and", "then", "some", "more"]
        do {
            try await Task.sleep(for: jittered(ttft))
            if fails {
                return timer.failure(requestID: request.requestID, error: "mock error (error rate \(errorRate))", kind: "mock error")
            }
            for index in 0..<max(1, request.maxTokens) {
                if index > 0 { try await Task.sleep(for: jittered(tokenInterval)) }
                timer.event(hasChoices: true, text: (index == 0 ? "" : " ") + words[index % words.count])
            }
        } catch {
            return timer.failure(requestID: request.requestID, error: "cancelled", kind: "cancelled")
        }
        // One token per word plus a chat template's, as the synthetic prompts are built.
        let promptTokens = request.prompt.split(separator: " ").count + PromptFactory().templateTokens
        return timer.success(requestID: request.requestID, completionTokens: max(1, request.maxTokens), promptTokens: promptTokens)
    }

    public func healthCheck() async -> Bool { true }

    public func backendPeakMemoryMegabytes() async -> Double? { ProcessMemory.peakMegabytes() }

    public func shutdown() async {}
}

