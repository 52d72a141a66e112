import Crypto
public import SageControlPlane

/// One API key of the gateway: who it is (a name, the only thing logs, metrics and errors ever
/// show), what it may do and how much. The key itself is never kept: only its SHA-256.
public struct GatewayKey: Sendable, Hashable, CustomStringConvertible {
    /// Shown in logs, in the `key` label of the metrics and in the admin log.
    public var name: String
    /// The SHA-256 of the key.
    let digest: [UInt8]
    /// The models it may use (by the name the client sends, alias or model); nil: every model.
    public var models: Set<String>?
    /// The most urgent priority its requests may have; a request asking for more gets this.
    public var maxPriority: RequestPriority
    /// The priority of its requests that ask for none.
    public var defaultPriority: RequestPriority
    /// Requests it may start per minute (a bucket of this size refilled evenly); nil: no limit.
    public var requestsPerMinute: Int?
    /// Tokens (prompt and output, as the engine reports them) it may use per minute; nil: no limit.
    public var tokensPerMinute: Int?
    /// Requests it may have in flight at once; nil: no limit.
    public var maxConcurrency: Int?
    /// Whether it may use the admin API.
    public var isAdmin: Bool

    /// A key given in the clear (it is hashed at once).
    public init(
        name: String, key: String, models: Set<String>? = nil, maxPriority: RequestPriority = .critical,
        defaultPriority: RequestPriority = .normal, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, maxConcurrency: Int? = nil,
        isAdmin: Bool = false
    ) {
        self.init(
            name: name, digest: Self.digest(of: key), models: models, maxPriority: maxPriority, defaultPriority: defaultPriority,
            requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute, maxConcurrency: maxConcurrency, isAdmin: isAdmin)
    }

    init(
        name: String, digest: [UInt8], models: Set<String>?, maxPriority: RequestPriority, defaultPriority: RequestPriority,
        requestsPerMinute: Int?, tokensPerMinute: Int?, maxConcurrency: Int?, isAdmin: Bool
    ) {
        self.name = name
        self.digest = digest
        self.models = models
        self.maxPriority = maxPriority
        self.defaultPriority = defaultPriority
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.maxConcurrency = maxConcurrency
        self.isAdmin = isAdmin
    }

    /// The name only: the key is a secret, and so (in spirit) is its hash.
    public var description: String { "GatewayKey(\(name))" }

    static func digest(of key: String) -> [UInt8] { Array(SHA256.hash(data: Array(key.utf8))) }

    /// The digest written as 64 hex digits (a keys file's `key_sha256`), or nil.
    static func digest(hex: String) -> [UInt8]? {
        let digits = Array(hex.lowercased().utf8)
        guard digits.count == 2 * SHA256.byteCount else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(SHA256.byteCount)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// Whether `digest` is this key's, looking at every byte whatever the first difference.
    func matches(_ digest: [UInt8]) -> Bool {
        guard digest.count == self.digest.count else { return false }
        var difference: UInt8 = 0
        for index in digest.indices { difference |= digest[index] ^ self.digest[index] }
        return difference == 0
    }

    /// Whether it may use `model` (the name the client sent, or the model it stands for).
    func allows(_ asked: String, servedAs model: String) -> Bool {
        guard let models else { return true }
        return models.contains(asked) || models.contains(model)
    }

    /// The priority its request gets: the one asked for (else its default), no more urgent
    /// than its highest.
    func priority(asked: RequestPriority?) -> RequestPriority { max(asked ?? defaultPriority, maxPriority) }

    func validate(field: String) throws(GatewayError) {
        func fail(_ message: String) -> GatewayError { GatewayError(.invalidConfiguration, message, status: 500, field: field) }
        if name.isEmpty { throw fail("a key needs a name") }
        for (limit, value) in [("requests_per_minute", requestsPerMinute), ("tokens_per_minute", tokensPerMinute), ("max_concurrency", maxConcurrency)] {
            if let value, !(1...1_000_000_000).contains(value) { throw fail("key '\(name)': \(limit) must be 1-1000000000, got \(value)") }
        }
        if let models, models.isEmpty { throw fail("key '\(name)': models is empty (leave it out to allow every model)") }
    }
}
