import SageLLM

/// The one error type of the `SageControlPlane` module.
public struct ControlPlaneError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let name: String
        public var description: String { name }
        /// No instance serves the model, or every one is unhealthy or drained.
        public static let noInstance = Code(name: "no instance")
        /// The admission queue was full.
        public static let queueFull = Code(name: "queue full")
        /// The request waited in the queue longer than allowed.
        public static let queueTimeout = Code(name: "queue timeout")
        /// The request's SLO deadline could no longer be met, so it was shed.
        public static let deadlineUnreachable = Code(name: "deadline unreachable")
        /// The caller cancelled the request while it waited.
        public static let cancelled = Code(name: "cancelled")
        /// The instance failed the request (see ``underlying``).
        public static let instanceFailed = Code(name: "instance failed")
        /// A setting or instance definition is wrong (see ``field``).
        public static let invalidConfiguration = Code(name: "invalid configuration")
        /// The control plane was shut down.
        public static let shutDown = Code(name: "shut down")
    }

    public var code: Code
    public var message: String
    public var instanceID: String?
    public var field: String?
    public var file: String?
    /// The instance's error, when one failed the request: typed, with its status, the
    /// server's message and body, and `retryAfter` when the server sent one.
    public var underlying: SageLLMError?

    public init(_ code: Code, _ message: String, instanceID: String? = nil, field: String? = nil, file: String? = nil) {
        self.code = code
        self.message = message
        self.instanceID = instanceID
        self.field = field
        self.file = file
    }

    public var description: String {
        var details: [String] = []
        if let instanceID { details.append("instance \(instanceID)") }
        if let field { details.append("field \(field)") }
        if let file { details.append("file \(file)") }
        if let underlying { details.append("cause: \(underlying)") }
        return "SageControlPlane \(code): \(message)" + (details.isEmpty ? "" : " (" + details.joined(separator: "; ") + ")")
    }
}
