/// A place where a local engine may be listening, probed with `GET {baseURL}/models`.
public struct ProbeCandidate: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The API root including `/v1`, e.g. `http://127.0.0.1:8001/v1`.
    public var baseURL: String
    /// The engine usually found here; informational only (the kind is always identified
    /// from the answer).
    public var usualEngine: EngineKind?

    public init(baseURL: String, usualEngine: EngineKind? = nil) {
        self.baseURL = baseURL
        self.usualEngine = usualEngine
    }

    public var description: String { baseURL }

    /// The seed's vLLM candidates, in priority order: port 8001 first (8000 is often a gateway).
    public static let vllmCandidates: [ProbeCandidate] = [
        .init(baseURL: "http://localhost:8001/v1", usualEngine: .vllm),
        .init(baseURL: "http://127.0.0.1:8001/v1", usualEngine: .vllm),
        .init(baseURL: "http://localhost:8000/v1", usualEngine: .vllm),
        .init(baseURL: "http://127.0.0.1:8000/v1", usualEngine: .vllm),
    ]

    /// Other engines on their default ports.
    public static let otherEngines: [ProbeCandidate] = [
        .init(baseURL: "http://127.0.0.1:30000/v1", usualEngine: .sglang),
        .init(baseURL: "http://127.0.0.1:23333/v1", usualEngine: .lmdeploy),
        .init(baseURL: "http://127.0.0.1:11434/v1", usualEngine: .ollama),
        .init(baseURL: "http://127.0.0.1:8080/v1", usualEngine: .llamaCpp),
    ]

    /// What ``IntelligentLLMClient/createAuto(model:probeTimeout:settings:detection:refresh:logger:)`` probes by default.
    public static let defaultLocal: [ProbeCandidate] = vllmCandidates + otherEngines
}
