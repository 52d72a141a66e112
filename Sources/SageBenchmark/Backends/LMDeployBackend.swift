/// LMDeploy (`lmdeploy serve api_server`, OpenAI-compatible on port 23333 by default).
public enum LMDeployBackend {
    /// Server mode: a running server (default `http://127.0.0.1:23333/v1`).
    public static func server(baseURL: String = "http://127.0.0.1:23333/v1", apiKey: String? = nil, model: String? = nil)
        throws(BenchmarkError) -> VLLMBackend
    {
        try VLLMBackend(baseURL: baseURL, apiKey: apiKey, model: model, backendName: "lmdeploy")
    }

    /// Local mode: starts `lmdeploy serve api_server MODEL --server-port PORT`.
    public static func local(model: String, port: Int = 23333, startupTimeout: Duration = .seconds(600)) async throws(BenchmarkError)
        -> VLLMBackend
    {
        let server = try await ManagedServer.start(
            ["lmdeploy", "serve", "api_server", model, "--server-port", String(port)], root: "http://127.0.0.1:\(port)",
            startupTimeout: startupTimeout)
        do {
            return try VLLMBackend(server: server, model: model, backendName: "lmdeploy")
        } catch {
            await server.stop()
            throw error
        }
    }
}
