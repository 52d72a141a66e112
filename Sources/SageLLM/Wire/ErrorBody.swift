import struct Foundation.Data
import class Foundation.JSONDecoder

/// An error body as OpenAI-compatible servers send it.
///
/// Accepted shapes: `{"error": {"message", "type", "param", "code"}}` with a numeric
/// or string `code`; vLLM's flat `{"object": "error", "message", "type", "code"}`;
/// and plain text (vllm-router), kept as the message.
package struct ErrorBody: Codable, Sendable, Hashable {
    package var message: String
    package var type: String?
    package var param: String?
    /// The `code` as text, whether the server sent a number or a string.
    package var code: String?

    package init(message: String, type: String? = nil, param: String? = nil, code: String? = nil) {
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// Reads any of the accepted shapes; nil for an empty body.
    package static func parse(_ bytes: some Collection<UInt8>) -> ErrorBody? {
        let data = Data(bytes)
        if let value = try? BoundedJSONDecoder().decode(JSONValue.self, from: data),  // not JSON: plain text below
            let body = ErrorBody(json: value)
        {
            return body
        }
        let text = String(decoding: data, as: UTF8.self).trimmingWhitespace()
        return text.isEmpty ? nil : ErrorBody(message: text)
    }

    /// Reads `{"error": {...}}` or the flat form from parsed JSON; nil when neither.
    package init?(json: JSONValue) {
        let fields: JSONValue
        if let nested = json["error"], nested.objectValue != nil {
            fields = nested
        } else if let message = json["error"]?.stringValue {
            fields = .object(["message": .string(message)])
        } else if json["message"] != nil {
            fields = json
        } else {
            return nil
        }
        guard let message = fields["message"]?.stringValue ?? fields["detail"]?.stringValue else { return nil }
        self.message = message
        self.type = fields["type"]?.stringValue
        self.param = fields["param"]?.stringValue
        switch fields["code"] {
        case .int(let code)?: self.code = String(code)
        case .string(let code)?: self.code = code
        case .double(let code)?: self.code = Int(exactly: code).map(String.init) ?? String(code)
        default: self.code = nil
        }
    }

    /// The wire form `{"error": {...}}`.
    package var jsonObject: JSONValue {
        var fields: [String: JSONValue] = ["message": .string(message)]
        fields["type"] = type.map(JSONValue.string) ?? .null
        fields["param"] = param.map(JSONValue.string) ?? .null
        if let code { fields["code"] = Int(code).map(JSONValue.int) ?? .string(code) } else { fields["code"] = .null }
        return ["error": .object(fields)]
    }
}

extension StringProtocol {
    /// Drops every trailing `suffix`.
    func trimmingSuffix(_ suffix: String) -> String {
        var text = String(self)
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }

    package func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
