import CoreMetrics
import Prometheus
import SageControlPlane
import SageLLM
import Synchronization

/// The gateway's metrics, through swift-metrics handles made by this gateway's own Prometheus
/// factory, so that each gateway (several run in one test process) has its own registry;
/// ``render(fleet:)`` is the text `/metrics` serves.
final class GatewayMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    /// The handles, made once per label set rather than per request.
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[String: CoreMetrics.Timer]>([:])

    /// The replica's name (`--replica-id`), shown as `sagellm_gateway_replica_info{replica}`.
    private let replicaID: String?

    init(registry: PrometheusCollectorRegistry, replicaID: String? = nil) {
        self.registry = registry
        self.replicaID = replicaID
        var factory = PrometheusMetricsFactory(registry: registry)
        let latencyBuckets: [Duration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
            .seconds(300),
        ]
        factory.defaultDurationHistogramBuckets = latencyBuckets
        factory.durationHistogramBuckets["sagellm_gateway_inter_token_seconds"] = [
            .microseconds(100), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        self.factory = factory
    }

    /// A request answered (or refused) with `status`; `key` is the API key's name.
    func finished(model: String, status: Int, key: String, duration: Duration) {
        let labels = [("model", model), ("status", String(status)), ("key", key)]
        let counter = counters.withLock { counters in
            let id = "\(model)\u{0}\(status)\u{0}\(key)"
            if let counter = counters[id] { return counter }
            let counter = CoreMetrics.Counter(label: "sagellm_gateway_requests_total", dimensions: labels, factory: factory)
            counters[id] = counter
            return counter
        }
        counter.increment()
        timer("sagellm_gateway_request_duration_seconds", model: model).recordNanoseconds(duration.nanoseconds)
    }

    func firstToken(model: String, after: Duration) {
        timer("sagellm_gateway_time_to_first_token_seconds", model: model).recordNanoseconds(after.nanoseconds)
    }

    func interToken(model: String, gap: Duration) {
        timer("sagellm_gateway_inter_token_seconds", model: model).recordNanoseconds(gap.nanoseconds)
    }

    private func timer(_ label: String, model: String) -> CoreMetrics.Timer {
        timers.withLock { timers in
            let id = "\(label)\u{0}\(model)"
            if let timer = timers[id] { return timer }
            let timer = CoreMetrics.Timer(label: label, dimensions: [("model", model)], factory: factory)
            timers[id] = timer
            return timer
        }
    }

    /// The Prometheus text, with the figures read now: the gateway's requests being served (in
    /// all, and per API key), the queue length, and per instance its health, its requests in
    /// flight and its circuit state; per discovery source whether it is reachable, its
    /// instances and its failed reads; among replicas, how many are live.
    func render(fleet controlPlane: ControlPlaneClient, requestsActive: Int, perKey: [String: Int], replicas: Int? = nil) -> [UInt8] {
        let snapshot = controlPlane.metrics()
        if let replicaID { Gauge(label: "sagellm_gateway_replica_info", dimensions: [("replica", replicaID)], factory: factory).record(1) }
        if let replicas { Gauge(label: "sagellm_gateway_replicas", factory: factory).record(replicas) }
        Gauge(label: "sagellm_gateway_requests_active", factory: factory).record(requestsActive)
        for (key, inFlight) in perKey {
            Gauge(label: "sagellm_gateway_key_requests_in_flight", dimensions: [("key", key)], factory: factory).record(inFlight)
        }
        Gauge(label: "sagellm_gateway_queue_length", factory: factory).record(snapshot.queuedRequests)
        for instance in snapshot.instances {
            let dimensions = [("instance", instance.instanceID)]
            Gauge(label: "sagellm_gateway_instance_healthy", dimensions: dimensions, factory: factory).record(instance.isHealthy ? 1 : 0)
            Gauge(label: "sagellm_gateway_requests_in_flight", dimensions: dimensions, factory: factory).record(instance.activeRequests)
            Gauge(label: "sagellm_gateway_instance_circuit_open", dimensions: dimensions, factory: factory)
                .record(instance.isCircuitOpen ? 1 : 0)
        }
        for source in controlPlane.discoveryStatus() {
            let dimensions = [("source", source.name)]
            Gauge(label: "sagellm_gateway_discovery_source_up", dimensions: dimensions, factory: factory).record(source.isReachable ? 1 : 0)
            Gauge(label: "sagellm_gateway_discovery_instances", dimensions: dimensions, factory: factory).record(source.instances)
            Gauge(label: "sagellm_gateway_discovery_failures", dimensions: dimensions, factory: factory).record(source.failures)
        }
        return registry.emitToBuffer()
    }
}
