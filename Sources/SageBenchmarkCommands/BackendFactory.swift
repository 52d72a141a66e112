import SageBenchmark
import SageSimulator

/// Makes the client for `--backend`, and closes it after use.
enum BackendFactory {
    static let names = ["mock", "openai", "vllm", "lmdeploy", "sagellm", "control-plane"]

    static func with(
        _ backend: String, baseURL: String?, model: String?, apiKey: String?,
        mock: (ttft: Double, tbt: Double, errorRate: Double, seed: UInt64),
        _ body: (any BenchmarkClient) async throws -> Void
    ) async throws {
        let client = try make(backend, baseURL: baseURL, model: model, apiKey: apiKey, mock: mock)
        do {
            try await body(client)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    static func make(
        _ backend: String, baseURL: String?, model: String?, apiKey: String?,
        mock: (ttft: Double, tbt: Double, errorRate: Double, seed: UInt64)
    ) throws(BenchmarkError) -> any BenchmarkClient {
        switch backend.lowercased() {
        case "mock":
            return try MockClient(ttftMs: mock.ttft, tbtMs: mock.tbt, errorRate: mock.errorRate, seed: mock.seed)
        case "openai":
            guard let baseURL else {
                throw BenchmarkError(.invalidArgument, "the openai backend needs --base-url (the API root, e.g. http://127.0.0.1:8000/v1)", field: "base-url")
            }
            return try OpenAIClient(baseURL: baseURL, apiKey: apiKey, model: model)
        case "vllm":
            return try VLLMClient(baseURL: baseURL ?? "http://127.0.0.1:8000/v1", apiKey: apiKey, model: model)
        case "lmdeploy":
            return try VLLMClient(baseURL: baseURL ?? "http://127.0.0.1:23333/v1", apiKey: apiKey, model: model, backendName: "lmdeploy")
        case "sagellm":
            do {
                var configuration = SimulatedEngineConfiguration()
                if let model { configuration.model = model }
                return SageLLMClient(engine: try SimulatedEngine(configuration: configuration))
            } catch {
                throw BenchmarkError(.invalidArgument, "the simulated engine could not start: \(error)", field: "backend")
            }
        case "control-plane":
            throw BenchmarkError(
                .backendUnavailable, "the control-plane backend needs the control plane, which is not built yet", field: "backend")
        default:
            throw BenchmarkError(
                .invalidArgument, "unknown backend '\(backend)'; use \(names.joined(separator: ", "))", field: "backend")
        }
    }
}
