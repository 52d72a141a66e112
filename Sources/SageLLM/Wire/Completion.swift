/// The body of `POST /v1/completions` (plain text completion).
public struct CompletionRequest: Codable, Sendable, Hashable {
    public var model: String?
    public var prompt: Prompt
    public var maxTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var n: Int?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var stop: [String]?
    public var logprobs: Int?
    public var echo: Bool?
    public var seed: Int?
    /// Vendor members, written as they are; they win over a typed field of the same name.
    public var extraBody: [String: JSONValue]

    public init(
        model: String?, prompt: Prompt, maxTokens: Int? = nil, temperature: Double? = nil, topP: Double? = nil,
        n: Int? = nil, stream: Bool? = nil, streamOptions: StreamOptions? = nil, stop: [String]? = nil,
        logprobs: Int? = nil, echo: Bool? = nil, seed: Int? = nil, extraBody: [String: JSONValue] = [:]
    ) {
        self.model = model
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.n = n
        self.stream = stream
        self.streamOptions = streamOptions
        self.stop = stop
        self.logprobs = logprobs
        self.echo = echo
        self.seed = seed
        self.extraBody = extraBody
    }

    /// A prompt: text, several texts, or token ids.
    public enum Prompt: Codable, Sendable, Hashable {
        case text(String)
        case texts([String])
        case tokens([Int])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            // Each shape is tried in turn; a failed try only means "not this shape".
            if let text = try? container.decode(String.self) {
                self = .text(text)
            } else if let texts = try? container.decode([String].self) {
                self = .texts(texts)
            } else {
                self = .tokens(try container.decode([Int].self))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let text): try container.encode(text)
            case .texts(let texts): try container.encode(texts)
            case .tokens(let tokens): try container.encode(tokens)
            }
        }
    }

    static let knownKeys: Set<String> = [
        "model", "prompt", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options", "stop",
        "logprobs", "echo", "seed",
    ]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: DynamicCodingKey.self)
        func key(_ name: String) -> DynamicCodingKey { DynamicCodingKey(name) }
        model = try c.decodeIfPresent(String.self, forKey: key("model"))
        prompt = try c.decode(Prompt.self, forKey: key("prompt"))
        maxTokens = try c.decodeIfPresent(Int.self, forKey: key("max_tokens"))
        temperature = try c.decodeIfPresent(Double.self, forKey: key("temperature"))
        topP = try c.decodeIfPresent(Double.self, forKey: key("top_p"))
        n = try c.decodeIfPresent(Int.self, forKey: key("n"))
        stream = try c.decodeIfPresent(Bool.self, forKey: key("stream"))
        streamOptions = try c.decodeIfPresent(StreamOptions.self, forKey: key("stream_options"))
        stop = try c.decodeIfPresent(StopSequences.self, forKey: key("stop"))?.values
        logprobs = try c.decodeIfPresent(Int.self, forKey: key("logprobs"))
        echo = try c.decodeIfPresent(Bool.self, forKey: key("echo"))
        seed = try c.decodeIfPresent(Int.self, forKey: key("seed"))
        extraBody = try c.decodeUnknownMembers(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: DynamicCodingKey.self)
        let x = extraBody
        try c.encodeField(model, "model", unlessIn: x)
        try c.encodeField(prompt, "prompt", unlessIn: x)
        try c.encodeField(maxTokens, "max_tokens", unlessIn: x)
        try c.encodeField(temperature, "temperature", unlessIn: x)
        try c.encodeField(topP, "top_p", unlessIn: x)
        try c.encodeField(n, "n", unlessIn: x)
        try c.encodeField(stream, "stream", unlessIn: x)
        try c.encodeField(streamOptions, "stream_options", unlessIn: x)
        try c.encodeField(stop, "stop", unlessIn: x)
        try c.encodeField(logprobs, "logprobs", unlessIn: x)
        try c.encodeField(echo, "echo", unlessIn: x)
        try c.encodeField(seed, "seed", unlessIn: x)
        try c.encodeExtraMembers(x)
    }
}

/// A text completion, whole (`text_completion`) or one streamed event of it.
public struct CompletionResponse: Codable, Sendable, Hashable {
    public var id: String
    public var object: String
    public var created: Int?
    public var model: String
    public var choices: [Choice]
    public var usage: Usage?
    public var extraFields: [String: JSONValue]

    public init(
        id: String, object: String = "text_completion", created: Int? = nil, model: String, choices: [Choice],
        usage: Usage? = nil, extraFields: [String: JSONValue] = [:]
    ) {
        self.id = id
        self.object = object
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.extraFields = extraFields
    }

    /// The first choice's text.
    public var text: String { choices.first?.text ?? "" }

    public struct Choice: Codable, Sendable, Hashable {
        public var index: Int
        public var text: String
        public var finishReason: String?
        public var logprobs: JSONValue?

        public init(index: Int, text: String, finishReason: String?, logprobs: JSONValue? = nil) {
            self.index = index
            self.text = text
            self.finishReason = finishReason
            self.logprobs = logprobs
        }

        enum CodingKeys: String, CodingKey {
            case index, text, logprobs
            case finishReason = "finish_reason"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            index = try c.decodeIfPresent(Int.self, forKey: .index) ?? 0
            text = try c.decodeIfPresent(String.self, forKey: .text) ?? ""
            finishReason = try c.decodeIfPresent(String.self, forKey: .finishReason)
            logprobs = try c.decodeIfPresent(JSONValue.self, forKey: .logprobs)
        }
    }

    static let knownKeys: Set<String> = ["id", "object", "created", "model", "choices", "usage"]

    public init(from decoder: any Decoder) throws {
        try rejectErrorObject(decoder)
        let c = try decoder.container(keyedBy: DynamicCodingKey.self)
        id = try c.decodeIfPresent(String.self, forKey: DynamicCodingKey("id")) ?? ""
        object = try c.decodeIfPresent(String.self, forKey: DynamicCodingKey("object")) ?? "text_completion"
        created = try c.decodeIfPresent(Int.self, forKey: DynamicCodingKey("created"))
        model = try c.decodeIfPresent(String.self, forKey: DynamicCodingKey("model")) ?? ""
        choices = try c.decodeIfPresent([Choice].self, forKey: DynamicCodingKey("choices")) ?? []
        usage = try c.decodeIfPresent(Usage.self, forKey: DynamicCodingKey("usage"))
        extraFields = try c.decodeUnknownMembers(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: DynamicCodingKey.self)
        let x = extraFields
        try c.encodeField(id, "id", unlessIn: x)
        try c.encodeField(object, "object", unlessIn: x)
        try c.encodeField(created, "created", unlessIn: x)
        try c.encodeField(model, "model", unlessIn: x)
        try c.encodeField(choices, "choices", unlessIn: x)
        try c.encodeField(usage, "usage", unlessIn: x)
        try c.encodeExtraMembers(x)
    }
}
