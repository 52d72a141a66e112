/// The body of `POST /v1/chat/completions`.
///
/// Typed fields cover the OpenAI protocol; ``extraBody`` carries anything else
/// (`chat_template_kwargs`, `kv_transfer_params`, `priority`, `ignore_eos`, ...)
/// and wins over a typed field of the same name. Decoding keeps unknown members
/// in ``extraBody``, so a server (or a proxy) can read vendor fields.
public struct ChatCompletionRequest: Codable, Sendable, Hashable {
    public var model: String?
    public var messages: [ChatMessage]
    public var temperature: Double?
    public var topP: Double?
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var n: Int?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var stop: [String]?
    public var logprobs: Bool?
    public var topLogprobs: Int?
    public var seed: Int?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var user: String?
    public var tools: JSONValue?
    public var toolChoice: JSONValue?
    public var responseFormat: JSONValue?
    /// Vendor members, written as they are.
    public var extraBody: [String: JSONValue]

    public init(
        model: String?, messages: [ChatMessage], temperature: Double? = nil, topP: Double? = nil,
        maxTokens: Int? = nil, maxCompletionTokens: Int? = nil, n: Int? = nil, stream: Bool? = nil,
        streamOptions: StreamOptions? = nil, stop: [String]? = nil, logprobs: Bool? = nil,
        topLogprobs: Int? = nil, seed: Int? = nil, presencePenalty: Double? = nil,
        frequencyPenalty: Double? = nil, user: String? = nil, tools: JSONValue? = nil,
        toolChoice: JSONValue? = nil, responseFormat: JSONValue? = nil, extraBody: [String: JSONValue] = [:]
    ) {
        self.model = model
        self.messages = messages
        self.temperature = temperature
        self.topP = topP
        self.maxTokens = maxTokens
        self.maxCompletionTokens = maxCompletionTokens
        self.n = n
        self.stream = stream
        self.streamOptions = streamOptions
        self.stop = stop
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
        self.seed = seed
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.user = user
        self.tools = tools
        self.toolChoice = toolChoice
        self.responseFormat = responseFormat
        self.extraBody = extraBody
    }

    static let knownKeys: Set<String> = [
        "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stream",
        "stream_options", "stop", "logprobs", "top_logprobs", "seed", "presence_penalty", "frequency_penalty",
        "user", "tools", "tool_choice", "response_format",
    ]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: DynamicCodingKey.self)
        func key(_ name: String) -> DynamicCodingKey { DynamicCodingKey(name) }
        model = try c.decodeIfPresent(String.self, forKey: key("model"))
        messages = try c.decode([ChatMessage].self, forKey: key("messages"))
        temperature = try c.decodeIfPresent(Double.self, forKey: key("temperature"))
        topP = try c.decodeIfPresent(Double.self, forKey: key("top_p"))
        maxTokens = try c.decodeIfPresent(Int.self, forKey: key("max_tokens"))
        maxCompletionTokens = try c.decodeIfPresent(Int.self, forKey: key("max_completion_tokens"))
        n = try c.decodeIfPresent(Int.self, forKey: key("n"))
        stream = try c.decodeIfPresent(Bool.self, forKey: key("stream"))
        streamOptions = try c.decodeIfPresent(StreamOptions.self, forKey: key("stream_options"))
        stop = try c.decodeIfPresent(StopSequences.self, forKey: key("stop"))?.values
        logprobs = try c.decodeIfPresent(Bool.self, forKey: key("logprobs"))
        topLogprobs = try c.decodeIfPresent(Int.self, forKey: key("top_logprobs"))
        seed = try c.decodeIfPresent(Int.self, forKey: key("seed"))
        presencePenalty = try c.decodeIfPresent(Double.self, forKey: key("presence_penalty"))
        frequencyPenalty = try c.decodeIfPresent(Double.self, forKey: key("frequency_penalty"))
        user = try c.decodeIfPresent(String.self, forKey: key("user"))
        tools = try c.decodeIfPresent(JSONValue.self, forKey: key("tools"))
        toolChoice = try c.decodeIfPresent(JSONValue.self, forKey: key("tool_choice"))
        responseFormat = try c.decodeIfPresent(JSONValue.self, forKey: key("response_format"))
        extraBody = try c.decodeUnknownMembers(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: DynamicCodingKey.self)
        let x = extraBody
        try c.encodeField(model, "model", unlessIn: x)
        try c.encodeField(messages, "messages", unlessIn: x)
        try c.encodeField(temperature, "temperature", unlessIn: x)
        try c.encodeField(topP, "top_p", unlessIn: x)
        try c.encodeField(maxTokens, "max_tokens", unlessIn: x)
        try c.encodeField(maxCompletionTokens, "max_completion_tokens", unlessIn: x)
        try c.encodeField(n, "n", unlessIn: x)
        try c.encodeField(stream, "stream", unlessIn: x)
        try c.encodeField(streamOptions, "stream_options", unlessIn: x)
        try c.encodeField(stop, "stop", unlessIn: x)
        try c.encodeField(logprobs, "logprobs", unlessIn: x)
        try c.encodeField(topLogprobs, "top_logprobs", unlessIn: x)
        try c.encodeField(seed, "seed", unlessIn: x)
        try c.encodeField(presencePenalty, "presence_penalty", unlessIn: x)
        try c.encodeField(frequencyPenalty, "frequency_penalty", unlessIn: x)
        try c.encodeField(user, "user", unlessIn: x)
        try c.encodeField(tools, "tools", unlessIn: x)
        try c.encodeField(toolChoice, "tool_choice", unlessIn: x)
        try c.encodeField(responseFormat, "response_format", unlessIn: x)
        try c.encodeExtraMembers(x)
    }
}

/// `stream_options`.
public struct StreamOptions: Codable, Sendable, Hashable {
    /// Ask for a final chunk that carries `usage`.
    public var includeUsage: Bool?
    /// vLLM: usage on every chunk.
    public var continuousUsageStats: Bool?

    public init(includeUsage: Bool? = true, continuousUsageStats: Bool? = nil) {
        self.includeUsage = includeUsage
        self.continuousUsageStats = continuousUsageStats
    }

    enum CodingKeys: String, CodingKey {
        case includeUsage = "include_usage"
        case continuousUsageStats = "continuous_usage_stats"
    }
}

/// `stop` is a string or a list of strings on the wire.
struct StopSequences: Decodable {
    var values: [String]
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) {  // else a list, decoded below
            values = [one]
        } else {
            values = try container.decode([String].self)
        }
    }
}
