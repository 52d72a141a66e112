/// How ``IntelligentLLMClient/createAuto(model:probeTimeout:settings:detection:refresh:logger:)``
/// chose its endpoint: the decision, why, and every candidate it tried. Holds no API key.
public struct EndpointDetection: Sendable, Encodable, CustomStringConvertible {
    /// Where the endpoint came from.
    public enum Source: String, Sendable, Hashable, Encodable {
        /// An argument of the call (or a command-line flag).
        case explicit
        /// The YAML configuration file.
        case configurationFile = "configuration_file"
        case environment
        /// A local engine that answered a probe.
        case localProbe = "local_probe"
        /// The cloud fallback.
        case cloud
    }

    public var source: Source
    public var engine: EngineKind
    public var baseURL: String
    /// The model requests will use; nil means the endpoint's first listed model, asked at the first request.
    public var model: String?
    /// Whether an API key will be sent (the key itself is never here).
    public var apiKeyConfigured: Bool
    /// The decision in words.
    public var reason: String
    /// Things the caller should know (a missing cloud key, a model the engine does not list).
    public var warnings: [String]
    /// Every local candidate, in priority order (empty when a configured endpoint made probing unnecessary).
    public var candidates: [CandidateReport]
    /// Time the detection took (when it ran, not when it was served from the cache).
    public var elapsed: Duration
    /// Whether this result was served from the per-process cache.
    public var fromCache: Bool

    public var description: String {
        var lines = [
            "endpoint: \(baseURL)", "source: \(source.rawValue)", "engine: \(engine)",
            "model: \(model ?? "<first listed>")", "api key: \(apiKeyConfigured ? "configured" : "none")",
            "reason: \(reason)",
        ]
        lines += warnings.map { "warning: \($0)" }
        lines += candidates.map { "candidate \($0)" }
        return lines.joined(separator: "\n")
    }

    private enum CodingKeys: String, CodingKey {
        case source, engine, baseURL = "base_url", model, apiKeyConfigured = "api_key_configured", reason, warnings,
            candidates, elapsedMilliseconds = "elapsed_ms", fromCache = "from_cache"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(source, forKey: .source)
        try container.encode(engine, forKey: .engine)
        try container.encode(baseURL, forKey: .baseURL)
        try container.encode(model, forKey: .model)
        try container.encode(apiKeyConfigured, forKey: .apiKeyConfigured)
        try container.encode(reason, forKey: .reason)
        try container.encode(warnings, forKey: .warnings)
        try container.encode(candidates, forKey: .candidates)
        try container.encode(elapsed.reportedMilliseconds, forKey: .elapsedMilliseconds)
        try container.encode(fromCache, forKey: .fromCache)
    }
}

/// How ``IntelligentLLMClient/createAuto(model:probeTimeout:settings:detection:refresh:logger:)`` looks.
public struct DetectionOptions: Sendable, Hashable {
    /// The local candidates, in priority order. Default ``ProbeCandidate/defaultLocal``.
    public var candidates: [ProbeCandidate]
    /// Check a configured endpoint once with `GET /models`; its model list fills in a missing
    /// model. A configured endpoint that fails the check is an error (it is never replaced).
    public var verifyConfiguredEndpoint: Bool
    /// Only these engine kinds may be chosen among local candidates; nil accepts any.
    public var acceptedEngines: Set<EngineKind>?

    public init(
        candidates: [ProbeCandidate] = ProbeCandidate.defaultLocal, verifyConfiguredEndpoint: Bool = false,
        acceptedEngines: Set<EngineKind>? = nil
    ) {
        self.candidates = candidates
        self.verifyConfiguredEndpoint = verifyConfiguredEndpoint
        self.acceptedEngines = acceptedEngines
    }
}
