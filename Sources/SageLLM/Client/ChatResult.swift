/// The outcome of a non-streamed chat request.
public struct ChatResult: Sendable {
    /// The first choice's text.
    public var text: String
    /// The whole response, including vendor fields in `extraFields`.
    public var response: ChatCompletionResponse
    public var usage: Usage?
    public var finishReason: String?
    /// Time from the call to having the whole response: waiting for a slot or a rate-limit
    /// turn, every attempt and every backoff included.
    public var latency: Duration
    /// The `x-request-id` of the attempt that succeeded (`<id>-retryN` after retries).
    public var requestID: String
    public var model: String
    /// Attempts it took (1 without retries).
    public var attempts: Int = 1
}

/// The outcome of a non-streamed text completion.
public struct CompletionResult: Sendable {
    public var text: String
    public var response: CompletionResponse
    public var usage: Usage?
    public var finishReason: String?
    public var latency: Duration
    public var requestID: String
    public var model: String
    public var attempts: Int = 1
}

/// Collects a chat stream into its text, usage and finish reason.
///
/// ```swift
/// var answer = ChatStreamAccumulator()
/// for try await chunk in client.streamChat(messages) { answer.add(chunk); print(chunk.contentDelta, terminator: "") }
/// print(answer.usage?.completionTokens ?? 0)
/// ```
public struct ChatStreamAccumulator: Sendable {
    /// The most text (and, separately, reasoning) kept, in UTF-8 bytes; what arrives beyond it
    /// is counted but not kept, and ``truncated`` is set. Default 16 MiB.
    public let maximumTextBytes: Int
    public private(set) var text = ""
    public private(set) var reasoning = ""
    /// Whether text or reasoning went beyond ``maximumTextBytes`` and was cut there.
    public private(set) var truncated = false
    public private(set) var usage: Usage?
    public private(set) var finishReason: String?
    public private(set) var model: String?
    public private(set) var id: String?
    /// Events that carried at least one choice.
    public private(set) var choiceEvents = 0
    /// Events that added content or reasoning text.
    public private(set) var contentEvents = 0

    public init(maximumTextBytes: Int = 16 * 1024 * 1024) {
        self.maximumTextBytes = max(0, maximumTextBytes)
    }

    /// Appends `piece` to `kept` up to `cap` bytes; returns whether it was cut.
    private static func keep(_ piece: String, in kept: inout String, cap: Int) -> Bool {
        let room = cap - kept.utf8.count
        if piece.utf8.count <= room {
            kept += piece
            return false
        } else {
            // Whole characters only, so the kept text stays valid.
            var used = 0
            for character in piece {
                let size = character.utf8.count
                if used + size > room { break }
                kept.append(character)
                used += size
            }
            return true
        }
    }

    public mutating func add(_ chunk: ChatCompletionChunk) {
        if id == nil, !chunk.id.isEmpty { id = chunk.id }
        if model == nil, !chunk.model.isEmpty { model = chunk.model }
        if let usage = chunk.usage { self.usage = usage }
        guard !chunk.choices.isEmpty else { return }
        choiceEvents += 1
        for choice in chunk.choices where choice.index == 0 {
            var added = false
            if let content = choice.delta.content, !content.isEmpty {
                if Self.keep(content, in: &text, cap: maximumTextBytes) { truncated = true }
                added = true
            }
            if let reasoning = choice.delta.reasoningContent, !reasoning.isEmpty {
                if Self.keep(reasoning, in: &self.reasoning, cap: maximumTextBytes) { truncated = true }
                added = true
            }
            if added { contentEvents += 1 }
            if let reason = choice.finishReason { finishReason = reason }
        }
    }
}

/// A whole answer of the server: its usage and why generation stopped.
protocol FinishedResponse: Decodable, Sendable {
    var usage: Usage? { get }
    /// The first choice's finish reason.
    var finishReason: String? { get }
}

extension ChatCompletionResponse: FinishedResponse {
    var finishReason: String? { choices.first?.finishReason }
}

extension CompletionResponse: FinishedResponse {
    var finishReason: String? { choices.first?.finishReason }
}
