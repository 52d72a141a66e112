/// Where instances come from besides a cluster file's static list: a DNS name, Kubernetes
/// EndpointSlices or etcd keys. A source reports its whole current fleet each time it
/// learns something, or that it cannot be reached; ``FleetDiscovery`` turns the reports
/// into instances added and drained.
protocol FleetSource: Sendable {
    /// How logs, metrics and `/ready` name it: `dns vllm.default.svc:8000`.
    var name: String { get }
    /// Reports the fleet (or why it cannot) until the task is cancelled.
    func run(_ report: @escaping @Sendable (FleetSourceReport) async -> Void) async
}

/// What a source learned.
enum FleetSourceReport: Sendable, Equatable {
    /// Every instance the source knows now (a full snapshot, not a change).
    case fleet([InstanceSpec])
    /// The source could not be read; the reason, for logs and `/ready`. The last fleet stays.
    case unreachable(String)
}

/// A source's state, as `/ready` and the metrics show it.
public struct FleetSourceStatus: Sendable, Hashable {
    /// How the source is named: `dns vllm.default.svc:8000`.
    public var name: String
    /// Whether its last read succeeded.
    public var isReachable: Bool
    /// Instances it contributes now (the last fleet it reported, kept while it is unreachable).
    public var instances: Int
    /// Why its last read failed, while it is unreachable.
    public var lastError: String?
    /// When it was last read successfully (nil: never).
    public var lastSuccess: ContinuousClock.Instant?
    /// Reads that failed since the source started.
    public var failures: Int
}

/// A watched source's wait after a failure: waits `backoff` (false when cancelled) and
/// doubles it up to `maximum`.
func pauseBeforeRetry(_ backoff: inout Duration, maximum: Duration) async -> Bool {
    do { try await Task.sleep(for: backoff) } catch { return false }
    backoff = min(backoff * 2, maximum)
    return true
}
