/// One message of a chat conversation.
///
/// ```swift
/// let messages: [ChatMessage] = [.system("Be brief."), .user("What is KV cache?")]
/// ```
public struct ChatMessage: Codable, Sendable, Hashable {
    public var role: Role
    /// Text or a list of content parts; nil for an assistant message that only calls tools.
    public var content: Content?
    public var name: String?
    /// Tool calls made by an assistant message.
    public var toolCalls: [ToolCall]?
    /// The call a `tool` message answers.
    public var toolCallID: String?
    /// Reasoning text that reasoning models (vLLM, DeepSeek, Qwen3) return beside the answer.
    public var reasoningContent: String?

    public init(
        role: Role, content: Content?, name: String? = nil, toolCalls: [ToolCall]? = nil,
        toolCallID: String? = nil, reasoningContent: String? = nil
    ) {
        self.role = role
        self.content = content
        self.name = name
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.reasoningContent = reasoningContent
    }

    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: .system, content: .text(text)) }
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: .user, content: .text(text)) }
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: .assistant, content: .text(text)) }
    public static func tool(_ text: String, callID: String) -> ChatMessage {
        ChatMessage(role: .tool, content: .text(text), toolCallID: callID)
    }

    /// The message's text: its string content, or its text parts joined.
    public var text: String {
        switch content {
        case .text(let text): text
        case .parts(let parts): parts.compactMap(\.text).joined()
        case nil: ""
        }
    }

    enum CodingKeys: String, CodingKey {
        case role, content, name
        case toolCalls = "tool_calls"
        case toolCallID = "tool_call_id"
        case reasoningContent = "reasoning_content"
    }

    /// A message role. Unknown roles decode as themselves.
    public struct Role: RawRepresentable, Codable, Sendable, Hashable, ExpressibleByStringLiteral,
        CustomStringConvertible
    {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public init(from decoder: any Decoder) throws {
            rawValue = try decoder.singleValueContainer().decode(String.self)
        }
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }
        public var description: String { rawValue }

        public static let system: Role = "system"
        public static let developer: Role = "developer"
        public static let user: Role = "user"
        public static let assistant: Role = "assistant"
        public static let tool: Role = "tool"
    }

    /// Message content: a plain string or a list of parts (text, images).
    public enum Content: Codable, Sendable, Hashable {
        case text(String)
        case parts([ContentPart])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {  // else a list of parts, decoded below
                self = .text(text)
            } else {
                self = .parts(try container.decode([ContentPart].self))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let text): try container.encode(text)
            case .parts(let parts): try container.encode(parts)
            }
        }
    }

    /// One part of a multi-part message.
    public struct ContentPart: Codable, Sendable, Hashable {
        /// `text`, `image_url`, or a vendor type.
        public var type: String
        public var text: String?
        public var imageURL: ImageURL?

        public init(type: String, text: String? = nil, imageURL: ImageURL? = nil) {
            self.type = type
            self.text = text
            self.imageURL = imageURL
        }

        public static func text(_ text: String) -> ContentPart { ContentPart(type: "text", text: text) }
        public static func image(url: String, detail: String? = nil) -> ContentPart {
            ContentPart(type: "image_url", imageURL: ImageURL(url: url, detail: detail))
        }

        enum CodingKeys: String, CodingKey {
            case type, text
            case imageURL = "image_url"
        }

        public struct ImageURL: Codable, Sendable, Hashable {
            public var url: String
            public var detail: String?
            public init(url: String, detail: String? = nil) {
                self.url = url
                self.detail = detail
            }
        }
    }
}

/// A tool call in an assistant message; in a stream delta every field may be partial.
public struct ToolCall: Codable, Sendable, Hashable {
    public var index: Int?
    public var id: String?
    public var type: String?
    public var function: FunctionCall?

    public init(index: Int? = nil, id: String? = nil, type: String? = "function", function: FunctionCall? = nil) {
        self.index = index
        self.id = id
        self.type = type
        self.function = function
    }

    public struct FunctionCall: Codable, Sendable, Hashable {
        public var name: String?
        /// The arguments as a JSON text (possibly a fragment in a stream).
        public var arguments: String?
        public init(name: String? = nil, arguments: String? = nil) {
            self.name = name
            self.arguments = arguments
        }
    }
}
