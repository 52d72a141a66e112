/// How the client talks HTTP: time limits, the connection pool, headers.
public struct TransportConfiguration: Sendable, Hashable {
    /// Time to establish a TCP (and TLS) connection. Default 5 s.
    public var connectTimeout: Duration
    /// Longest silence while waiting for the response head or the next body bytes. Default 120 s.
    public var readTimeout: Duration
    /// Total time for one whole (non-streamed) request. A stream has a total limit only when
    /// it asks for one (`ChatOptions.timeout`); until its head arrives it keeps to this one.
    /// Default 600 s.
    public var requestTimeout: Duration
    /// Connections per host in the pool (AsyncHTTPClient's default of 8 would cap LLM
    /// concurrency at 8). Default 64.
    public var maximumConnectionsPerHost: Int
    /// How long an idle pooled connection is kept. Default 60 s.
    public var idleConnectionTimeout: Duration
    /// The largest non-streamed response body accepted. Default 64 MiB.
    public var maximumResponseBytes: Int
    /// Headers sent with every request (beside `Authorization` and `x-request-id`).
    public var extraHeaders: [String: String]
    /// What moves the bytes (default: SwiftNIO's HTTP/1.1 for `http://`, AsyncHTTPClient for
    /// `https://`).
    public var engine: Engine
    /// Certificate files for https: a CA bundle to trust, a client certificate and key (mTLS).
    /// Only the `curl` engine takes them; another engine with any set is a configuration error.
    public var tls = TLSFiles()

    /// PEM files for TLS (the `curl` engine).
    public struct TLSFiles: Sendable, Hashable {
        public var caBundlePath: String?
        public var clientCertificatePath: String?
        public var clientKeyPath: String?

        public init(caBundlePath: String? = nil, clientCertificatePath: String? = nil, clientKeyPath: String? = nil) {
            self.caBundlePath = caBundlePath
            self.clientCertificatePath = clientCertificatePath
            self.clientKeyPath = clientKeyPath
        }

        var isEmpty: Bool { caBundlePath == nil && clientCertificatePath == nil && clientKeyPath == nil }
    }

    /// The HTTP engines the transport can use.
    public enum Engine: String, Sendable, Hashable, CaseIterable {
        /// SwiftNIO's HTTP/1.1 for plain `http://` (less CPU per request), AsyncHTTPClient otherwise.
        case automatic
        /// AsyncHTTPClient for every URL (https, HTTP/2).
        case asyncHTTPClient
        /// SwiftNIO's HTTP/1.1 pool; plain `http://` only.
        case swiftNIO
        /// libcurl: proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`), a CA bundle and
        /// client certificates, HTTP/2, and `unix://` sockets. Only in a build with the package
        /// trait `Curl` (`swift build --traits Curl`, needs `libcurl4-openssl-dev`), where the
        /// `sagellm` commands install it; in code, call `CurlTransport.install()` from `SageCurl` first.
        case curl

        /// Its name in settings (`http.transport`, `SAGE_HTTP_TRANSPORT`).
        public var settingName: String { rawValue.lowercased() }

        /// The engine a setting names, in any case.
        public static func named(_ name: String) -> Engine? {
            allCases.first { $0.settingName == name.trimmingWhitespace().lowercased() }
        }
    }

    public init(
        connectTimeout: Duration = .seconds(5), readTimeout: Duration = .seconds(120),
        requestTimeout: Duration = .seconds(600), maximumConnectionsPerHost: Int = 64,
        idleConnectionTimeout: Duration = .seconds(60), maximumResponseBytes: Int = 64 * 1024 * 1024,
        extraHeaders: [String: String] = [:], engine: Engine = .automatic
    ) {
        self.engine = engine
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.requestTimeout = requestTimeout
        self.maximumConnectionsPerHost = maximumConnectionsPerHost
        self.idleConnectionTimeout = idleConnectionTimeout
        self.maximumResponseBytes = maximumResponseBytes
        self.extraHeaders = extraHeaders
    }

    /// Checks every value; the error names the field and what is expected.
    public func validate() throws(SageLLMError) {
        for (field, value) in [
            ("connectTimeout", connectTimeout), ("readTimeout", readTimeout), ("requestTimeout", requestTimeout),
            ("idleConnectionTimeout", idleConnectionTimeout),
        ] where value <= .zero || value.seconds > OutsideNumber.maximumSeconds {
            throw .invalidConfiguration(
                field: field,
                "\(field) must be above 0 and at most \(OutsideNumber.maximumWholeSeconds) seconds, got \(value)")
        }
        guard maximumConnectionsPerHost >= 1 else {
            throw .invalidConfiguration(
                field: "maximumConnectionsPerHost", "the pool needs at least 1 connection per host, got \(maximumConnectionsPerHost)")
        }
        guard maximumResponseBytes >= 1024 else {
            throw .invalidConfiguration(
                field: "maximumResponseBytes", "maximumResponseBytes must be at least 1024, got \(maximumResponseBytes)")
        }
        if !tls.isEmpty && engine != .curl {
            throw .invalidConfiguration(
                field: "http.ca_bundle",
                "a CA bundle or client certificate needs the curl transport (http.transport: curl, SAGE_HTTP_TRANSPORT=curl); the \(engine.settingName) engine uses the system's trust store")
        }
        for name in extraHeaders.keys where name.lowercased() == "authorization" {
            throw .invalidConfiguration(
                field: "extraHeaders", "set the API key with apiKey, not an Authorization header")
        }
    }
}

/// An API key. Its description is redacted, so it never reaches logs, errors or metrics.
public struct APIKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    ExpressibleByStringLiteral
{
    /// The key itself; read it only to put it on the wire.
    public let secret: String
    public init(_ secret: String) { self.secret = secret }
    public init(stringLiteral value: String) { self.secret = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "APIKey(<redacted>)" }
}

extension Duration {
    /// The duration in seconds, as a Double.
    package var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
    /// The duration in milliseconds, as a Double.
    package var milliseconds: Double { seconds * 1000 }
    /// Milliseconds rounded to a tenth, as reports show them.
    package var reportedMilliseconds: Double { (milliseconds * 10).rounded() / 10 }
    /// The duration in nanoseconds, saturating at `Int64.max` / `Int64.min` (about 292 years)
    /// instead of trapping.
    package var nanoseconds: Int64 {
        let (whole, overflow) = components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return components.seconds > 0 ? .max : .min }
        let (sum, overflow2) = whole.addingReportingOverflow(components.attoseconds / 1_000_000_000)
        if overflow2 { return components.seconds > 0 ? .max : .min }
        return sum
    }
}
