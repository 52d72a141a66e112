import SageSupport

/// When a request's tokens are due. Fixed pacing: the first after the TTFT plus the uncached
/// prompt at the prefill speed, then one every TBT, each with the seeded jitter. Stepped pacing
/// (``SimulatedEngineConfiguration/steps``): whenever the engine's shared batch has produced
/// it, so the time depends on everything else in the batch.
struct TokenPacing {
    private enum Mode {
        case fixed(next: ContinuousClock.Instant, random: SeededGenerator)
        case stepped(batch: EngineStepBatch, id: Int)
    }

    private var mode: Mode
    private let time: EngineTime
    private let configuration: SimulatedEngineConfiguration
    /// When the first token is (or was) due.
    private(set) var firstTokenAt: ContinuousClock.Instant

    /// Starts pacing a request that has its batch slot now.
    init(
        engine: SimulatedEngine, batch: EngineStepBatch?, request: EngineRequest, uncachedPrompt: Int, maxTokens: Int,
        ttftFactor: Double, tbtSeed: UInt64
    ) {
        time = engine.time
        configuration = engine.configuration
        let now = time.now
        if let batch {
            // A fully cached prompt still computes its last token, as vLLM does.
            let prefill = request.promptComputedRemotely ? 0 : max(1, uncachedPrompt)
            let id = batch.join(prefillTokens: prefill, outputTokens: maxTokens, now: time.seconds(at: now))
            mode = .stepped(batch: batch, id: id)
            firstTokenAt = now
        } else {
            var prefill = configuration.ttft * ttftFactor
            if configuration.prefillTokensPerSecond > 0 && !request.promptComputedRemotely {
                prefill += .seconds(Double(uncachedPrompt) / configuration.prefillTokensPerSecond)
            }
            firstTokenAt = now + prefill
            mode = .fixed(next: firstTokenAt, random: SeededGenerator(seed: tbtSeed))
        }
    }

    var isStepped: Bool {
        if case .stepped = mode { return true }
        return false
    }

    /// When the token at `position` (counted per choice from 0) is due, or nil when it is due now.
    mutating func due(_ position: Int) -> ContinuousClock.Instant? {
        switch mode {
        case .fixed(let next, _):
            return next > time.now ? next : nil
        case .stepped(let batch, let id):
            let progress = batch.progress(of: id, now: time.seconds(at: time.now))
            if position < progress.generated {
                if position == 0, let first = batch.firstToken(of: id) { firstTokenAt = time.instant(at: first) }
                return nil
            }
            // A sequence in the batch always has a step under way.
            guard let boundary = progress.nextBoundary else { return nil }
            return time.instant(at: boundary) + .microseconds(1)
        }
    }

    /// The next token was handed over.
    mutating func tokenTaken() {
        guard case .fixed(let next, var random) = mode else { return }
        mode = .fixed(next: next + configuration.tbt * random.jitter(configuration.jitter), random: random)
    }

    /// The request left the engine (finished, stopped early or cancelled).
    func end() {
        guard case .stepped(let batch, let id) = mode else { return }
        batch.leave(id, now: time.seconds(at: time.now))
    }
}
