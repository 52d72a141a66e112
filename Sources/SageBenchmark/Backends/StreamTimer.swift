/// Measures one request the same way for every client: `t0` at ``init(runStart:scheduled:)``,
/// moved to the moment the request went onto its connection when the client can tell
/// (``requestWritten(at:)``), then one ``event(hasChoices:text:)`` per streamed event as it
/// arrives, then a result. Clients never copy their settings into metrics: they report
/// events, the timer measures.
public struct StreamTimer: Sendable {
    private let runStart: ContinuousClock.Instant
    /// When the request was due: its scheduled arrival, or when its concurrency slot was taken.
    private let due: ContinuousClock.Instant
    private var t0: ContinuousClock.Instant
    private var lag: Duration
    private var firstChoices: ContinuousClock.Instant?
    private var firstContent: ContinuousClock.Instant?
    private var lastEvent: ContinuousClock.Instant?
    private var itl: [Double] = []
    private var eventSeconds: [Double] = []
    private var text = ""
    private var textEvents = 0

    /// Starts the clock now (`t0`). `scheduled` is when the request was due to be sent.
    public init(runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant? = nil) {
        self.runStart = runStart
        let now = ContinuousClock.now
        t0 = now
        due = scheduled.map { min($0, now) } ?? now
        lag = now - due
    }

    /// The request went onto its open connection at `instant`: it becomes `t0`, so that the
    /// client's own work and its wait for a thread before sending count as schedule lag,
    /// not as the server's latency (the server's clock starts when it reads the request).
    public mutating func requestWritten(at instant: ContinuousClock.Instant) {
        guard firstChoices == nil, instant > t0 else { return }
        t0 = instant
        lag = instant - due
    }

    /// An event arrived now. `hasChoices`: it carried at least one choice; `text`: its text.
    public mutating func event(hasChoices: Bool, text delta: String) {
        event(at: .now, hasChoices: hasChoices, text: delta)
    }

    /// An event arrived at `now` (for a client that stamps the bytes where they are read).
    public mutating func event(at now: ContinuousClock.Instant, hasChoices: Bool, text delta: String) {
        guard hasChoices else { return }
        if let lastEvent, firstChoices != nil, itl.count < Self.maximumEvents { itl.append((now - lastEvent).milliseconds) }
        if firstChoices == nil { firstChoices = now }
        if firstContent == nil, !delta.isEmpty { firstContent = now }
        lastEvent = now
        if !delta.isEmpty { textEvents += 1 }
        // A server that never stops must not grow the client without bound: per request, the
        // text kept and the per-event timings stop growing at their caps (counts go on).
        if eventSeconds.count < Self.maximumEvents { eventSeconds.append((now - runStart).seconds) }
        if text.utf8.count + delta.utf8.count <= Self.maximumTextBytes { text += delta }
    }

    /// The most text kept per request (16 MiB) and the most events timed (1,000,000).
    static let maximumTextBytes = 16 * 1024 * 1024
    static let maximumEvents = 1_000_000

    /// A non-streamed answer arrived now, all at once.
    public mutating func wholeAnswer(text answer: String) {
        event(hasChoices: true, text: answer)
    }

    /// The text received so far.
    public var outputText: String { text }

    /// The result of a request that completed. Without `completionTokens` (no usage report)
    /// the token count is the number of events that carried text, flagged approximate.
    public func success(requestID: String, completionTokens: Int?, promptTokens: Int?) -> BenchmarkResult {
        let end = ContinuousClock.now
        return BenchmarkResult(
            requestID: requestID, success: true, error: nil, errorKind: nil, outputText: text,
            outputTokens: completionTokens ?? textEvents, promptTokens: promptTokens,
            tokensApproximate: completionTokens == nil, ttftMilliseconds: firstChoices.map { ($0 - t0).milliseconds },
            ttftContentMilliseconds: firstContent.map { ($0 - t0).milliseconds }, itlMilliseconds: itl,
            e2elMilliseconds: lastEvent.map { ($0 - t0).milliseconds }, scheduleLagMilliseconds: lag.milliseconds,
            startSeconds: (t0 - runStart).seconds, endSeconds: (end - runStart).seconds, eventSeconds: eventSeconds)
    }

    /// The result of a request that failed; what arrived before the failure is kept out of
    /// the statistics (vLLM counts only successful requests).
    public func failure(requestID: String, error: String, kind: String) -> BenchmarkResult {
        BenchmarkResult.failure(
            BenchmarkRequest(prompt: "", maxTokens: 0, requestID: requestID), error: error, kind: kind,
            start: (t0 - runStart).seconds, end: (ContinuousClock.now - runStart).seconds, lag: lag.milliseconds)
    }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
