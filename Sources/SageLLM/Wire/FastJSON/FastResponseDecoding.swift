import struct Foundation.Data

/// The common shape of a non-streamed chat completion, read straight from its bytes (a
/// Foundation JSONDecoder pass costs tens of microseconds for one). Anything less common
/// (content parts, tool calls, logprobs, an error object) makes the fast path decline, and
/// JSONDecoder reads it: the result is the same either way, and so are the errors.
extension ChatCompletionResponse: FastJSONDecodable {
    package static func fastDecode(_ bytes: UnsafeRawBufferPointer) -> ChatCompletionResponse? {
        var reader = JSONReader(bytes)
        var response = ChatCompletionResponse(id: "", object: "chat.completion", model: "", choices: [])
        do {
            try reader.readObject { reader, key in
                if key.equals("id") {
                    response.id = try reader.readNull() ? "" : try reader.readString()
                } else if key.equals("object") {
                    response.object = try reader.readNull() ? "chat.completion" : try reader.readString()
                    if response.object == "error" { throw JSONReader.Unsupported() }
                } else if key.equals("created") {
                    response.created = try reader.readNull() ? nil : try reader.readInt()
                } else if key.equals("model") {
                    response.model = try reader.readNull() ? "" : try reader.readString()
                } else if key.equals("choices") {
                    if try reader.readNull() { return }
                    try reader.readArray { reader in response.choices.append(try Choice.read(&reader)) }
                } else if key.equals("usage") {
                    response.usage = try reader.readNull() ? nil : try Usage.read(&reader)
                } else if key.equals("system_fingerprint") {
                    response.systemFingerprint = try reader.readNull() ? nil : try reader.readString()
                } else if key.equals("error") {
                    throw JSONReader.Unsupported()
                } else {
                    // A vendor member (`kv_transfer_params`, `timings`): kept as it is.
                    response.extraFields[String(decoding: key, as: UTF8.self)] = try reader.readValue()
                }
            }
            return reader.atEnd() ? response : nil
        } catch {
            return nil
        }
    }
}

extension ChatCompletionResponse.Choice {
    fileprivate static func read(_ reader: inout JSONReader) throws -> Self {
        var choice = Self(index: 0, message: ChatMessage(role: .assistant, content: nil), finishReason: nil)
        try reader.readObject { reader, key in
            if key.equals("index") {
                choice.index = try reader.readNull() ? 0 : try reader.readInt()
            } else if key.equals("finish_reason") {
                choice.finishReason = try reader.readNull() ? nil : try reader.readString()
            } else if key.equals("message") {
                if try reader.readNull() { return }
                choice.message = try ChatMessage.read(&reader)
            } else if key.equals("logprobs") {
                guard try reader.readNull() else { throw JSONReader.Unsupported() }  // JSONDecoder keeps logprobs
            } else {
                try reader.skipValue()
            }
        }
        return choice
    }
}

extension ChatMessage {
    /// A message whose content is text (or null); tool calls and content parts decline.
    fileprivate static func read(_ reader: inout JSONReader) throws -> ChatMessage {
        var role: Role?
        var message = ChatMessage(role: .assistant, content: nil)
        try reader.readObject { reader, key in
            if key.equals("role") {
                role = Role(rawValue: try reader.readString())
            } else if key.equals("content") {
                message.content = try reader.readNull() ? nil : .text(try reader.readString())
            } else if key.equals("reasoning_content") {
                message.reasoningContent = try reader.readNull() ? nil : try reader.readString()
            } else if key.equals("name") {
                message.name = try reader.readNull() ? nil : try reader.readString()
            } else if key.equals("tool_call_id") {
                message.toolCallID = try reader.readNull() ? nil : try reader.readString()
            } else if key.equals("tool_calls") {
                if try reader.readNull() { return }
                try reader.readArray { _ in throw JSONReader.Unsupported() }  // JSONDecoder reads tool calls
                message.toolCalls = []
            } else {
                try reader.skipValue()
            }
        }
        guard let role else { throw JSONReader.Unsupported() }  // JSONDecoder says what is missing
        message.role = role
        return message
    }
}

extension JSONReader {
    /// Any value, as a ``JSONValue`` (its bytes are read by JSONDecoder: vendor members are rare).
    mutating func readValue() throws -> JSONValue {
        skipWhitespace()
        let start = index
        try skipValue()
        let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
        return try BoundedJSONDecoder().decode(JSONValue.self, from: Data(slice))
    }
}
