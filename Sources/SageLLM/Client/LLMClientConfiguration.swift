/// Everything an ``IntelligentLLMClient`` needs to talk to one OpenAI-compatible endpoint.
///
/// ```swift
/// let configuration = LLMClientConfiguration(baseURL: "http://127.0.0.1:8000/v1", model: "Qwen/Qwen2.5-7B-Instruct")
/// ```
public struct LLMClientConfiguration: Sendable, CustomStringConvertible {
    /// The API root, including `/v1` (e.g. `http://127.0.0.1:8000/v1`).
    public var baseURL: String
    /// The model to ask for; nil takes the first model the server lists.
    public var model: String?
    /// Sent as `Authorization: Bearer ...`; never printed.
    public var apiKey: APIKey?
    public var transport: TransportConfiguration
    /// Options used when a call passes none.
    public var defaultOptions: ChatOptions
    /// Retries, rate limits, the concurrency bound and the health window.
    public var resilience: ResilienceConfiguration
    /// When set and there is no key, every request fails at once with this message (the
    /// cloud fallback without a key: the message names the variable to set).
    package var missingAPIKeyMessage: String?

    public init(
        baseURL: String, model: String? = nil, apiKey: APIKey? = nil,
        transport: TransportConfiguration = TransportConfiguration(), defaultOptions: ChatOptions = ChatOptions(),
        resilience: ResilienceConfiguration = ResilienceConfiguration()
    ) {
        self.resilience = resilience
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.transport = transport
        self.defaultOptions = defaultOptions
    }

    /// Pooled connections per host (``TransportConfiguration/maximumConnectionsPerHost``).
    public var poolSize: Int {
        get { transport.maximumConnectionsPerHost }
        set { transport.maximumConnectionsPerHost = newValue }
    }

    public var description: String {
        "LLMClientConfiguration(baseURL: \(baseURL), model: \(model ?? "<first listed>"), apiKey: \(apiKey == nil ? "none" : "<redacted>"))"
    }
}
