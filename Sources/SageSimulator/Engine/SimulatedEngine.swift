import Foundation
import SageLLM
import SageSupport
import Synchronization

/// One request to the engine, already tokenized.
public struct EngineRequest: Sendable {
    /// Prompt token ids (see ``SimulatedTokenizer``).
    public var promptTokens: [Int]
    /// Most tokens to generate per choice; nil fills the rest of the context, as vLLM does.
    public var maxTokens: Int?
    /// Stop strings: generation of a choice ends before the first occurrence.
    public var stop: [String]
    /// Number of choices, generated side by side.
    public var n: Int
    /// Seed for the generated text; nil derives one from the prompt (same prompt, same answer).
    public var seed: UInt64?

    /// The prompt's KV cache arrived from a prefill instance (vLLM's `kv_transfer_params`): no
    /// prefill time is spent on it.
    public var promptComputedRemotely = false

    public init(promptTokens: [Int], maxTokens: Int? = nil, stop: [String] = [], n: Int = 1, seed: UInt64? = nil) {
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        self.stop = stop
        self.n = n
        self.seed = seed
    }
}

/// Tokens that became due at the same moment, for one or more choices.
public struct GeneratedStep: Sendable {
    public struct Token: Sendable {
        public var choice: Int
        public var text: String
        /// Set on a choice's last token: "length" or "stop".
        public var finishReason: String?
    }
    public var tokens: [Token]
    /// Generated tokens so far, all choices.
    public var generatedSoFar: Int
}

/// What a finished generation produced.
public struct EngineCompletion: Sendable {
    public var texts: [String]
    public var finishReasons: [String]
    public var promptTokens: Int
    public var cachedPromptTokens: Int
    public var completionTokens: Int
    /// Time spent waiting for a batch slot.
    public var queueWait: Duration
    /// From admission to the request to the first token.
    public var timeToFirstToken: Duration
}

/// Counters of an engine, as `/metrics` reports them.
public struct EngineStatistics: Sendable, Hashable {
    public var running: Int
    public var waiting: Int
    public var peakRunning: Int
    public var admitted: Int
    public var completed: Int
    /// Generations that stopped early because the consumer went away.
    public var aborted: Int
    public var promptTokens: Int
    public var generationTokens: Int
    public var prefixCacheQueries: Int
    public var prefixCacheHits: Int
    /// Share of the KV cache held by running sequences, 0...1.
    public var kvCacheUsage: Double
}

/// An OpenAI-style LLM engine that behaves like a real one in time, without a model: prompts
/// take prefill time, tokens come one every TBT, the batch is bounded and the rest wait.
/// Output text is deterministic for a prompt and seed.
///
/// ```swift
/// let engine = try SimulatedEngine(configuration: .init(ttft: .milliseconds(30), tbt: .milliseconds(10)))
/// let done = try await engine.generate(EngineRequest(promptTokens: SimulatedTokenizer.tokenize("Hi"), maxTokens: 8)) { step in
///     for token in step.tokens { print(token.text, terminator: "") }
/// }
/// ```
public final class SimulatedEngine: Sendable {
    public let configuration: SimulatedEngineConfiguration
    private let slots: FairSemaphore
    private struct State {
        var random: SeededGenerator
        var prefixCache: PrefixCache
        var admitted = 0
        var completed = 0
        var aborted = 0
        var promptTokens = 0
        var generationTokens = 0
        var prefixQueries = 0
        var prefixHits = 0
        var kvTokensInUse = 0
    }
    private let state: Mutex<State>
    /// When the engine started; slow-start faults count from here.
    public var startedAt: ContinuousClock.Instant { time.start }
    /// The engine's time: its clock, read as instants from the engine's start.
    let time: EngineTime
    private let faultPlan: FaultPlan
    /// The running batch when the engine is stepped (``SimulatedEngineConfiguration/steps``).
    private let stepBatch: EngineStepBatch?

    /// - Parameter clock: the engine's time source. A test passes one that does not sleep, so
    ///   that TTFT, TBT and queueing are checked without waiting. The HTTP server
    ///   (``SimulatorServer``) runs on real time.
    public init(configuration: SimulatedEngineConfiguration = SimulatedEngineConfiguration(), clock: any Clock<Duration> = ContinuousClock())
        throws(SimulatorError)
    {
        try configuration.validate()
        self.configuration = configuration
        self.slots = FairSemaphore(limit: configuration.maxBatch)
        self.time = EngineTime(clock)
        self.faultPlan = FaultPlan(faults: configuration.faults, seed: configuration.seed)
        self.stepBatch = configuration.steps.map { EngineStepBatch(cost: $0.cost(prefillTokensPerSecond: configuration.prefillTokensPerSecond)) }
        self.state = Mutex(
            State(
                random: SeededGenerator(seed: configuration.seed),
                prefixCache: PrefixCache(capacityBlocks: configuration.kvCacheTokens / 16)))
    }

    /// The faults in force (the configuration's unless replaced with ``setFaults(_:)``).
    public var faults: FaultConfiguration { faultPlan.faults }

    /// Replaces the injected faults at run time; `failFirst` counts again from zero.
    public func setFaults(_ faults: FaultConfiguration) throws(SimulatorError) {
        try faults.validate()
        faultPlan.replace(with: faults)
    }

    /// Whether this generation request should fail, and how (call once per request).
    public func injectedFailure() -> InjectedFailure? { faultPlan.nextDecision() }

    /// Whether a slow start is still in progress.
    public var isLoading: Bool {
        guard let slowStart = faults.slowStart else { return false }
        return time.now < startedAt + slowStart
    }

    public func statistics() -> EngineStatistics {
        let running = slots.running
        let waiting = slots.waiting
        let peak = slots.peakRunning
        return state.withLock { state in
            EngineStatistics(
                running: running, waiting: waiting, peakRunning: peak, admitted: state.admitted,
                completed: state.completed, aborted: state.aborted, promptTokens: state.promptTokens,
                generationTokens: state.generationTokens, prefixCacheQueries: state.prefixQueries,
                prefixCacheHits: state.prefixHits,
                kvCacheUsage: min(1, Double(state.kvTokensInUse) / Double(configuration.kvCacheTokens)))
        }
    }

    /// Checks a request against the context length; the error says what to change.
    public func validate(_ request: EngineRequest) throws(SimulatorError) {
        let prompt = request.promptTokens.count
        if prompt == 0 {
            throw SimulatorError(code: .invalidRequest, message: "the prompt is empty")
        }
        if request.n < 1 || request.n > 16 {
            throw SimulatorError(code: .invalidRequest, message: "n must be between 1 and 16, got \(request.n)")
        }
        if let maxTokens = request.maxTokens, maxTokens < 1 {
            throw SimulatorError(code: .invalidRequest, message: "max_tokens must be at least 1, got \(maxTokens)")
        }
        let completion = request.maxTokens ?? 1
        // Compared without adding: a client's max_tokens may be Int.max.
        if completion > configuration.maxContext - prompt {
            throw SimulatorError(
                code: .contextLengthExceeded,
                message:
                    "This model's maximum context length is \(configuration.maxContext) tokens. However, you requested \(prompt.addingSaturating(completion)) tokens (\(prompt) in the messages, \(completion) in the completion). Please reduce the length of the messages or completion."
            )
        }
    }

    /// Runs one request: waits for a batch slot, prefills, then calls `onStep` as tokens become
    /// due (several at once when the caller is slower than TBT). If `onStep` throws, or the task
    /// is cancelled, generation stops and the slot is freed.
    public func generate(
        _ request: EngineRequest, onStep: (GeneratedStep) async throws -> Void
    ) async throws -> EngineCompletion {
        try await generate(request, waitUntil: time.sleep(until:), onStep: onStep)
    }

    /// ``generate(_:onStep:)`` waiting for each token's due time with `waitUntil` (the
    /// server waits on its connection's event loop).
    func generate(
        _ request: EngineRequest, waitUntil: @Sendable (ContinuousClock.Instant) async throws -> Void,
        onStep: (GeneratedStep) async throws -> Void
    ) async throws -> EngineCompletion {
        try validate(request)
        let arrived = time.now
        if isLoading, let slowStart = faults.slowStart {
            try await time.sleep(until: startedAt + slowStart)
        }
        try await slots.acquire()
        let admitted = time.now
        let promptCount = request.promptTokens.count
        let maxTokens = request.maxTokens ?? (configuration.maxContext - promptCount)

        // Admission: prefix cache, jitter, KV accounting.
        let (cached, ttftFactor, tbtSeed) = state.withLock { state in
            state.admitted += 1
            state.promptTokens += promptCount
            state.kvTokensInUse += promptCount * request.n
            var cached = 0
            if configuration.prefixCaching {
                cached = state.prefixCache.lookUpAndInsert(request.promptTokens)
                state.prefixQueries += promptCount
                state.prefixHits += cached
            }
            let factor = state.random.jitter(configuration.jitter)
            return (cached, factor, state.random.next())
        }
        var generated = 0
        var finished = false
        defer {
            let kvHeld = promptCount * request.n + generated
            state.withLock { state in
                state.kvTokensInUse -= kvHeld
                if finished { state.completed += 1 } else { state.aborted += 1 }
            }
            slots.release()
        }
        /// Counts generated tokens as they are produced, so `/metrics` is live.
        func account(_ count: Int) {
            guard count > 0 else { return }
            state.withLock { state in
                state.generationTokens += count
                state.kvTokensInUse += count
            }
        }

        if request.promptComputedRemotely && configuration.kvTransferBytesPerSecond > 0 {
            // The prompt's KV cache crosses from the prefill engine first; the slot is held meanwhile.
            let bytes = Double(promptCount) * Double(configuration.kvBytesPerToken)
            try await waitUntil(time.now + .seconds(bytes / configuration.kvTransferBytesPerSecond))
        }
        var pacing = TokenPacing(
            engine: self, batch: stepBatch, request: request, uncachedPrompt: promptCount - cached, maxTokens: maxTokens, ttftFactor: ttftFactor,
            tbtSeed: tbtSeed)
        defer { pacing.end() }

        var texts = Array(repeating: "", count: request.n)
        var finishReasons: [String?] = Array(repeating: nil, count: request.n)
        var countsPerChoice = Array(repeating: 0, count: request.n)
        let seed = request.seed ?? SeededGenerator.mix(configuration.seed, Self.hash(request.promptTokens))
        var textRandom = (0..<request.n).map { SeededGenerator(seed: SeededGenerator.mix(seed, UInt64($0))) }
        let stops = request.stop.filter { !$0.isEmpty }

        var step = GeneratedStep(tokens: [], generatedSoFar: 0)
        var position = 0
        while finishReasons.contains(where: { $0 == nil }) {
            // Tokens that are due now are handed over together.
            if let due = pacing.due(position) {
                if !step.tokens.isEmpty {
                    step.generatedSoFar = generated
                    try await onStep(step)
                    step.tokens.removeAll(keepingCapacity: true)
                }
                try await waitUntil(due)
                if pacing.isStepped { continue }  // the batch says when the token is there
            } else {
                try Task.checkCancellation()
            }
            let before = generated
            defer { account(generated - before) }
            for choice in 0..<request.n where finishReasons[choice] == nil {
                var text = Self.vocabulary[Int(textRandom[choice].next() % UInt64(Self.vocabulary.count))]
                if position == 0 { text.removeFirst() }  // the answer starts without a space
                countsPerChoice[choice] += 1
                generated += 1
                var reason: String? = countsPerChoice[choice] >= maxTokens ? "length" : nil
                if !stops.isEmpty {
                    let combined = texts[choice] + text
                    if let cut = Self.firstStop(in: combined, stops: stops) {
                        text = String(combined[combined.index(combined.startIndex, offsetBy: texts[choice].count)..<cut])
                        reason = "stop"
                    }
                }
                texts[choice] += text
                finishReasons[choice] = reason
                step.tokens.append(GeneratedStep.Token(choice: choice, text: text, finishReason: reason))
            }
            position += 1
            pacing.tokenTaken()
        }
        step.generatedSoFar = generated
        if !step.tokens.isEmpty { try await onStep(step) }
        finished = true
        return EngineCompletion(
            texts: texts, finishReasons: finishReasons.map { $0 ?? "length" }, promptTokens: promptCount,
            cachedPromptTokens: cached, completionTokens: generated, queueWait: admitted - arrived,
            timeToFirstToken: pacing.firstTokenAt - admitted)
    }

    private static func firstStop(in text: String, stops: [String]) -> String.Index? {
        var best: String.Index?
        for stop in stops {
            if let range = text.range(of: stop), best.map({ range.lowerBound < $0 }) ?? true {
                best = range.lowerBound
            }
        }
        return best
    }

    static func hash(_ tokens: [Int]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for token in tokens { hash = (hash ^ UInt64(truncatingIfNeeded: token)) &* 0x0000_0100_0000_01b3 }
        return hash
    }

    /// Words of at most four letters with a leading space: each is exactly one token.
    static let vocabulary: [String] = [
        " the", " of", " and", " to", " in", " is", " that", " for", " it", " as", " with", " was", " on", " be",
        " at", " by", " this", " had", " not", " are", " but", " from", " or", " have", " an", " they", " one",
        " you", " were", " all", " we", " when", " your", " can", " said", " use", " each", " she", " do", " how",
        " will", " up", " out", " many", " then", " them", " so", " some", " her", " make", " like", " him",
        " into", " time", " has", " look", " two", " more", " go", " see", " no", " way", " my", " than", " been",
        " call", " who", " its", " now", " find", " long", " down", " day", " did", " get", " come", " made",
        " may", " part", " data", " node", " GPU", " KV", " fast", " load", " path", " cost", " plan", " test",
    ]
}

/// A simulated engine's time: instants on the real continuous clock's scale, read from the
/// engine's own clock (the same for ContinuousClock; a test clock moves them without waiting).
struct EngineTime: Sendable {
    let start: ContinuousClock.Instant
    private let elapsed: @Sendable () -> Duration
    private let wait: @Sendable (Duration) async throws -> Void

    init<C: Clock<Duration>>(_ clock: C) {
        start = .now
        let origin = clock.now
        elapsed = { origin.duration(to: clock.now) }
        wait = { try await clock.sleep(for: $0) }
    }

    var now: ContinuousClock.Instant { start + elapsed() }

    /// An instant as seconds from the engine's start, and back.
    func seconds(at instant: ContinuousClock.Instant) -> Double { (instant - start) / .seconds(1) }
    func instant(at seconds: Double) -> ContinuousClock.Instant { start + .seconds(seconds) }

    @Sendable func sleep(until instant: ContinuousClock.Instant) async throws {
        let remaining = instant - now
        if remaining > .zero { try await wait(remaining) } else { try Task.checkCancellation() }
    }
}

extension Duration {
    static func * (lhs: Duration, rhs: Double) -> Duration {
        let nanoseconds = Double(lhs.components.seconds) * 1e9 * rhs + Double(lhs.components.attoseconds) / 1e9 * rhs
        guard nanoseconds.isFinite else { return .zero }
        return .nanoseconds(Int64(max(-9.2e18, min(9.2e18, nanoseconds))))
    }
}
