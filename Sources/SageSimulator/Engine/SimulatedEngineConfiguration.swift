import SageLLM
import SageSupport
/// How the simulated engine behaves: its model, speed, limits and faults.
///
/// Time model: a request waits for a batch slot (at most ``maxBatch`` run at once), then
/// spends ``ttft`` plus its uncached prompt tokens / ``prefillTokensPerSecond`` in prefill,
/// then emits one token every ``tbt``. TTFT and TBT get a seeded jitter of ±``jitter``.
///
/// With ``steps`` set, the engine steps its whole batch as vLLM's scheduler does instead:
/// decodes first, prompt chunks up to the token budget, and a step's time grows with what it
/// carries, so a long prompt slows every stream beside it. The cluster simulation uses the
/// same model (see `Docs/SIMULATOR.md`).
public struct SimulatedEngineConfiguration: Sendable, Hashable {
    /// The served model name.
    public var model: String
    /// `owned_by` in `/v1/models` (vLLM says `vllm`; pose as `sglang`, `lmdeploy`, `llamacpp`...).
    public var ownedBy: String
    /// Fixed part of the time to first token.
    public var ttft: Duration
    /// Time between tokens.
    public var tbt: Duration
    /// Prefill speed in prompt tokens per second; 0 makes prefill instant.
    public var prefillTokensPerSecond: Double
    /// Relative jitter of TTFT and TBT (0.1 = ±10%).
    public var jitter: Double
    /// Most sequences running at once; more wait in a FIFO queue.
    public var maxBatch: Int
    /// Context length: prompt plus completion tokens.
    public var maxContext: Int
    /// KV-cache capacity in tokens (for `vllm:kv_cache_usage_perc` and the prefix cache).
    public var kvCacheTokens: Int
    /// Whether prompts reuse cached prefixes (shorter prefill, `cached_tokens` in usage).
    public var prefixCaching: Bool
    /// Seed for jitter and generated text.
    public var seed: UInt64
    /// When set, `/v1/*` requires `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// Faults to inject.
    public var faults: FaultConfiguration
    /// Its part in prefill/decode disaggregation (vLLM's NIXL protocol): a `prefill` engine
    /// answers a request carrying `kv_transfer_params.do_remote_decode` with the params a
    /// decode engine needs; a `decode` engine takes a request carrying them without prefill time.
    public var role: EngineRole = .general
    /// The KV side-channel port a prefill engine advertises in `remote_port`.
    public var kvSideChannelPort = 5600
    /// The version `/version` reports.
    public var version: String
    /// Batch steps with a token budget; nil keeps the independent TTFT + TBT timing above.
    public var steps: BatchSteps?
    /// KV cache bytes per prompt token, and how fast a prompt's KV cache reaches a `decode`
    /// engine (bytes per second; 0: at once): such a request waits its transfer before it joins
    /// the batch.
    public var kvBytesPerToken = 131_072
    public var kvTransferBytesPerSecond = 0.0

    public init(
        model: String = "sagellm-sim", ownedBy: String = "vllm", ttft: Duration = .milliseconds(20),
        tbt: Duration = .milliseconds(10), prefillTokensPerSecond: Double = 8_000, jitter: Double = 0.1,
        maxBatch: Int = 256, maxContext: Int = 8_192, kvCacheTokens: Int = 262_144, prefixCaching: Bool = true,
        seed: UInt64 = 42, apiKey: String? = nil, faults: FaultConfiguration = FaultConfiguration(),
        version: String = "0.11.0-sagellm-sim"
    ) {
        self.model = model
        self.ownedBy = ownedBy
        self.ttft = ttft
        self.tbt = tbt
        self.prefillTokensPerSecond = prefillTokensPerSecond
        self.jitter = jitter
        self.maxBatch = maxBatch
        self.maxContext = maxContext
        self.kvCacheTokens = kvCacheTokens
        self.prefixCaching = prefixCaching
        self.seed = seed
        self.apiKey = apiKey
        self.faults = faults
        self.version = version
    }

    /// An engine with no delays at all, for throughput measurements of the client.
    public static func instant(model: String = "sagellm-sim") -> SimulatedEngineConfiguration {
        SimulatedEngineConfiguration(model: model, ttft: .zero, tbt: .zero, prefillTokensPerSecond: 0, jitter: 0)
    }

    /// Checks every value; the error names the setting.
    public func validate() throws(SimulatorError) {
        func fail(_ field: String, _ reason: String) -> SimulatorError {
            SimulatorError(code: .invalidConfiguration, message: "\(field): \(reason)")
        }
        if model.isEmpty { throw fail("model", "the model name is empty") }
        let longest = Duration.seconds(OutsideNumber.maximumWholeSeconds)
        if ttft < .zero || ttft > longest { throw fail("ttft", "must be from 0 to \(longest), got \(ttft)") }
        if tbt < .zero || tbt > longest { throw fail("tbt", "must be from 0 to \(longest), got \(tbt)") }
        if !(prefillTokensPerSecond >= 0) || !prefillTokensPerSecond.isFinite {
            throw fail("prefillTokensPerSecond", "must be a finite number, not negative (0 = instant), got \(prefillTokensPerSecond)")
        }
        if !(0..<1).contains(jitter) { throw fail("jitter", "must be in [0, 1), got \(jitter)") }
        if maxBatch < 1 { throw fail("maxBatch", "must be at least 1, got \(maxBatch)") }
        if maxContext < 16 || maxContext > 16_777_216 {
            throw fail("maxContext", "must be from 16 to 16777216 tokens, got \(maxContext)")
        }
        if kvCacheTokens < maxContext { throw fail("kvCacheTokens", "must hold at least one full context (\(maxContext))") }
        if let steps, let problem = steps.cost(prefillTokensPerSecond: prefillTokensPerSecond).problem { throw fail("steps", problem) }
        if let steps, steps.maxBatchedTokens <= maxBatch {
            throw fail("steps", "the token budget per step (\(steps.maxBatchedTokens)) must exceed maxBatch (\(maxBatch)), or prompts never get a chunk")
        }
        if kvBytesPerToken < 1 { throw fail("kvBytesPerToken", "must be at least 1, got \(kvBytesPerToken)") }
        if !(kvTransferBytesPerSecond >= 0) || !kvTransferBytesPerSecond.isFinite {
            throw fail("kvTransferBytesPerSecond", "must be a finite number, not negative (0 = at once), got \(kvTransferBytesPerSecond)")
        }
        try faults.validate()
    }
}

/// How a stepped engine's steps cost (see ``SimulatedEngineConfiguration/steps``): a step takes
/// ``stepTime`` plus ``timePerDecodeSequence`` per sequence decoding in it, plus its prompt
/// tokens at the configuration's `prefillTokensPerSecond`; it carries at most
/// ``maxBatchedTokens`` tokens (vLLM's `max_num_batched_tokens`), decodes first.
public struct BatchSteps: Sendable, Hashable {
    public var stepTime: Duration
    public var timePerDecodeSequence: Duration
    public var maxBatchedTokens: Int

    public init(stepTime: Duration = .milliseconds(25), timePerDecodeSequence: Duration = .microseconds(500), maxBatchedTokens: Int = 2_048) {
        self.stepTime = stepTime
        self.timePerDecodeSequence = timePerDecodeSequence
        self.maxBatchedTokens = maxBatchedTokens
    }

    func cost(prefillTokensPerSecond: Double) -> StepCost {
        StepCost(
            baseSeconds: stepTime / .seconds(1), secondsPerDecodeSequence: timePerDecodeSequence / .seconds(1),
            prefillTokensPerSecond: prefillTokensPerSecond, maxBatchedTokens: maxBatchedTokens)
    }
}

/// An engine's part in prefill/decode disaggregation.
public enum EngineRole: String, Sendable, Hashable, CaseIterable {
    case general, prefill, decode
}

/// Faults the simulator injects into generation requests (`/v1/chat/completions`, `/v1/completions`).
public struct FaultConfiguration: Sendable, Hashable {
    /// Probability that a request fails with ``failStatus`` (seeded).
    public var failRate: Double
    /// The status of injected failures (e.g. 500, 503, 429).
    public var failStatus: Int
    /// The first N generation requests fail with ``failStatus``.
    public var failFirst: Int
    /// Sent as `Retry-After` (seconds) with injected failures.
    public var retryAfterSeconds: Int?
    /// Close the connection abruptly after this many streamed tokens (for a non-streamed
    /// request: after generating them, without answering).
    public var disconnectAfterTokens: Int?
    /// Send nothing for this long, after ``stallAfterTokens`` tokens.
    public var stall: Duration?
    public var stallAfterTokens: Int
    /// For this long after start the engine is "loading": `/health` answers 503 and generation
    /// requests wait until it is ready.
    public var slowStart: Duration?
    /// Never send usage in streams, even when `stream_options.include_usage` asks for it (as
    /// some servers do).
    public var omitStreamUsage: Bool

    public init(
        failRate: Double = 0, failStatus: Int = 503, failFirst: Int = 0, retryAfterSeconds: Int? = nil,
        disconnectAfterTokens: Int? = nil, stall: Duration? = nil, stallAfterTokens: Int = 0,
        slowStart: Duration? = nil, omitStreamUsage: Bool = false
    ) {
        self.omitStreamUsage = omitStreamUsage
        self.failRate = failRate
        self.failStatus = failStatus
        self.failFirst = failFirst
        self.retryAfterSeconds = retryAfterSeconds
        self.disconnectAfterTokens = disconnectAfterTokens
        self.stall = stall
        self.stallAfterTokens = stallAfterTokens
        self.slowStart = slowStart
    }

    public func validate() throws(SimulatorError) {
        func fail(_ field: String, _ reason: String) -> SimulatorError {
            SimulatorError(code: .invalidConfiguration, message: "\(field): \(reason)")
        }
        if !(0...1).contains(failRate) { throw fail("failRate", "must be in [0, 1], got \(failRate)") }
        if !(400...599).contains(failStatus) { throw fail("failStatus", "must be an HTTP error status (400-599), got \(failStatus)") }
        if failFirst < 0 { throw fail("failFirst", "must not be negative") }
        if let retryAfterSeconds, retryAfterSeconds < 0 { throw fail("retryAfter", "must not be negative") }
        if let disconnectAfterTokens, disconnectAfterTokens < 0 { throw fail("disconnectAfter", "must not be negative") }
        let longest = Duration.seconds(OutsideNumber.maximumWholeSeconds)
        if let stall, stall < .zero || stall > longest { throw fail("stall", "must be from 0 to \(longest), got \(stall)") }
        if let slowStart, slowStart < .zero || slowStart > longest {
            throw fail("slowStart", "must be from 0 to \(longest), got \(slowStart)")
        }
        if let retryAfterSeconds, retryAfterSeconds > OutsideNumber.maximumWholeSeconds {
            throw fail("retryAfter", "must be at most \(OutsideNumber.maximumWholeSeconds) seconds")
        }
        if stallAfterTokens < 0 { throw fail("stallAfterTokens", "must not be negative") }
    }
}

/// The one error type of the `SageSimulator` module.
public struct SimulatorError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let name: String
        public var description: String { name }
        public static let invalidConfiguration = Code(name: "invalid configuration")
        public static let invalidRequest = Code(name: "invalid request")
        public static let contextLengthExceeded = Code(name: "context length exceeded")
        public static let unknownModel = Code(name: "unknown model")
        public static let serverFailed = Code(name: "server failed")
    }
    public var code: Code
    public var message: String
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "simulator \(code): \(message)" }
}
