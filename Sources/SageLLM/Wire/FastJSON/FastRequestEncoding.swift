import NIOCore

/// The chat request, written straight as JSON: the same members, in the same order, with the
/// same rule that ``ChatCompletionRequest/extraBody`` wins over a typed field. Messages with
/// content parts or tool calls make it decline; JSONEncoder writes those.
extension ChatCompletionRequest {
    func fastEncode() -> ByteBuffer? {
        var writer = JSONWriter(capacity: 256 + messages.reduce(0) { $0 + ($1.content.map { _ in 64 } ?? 0) + $1.text.utf8.count })
        let extra = extraBody
        do {
            writer.beginObject()
            if let model, extra["model"] == nil {
                writer.key("model")
                writer.string(model)
            }
            if extra["messages"] == nil {
                writer.key("messages")
                writer.beginArray()
                for message in messages { try message.write(&writer) }
                writer.endArray()
            }
            try writer.member("temperature", temperature, unlessIn: extra) { try $0.double($1) }
            try writer.member("top_p", topP, unlessIn: extra) { try $0.double($1) }
            try writer.member("max_tokens", maxTokens, unlessIn: extra) { $0.int($1) }
            try writer.member("max_completion_tokens", maxCompletionTokens, unlessIn: extra) { $0.int($1) }
            try writer.member("n", n, unlessIn: extra) { $0.int($1) }
            try writer.member("stream", stream, unlessIn: extra) { $0.bool($1) }
            try writer.member("stream_options", streamOptions, unlessIn: extra) { writer, options in
                writer.beginObject()
                if let include = options.includeUsage {
                    writer.key("include_usage")
                    writer.bool(include)
                }
                if let continuous = options.continuousUsageStats {
                    writer.key("continuous_usage_stats")
                    writer.bool(continuous)
                }
                writer.endObject()
            }
            try writer.member("stop", stop, unlessIn: extra) { writer, stops in
                writer.beginArray()
                for stop in stops { writer.string(stop) }
                writer.endArray()
            }
            try writer.member("logprobs", logprobs, unlessIn: extra) { $0.bool($1) }
            try writer.member("top_logprobs", topLogprobs, unlessIn: extra) { $0.int($1) }
            try writer.member("seed", seed, unlessIn: extra) { $0.int($1) }
            try writer.member("presence_penalty", presencePenalty, unlessIn: extra) { try $0.double($1) }
            try writer.member("frequency_penalty", frequencyPenalty, unlessIn: extra) { try $0.double($1) }
            try writer.member("user", user, unlessIn: extra) { $0.string($1) }
            try writer.member("tools", tools, unlessIn: extra) { try $0.value($1) }
            try writer.member("tool_choice", toolChoice, unlessIn: extra) { try $0.value($1) }
            try writer.member("response_format", responseFormat, unlessIn: extra) { try $0.value($1) }
            for (name, value) in extra {
                writer.key(name)
                try writer.value(value)
            }
            writer.endObject()
            return writer.buffer
        } catch {
            return nil
        }
    }
}

extension ChatMessage {
    fileprivate func write(_ writer: inout JSONWriter) throws {
        guard toolCalls == nil else { throw JSONWriter.Unsupported() }
        writer.beginObject()
        writer.key("role")
        writer.string(role.rawValue)
        switch content {
        case .text(let text):
            writer.key("content")
            writer.string(text)
        case .parts: throw JSONWriter.Unsupported()
        case nil: break
        }
        if let name {
            writer.key("name")
            writer.string(name)
        }
        if let toolCallID {
            writer.key("tool_call_id")
            writer.string(toolCallID)
        }
        if let reasoningContent {
            writer.key("reasoning_content")
            writer.string(reasoningContent)
        }
        writer.endObject()
    }
}

extension JSONWriter {
    /// Writes `name` and `value` unless the value is nil or the extra body has the member.
    fileprivate mutating func member<Value>(
        _ name: StaticString, _ value: Value?, unlessIn extra: [String: JSONValue], _ write: (inout JSONWriter, Value) throws -> Void
    ) throws {
        guard let value, extra.isEmpty || extra[name.description] == nil else { return }
        key(name)
        try write(&self, value)
    }
}
