import struct Foundation.Data

/// A wire type that can be decoded straight from bytes for the common shapes, without
/// Foundation's JSONDecoder (which costs microseconds per streamed event, tens of them per
/// whole response). `nil` means "not a common shape": the caller then uses JSONDecoder, so
/// tolerance and error messages stay the same.
package protocol FastJSONDecodable: Decodable {
    static func fastDecode(_ bytes: UnsafeRawBufferPointer) -> Self?
}

extension FastJSONDecodable {
    /// The fast path, else JSONDecoder.
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws -> Self {
        if let chunk = fastDecode(bytes) { return chunk }
        return try BoundedJSONDecoder().decode(Self.self, from: Data(bytes))
    }
}

/// The members every streamed object has, whatever its choices look like.
protocol StreamEnvelope {
    var id: String { get set }
    var object: String { get set }
    var created: Int? { get set }
    var model: String { get set }
    var usage: Usage? { get set }
}

extension ChatCompletionChunk: StreamEnvelope {}
extension CompletionResponse: StreamEnvelope {}

/// Reads `key` if it is an envelope member (`id`, `object`, `created`, `model`, `usage`) and
/// returns true; an error object makes the fast path decline.
private func readEnvelopeMember<Envelope: StreamEnvelope>(
    _ key: UnsafeRawBufferPointer, _ reader: inout JSONReader, into envelope: inout Envelope
) throws -> Bool {
    if key.equals("id") {
        envelope.id = try reader.readString()
    } else if key.equals("object") {
        envelope.object = try reader.readString()
        if envelope.object == "error" { throw JSONReader.Unsupported() }
    } else if key.equals("created") {
        envelope.created = try reader.readNull() ? nil : try reader.readInt()
    } else if key.equals("model") {
        envelope.model = try reader.readString()
    } else if key.equals("usage") {
        envelope.usage = try reader.readNull() ? nil : try Usage.read(&reader)
    } else if key.equals("error") {
        throw JSONReader.Unsupported()
    } else {
        return false
    }
    return true
}

extension ChatCompletionChunk: FastJSONDecodable {
    package static func fastDecode(_ bytes: UnsafeRawBufferPointer) -> ChatCompletionChunk? {
        var reader = JSONReader(bytes)
        var chunk = ChatCompletionChunk(id: "", model: "", choices: [])
        do {
            try reader.readObject { reader, key in
                if try readEnvelopeMember(key, &reader, into: &chunk) {
                    return
                } else if key.equals("system_fingerprint") {
                    chunk.systemFingerprint = try reader.readNull() ? nil : try reader.readString()
                } else if key.equals("choices") {
                    try reader.readArray { reader in chunk.choices.append(try Choice.read(&reader)) }
                } else {
                    try reader.skipValue()
                }
            }
            return reader.atEnd() ? chunk : nil
        } catch {
            return nil
        }
    }
}

extension ChatCompletionChunk.Choice {
    fileprivate static func read(_ reader: inout JSONReader) throws -> Self {
        var choice = Self(index: 0, delta: .init())
        try reader.readObject { reader, key in
            if key.equals("index") {
                choice.index = try reader.readInt()
            } else if key.equals("finish_reason") {
                choice.finishReason = try reader.readNull() ? nil : try reader.readString()
            } else if key.equals("delta") {
                if try reader.readNull() { return }
                try reader.readObject { reader, key in
                    if key.equals("content") {
                        choice.delta.content = try reader.readNull() ? nil : try reader.readString()
                    } else if key.equals("role") {
                        choice.delta.role = try reader.readNull() ? nil : ChatMessage.Role(rawValue: try reader.readString())
                    } else if key.equals("reasoning_content") {
                        choice.delta.reasoningContent = try reader.readNull() ? nil : try reader.readString()
                    } else if key.equals("tool_calls") {
                        guard try reader.readNull() else { throw JSONReader.Unsupported() }  // JSONDecoder reads tool calls
                    } else {
                        try reader.skipValue()
                    }
                }
            } else if key.equals("logprobs") {
                guard try reader.readNull() else { throw JSONReader.Unsupported() }  // JSONDecoder keeps logprobs
            } else {
                try reader.skipValue()
            }
        }
        return choice
    }
}

extension CompletionResponse: FastJSONDecodable {
    package static func fastDecode(_ bytes: UnsafeRawBufferPointer) -> CompletionResponse? {
        var reader = JSONReader(bytes)
        var chunk = CompletionResponse(id: "", model: "", choices: [])
        do {
            try reader.readObject { reader, key in
                if try readEnvelopeMember(key, &reader, into: &chunk) {
                    return
                } else if key.equals("choices") {
                    try reader.readArray { reader in
                        var choice = Choice(index: 0, text: "", finishReason: nil)
                        try reader.readObject { reader, key in
                            if key.equals("index") {
                                choice.index = try reader.readInt()
                            } else if key.equals("text") {
                                choice.text = try reader.readNull() ? "" : try reader.readString()
                            } else if key.equals("finish_reason") {
                                choice.finishReason = try reader.readNull() ? nil : try reader.readString()
                            } else if key.equals("logprobs") {
                                guard try reader.readNull() else { throw JSONReader.Unsupported() }
                            } else {
                                try reader.skipValue()
                            }
                        }
                        chunk.choices.append(choice)
                    }
                } else {
                    // Unknown members are kept in extraFields, which JSONDecoder fills.
                    throw JSONReader.Unsupported()
                }
            }
            return reader.atEnd() ? chunk : nil
        } catch {
            return nil
        }
    }
}

extension Usage {
    static func read(_ reader: inout JSONReader) throws -> Usage {
        var prompt = 0
        var completion = 0
        var total: Int?
        var promptDetails: TokenDetails?
        var completionDetails: TokenDetails?
        func details(_ reader: inout JSONReader) throws -> TokenDetails? {
            if try reader.readNull() { return nil }
            var counts: [String: Int] = [:]
            try reader.readObject { reader, key in
                let next = try reader.peek()
                if next == UInt8(ascii: "n") || next == UInt8(ascii: "-")
                    || (next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9"))
                {
                    if try reader.readNull() { return }
                    counts[String(decoding: key, as: UTF8.self)] = try reader.readInt()
                } else {
                    try reader.skipValue()
                }
            }
            return TokenDetails(counts)
        }
        try reader.readObject { reader, key in
            if key.equals("prompt_tokens") {
                prompt = try reader.readNull() ? 0 : try reader.readInt()
            } else if key.equals("completion_tokens") {
                completion = try reader.readNull() ? 0 : try reader.readInt()
            } else if key.equals("total_tokens") {
                total = try reader.readNull() ? nil : try reader.readInt()
            } else if key.equals("prompt_tokens_details") {
                promptDetails = try details(&reader)
            } else if key.equals("completion_tokens_details") {
                completionDetails = try details(&reader)
            } else {
                try reader.skipValue()
            }
        }
        return Usage(
            promptTokens: prompt, completionTokens: completion, totalTokens: total,
            promptTokensDetails: promptDetails, completionTokensDetails: completionDetails)
    }
}
