/// The one error type of the `SageLLM` module.
///
/// Every error says what failed and where: the endpoint, the HTTP status and the
/// server's own message, the request id, the time limit and the time spent, or the
/// configuration field. Switch on ``code``; print ``description`` for people.
/// API keys never appear in it.
///
/// ```swift
/// do { _ = try await client.chat("hi") }
/// catch let error as SageLLMError where error.code == .httpStatus && error.status == 429 { ... }
/// ```
public struct SageLLMError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: String, Sendable {
            case connectionFailed = "connection failed"
            case timeout
            case httpStatus = "HTTP error status"
            case decoding = "undecodable response"
            case streamInterrupted = "stream interrupted"
            case cancelled
            case invalidConfiguration = "invalid configuration"
            case invalidRequest = "invalid request"
        }
        fileprivate let value: Value
        public var description: String { value.rawValue }

        /// The server could not be reached (refused, DNS, TLS, reset before any response).
        public static let connectionFailed = Code(value: .connectionFailed)
        /// A time limit ran out: connect, idle read, or the whole request (see ``timeoutKind``).
        public static let timeout = Code(value: .timeout)
        /// The server answered with a non-success status (see ``status`` and ``serverMessage``).
        public static let httpStatus = Code(value: .httpStatus)
        /// The server's answer could not be read as the protocol says (see ``snippet``).
        public static let decoding = Code(value: .decoding)
        /// A streamed response ended before it was complete, after part of it had arrived.
        public static let streamInterrupted = Code(value: .streamInterrupted)
        /// The caller cancelled the request.
        public static let cancelled = Code(value: .cancelled)
        /// A setting is wrong (see ``field``).
        public static let invalidConfiguration = Code(value: .invalidConfiguration)
        /// The request itself cannot be sent (see ``reason``).
        public static let invalidRequest = Code(value: .invalidRequest)
    }

    /// Which time limit ran out.
    public enum TimeoutKind: String, Sendable {
        case connect = "connect timeout"
        case idleRead = "read timeout (no bytes received)"
        case total = "request deadline"
    }

    public var code: Code
    /// What happened, in words.
    public var reason: String
    /// The URL the request went to.
    public var endpoint: String?
    /// The HTTP status, for ``Code/httpStatus``.
    public var status: Int?
    /// The server's own error message, parsed from its error body.
    public var serverMessage: String?
    /// The server's error `type` or `code`, when it sent one.
    public var serverErrorType: String?
    /// The start of the offending body or event text (at most 512 characters).
    public var snippet: String?
    /// An error response's whole body (read up to 64 KiB), for ``Code/httpStatus``.
    public var responseBody: String?
    /// The `x-request-id` the request was sent with.
    public var requestID: String?
    /// For ``Code/timeout``.
    public var timeoutKind: TimeoutKind?
    public var timeoutLimit: Duration?
    /// Time from the start of the request to the failure.
    public var elapsed: Duration?
    /// The configuration key or request field at fault.
    public var field: String?
    /// The configuration file at fault.
    public var file: String?
    /// How many attempts were made (1 without retries).
    public var attempts: Int = 1
    /// Whether part of a streamed answer had reached the caller before the failure.
    public var receivedPartialOutput: Bool = false
    /// Whether the server had sent its response head (status and headers) before the failure.
    public var receivedResponseHead: Bool = false
    /// Whether the request may have reached the server: it was written on an open connection
    /// (false when connecting failed). A request that may have reached the server is not sent
    /// again unless ``RetryPolicy/retriesAfterSend`` says so.
    public var requestSent: Bool = false
    /// Why the request was not tried again, when the retry policy would otherwise have allowed it.
    public var notRetriedBecause: String?
    /// The lower-level error, as text.
    public var underlying: String?
    /// The `Retry-After` the server asked for, when it sent one.
    public var retryAfter: Duration?

    public init(code: Code, reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String {
        var text = "SageLLM \(code): \(reason)"
        var details: [String] = []
        if let endpoint { details.append("endpoint \(endpoint)") }
        if let status { details.append("status \(status)") }
        if let serverMessage { details.append("server said: \(serverMessage)") }
        if let serverErrorType { details.append("server error type \(serverErrorType)") }
        if let timeoutKind, let timeoutLimit {
            details.append("\(timeoutKind.rawValue) \(Self.format(timeoutLimit))")
        }
        if let elapsed { details.append("after \(Self.format(elapsed))") }
        if let field { details.append("field \(field)") }
        if let file { details.append("file \(file)") }
        if attempts > 1 { details.append("\(attempts) attempts") }
        if receivedPartialOutput { details.append("part of the answer had already been delivered, so it was not retried") }
        if let notRetriedBecause { details.append("not retried: \(notRetriedBecause)") }
        if let requestID { details.append("request id \(requestID)") }
        if let underlying { details.append("cause: \(underlying)") }
        if let snippet, serverMessage == nil || snippet != serverMessage { details.append("body: \(snippet)") }
        if !details.isEmpty { text += " (" + details.joined(separator: "; ") + ")" }
        return text
    }

    package static func format(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : "\((seconds * 100).rounded() / 100) s"
    }

    /// Keeps at most 512 characters of a body or event, for messages.
    static func snippet(_ text: String) -> String {
        text.count <= 512 ? text : String(text.prefix(512)) + "..."
    }
}

extension SageLLMError {
    /// The seed's `LLMAPIError`: the server answered with an error.
    public struct APIErrorDetails: Sendable {
        public var endpoint: String?
        public var status: Int?
        /// The error body as the server sent it (up to 64 KiB).
        public var body: String?
        public var requestID: String?
    }

    /// The seed's `LLMTimeoutError`: a time limit ran out.
    public struct TimeoutDetails: Sendable {
        public var endpoint: String?
        public var kind: TimeoutKind?
        public var limit: Duration?
        public var elapsed: Duration?
    }

    /// The API-error view of this error, when the server answered with an error status.
    public var apiError: APIErrorDetails? {
        guard code == .httpStatus else { return nil }
        return APIErrorDetails(endpoint: endpoint, status: status, body: responseBody ?? snippet, requestID: requestID)
    }

    /// The timeout view of this error, when a time limit ran out.
    public var timeoutError: TimeoutDetails? {
        guard code == .timeout else { return nil }
        return TimeoutDetails(endpoint: endpoint, kind: timeoutKind, limit: timeoutLimit, elapsed: elapsed)
    }
}

extension SageLLMError {
    package static func invalidConfiguration(field: String, _ reason: String) -> SageLLMError {
        var error = SageLLMError(code: .invalidConfiguration, reason: reason)
        error.field = field
        return error
    }

    static func invalidRequest(field: String?, _ reason: String) -> SageLLMError {
        var error = SageLLMError(code: .invalidRequest, reason: reason)
        error.field = field
        return error
    }

    static func decoding(_ what: String, snippet: String, endpoint: String?, requestID: String?, underlying: String?)
        -> SageLLMError
    {
        var error = SageLLMError(code: .decoding, reason: "could not decode \(what)")
        error.snippet = Self.snippet(snippet)
        error.endpoint = endpoint
        error.requestID = requestID
        error.underlying = underlying
        return error
    }
}
