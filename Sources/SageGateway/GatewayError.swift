import Foundation
import SageControlPlane
import SageLLM

/// The one error type of the `SageGateway` module: a request the gateway refused or could
/// not serve, with the HTTP status and the OpenAI error shape its caller receives, or a
/// gateway that could not start.
public struct GatewayError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let name: String
        public var description: String { name }
        /// The request is malformed, or a field is missing, of the wrong type or out of range (400).
        public static let invalidRequest = Code(name: "invalid request")
        /// No API key, or one the gateway does not know (401).
        public static let unauthorized = Code(name: "unauthorized")
        /// The key may not do this: use this model, or the admin API (403).
        public static let forbidden = Code(name: "forbidden")
        /// The key is at its concurrency bound or out of requests or tokens for now (429).
        public static let rateLimited = Code(name: "rate limited")
        /// The change conflicts with the state (409: an instance with that id exists).
        public static let conflict = Code(name: "conflict")
        /// No such model or path (404).
        public static let notFound = Code(name: "not found")
        /// The body is over the gateway's limit (413).
        public static let bodyTooLarge = Code(name: "body too large")
        /// The admission queue is full (429).
        public static let queueFull = Code(name: "queue full")
        /// No healthy instance serves the model, or the gateway is draining (503).
        public static let unavailable = Code(name: "unavailable")
        /// The queue wait or the request's deadline ran out (504).
        public static let timeout = Code(name: "timeout")
        /// The instance answered with an error or failed (its status for a 4xx, else 502).
        public static let upstream = Code(name: "upstream")
        /// A gateway setting is wrong (see ``field``).
        public static let invalidConfiguration = Code(name: "invalid configuration")
        /// The gateway's server could not start or failed.
        public static let serverFailed = Code(name: "server failed")
    }

    public var code: Code
    public var message: String
    /// The HTTP status the caller receives.
    public var status: Int
    /// The request field at fault (the OpenAI error's `param`), or the setting.
    public var field: String?
    /// Seconds after which trying again makes sense (`Retry-After`).
    public var retryAfterSeconds: Int?
    /// The instance's own error body, passed through as it is for its 4xx answers.
    public var upstreamBody: String?

    public init(_ code: Code, _ message: String, status: Int, field: String? = nil, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.field = field
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String {
        let answered = code == .invalidConfiguration || code == .serverFailed ? "" : " (\(status))"
        return "SageGateway \(code)\(answered): \(message)" + (field.map { " (field \($0))" } ?? "")
    }

    /// The OpenAI error `type` for the status.
    var openAIType: String {
        switch status {
        case 400, 404, 409, 413: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 429: "rate_limit_error"
        case 504: "timeout_error"
        case 500..<600: "server_error"
        default: "invalid_request_error"
        }
    }

    /// The OpenAI error `code`.
    var openAICode: String {
        switch code {
        case .notFound: field == "model" ? "model_not_found" : "not_found"
        case .unauthorized: "invalid_api_key"
        case .forbidden: field == "model" ? "model_not_allowed" : "permission_denied"
        case .rateLimited: "rate_limit_exceeded"
        case .conflict: "conflict"
        case .bodyTooLarge: "request_too_large"
        case .queueFull: "queue_full"
        case .unavailable: "service_unavailable"
        case .timeout: "timeout"
        case .upstream: "upstream_error"
        default: "invalid_request"
        }
    }

    /// `{"error": {"message", "type", "param", "code"}}`; an instance's own 4xx body is passed
    /// through when it already has that shape.
    var body: [UInt8] {
        if let upstreamBody, upstreamBody.contains("\"error\"") { return Array(upstreamBody.utf8) }
        let error: [String: Any] = ["message": message, "type": openAIType, "param": field ?? NSNull(), "code": openAICode]
        return (try? JSONSerialization.data(withJSONObject: ["error": error], options: [.sortedKeys])).map(Array.init)
            ?? Array(#"{"error":{"message":"internal error","type":"server_error","param":null,"code":"internal"}}"#.utf8)
    }

    /// The same, as one server-sent event (a stream that fails after it started).
    var event: [UInt8] { Array("event: error\ndata: ".utf8) + body + Array("\n\n".utf8) }

    /// What the caller receives when the control plane refused or failed a request.
    init(_ error: ControlPlaneError) {
        switch error.code {
        case .noInstance:
            self.init(.unavailable, error.message, status: 503, retryAfterSeconds: 1)
        case .queueFull:
            self.init(.queueFull, error.message, status: 429, retryAfterSeconds: 1)
        case .queueTimeout, .deadlineUnreachable:
            self.init(.timeout, error.message, status: 504)
        case .shutDown:
            self.init(.unavailable, "the gateway is shutting down", status: 503, retryAfterSeconds: 1)
        case .invalidConfiguration:
            self.init(.invalidRequest, error.message, status: 400, field: error.field)
        case .instanceFailed:
            if let underlying = error.underlying, let status = underlying.status, (400..<500).contains(status) {
                self.init(.upstream, underlying.serverMessage ?? "the instance refused the request", status: status)
                upstreamBody = underlying.responseBody
                retryAfterSeconds = underlying.retryAfter.flatMap { Int(exactly: $0.components.seconds) }
            } else {
                let cause = error.underlying.map { ": \($0.code)" + ($0.status.map { " \($0)" } ?? "") } ?? ""
                self.init(.upstream, "instance \(error.instanceID ?? "?") failed the request\(cause)", status: 502)
            }
        default:
            self.init(.upstream, error.message, status: 502)
        }
    }
}
