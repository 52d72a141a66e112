/// The one error type of the `SageBenchmark` module: what failed, and where.
public struct BenchmarkError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let name: String
        public var description: String { name }
        /// A setting, flag or argument is wrong (see ``field``).
        public static let invalidArgument = Code(name: "invalid argument")
        /// A file could not be read or written, or holds something else than expected (see ``file``).
        public static let file = Code(name: "file")
        /// The backend could not be reached or started.
        public static let backendUnavailable = Code(name: "backend unavailable")
    }

    public var code: Code
    public var message: String
    public var field: String?
    public var file: String?

    public init(_ code: Code, _ message: String, field: String? = nil, file: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.file = file
    }

    public var description: String {
        var details: [String] = []
        if let field { details.append("field \(field)") }
        if let file { details.append("file \(file)") }
        return "SageBenchmark \(code): \(message)" + (details.isEmpty ? "" : " (" + details.joined(separator: "; ") + ")")
    }
}
