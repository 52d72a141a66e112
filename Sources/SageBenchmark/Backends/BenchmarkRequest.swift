/// One request of a benchmark run (the seeds' `BenchmarkRequest`).
public struct BenchmarkRequest: Sendable, Hashable, Codable {
    public var prompt: String
    public var maxTokens: Int
    public var requestID: String
    /// nil: the backend's default model.
    public var model: String?
    public var stream: Bool
    public var temperature: Double?
    public var topP: Double?
    /// Exactly `maxTokens` are generated (`ignore_eos`, `min_tokens`), as `vllm bench serve` does.
    public var ignoreEOS: Bool
    /// The prompt's length asked for, in tokens (synthetic prompts); the server's
    /// `usage.prompt_tokens` says how close it came.
    public var targetPromptTokens: Int?

    public init(
        prompt: String, maxTokens: Int, requestID: String, model: String? = nil, stream: Bool = true,
        temperature: Double? = 0, topP: Double? = nil, ignoreEOS: Bool = true
    ) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.requestID = requestID
        self.model = model
        self.stream = stream
        self.temperature = temperature
        self.topP = topP
        self.ignoreEOS = ignoreEOS
    }

    private enum CodingKeys: String, CodingKey {
        case prompt, maxTokens = "max_tokens", requestID = "request_id", model, stream, temperature, topP = "top_p",
            ignoreEOS = "ignore_eos", targetPromptTokens = "target_prompt_tokens"
    }
}

/// What one request did, measured as `vllm bench serve` measures (see `Docs/BENCHMARK.md`).
///
/// Times are milliseconds from `t0`, the moment just before the request was written (after
/// any concurrency slot was taken). A figure that could not be measured is nil, never 0.
public struct BenchmarkResult: Sendable, Codable {
    public var requestID: String
    public var success: Bool
    /// For a failure: what went wrong, in words ("Timeout after 60s", the server's error).
    public var error: String?
    /// A short class of the error for grouping ("timeout", "http 503", "connection failed").
    public var errorKind: String?
    public var outputText: String
    /// From the server's usage report; chunk count only when ``tokensApproximate``.
    public var outputTokens: Int?
    public var promptTokens: Int?
    /// The prompt's length asked for (synthetic prompts), beside ``promptTokens``.
    public var targetPromptTokens: Int? = nil
    /// True when the server sent no usage and ``outputTokens`` counts chunks.
    public var tokensApproximate: Bool
    /// First event with non-empty `choices`.
    public var ttftMilliseconds: Double?
    /// First event with non-empty content (or reasoning) text.
    public var ttftContentMilliseconds: Double?
    /// Gaps between consecutive `choices` events after the first.
    public var itlMilliseconds: [Double]
    /// Last event (before `[DONE]`) minus `t0`.
    public var e2elMilliseconds: Double?
    /// Wait from the scheduled arrival to `t0`.
    public var scheduleLagMilliseconds: Double
    /// `t0` and the end, in seconds since the run started (for the time series).
    public var startSeconds: Double
    public var endSeconds: Double
    /// When each `choices` event arrived, in seconds since the run started.
    public var eventSeconds: [Double]

    /// `(E2EL - TTFT) / (output_tokens - 1)`, when more than one token was generated.
    public var tpotMilliseconds: Double? {
        guard success, let e2el = e2elMilliseconds, let ttft = ttftMilliseconds, let tokens = outputTokens, tokens > 1
        else { return nil }
        return (e2el - ttft) / Double(tokens - 1)
    }

    /// The seeds' TBT: this request's mean inter-token gap, the mean of its ITL.
    public var tbtMilliseconds: Double? {
        itlMilliseconds.isEmpty ? nil : itlMilliseconds.reduce(0, +) / Double(itlMilliseconds.count)
    }

    /// The seeds' `e2e_latency_ms`.
    public var e2eLatencyMilliseconds: Double? { e2elMilliseconds }

    private enum CodingKeys: String, CodingKey {
        case requestID = "request_id", success, error, errorKind = "error_kind", outputText = "output_text",
            outputTokens = "output_tokens", promptTokens = "prompt_tokens", targetPromptTokens = "target_prompt_tokens",
            tokensApproximate = "tokens_approximate",
            ttftMilliseconds = "ttft_ms", ttftContentMilliseconds = "ttft_content_ms", itlMilliseconds = "itl_ms",
            e2elMilliseconds = "e2el_ms", scheduleLagMilliseconds = "schedule_lag_ms", startSeconds = "start_s",
            endSeconds = "end_s", eventSeconds = "event_s"
    }

    /// A failed result that never reached the backend, or whose backend gave up.
    public static func failure(
        _ request: BenchmarkRequest, error: String, kind: String, start: Double = 0, end: Double = 0, lag: Double = 0
    ) -> BenchmarkResult {
        BenchmarkResult(
            requestID: request.requestID, success: false, error: error, errorKind: kind, outputText: "", outputTokens: nil,
            promptTokens: nil, tokensApproximate: false, ttftMilliseconds: nil, ttftContentMilliseconds: nil,
            itlMilliseconds: [], e2elMilliseconds: nil, scheduleLagMilliseconds: lag, startSeconds: start, endSeconds: end,
            eventSeconds: [])
    }
}
