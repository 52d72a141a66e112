import SageSimulator

/// An inference engine that runs in this process, for `InProcessEngineBackend(engine:)`.
public protocol BenchmarkEngine: Sendable {
    var modelName: String { get }
    /// Generates for `prompt`, calling `onText` as each piece of text becomes available.
    /// Returns the prompt and completion token counts, as the engine counts them.
    func run(prompt: String, maxTokens: Int, onText: (String) async throws -> Void) async throws
        -> (promptTokens: Int, completionTokens: Int)
    /// KV-cache and prefix-cache figures, when the engine keeps them.
    func snapshot() -> ServerSnapshot?
}

extension SimulatedEngine: BenchmarkEngine {
    public var modelName: String { configuration.model }

    public func run(prompt: String, maxTokens: Int, onText: (String) async throws -> Void) async throws
        -> (promptTokens: Int, completionTokens: Int)
    {
        let tokens = SimulatedTokenizer.tokenize(messages: [(role: "user", content: prompt)])
        let completion = try await generate(EngineRequest(promptTokens: tokens, maxTokens: maxTokens)) { step in
            try await onText(step.tokens.map(\.text).joined())
        }
        return (completion.promptTokens, completion.completionTokens)
    }

    public func snapshot() -> ServerSnapshot? {
        let statistics = statistics()
        return ServerSnapshot(
            kvCacheUsage: statistics.kvCacheUsage, prefixCacheQueries: Double(statistics.prefixCacheQueries),
            prefixCacheHits: Double(statistics.prefixCacheHits))
    }
}

/// Benchmarks an engine in this process: no HTTP, so the figures are the engine's alone.
public final class InProcessEngineBackend: BenchmarkBackend {
    public let engine: any BenchmarkEngine
    public var backendName: String { "sagellm" }
    public var modelName: String? { engine.modelName }

    public init(engine: any BenchmarkEngine) { self.engine = engine }

    public func generate(_ request: BenchmarkRequest, runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant?)
        async -> BenchmarkResult
    {
        var timer = StreamTimer(runStart: runStart, scheduled: scheduled)
        do {
            let counts = try await engine.run(prompt: request.prompt, maxTokens: request.maxTokens) { text in
                timer.event(hasChoices: true, text: text)
            }
            return timer.success(
                requestID: request.requestID, completionTokens: counts.completionTokens, promptTokens: counts.promptTokens)
        } catch is CancellationError {
            return timer.failure(requestID: request.requestID, error: "cancelled", kind: "cancelled")
        } catch {
            return timer.failure(requestID: request.requestID, error: "\(error)", kind: "engine error")
        }
    }

    public func healthCheck() async -> Bool { true }
    public var countsPromptTokens: Bool { true }
    public func serverSnapshot() async -> ServerSnapshot? { engine.snapshot() }
    public func backendPeakMemoryMegabytes() async -> Double? { ProcessMemory.peakMegabytes() }
    public func shutdown() async {}
}
