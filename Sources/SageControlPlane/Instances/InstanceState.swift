/// An instance as the control plane sees it now: its spec, the requests it runs (counted by
/// the control plane itself, up at dispatch and down when the request ends, whatever the
/// outcome), measured latency, and health.
struct InstanceState: Sendable {
    let spec: InstanceSpec
    /// The same spec, by reference, for the leases of this instance's requests.
    let sharedSpec: SharedInstanceSpec
    var inFlight = 0
    /// Requests other clients (other gateway replicas) run on it, from its engine's figures
    /// (see ``SchedulerConfiguration/countsOtherClients``).
    var othersInFlight = 0
    var healthy = true
    var healthReason = "not probed yet"
    /// Drained instances take no new requests; removed ones disappear once idle.
    var draining = false
    var consecutiveFailures = 0
    /// Taken out by the circuit breaker; a probe that finds it healthy closes it.
    var circuitOpen = false
    var completed = 0
    var failed = 0
    /// Exponentially weighted averages, in seconds; nil until measured.
    var latency: Double?
    var timeToFirstToken: Double?
    /// Output tokens per second of one request, averaged.
    var tokensPerSecond: Double?
    /// Seconds of service per output token (latency / tokens), averaged: predicts a request's
    /// latency from its `max_tokens`.
    var secondsPerToken: Double?
    /// From the engine's `/metrics`.
    var engineRunning: Double?
    var engineWaiting: Double?
    var kvCacheUsage: Double?
    /// The client requests to this instance go through (nil in a cluster simulation).
    var client: InstanceClient?

    init(spec: InstanceSpec, client: InstanceClient? = nil) {
        self.spec = spec
        self.sharedSpec = SharedInstanceSpec(spec)
        self.client = client
    }

    /// Its slots taken, by this control plane and by others.
    var occupied: Int { inFlight + othersInFlight }
    var load: Double { Double(occupied) / Double(spec.maxConcurrentRequests) }
    var hasFreeSlot: Bool { occupied < spec.maxConcurrentRequests }
    /// Healthy and not drained: it takes new requests.
    var isServing: Bool { healthy && !draining }

    /// Takes requests of `pool` at all (ignoring its free slots).
    func serves(_ pool: PoolKey) -> Bool {
        healthy && !draining && spec.type.takes(pool.phase) && spec.model == pool.model
    }

    /// Counts a request it served, and averages its figures in.
    mutating func recordSuccess(latency: Duration, timeToFirstToken ttft: Duration?, outputTokens tokens: Int?, alpha: Double) {
        completed += 1
        consecutiveFailures = 0
        self.latency = Self.averaged(self.latency, latency.seconds, alpha: alpha)
        if let ttft { timeToFirstToken = Self.averaged(timeToFirstToken, ttft.seconds, alpha: alpha) }
        if let tokens, tokens > 0 {
            secondsPerToken = Self.averaged(secondsPerToken, latency.seconds / Double(tokens), alpha: alpha)
        }
        if let tokens, tokens > 1, let ttft, latency > ttft {
            tokensPerSecond = Self.averaged(tokensPerSecond, Double(tokens - 1) / (latency - ttft).seconds, alpha: alpha)
        }
    }

    /// An exponentially weighted average with `sample` added (the sample itself when there was none).
    static func averaged(_ current: Double?, _ sample: Double, alpha: Double) -> Double {
        current.map { $0 + alpha * (sample - $0) } ?? sample
    }

    /// How long this instance would likely take for `request`: its seconds per token times the
    /// request's `max_tokens` when both are known, else its average latency.
    func predictedLatency(_ request: QueuedRequest) -> Double? {
        if let secondsPerToken, let tokens = request.expectedOutputTokens { return secondsPerToken * Double(tokens) }
        return latency
    }

    /// Dollars per output token: price per GPU-second over measured speed (1 token/s when unknown).
    var costPerToken: Double {
        spec.costPerGPUHour * Double(spec.gpuCount) / 3600 / max(tokensPerSecond ?? 1, 1e-9)
    }
}
