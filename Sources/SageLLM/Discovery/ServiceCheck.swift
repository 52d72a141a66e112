/// What ``IntelligentLLMClient/checkService(settings:candidates:probeTimeout:logger:)`` found:
/// is a local engine up, is the cloud usable, and what to do.
public struct ServiceCheck: Sendable, Encodable, CustomStringConvertible {
    public var localAvailable: Bool
    public var localEndpoint: String?
    public var localModel: String?
    public var localEngine: EngineKind?
    /// Whether an API key for the cloud fallback is set.
    public var cloudConfigured: Bool
    /// A configured `chat.base_url`, which `createAuto` would use before anything else.
    public var configuredEndpoint: String?
    /// What to do, in words.
    public var recommendedAction: String
    public var candidates: [CandidateReport]

    public var description: String {
        var lines = ["local available: \(localAvailable)"]
        if let localEndpoint { lines.append("local endpoint: \(localEndpoint) (\(localEngine ?? .unknown), model \(localModel ?? "?"))") }
        lines.append("cloud configured: \(cloudConfigured)")
        if let configuredEndpoint { lines.append("configured endpoint: \(configuredEndpoint)") }
        lines.append("recommended action: \(recommendedAction)")
        return lines.joined(separator: "\n")
    }

    private enum CodingKeys: String, CodingKey {
        case localAvailable = "local_available", localEndpoint = "local_endpoint", localModel = "local_model",
            localEngine = "local_engine", cloudConfigured = "cloud_configured", configuredEndpoint = "configured_endpoint",
            recommendedAction = "recommended_action", candidates
    }
}
