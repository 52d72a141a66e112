/// The body of a non-streamed chat completion.
///
/// Unknown top-level members stay readable in ``extraFields``: a vLLM prefill
/// response's `kv_transfer_params`, llama.cpp's `timings`, and so on.
public struct ChatCompletionResponse: Codable, Sendable, Hashable {
    public var id: String
    public var object: String
    public var created: Int?
    public var model: String
    public var choices: [Choice]
    public var usage: Usage?
    public var systemFingerprint: String?
    public var extraFields: [String: JSONValue]

    public init(
        id: String, object: String = "chat.completion", created: Int? = nil, model: String, choices: [Choice],
        usage: Usage? = nil, systemFingerprint: String? = nil, extraFields: [String: JSONValue] = [:]
    ) {
        self.id = id
        self.object = object
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.systemFingerprint = systemFingerprint
        self.extraFields = extraFields
    }

    /// The first choice's text, or "" when there is none.
    public var text: String { choices.first?.message.content.map { ChatMessage(role: .assistant, content: $0).text } ?? "" }

    public struct Choice: Codable, Sendable, Hashable {
        public var index: Int
        public var message: ChatMessage
        public var finishReason: String?
        public var logprobs: JSONValue?

        public init(index: Int, message: ChatMessage, finishReason: String?, logprobs: JSONValue? = nil) {
            self.index = index
            self.message = message
            self.finishReason = finishReason
            self.logprobs = logprobs
        }

        enum CodingKeys: String, CodingKey {
            case index, message, logprobs
            case finishReason = "finish_reason"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            index = try c.decodeIfPresent(Int.self, forKey: .index) ?? 0
            message =
                try c.decodeIfPresent(ChatMessage.self, forKey: .message)
                ?? ChatMessage(role: .assistant, content: nil)
            finishReason = try c.decodeIfPresent(String.self, forKey: .finishReason)
            logprobs = try c.decodeIfPresent(JSONValue.self, forKey: .logprobs)
        }
    }

    static let knownKeys: Set<String> = ["id", "object", "created", "model", "choices", "usage", "system_fingerprint"]

    public init(from decoder: any Decoder) throws {
        try rejectErrorObject(decoder)
        let c = try decoder.container(keyedBy: DynamicCodingKey.self)
        id = try c.decodeIfPresent(String.self, forKey: DynamicCodingKey("id")) ?? ""
        object = try c.decodeIfPresent(String.self, forKey: DynamicCodingKey("object")) ?? "chat.completion"
        created = try c.decodeIfPresent(Int.self, forKey: DynamicCodingKey("created"))
        model = try c.decodeIfPresent(String.self, forKey: DynamicCodingKey("model")) ?? ""
        choices = try c.decodeIfPresent([Choice].self, forKey: DynamicCodingKey("choices")) ?? []
        usage = try c.decodeIfPresent(Usage.self, forKey: DynamicCodingKey("usage"))
        systemFingerprint = try c.decodeIfPresent(String.self, forKey: DynamicCodingKey("system_fingerprint"))
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
        try c.encodeField(systemFingerprint, "system_fingerprint", unlessIn: x)
        try c.encodeExtraMembers(x)
    }
}

/// One event of a streamed chat completion (`chat.completion.chunk`).
///
/// Servers differ: the role chunk may carry `content: null`, `""` or nothing; the
/// usage chunk may have empty or non-empty `choices`; some send no usage at all.
public struct ChatCompletionChunk: Codable, Sendable, Hashable {
    public var id: String
    public var object: String
    public var created: Int?
    public var model: String
    public var choices: [Choice]
    public var usage: Usage?
    public var systemFingerprint: String?

    public init(
        id: String, object: String = "chat.completion.chunk", created: Int? = nil, model: String,
        choices: [Choice], usage: Usage? = nil, systemFingerprint: String? = nil
    ) {
        self.id = id
        self.object = object
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.systemFingerprint = systemFingerprint
    }

    /// The content text this chunk adds to the first choice ("" when none).
    public var contentDelta: String { choices.first?.delta.content ?? "" }

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage
        case systemFingerprint = "system_fingerprint"
    }

    public init(from decoder: any Decoder) throws {
        try rejectErrorObject(decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? ""
        object = try c.decodeIfPresent(String.self, forKey: .object) ?? "chat.completion.chunk"
        created = try c.decodeIfPresent(Int.self, forKey: .created)
        model = try c.decodeIfPresent(String.self, forKey: .model) ?? ""
        choices = try c.decodeIfPresent([Choice].self, forKey: .choices) ?? []
        usage = try c.decodeIfPresent(Usage.self, forKey: .usage)
        systemFingerprint = try c.decodeIfPresent(String.self, forKey: .systemFingerprint)
    }

    public struct Choice: Codable, Sendable, Hashable {
        public var index: Int
        public var delta: Delta
        public var finishReason: String?
        public var logprobs: JSONValue?

        public init(index: Int, delta: Delta, finishReason: String? = nil, logprobs: JSONValue? = nil) {
            self.index = index
            self.delta = delta
            self.finishReason = finishReason
            self.logprobs = logprobs
        }

        enum CodingKeys: String, CodingKey {
            case index, delta, logprobs
            case finishReason = "finish_reason"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            index = try c.decodeIfPresent(Int.self, forKey: .index) ?? 0
            delta = try c.decodeIfPresent(Delta.self, forKey: .delta) ?? Delta()
            finishReason = try c.decodeIfPresent(String.self, forKey: .finishReason)
            logprobs = try c.decodeIfPresent(JSONValue.self, forKey: .logprobs)
        }
    }

    public struct Delta: Codable, Sendable, Hashable {
        public var role: ChatMessage.Role?
        public var content: String?
        public var reasoningContent: String?
        public var toolCalls: [ToolCall]?

        public init(
            role: ChatMessage.Role? = nil, content: String? = nil, reasoningContent: String? = nil,
            toolCalls: [ToolCall]? = nil
        ) {
            self.role = role
            self.content = content
            self.reasoningContent = reasoningContent
            self.toolCalls = toolCalls
        }

        enum CodingKeys: String, CodingKey {
            case role, content
            case reasoningContent = "reasoning_content"
            case toolCalls = "tool_calls"
        }
    }
}
