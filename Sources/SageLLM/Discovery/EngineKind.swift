/// Which inference server an endpoint is, identified from what it answers (`owned_by` in
/// `GET /v1/models`, then fingerprint endpoints), never from its port alone.
public struct EngineKind: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let name: String

    public init(_ name: String) { self.name = name }
    public init(stringLiteral value: String) { self.name = value }
    public init(from decoder: any Decoder) throws { self.name = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
    public var description: String { name }

    public static let vllm: EngineKind = "vllm"
    public static let sglang: EngineKind = "sglang"
    public static let lmdeploy: EngineKind = "lmdeploy"
    public static let ollama: EngineKind = "ollama"
    public static let llamaCpp: EngineKind = "llama.cpp"
    public static let tgi: EngineKind = "tgi"
    /// Answers the OpenAI API but matches no known engine (OpenAI itself, a gateway, ...).
    public static let openAICompatible: EngineKind = "openai-compatible"
    /// Not checked: a configured endpoint that was not verified, or the cloud fallback before its first request.
    public static let unknown: EngineKind = "unknown"

    /// The kind an `owned_by` value names outright, if it does.
    static func fromOwnedBy(_ ownedBy: String) -> EngineKind? {
        switch ownedBy.lowercased() {
        case "vllm": .vllm
        case "sglang": .sglang
        case "lmdeploy": .lmdeploy
        case "llamacpp", "llama.cpp", "llama-cpp": .llamaCpp
        case "ollama": .ollama
        case "tgi", "text-generation-inference": .tgi
        default: nil
        }
    }
}
