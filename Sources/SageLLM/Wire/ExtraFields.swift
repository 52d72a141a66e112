/// A coding key for JSON members whose names are only known at run time.
struct DynamicCodingKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { self.stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == DynamicCodingKey {
    /// Every member of the object whose name is not in `known`, decoded as JSON.
    /// This is how responses keep vendor fields such as `kv_transfer_params`.
    func decodeUnknownMembers(excluding known: Set<String>) throws -> [String: JSONValue] {
        var extra: [String: JSONValue] = [:]
        for key in allKeys where !known.contains(key.stringValue) {
            extra[key.stringValue] = try decode(JSONValue.self, forKey: key)
        }
        return extra
    }
}

extension KeyedEncodingContainer where Key == DynamicCodingKey {
    /// Writes the vendor members. They are written after the typed members and
    /// the typed encoder skips any key present here, so an extra member replaces a typed one.
    mutating func encodeExtraMembers(_ extra: [String: JSONValue]) throws {
        for (name, value) in extra {
            try encode(value, forKey: DynamicCodingKey(name))
        }
    }

    /// Encodes `value` under `key` unless it is nil or the extra body overrides it.
    mutating func encodeField<Value: Encodable>(
        _ value: Value?, _ key: String, unlessIn extra: [String: JSONValue]
    ) throws {
        guard let value, extra[key] == nil else { return }
        try encode(value, forKey: DynamicCodingKey(key))
    }
}

private enum ErrorObjectKey: String, CodingKey { case error, object }

/// Throws when the object is an error body (`{"error": ...}` or `{"object": "error"}`) rather
/// than the expected response: every response field is optional, so an error would otherwise
/// decode as an empty response.
func rejectErrorObject(_ decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: ErrorObjectKey.self)
    if c.contains(.error) || (try? c.decodeIfPresent(String.self, forKey: .object)) == "error" {  // a non-string object is not an error marker
        throw DecodingError.dataCorrupted(
            DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "the server sent an error object"))
    }
}
