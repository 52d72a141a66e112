/// How the control plane splits requests between PREFILL and DECODE instances (with
/// `enablePDSeparation` on, and only while both kinds serve the model).
///
/// A request is *prefill-heavy*, and split, when its estimated prompt is longer than
/// ``minimumPromptTokens`` or its estimated prompt over its `max_tokens` exceeds
/// ``minimumInputOutputRatio`` (the originals' rule, 800 tokens or 4). Others go whole to
/// a GENERAL, HYBRID or DECODE instance: for short prompts a second hop costs more than it saves.
public struct DisaggregationConfiguration: Sendable, Hashable {
    /// false splits every request while PREFILL and DECODE instances are available.
    public var conditional: Bool
    /// A prompt estimated above this many tokens is prefill-heavy.
    public var minimumPromptTokens: Int
    /// A prompt estimated above this many times its `max_tokens` is prefill-heavy.
    public var minimumInputOutputRatio: Double
    /// The prompt estimate: the UTF-8 bytes of every message's text over this (4 bytes per
    /// token is typical of English with BPE tokenizers; no tokenizer is run).
    public var bytesPerToken: Double
    /// Split only while the PREFILL instances keep up: at most this many requests waiting for
    /// them per prefill slot (their `max_concurrent`), or the request runs whole at once instead
    /// of queueing behind other prompts; nil splits whatever the backlog.
    public var maxPrefillBacklogPerSlot: Double?
    /// When the prefill fails, or answers without `kv_transfer_params`, run the request whole
    /// on another instance instead of failing it. The result says which path was taken.
    public var fallbackToDirect: Bool
    /// Routing of the prefill side; nil uses the control plane's. Default `locality`: a
    /// repeated prefix goes where its KV cache is.
    public var prefillRouting: RoutingStrategy?
    /// Routing of the decode side; nil uses the control plane's. Default least loaded.
    public var decodeRouting: RoutingStrategy?
    /// Prefer a decode instance near the prefill one (the KV cache travels between them),
    /// scored by ``pairingScores`` times its free share, above the load bound passed over.
    public var topologyPairing: Bool
    public var pairingScores: TopologyScores

    public init(
        conditional: Bool = true, minimumPromptTokens: Int = 800, minimumInputOutputRatio: Double = 4, bytesPerToken: Double = 4,
        maxPrefillBacklogPerSlot: Double? = nil, fallbackToDirect: Bool = true, prefillRouting: RoutingStrategy? = .locality, decodeRouting: RoutingStrategy? = .loadBalanced,
        topologyPairing: Bool = true, pairingScores: TopologyScores = TopologyScores()
    ) {
        self.conditional = conditional
        self.minimumPromptTokens = minimumPromptTokens
        self.minimumInputOutputRatio = minimumInputOutputRatio
        self.bytesPerToken = bytesPerToken
        self.maxPrefillBacklogPerSlot = maxPrefillBacklogPerSlot
        self.fallbackToDirect = fallbackToDirect
        self.prefillRouting = prefillRouting
        self.decodeRouting = decodeRouting
        self.topologyPairing = topologyPairing
        self.pairingScores = pairingScores
    }

    /// Estimated prompt tokens of a text of `bytes` UTF-8 bytes.
    public func estimatedTokens(bytes: Int) -> Int { Int((Double(bytes) / max(bytesPerToken, 0.1)).rounded(.up)) }

    /// Whether a request of `promptTokens` (estimated) and `maxTokens` should be split.
    public func isPrefillHeavy(promptTokens: Int, maxTokens: Int?) -> Bool {
        if !conditional { return true }
        if promptTokens > minimumPromptTokens { return true }
        guard let maxTokens, maxTokens > 0 else { return false }
        return Double(promptTokens) / Double(maxTokens) > minimumInputOutputRatio
    }

    public func validate() throws(ControlPlaneError) {
        func fail(_ field: String, _ message: String) -> ControlPlaneError { ControlPlaneError(.invalidConfiguration, message, field: field) }
        if minimumPromptTokens < 0 { throw fail("pd.min_prompt_tokens", "must not be negative, got \(minimumPromptTokens)") }
        if !(minimumInputOutputRatio >= 0) { throw fail("pd.min_input_output_ratio", "must not be negative, got \(minimumInputOutputRatio)") }
        if !(bytesPerToken > 0) { throw fail("pd.bytes_per_token", "must be positive, got \(bytesPerToken)") }
        if let backlog = maxPrefillBacklogPerSlot, !(backlog >= 0) || !backlog.isFinite {
            throw fail("pd.max_prefill_backlog_per_slot", "must be a finite number, not negative, got \(backlog)")
        }
    }
}

/// How a request was served.
public enum ExecutionPath: Sendable, Hashable, CustomStringConvertible {
    /// Whole, on one instance.
    case direct
    /// Prompt on a PREFILL instance, answer on a DECODE instance from the transferred KV cache.
    case disaggregated(prefillInstanceID: String)
    /// Meant to be split, but the prefill failed (the reason says how); served whole.
    case fallback(reason: String)

    public var description: String {
        switch self {
        case .direct: "direct"
        case .disaggregated(let prefill): "disaggregated (prefill on \(prefill))"
        case .fallback(let reason): "direct after a failed prefill: \(reason)"
        }
    }

    /// `direct`, `disaggregated` or `fallback`, for metrics and JSON.
    public var name: String {
        switch self {
        case .direct: "direct"
        case .disaggregated: "disaggregated"
        case .fallback: "fallback"
        }
    }
}
