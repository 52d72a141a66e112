import SageBenchmark
import SageSimulator

/// Makes the client for `--backend`, and closes it after use.
enum BackendFactory {
    static let names = ["mock", "openai", "vllm", "lmdeploy", "sagellm", "control-plane"]

    /// How to start a local server for `--local`.
    struct Local {
        var port: Int?
        var startupTimeout: Duration
    }

    static func with(
        _ backend: String, baseURL: String?, model: String?, apiKey: String?,
        mock: (ttft: Double, tbt: Double, errorRate: Double, seed: UInt64), local: Local?, cluster: String? = nil,
        _ body: (any BenchmarkBackend) async throws -> Void
    ) async throws {
        let client: any BenchmarkBackend
        if backend.lowercased() == "control-plane" {
            guard let cluster else {
                throw BenchmarkError(.invalidArgument, "the control-plane backend needs --cluster FILE (a cluster YAML file)", field: "cluster")
            }
            client = try await ControlPlaneBackend.load(clusterFile: cluster)
        } else if let local {
            client = try await startLocal(backend, model: model, local: local)
        } else {
            client = try make(backend, baseURL: baseURL, model: model, apiKey: apiKey, mock: mock)
        }
        do {
            try await body(client)
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
    }

    static func startLocal(_ backend: String, model: String?, local: Local) async throws(BenchmarkError) -> any BenchmarkBackend {
        guard let model else {
            throw BenchmarkError(.invalidArgument, "--local needs --model (the model the server loads)", field: "model")
        }
        switch backend.lowercased() {
        case "vllm": return try await VLLMBackend.local(model: model, port: local.port ?? 8000, startupTimeout: local.startupTimeout)
        case "lmdeploy":
            return try await LMDeployBackend.local(model: model, port: local.port ?? 23333, startupTimeout: local.startupTimeout)
        default:
            throw BenchmarkError(.invalidArgument, "--local starts vllm or lmdeploy, not '\(backend)'", field: "local")
        }
    }

    static func make(
        _ backend: String, baseURL: String?, model: String?, apiKey: String?,
        mock: (ttft: Double, tbt: Double, errorRate: Double, seed: UInt64)
    ) throws(BenchmarkError) -> any BenchmarkBackend {
        switch backend.lowercased() {
        case "mock":
            return try MockBackend(ttftMs: mock.ttft, tbtMs: mock.tbt, errorRate: mock.errorRate, seed: mock.seed)
        case "openai":
            guard let baseURL else {
                throw BenchmarkError(.invalidArgument, "the openai backend needs --base-url (the API root, e.g. http://127.0.0.1:8000/v1)", field: "base-url")
            }
            return try OpenAIBackend(baseURL: baseURL, apiKey: apiKey, model: model)
        case "vllm":
            return try VLLMBackend(baseURL: baseURL ?? "http://127.0.0.1:8000/v1", apiKey: apiKey, model: model)
        case "lmdeploy":
            return try LMDeployBackend.server(baseURL: baseURL ?? "http://127.0.0.1:23333/v1", apiKey: apiKey, model: model)
        case "sagellm":
            do {
                var configuration = SimulatedEngineConfiguration()
                if let model { configuration.model = model }
                return InProcessEngineBackend(engine: try SimulatedEngine(configuration: configuration))
            } catch {
                throw BenchmarkError(.invalidArgument, "the simulated engine could not start: \(error)", field: "backend")
            }
        case "control-plane":
            throw BenchmarkError(.invalidArgument, "the control-plane backend needs --cluster FILE", field: "cluster")
        default:
            throw BenchmarkError(
                .invalidArgument, "unknown backend '\(backend)'; use \(names.joined(separator: ", "))", field: "backend")
        }
    }
}
