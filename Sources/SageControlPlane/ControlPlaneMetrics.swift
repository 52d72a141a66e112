import SageLLM
import Histogram
import Metrics
import Synchronization

/// What the control plane has done, computed from real measurements (the originals left
/// percentiles at 0 and SLO compliance at 1.0).
public struct ControlPlaneMetricsSnapshot: Sendable, Encodable {
    public var totalRequests: Int
    public var completedRequests: Int
    public var failedRequests: Int
    /// Requests dispatched and not finished.
    public var activeRequests: Int
    /// Requests waiting in the admission queue.
    public var queuedRequests: Int
    /// Refused or removed from the queue, by reason (queue full, timeout, deadline, cancelled, no instance).
    public var rejected: [String: Int]
    public var averageLatencyMilliseconds: Double?
    public var p50LatencyMilliseconds: Double?
    public var p95LatencyMilliseconds: Double?
    public var p99LatencyMilliseconds: Double?
    public var p50TimeToFirstTokenMilliseconds: Double?
    public var p95TimeToFirstTokenMilliseconds: Double?
    public var p99TimeToFirstTokenMilliseconds: Double?
    public var p50QueueWaitMilliseconds: Double?
    public var p99QueueWaitMilliseconds: Double?
    /// Completed requests with a deadline that met it, over all that had one; nil when none had one.
    public var sloComplianceRate: Double?
    /// The same per priority (names as keys).
    public var sloComplianceByPriority: [String: Double]
    /// Completed requests that met their deadline (or had none), per second since the first request.
    public var goodput: Double
    /// Completed requests per second since the first request.
    public var requestsPerSecond: Double
    /// `adaptive`: how often each policy was chosen, and why the last time.
    public var adaptivePolicyChoices: [String: Int]
    public var adaptiveReason: String?
    /// Requests by path: `direct`, `disaggregated` (prefill and decode instances), `fallback`.
    public var paths: [String: Int]
    public var instances: [InstanceSnapshot]

    private enum CodingKeys: String, CodingKey {
        case totalRequests = "total_requests", completedRequests = "completed_requests", failedRequests = "failed_requests",
            activeRequests = "active_requests", queuedRequests = "queued_requests", rejected,
            averageLatencyMilliseconds = "avg_latency_ms", p50LatencyMilliseconds = "p50_latency_ms",
            p95LatencyMilliseconds = "p95_latency_ms", p99LatencyMilliseconds = "p99_latency_ms",
            p50TimeToFirstTokenMilliseconds = "p50_ttft_ms", p95TimeToFirstTokenMilliseconds = "p95_ttft_ms",
            p99TimeToFirstTokenMilliseconds = "p99_ttft_ms", p50QueueWaitMilliseconds = "p50_queue_wait_ms",
            p99QueueWaitMilliseconds = "p99_queue_wait_ms", sloComplianceRate = "slo_compliance_rate",
            sloComplianceByPriority = "slo_compliance_by_priority", goodput, requestsPerSecond = "requests_per_second",
            adaptivePolicyChoices = "adaptive_policy_choices", adaptiveReason = "adaptive_reason", paths, instances
    }
}

/// One instance as `instances()` shows it (the originals' fields plus latency and health).
public struct InstanceSnapshot: Sendable, Encodable {
    public var instanceID: String
    public var baseURL: String
    public var model: String
    public var type: InstanceType
    public var gpuCount: Int
    public var isAvailable: Bool
    public var isHealthy: Bool
    public var healthReason: String
    /// Taken out by its circuit breaker (failed requests in a row), until a probe finds it healthy.
    public var isCircuitOpen: Bool
    public var currentLoad: Double
    public var activeRequests: Int
    /// Requests other clients (other gateway replicas) run on it, from its engine's figures,
    /// when they are counted (``SchedulerConfiguration/countsOtherClients``).
    public var otherClientsRequests: Int
    public var maxConcurrentRequests: Int
    public var completed: Int
    public var failed: Int
    public var averageLatencyMilliseconds: Double?
    public var averageTimeToFirstTokenMilliseconds: Double?
    /// Time per output token after the first, averaged over streamed requests with usage
    /// (what `slo_aware` compares with a request's TPOT target).
    public var averageTimePerOutputTokenMilliseconds: Double?
    public var engineRunning: Double?
    public var engineWaiting: Double?
    public var kvCacheUsage: Double?

    private enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id", baseURL = "base_url", model = "model_name", type = "instance_type",
            gpuCount = "gpu_count", isAvailable = "is_available", isHealthy = "is_healthy", healthReason = "health_reason",
            isCircuitOpen = "is_circuit_open",
            currentLoad = "current_load", activeRequests = "active_requests", otherClientsRequests = "other_clients_requests",
            maxConcurrentRequests = "max_concurrent_requests", completed, failed,
            averageLatencyMilliseconds = "avg_latency_ms", averageTimeToFirstTokenMilliseconds = "avg_ttft_ms",
            averageTimePerOutputTokenMilliseconds = "avg_tpot_ms", engineRunning = "engine_running", engineWaiting = "engine_waiting", kvCacheUsage = "kv_cache_usage"
    }

    init(_ state: InstanceState) {
        instanceID = state.spec.id
        baseURL = state.spec.baseURL
        model = state.spec.model
        type = state.spec.type
        gpuCount = state.spec.gpuCount
        isAvailable = !state.draining
        isHealthy = state.healthy
        healthReason = state.healthReason
        isCircuitOpen = state.circuitOpen
        currentLoad = state.load
        activeRequests = state.inFlight
        otherClientsRequests = state.othersInFlight
        maxConcurrentRequests = state.spec.maxConcurrentRequests
        completed = state.completed
        failed = state.failed
        averageLatencyMilliseconds = state.latency.map { $0 * 1000 }
        averageTimeToFirstTokenMilliseconds = state.timeToFirstToken.map { $0 * 1000 }
        averageTimePerOutputTokenMilliseconds = state.tokensPerSecond.map { 1000 / $0 }
        engineRunning = state.engineRunning
        engineWaiting = state.engineWaiting
        kvCacheUsage = state.kvCacheUsage
    }
}

/// The running tally behind ``ControlPlaneMetricsSnapshot``, also emitted through swift-metrics
/// (dimensions: instance id, outcome, priority).
package final class ControlPlaneMetrics: Sendable {
    private struct State {
        var total = 0
        var rejected: [String: Int] = [:]
        var outcomes = OutcomeTally()
        var paths: [String: Int] = [:]
        var first: ContinuousClock.Instant?
        /// The swift-metrics handles, made once per instance or path rather than per request.
        var instanceMeters: [String: InstanceMeters] = [:]
        var pathCounters: [String: Counter] = [:]
    }

    private struct InstanceMeters {
        let succeeded: Counter
        let failed: Counter
        let duration: Timer

        init(_ instance: String) {
            succeeded = Counter(label: "sagellm_control_plane_requests_total", dimensions: [("instance", instance), ("outcome", "success")])
            failed = Counter(label: "sagellm_control_plane_requests_total", dimensions: [("instance", instance), ("outcome", "failure")])
            duration = Timer(label: "sagellm_control_plane_request_duration_seconds", dimensions: [("instance", instance)])
        }
    }

    private let state = Mutex(State())

    package init() {}

    private static func arrived(_ state: inout State) {
        state.total += 1
        if state.first == nil { state.first = .now }
    }

    /// A request arrived and was refused before it had a path (see ``recordPath(_:)``).
    func recordRefusedOnArrival(_ code: ControlPlaneError.Code) {
        state.withLock { Self.arrived(&$0) }
        recordRejected(code)
    }

    /// A request arrived and takes `path` (its arrival is counted here, with one lock).
    func recordPath(_ path: ExecutionPath) {
        let counter = state.withLock { state in
            Self.arrived(&state)
            state.paths[path.name, default: 0] += 1
            if let counter = state.pathCounters[path.name] { return counter }
            let counter = Counter(label: "sagellm_control_plane_paths_total", dimensions: [("path", path.name)])
            state.pathCounters[path.name] = counter
            return counter
        }
        counter.increment()
    }

    func recordRejected(_ code: ControlPlaneError.Code) {
        state.withLock { $0.rejected[code.description, default: 0] += 1 }
        Counter(label: "sagellm_control_plane_rejected_total", dimensions: [("reason", code.description)]).increment()
    }

    /// A finished request; `queueWait` is its time waiting for instances (for a split request,
    /// both waits, not the prefill itself).
    func recordCompletion(_ lease: Lease, latency: Duration, timeToFirstToken: Duration?, queueWait: Duration, succeeded: Bool) {
        let meters = state.withLock { state in
            state.outcomes.record(
                succeeded: succeeded, latency: latency, timeToFirstToken: timeToFirstToken, queueWait: queueWait,
                priority: lease.placement.priority, deadline: lease.placement.sloDeadline)
            if let meters = state.instanceMeters[lease.instance.id] { return meters }
            let meters = InstanceMeters(lease.instance.id)
            state.instanceMeters[lease.instance.id] = meters
            return meters
        }
        if succeeded {
            meters.succeeded.increment()
            meters.duration.recordNanoseconds(latency.nanoseconds)
        } else {
            meters.failed.increment()
        }
    }

    func snapshot(active: Int, queued: Int, instances: [InstanceState], adaptive: (choices: [SchedulingPolicy: Int], reason: String)?)
        -> ControlPlaneMetricsSnapshot
    {
        state.withLock { state in
            let outcomes = state.outcomes
            func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double? { OutcomeTally.milliseconds(histogram, percentile) }
            let elapsed = state.first.map { max((ContinuousClock.now - $0).seconds, 1e-9) }
            return ControlPlaneMetricsSnapshot(
                totalRequests: state.total, completedRequests: outcomes.completed, failedRequests: outcomes.failed,
                activeRequests: active, queuedRequests: queued, rejected: state.rejected,
                averageLatencyMilliseconds: outcomes.averageLatencyMilliseconds,
                p50LatencyMilliseconds: ms(outcomes.latency, 50), p95LatencyMilliseconds: ms(outcomes.latency, 95),
                p99LatencyMilliseconds: ms(outcomes.latency, 99), p50TimeToFirstTokenMilliseconds: ms(outcomes.timeToFirstToken, 50),
                p95TimeToFirstTokenMilliseconds: ms(outcomes.timeToFirstToken, 95),
                p99TimeToFirstTokenMilliseconds: ms(outcomes.timeToFirstToken, 99),
                p50QueueWaitMilliseconds: ms(outcomes.queueWait, 50), p99QueueWaitMilliseconds: ms(outcomes.queueWait, 99),
                sloComplianceRate: outcomes.sloCompliance, sloComplianceByPriority: outcomes.sloComplianceByPriority,
                goodput: elapsed.map { Double(outcomes.good) / $0 } ?? 0,
                requestsPerSecond: elapsed.map { Double(outcomes.completed) / $0 } ?? 0,
                adaptivePolicyChoices: Dictionary(uniqueKeysWithValues: (adaptive?.choices ?? [:]).map { ($0.key.rawValue, $0.value) }),
                adaptiveReason: adaptive?.reason, paths: state.paths, instances: instances.map(InstanceSnapshot.init))
        }
    }
}
