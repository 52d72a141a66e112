import Foundation
import NIOCore

/// What a relay needs from an OpenAI request body to route it, read without decoding the
/// rest: the body itself goes on unchanged.
package struct RequestRoutingFields: Sendable, Equatable {
    package var model: String?
    package var stream = false
    /// `max_completion_tokens`, else `max_tokens`.
    package var maxTokens: Int?
    /// vLLM's body field `priority` (lower is served first there).
    package var priority: Int?
    /// The caller's end-user id, an affinity key.
    package var user: String?
    /// The first message's text (chat) or the prompt (completions), for prefix keys.
    package var promptStart: String?

    package init() {}

    /// A body that is not a JSON object, or a routing field of the wrong type or out of
    /// range: what is wrong and which field (`param`, nil for the body as a whole).
    package struct Refusal: Error, Sendable, Equatable {
        package var message: String
        package var param: String?
    }

    /// Reads the routing fields of `body`.
    package static func read(_ body: ByteBuffer) throws(Refusal) -> RequestRoutingFields {
        let fast = body.withUnsafeReadableBytes { bytes in try? readFast(bytes) }
        let fields: RequestRoutingFields
        if let fast { fields = fast } else { fields = try readWithFoundation(body) }
        if let maxTokens = fields.maxTokens, maxTokens < 1 {
            throw Refusal(message: "max_tokens must be at least 1, got \(maxTokens)", param: "max_tokens")
        }
        return fields
    }

    /// The usual case: a well-formed object whose routing fields have their expected types.
    /// Anything else throws, and Foundation then reads the body to say exactly what is wrong.
    private static func readFast(_ bytes: UnsafeRawBufferPointer) throws -> RequestRoutingFields {
        var reader = JSONReader(bytes)
        var fields = RequestRoutingFields()
        var completionTokens: Int?
        try reader.readObject { reader, key in
            if key.equals("model") {
                fields.model = try reader.readString()
            } else if key.equals("stream") {
                fields.stream = try reader.readBool()
            } else if key.equals("max_tokens") {
                fields.maxTokens = try reader.readNull() ? nil : try reader.readInt()
            } else if key.equals("max_completion_tokens") {
                completionTokens = try reader.readNull() ? nil : try reader.readInt()
            } else if key.equals("priority") {
                fields.priority = try reader.readNull() ? nil : try reader.readInt()
            } else if key.equals("user") {
                fields.user = try reader.readNull() ? nil : try reader.readString()
            } else if key.equals("prompt") {
                if try reader.peek() == UInt8(ascii: "\"") { fields.promptStart = try reader.readString() } else { try reader.skipValue() }
            } else if key.equals("messages") {
                try reader.readArray { reader in
                    guard fields.promptStart == nil else { return try reader.skipValue() }
                    try reader.readObject { reader, member in
                        if member.equals("content"), try reader.peek() == UInt8(ascii: "\"") {
                            fields.promptStart = try reader.readString()
                        } else {
                            try reader.skipValue()
                        }
                    }
                }
            } else {
                try reader.skipValue()
            }
        }
        guard reader.atEnd() else { throw JSONReader.Unsupported() }
        if let completionTokens { fields.maxTokens = completionTokens }
        return fields
    }

    private static func readWithFoundation(_ body: ByteBuffer) throws(Refusal) -> RequestRoutingFields {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView), options: [.fragmentsAllowed])
        } catch {
            throw Refusal(message: "the body is not valid JSON: \(Self.describe(error))", param: nil)
        }
        guard let members = object as? [String: Any] else {
            throw Refusal(message: "the body must be a JSON object", param: nil)
        }
        var fields = RequestRoutingFields()
        func string(_ key: String) throws(Refusal) -> String? {
            guard let value = members[key], !(value is NSNull) else { return nil }
            guard let text = value as? String else { throw Refusal(message: "'\(key)' must be a string", param: key) }
            return text
        }
        func integer(_ key: String) throws(Refusal) -> Int? {
            guard let value = members[key], !(value is NSNull) else { return nil }
            guard let number = value as? NSNumber, !(value is Bool), let exact = Int(exactly: number.doubleValue) else {
                throw Refusal(message: "'\(key)' must be an integer", param: key)
            }
            return exact
        }
        fields.model = try string("model")
        if let stream = members["stream"], !(stream is NSNull) {
            guard let flag = stream as? Bool else { throw Refusal(message: "'stream' must be true or false", param: "stream") }
            fields.stream = flag
        }
        let completionTokens = try integer("max_completion_tokens")
        let maxTokens = try integer("max_tokens")
        fields.maxTokens = completionTokens ?? maxTokens
        fields.priority = try integer("priority")
        fields.user = try string("user")
        if let prompt = members["prompt"] as? String { fields.promptStart = prompt }
        if let messages = members["messages"] as? [Any] {
            fields.promptStart = messages.lazy.compactMap { ($0 as? [String: Any])?["content"] as? String }.first
        }
        return fields
    }

    /// Foundation's parse error, with where it happened when it says.
    private static func describe(_ error: any Error) -> String {
        let described = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
        return described ?? error.localizedDescription
    }
}
