/// What happened to one probe candidate during detection.
public struct CandidateReport: Sendable, Hashable, Encodable, CustomStringConvertible {
    public enum Status: String, Sendable, Hashable, Encodable {
        /// This candidate was chosen.
        case selected
        /// It was probed and is not usable (see ``CandidateReport/reason``).
        case skipped
        /// It was not needed: a candidate of higher priority answered first.
        case notNeeded = "not_needed"
    }

    /// Why a candidate was skipped.
    public enum SkipReason: String, Sendable, Hashable, Encodable {
        /// Nothing listens there (connection refused).
        case refused
        /// No answer within the probe timeout.
        case timeout
        /// It answered with a non-success HTTP status.
        case httpStatus = "http_status"
        /// It answered 200 but lists no models.
        case noModels = "no_models"
        /// It answered 200 with something that is not an OpenAI model list.
        case invalidResponse = "invalid_response"
        /// It is not one of the engine kinds asked for.
        case wrongKind = "wrong_kind"
        /// It does not serve the model asked for.
        case modelNotServed = "model_not_served"
        /// Any other failure (DNS, TLS, reset).
        case failed
    }

    public var baseURL: String
    public var status: Status
    public var reason: SkipReason?
    /// The reason in words (the status, the server's text, the models listed, ...).
    public var detail: String?
    public var engine: EngineKind?
    public var models: [String]
    public var elapsed: Duration

    public var description: String {
        var text = "\(baseURL): \(status.rawValue)"
        if let engine { text += " (\(engine))" }
        if let reason { text += ", \(reason.rawValue)" }
        if let detail { text += ": \(detail)" }
        return text
    }

    private enum CodingKeys: String, CodingKey {
        case baseURL = "base_url", status, reason, detail, engine, models, elapsedMilliseconds = "elapsed_ms"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(baseURL, forKey: .baseURL)
        try container.encode(status, forKey: .status)
        try container.encodeIfPresent(reason, forKey: .reason)
        try container.encodeIfPresent(detail, forKey: .detail)
        try container.encodeIfPresent(engine, forKey: .engine)
        try container.encode(models, forKey: .models)
        try container.encode(elapsed.reportedMilliseconds, forKey: .elapsedMilliseconds)
    }
}
