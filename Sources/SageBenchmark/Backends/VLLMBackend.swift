import SageLLM

/// A vLLM server: the OpenAI client plus its `/metrics` (KV-cache usage and prefix-cache hit
/// rate as deltas over the run), with vLLM's `ignore_eos`/`min_tokens`.
///
/// Server mode talks to a running server; local mode (``local(model:port:startupTimeout:)``)
/// starts `vllm serve MODEL --port P` itself, measures its peak memory, and stops it on
/// ``shutdown()``. ``LMDeployBackend`` is the same for LMDeploy.
public final class VLLMBackend: BenchmarkBackend {
    let openAI: OpenAIBackend
    let server: ManagedServer?
    public var backendName: String { openAI.backendName }
    public var modelName: String? { openAI.modelName }

    /// Server mode: a running server at `baseURL`.
    public init(baseURL: String, apiKey: String? = nil, model: String? = nil, backendName: String = "vllm") throws(BenchmarkError) {
        openAI = try OpenAIBackend(baseURL: baseURL, apiKey: apiKey, model: model, backendName: backendName, vllmExtensions: true)
        server = nil
    }

    init(server: ManagedServer, model: String, backendName: String) throws(BenchmarkError) {
        openAI = try OpenAIBackend(baseURL: server.baseURL, model: model, backendName: backendName, vllmExtensions: true)
        self.server = server
    }

    /// Local mode: starts `vllm serve MODEL --port PORT` and waits until it is healthy.
    public static func local(model: String, port: Int = 8000, startupTimeout: Duration = .seconds(600)) async throws(BenchmarkError)
        -> VLLMBackend
    {
        let server = try await ManagedServer.start(
            ["vllm", "serve", model, "--port", String(port)], root: "http://127.0.0.1:\(port)", startupTimeout: startupTimeout)
        do {
            return try VLLMBackend(server: server, model: model, backendName: "vllm")
        } catch {
            await server.stop()
            throw error
        }
    }

    public func backendPeakMemoryMegabytes() async -> Double? { server?.peakMemoryMegabytes() }

    public func calibratedPrompts() async -> PromptFactory? { await openAI.calibratedPrompts() }
    public var countsPromptTokens: Bool { true }

    public func generate(_ request: BenchmarkRequest, runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant?)
        async -> BenchmarkResult
    {
        await openAI.generate(request, runStart: runStart, scheduled: scheduled)
    }

    public func healthCheck() async -> Bool { await openAI.healthCheck() }

    public func serverSnapshot() async -> ServerSnapshot? {
        await openAI.prometheusText().map(PrometheusSnapshot.snapshot)
    }

    public func shutdown() async {
        await openAI.shutdown()
        await server?.stop()
    }
}
