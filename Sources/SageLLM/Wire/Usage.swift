/// Token counts a server reports for one request.
public struct Usage: Codable, Sendable, Hashable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    /// `prompt_tokens_details`, e.g. `cached_tokens`; every integer member is kept.
    public var promptTokensDetails: TokenDetails?
    /// `completion_tokens_details`, e.g. `reasoning_tokens`; every integer member is kept.
    public var completionTokensDetails: TokenDetails?

    public init(
        promptTokens: Int, completionTokens: Int, totalTokens: Int? = nil,
        promptTokensDetails: TokenDetails? = nil, completionTokensDetails: TokenDetails? = nil
    ) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens ?? promptTokens.addingSaturating(completionTokens)
        self.promptTokensDetails = promptTokensDetails
        self.completionTokensDetails = completionTokensDetails
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
        case completionTokensDetails = "completion_tokens_details"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        promptTokens = try container.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
        completionTokens = try container.decodeIfPresent(Int.self, forKey: .completionTokens) ?? 0
        totalTokens =
            try container.decodeIfPresent(Int.self, forKey: .totalTokens) ?? promptTokens.addingSaturating(completionTokens)
        promptTokensDetails = try container.decodeIfPresent(TokenDetails.self, forKey: .promptTokensDetails)
        completionTokensDetails = try container.decodeIfPresent(TokenDetails.self, forKey: .completionTokensDetails)
    }

    /// Token details: a map of integer counters (`cached_tokens`, `reasoning_tokens`, ...).
    public struct TokenDetails: Codable, Sendable, Hashable {
        public var counts: [String: Int]
        public init(_ counts: [String: Int]) { self.counts = counts }
        public var cachedTokens: Int? { counts["cached_tokens"] }
        public var reasoningTokens: Int? { counts["reasoning_tokens"] }

        public init(from decoder: any Decoder) throws {
            let raw = try decoder.singleValueContainer().decode([String: JSONValue].self)
            counts = raw.compactMapValues(\.intValue)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(counts)
        }
    }
}
