import Histogram

/// What happened to a workload's requests, summed up as a ``SimulationResult``: the cluster
/// simulation records into it, and so does a real run of the same workload through a
/// ``ControlPlaneClient`` (the sim-to-real check), so both are counted the same way.
package struct SimulationOutcomes: Sendable {
    var tally = OutcomeTally()
    var targets = SLOTargetTally()
    var longTimeToFirstToken = OutcomeTally.histogram()
    /// Time per output token, `(latency - TTFT) / (output - 1)`, of requests with more than one.
    var timePerOutputToken = OutcomeTally.histogram()
    var rejected: [String: Int] = [:]
    var tokens = 0
    var lastCompletion = 0.0

    package init() {}

    /// A request finished at `now` (seconds from the start), its first token `timeToFirstToken` after it arrived.
    package mutating func completed(_ request: SimulatedRequest, timeToFirstToken: Double, now: Double) {
        let latency = now - request.arrival
        tally.record(
            succeeded: true, latency: Self.duration(latency), timeToFirstToken: Self.duration(timeToFirstToken), queueWait: nil,
            priority: request.priority, deadline: request.slo.map(Self.duration))
        targets.completed(request, timeToFirstToken: timeToFirstToken, latency: latency)
        if request.longPrompt { _ = longTimeToFirstToken.record(OutcomeTally.microseconds(Self.duration(timeToFirstToken))) }
        if request.outputTokens > 1 {
            let perToken = (latency - timeToFirstToken) / Double(request.outputTokens - 1)
            _ = timePerOutputToken.record(OutcomeTally.microseconds(Self.duration(perToken)))
        }
        tokens += request.promptTokens + request.outputTokens
        lastCompletion = max(lastCompletion, now)
    }

    /// A request was shed, refused or failed for good at `now`, with `reason` (an error code).
    package mutating func failed(_ request: SimulatedRequest, reason: String, now: Double) {
        rejected[reason, default: 0] += 1
        targets.failed(request)
        tally.record(
            succeeded: false, latency: Self.duration(now - request.arrival), timeToFirstToken: nil, queueWait: nil,
            priority: request.priority, deadline: request.slo.map(Self.duration), failuresMissDeadlines: true)
    }

    package func result(
        variant: SimulationVariant, requests: Int, arrivalWindow: Double, cost: Double, paths: [String: Int], wallTime: Duration
    ) -> SimulationResult {
        let span = max(lastCompletion, arrivalWindow)
        // Good requests per second of arrivals: the offered rate times the share that was good,
        // whatever the tail of the last answers after the arrivals stop.
        let window = max(arrivalWindow, 1e-9)
        func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double? { OutcomeTally.milliseconds(histogram, percentile) }
        return SimulationResult(
            policy: variant.policy.rawValue, routing: variant.routing.rawValue, pd: variant.disaggregated,
            prefillShare: variant.disaggregated ? variant.prefillShare : nil, baseline: variant.baseline,
            requests: requests, completed: tally.completed, failed: tally.failed, rejected: rejected,
            sloCompliance: tally.sloCompliance, sloComplianceByPriority: tally.sloComplianceByPriority,
            goodputRPS: Double(tally.good) / window, ttftCompliance: targets.ttftCompliance, tpotCompliance: targets.tpotCompliance,
            sloGoodputRPS: Double(targets.good) / window, shedShare: targets.shedShare, p50LatencyMilliseconds: ms(tally.latency, 50),
            p99LatencyMilliseconds: ms(tally.latency, 99), p50TimeToFirstTokenMilliseconds: ms(tally.timeToFirstToken, 50),
            p99TimeToFirstTokenMilliseconds: ms(tally.timeToFirstToken, 99),
            p99LongPromptTimeToFirstTokenMilliseconds: ms(longTimeToFirstToken, 99),
            p50TimePerOutputTokenMilliseconds: ms(timePerOutputToken, 50), p99TimePerOutputTokenMilliseconds: ms(timePerOutputToken, 99),
            costPer1kTokens: tokens == 0 ? nil : cost / Double(tokens) * 1000, paths: paths, simulatedSeconds: span,
            wallSeconds: wallTime.seconds)
    }

    /// Seconds of simulated or measured time (finite, bounded by the run) as a Duration.
    static func duration(_ seconds: Double) -> Duration { .nanoseconds(Int64(max(-9e9, min(seconds, 9e9)) * 1e9)) }
}
