/// Per-request settings. The defaults are the original client's: temperature 0.7, 1500 tokens.
public struct ChatOptions: Sendable, Hashable {
    /// The model; nil uses the client's model, or the first one the server lists.
    public var model: String?
    public var temperature: Double?
    public var maxTokens: Int?
    public var topP: Double?
    /// How many choices to generate (nil: the server's default of 1).
    public var n: Int?
    public var logprobs: Bool
    public var topLogprobs: Int?
    public var stop: [String]
    /// Sends `chat_template_kwargs: {enable_thinking: true}` (Qwen3 and other reasoning models).
    public var enableThinking: Bool
    public var seed: Int?
    /// The end user, for the server's own accounting (`user`).
    public var user: String?
    /// For streams: ask for a final usage chunk (`stream_options.include_usage`). Default true.
    public var includeUsage: Bool
    /// Vendor members sent as they are; they win over the typed fields.
    public var extraBody: [String: JSONValue]
    /// The `x-request-id` to send; nil makes a fresh one.
    public var requestID: String?
    /// A total time limit for this request instead of the client's.
    public var timeout: Duration?

    public init(
        model: String? = nil, temperature: Double? = 0.7, maxTokens: Int? = 1500, topP: Double? = nil,
        n: Int? = nil, logprobs: Bool = false, topLogprobs: Int? = nil, stop: [String] = [],
        enableThinking: Bool = false, seed: Int? = nil, user: String? = nil, includeUsage: Bool = true,
        extraBody: [String: JSONValue] = [:], requestID: String? = nil, timeout: Duration? = nil
    ) {
        self.model = model
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.topP = topP
        self.n = n
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
        self.stop = stop
        self.enableThinking = enableThinking
        self.seed = seed
        self.user = user
        self.includeUsage = includeUsage
        self.extraBody = extraBody
        self.requestID = requestID
        self.timeout = timeout
    }

    /// Checks the values a server would reject, naming the field.
    public func validate() throws(SageLLMError) {
        if let temperature, !(0...2).contains(temperature) {
            throw .invalidRequest(field: "temperature", "temperature must be between 0 and 2, got \(temperature)")
        }
        if let maxTokens, maxTokens < 1 {
            throw .invalidRequest(field: "maxTokens", "maxTokens must be at least 1, got \(maxTokens)")
        }
        if let topP, !(0...1).contains(topP) {
            throw .invalidRequest(field: "topP", "topP must be between 0 and 1, got \(topP)")
        }
        if let n, n < 1 { throw .invalidRequest(field: "n", "n must be at least 1, got \(n)") }
        if let timeout, timeout <= .zero || timeout.seconds > OutsideNumber.maximumSeconds {
            throw .invalidRequest(
                field: "timeout", "timeout must be above 0 and at most \(OutsideNumber.maximumWholeSeconds) seconds, got \(timeout)")
        }
    }

    /// The chat request these options make for `messages`.
    func chatRequest(model: String, messages: [ChatMessage], stream: Bool) -> ChatCompletionRequest {
        var extra = extraBody
        if enableThinking, extra["chat_template_kwargs"] == nil {
            extra["chat_template_kwargs"] = ["enable_thinking": true]
        }
        return ChatCompletionRequest(
            model: model, messages: messages, temperature: temperature, topP: topP, maxTokens: maxTokens, n: n,
            stream: stream, streamOptions: stream && includeUsage ? StreamOptions(includeUsage: true) : nil,
            stop: stop.isEmpty ? nil : stop, logprobs: logprobs ? true : nil, topLogprobs: topLogprobs, seed: seed,
            user: user, extraBody: extra)
    }

    /// The text-completion request these options make for `prompt`.
    func completionRequest(model: String, prompt: String, stream: Bool) -> CompletionRequest {
        CompletionRequest(
            model: model, prompt: .text(prompt), maxTokens: maxTokens, temperature: temperature, topP: topP, n: n,
            stream: stream, streamOptions: stream && includeUsage ? StreamOptions(includeUsage: true) : nil,
            stop: stop.isEmpty ? nil : stop, logprobs: logprobs ? (topLogprobs ?? 1) : nil, seed: seed,
            extraBody: extraBody)
    }
}
