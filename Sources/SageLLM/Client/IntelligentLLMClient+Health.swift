import NIOHTTP1

/// What ``IntelligentLLMClient/healthCheck(probeTimeout:)`` found.
public struct HealthReport: Sendable, Encodable {
    /// How healthiness was decided.
    public enum Evidence: String, Sendable, Encodable {
        /// A request succeeded within the health window; nothing was sent.
        case recentAnswer = "recent_answer"
        /// `GET /models` answered now.
        case probe
        /// `GET /models` failed now (see ``lastError``).
        case probeFailed = "probe_failed"
    }

    /// The endpoint answered recently, or answers now.
    public var healthy: Bool
    public var evidence: Evidence
    public var endpoint: String
    /// Requests in flight (for HTTP/1.1, the pooled connections in use) and the pool size.
    public var connectionsInUse: Int
    public var poolSize: Int
    /// Requests waiting for a `maxConcurrent` slot.
    public var requestsWaiting: Int
    /// Seconds since the last successful answer, if there was one.
    public var secondsSinceLastSuccess: Double?
    /// The last failure (a request's or the probe's), as text, and how long ago.
    public var lastError: String?
    public var secondsSinceLastError: Double?
    /// How long the probe took, when one was sent.
    public var probeMilliseconds: Double?
    public var metrics: ClientMetricsSnapshot

    private enum CodingKeys: String, CodingKey {
        case healthy, evidence, endpoint, connectionsInUse = "connection_pool_in_use", poolSize = "connection_pool_size",
            requestsWaiting = "requests_waiting", secondsSinceLastSuccess = "seconds_since_last_success",
            lastError = "last_error", secondsSinceLastError = "seconds_since_last_error",
            probeMilliseconds = "probe_ms", metrics
    }
}

extension IntelligentLLMClient {
    /// Everything the client has measured so far (see ``ClientMetricsSnapshot``).
    public func metrics() -> ClientMetricsSnapshot { executor.metrics.snapshot() }

    /// Whether the endpoint works: healthy without sending anything when a request succeeded
    /// within ``ResilienceConfiguration/healthWindow``, otherwise as a `GET /models` probe
    /// (outside the rate limit and retries) answers now. An idle pool alone proves nothing.
    public func healthCheck(probeTimeout: Duration = .seconds(5)) async -> HealthReport {
        let now = ContinuousClock.now
        var record = executor.healthRecord
        var evidence = HealthReport.Evidence.recentAnswer
        var probeTime: Duration?
        if record.lastSuccess.map({ now - $0 > configuration.resilience.healthWindow }) ?? true {
            do {
                _ = try await transport.send(
                    method: .GET, path: "models", body: nil, requestID: HTTPTransport.makeRequestID(), timeout: probeTimeout)
                executor.noteAnswer()
                evidence = .probe
            } catch {
                record.lastError = error
                record.lastErrorAt = ContinuousClock.now
                evidence = .probeFailed
            }
            probeTime = ContinuousClock.now - now
            record.lastSuccess = executor.healthRecord.lastSuccess
        }
        let end = ContinuousClock.now
        return HealthReport(
            healthy: evidence != .probeFailed, evidence: evidence, endpoint: transport.baseURL,
            connectionsInUse: transport.requestsInFlight, poolSize: transport.configuration.maximumConnectionsPerHost,
            requestsWaiting: executor.slotsWaiting,
            secondsSinceLastSuccess: record.lastSuccess.map { (end - $0).seconds },
            lastError: record.lastError.map { "\($0)" }, secondsSinceLastError: record.lastErrorAt.map { (end - $0).seconds },
            probeMilliseconds: probeTime.map { $0.reportedMilliseconds }, metrics: metrics())
    }

    /// Opens pooled connections now instead of on the first requests: `connections`
    /// concurrent `GET /models` (default: the pool size, or `maxConcurrent` if smaller), each
    /// on its own HTTP/1.1 connection, which then stay idle in the pool for reuse. They go
    /// around the rate limits and retries. ``createAuto(model:probeTimeout:settings:detection:refresh:logger:)``
    /// calls this when ``ResilienceConfiguration/eagerInit`` is set.
    public func warmUp(connections: Int? = nil, timeout: Duration = .seconds(5)) async throws(SageLLMError) {
        let pool = transport.configuration.maximumConnectionsPerHost
        let count = max(1, min(connections ?? min(pool, configuration.resilience.maxConcurrent ?? pool), pool))
        let failure = await withTaskGroup(of: SageLLMError?.self) { group in
            for _ in 0..<count {
                group.addTask {
                    do throws(SageLLMError) {
                        _ = try await self.transport.send(
                            method: .GET, path: "models", body: nil, requestID: HTTPTransport.makeRequestID(), timeout: timeout)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            var first: SageLLMError?
            for await error in group where first == nil { first = error }
            return first
        }
        if let failure { throw failure }
        executor.noteAnswer()
    }
}
