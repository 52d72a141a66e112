/// The JSON of etcd's HTTP gateway, as far as discovery and registration use it
/// (etcd's `rpc.proto`, written by grpc-gateway: snake_case, bytes in base64, 64-bit numbers
/// as strings, fields at their default value left out).
enum EtcdWire {
    /// A 64-bit number, written as a string and read from a string or a number.
    struct Number: Codable, Sendable, Hashable {
        var value: Int64

        init(_ value: Int64) { self.value = value }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int64.self) {  // not a number: read as text below
                value = number
                return
            }
            let text = try container.decode(String.self)
            guard let number = Int64(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a 64-bit integer")
            }
            value = number
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(String(value))
        }
    }

    struct Header: Decodable, Sendable {
        var revision: Number?
    }

    struct KeyValue: Decodable, Sendable {
        var key: String?
        var value: String?
        var modRevision: Number?
        var lease: Number?

        enum CodingKeys: String, CodingKey { case key, value, modRevision = "mod_revision", lease }
    }

    struct RangeRequest: Encodable {
        var key: String
        var rangeEnd: String?

        enum CodingKeys: String, CodingKey { case key, rangeEnd = "range_end" }
    }

    struct RangeResponse: Decodable {
        var header: Header?
        var kvs: [KeyValue]?
    }

    struct PutRequest: Encodable {
        var key: String
        var value: String
        var lease: Number?
    }

    /// An answer whose content does not matter.
    struct Empty: Decodable {}

    struct LeaseRequest: Encodable {
        var id: Number?
        var ttl: Number?

        enum CodingKeys: String, CodingKey { case id = "ID", ttl = "TTL" }
    }

    struct LeaseResponse: Decodable {
        var id: Number?
        var ttl: Number?

        enum CodingKeys: String, CodingKey { case id = "ID", ttl = "TTL" }
    }

    /// `/v3/lease/keepalive` streams its answer, one `result` per request.
    struct KeepAliveResponse: Decodable {
        var result: LeaseResponse?
    }

    struct WatchRequest: Encodable {
        struct Create: Encodable {
            var key: String
            var rangeEnd: String
            var startRevision: Number

            enum CodingKeys: String, CodingKey { case key, rangeEnd = "range_end", startRevision = "start_revision" }
        }

        var createRequest: Create

        enum CodingKeys: String, CodingKey { case createRequest = "create_request" }
    }

    /// One line of a watch: a `result`, or an `error` that ends it.
    struct WatchEnvelope: Decodable {
        struct Failure: Decodable {
            var message: String?
        }

        var result: WatchResponse?
        var error: Failure?
    }

    struct WatchResponse: Decodable, Sendable {
        struct Event: Decodable, Sendable {
            /// `DELETE`; a put is the default and so is left out.
            var type: String?
            var kv: KeyValue?
        }

        var header: Header?
        var created: Bool?
        var canceled: Bool?
        /// Set when the watch asked for a revision that was compacted away.
        var compactRevision: Number?
        var cancelReason: String?
        var events: [Event]?

        enum CodingKeys: String, CodingKey {
            case header, created, canceled, compactRevision = "compact_revision", cancelReason = "cancel_reason", events
        }
    }
}
