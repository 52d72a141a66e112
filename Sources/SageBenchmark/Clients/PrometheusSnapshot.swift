/// Reads the KV- and prefix-cache figures out of a vLLM-style `/metrics` page.
enum PrometheusSnapshot {
    /// Sums the samples of each metric (all label sets), by metric name without `_total`.
    static func values(_ text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            var name = line[..<space]
            if let brace = name.firstIndex(of: "{") { name = name[..<brace] }
            var key = String(name)
            if key.hasSuffix("_total") { key.removeLast("_total".count) }
            values[key, default: 0] += value
        }
        return values
    }

    static func snapshot(_ text: String) -> ServerSnapshot {
        let values = values(text)
        return ServerSnapshot(
            kvCacheUsage: values["vllm:kv_cache_usage_perc"] ?? values["vllm:gpu_cache_usage_perc"],
            prefixCacheQueries: values["vllm:prefix_cache_queries"] ?? values["vllm:gpu_prefix_cache_queries"],
            prefixCacheHits: values["vllm:prefix_cache_hits"] ?? values["vllm:gpu_prefix_cache_hits"])
    }
}

/// A vLLM server: the OpenAI client plus its `/metrics` (KV-cache usage and prefix-cache hit
/// rate as deltas over the run), with vLLM's `ignore_eos`/`min_tokens`.
///
/// Server mode talks to a running server; local mode (``local(model:port:startupTimeout:)``)
/// starts `vllm serve MODEL --port P` itself, measures its peak memory, and stops it on
/// ``close()``. ``LMDeployClient`` is the same for LMDeploy.
public final class VLLMClient: BenchmarkClient {
    let openAI: OpenAIClient
    let server: ManagedServer?
    public var backendName: String { openAI.backendName }
    public var modelName: String? { openAI.modelName }

    /// Server mode: a running server at `baseURL`.
    public init(baseURL: String, apiKey: String? = nil, model: String? = nil, backendName: String = "vllm") throws(BenchmarkError) {
        openAI = try OpenAIClient(baseURL: baseURL, apiKey: apiKey, model: model, backendName: backendName, vllmExtensions: true)
        server = nil
    }

    init(server: ManagedServer, model: String, backendName: String) throws(BenchmarkError) {
        openAI = try OpenAIClient(baseURL: server.baseURL, model: model, backendName: backendName, vllmExtensions: true)
        self.server = server
    }

    /// Local mode: starts `vllm serve MODEL --port PORT` and waits until it is healthy.
    public static func local(model: String, port: Int = 8000, startupTimeout: Duration = .seconds(600)) async throws(BenchmarkError)
        -> VLLMClient
    {
        let server = try await ManagedServer.start(
            ["vllm", "serve", model, "--port", String(port)], root: "http://127.0.0.1:\(port)", startupTimeout: startupTimeout)
        do {
            return try VLLMClient(server: server, model: model, backendName: "vllm")
        } catch {
            await server.stop()
            throw error
        }
    }

    public func backendPeakMemoryMegabytes() async -> Double? { server?.peakMemoryMegabytes() }

    public func calibratedPrompts() async -> PromptFactory? { await openAI.calibratedPrompts() }

    public func generate(_ request: BenchmarkRequest, runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant?)
        async -> BenchmarkResult
    {
        await openAI.generate(request, runStart: runStart, scheduled: scheduled)
    }

    public func healthCheck() async -> Bool { await openAI.healthCheck() }

    public func serverSnapshot() async -> ServerSnapshot? {
        await openAI.prometheusText().map(PrometheusSnapshot.snapshot)
    }

    public func close() async {
        await openAI.close()
        await server?.stop()
    }
}

/// LMDeploy (`lmdeploy serve api_server`, OpenAI-compatible on port 23333 by default).
public enum LMDeployClient {
    /// Server mode: a running server (default `http://127.0.0.1:23333/v1`).
    public static func server(baseURL: String = "http://127.0.0.1:23333/v1", apiKey: String? = nil, model: String? = nil)
        throws(BenchmarkError) -> VLLMClient
    {
        try VLLMClient(baseURL: baseURL, apiKey: apiKey, model: model, backendName: "lmdeploy")
    }

    /// Local mode: starts `lmdeploy serve api_server MODEL --server-port PORT`.
    public static func local(model: String, port: Int = 23333, startupTimeout: Duration = .seconds(600)) async throws(BenchmarkError)
        -> VLLMClient
    {
        let server = try await ManagedServer.start(
            ["lmdeploy", "serve", "api_server", model, "--server-port", String(port)], root: "http://127.0.0.1:\(port)",
            startupTimeout: startupTimeout)
        do {
            return try VLLMClient(server: server, model: model, backendName: "lmdeploy")
        } catch {
            await server.stop()
            throw error
        }
    }
}
