/// The order queued requests are dispatched in.
public enum SchedulingPolicy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Arrival order.
    case fifo
    /// Priority, then arrival; a waiting request gains one level per ``SchedulerConfiguration/agingInterval``.
    case priority
    /// Earliest deadline first; requests without a deadline after, in arrival order.
    case sloAware = "slo_aware"
    /// Arrival order, each to the cheapest instance that can still meet its deadline.
    case costOptimized = "cost_optimized"
    /// One of the above, chosen from the current load and the requests waiting.
    case adaptive

    public init?(name: String) {
        self.init(rawValue: name.lowercased().replacing("-", with: "_"))
    }
}

/// What the control plane does beyond the policy: queue bound, aging, shedding, failover.
public struct SchedulerConfiguration: Sendable, Hashable {
    /// Requests waiting at most; more are refused with ``ControlPlaneError/Code/queueFull``.
    public var maxQueueLength: Int
    /// Longest wait in the queue; nil waits as long as it takes.
    public var maxQueueWait: Duration?
    /// `priority`: a waiting request moves up one level per interval, so LOW and BACKGROUND
    /// are not starved forever.
    public var agingInterval: Duration
    /// `slo_aware`: a request whose deadline can no longer be met (given the fastest
    /// instance's measured latency) is shed with an error; false demotes it to no deadline.
    public var shedsUnreachableDeadlines: Bool
    /// A request that failed before any byte reached the caller is tried on this many other instances.
    public var maxFailovers: Int
    /// Consecutive failed requests that open an instance's circuit (marking it unhealthy until a probe succeeds).
    public var circuitBreakerThreshold: Int
    /// Weight of the newest sample in the latency and TTFT averages.
    public var ewmaAlpha: Double
    /// `cost_optimized`: an instance takes requests as the cheapest only while its load
    /// (in flight over `max_concurrent_requests`) is below this share; then the next price,
    /// and when every instance is past it, the least loaded. Cheap hardware is slow, and a full
    /// batch on it misses TPOT targets; 1 fills the cheapest first, whatever the batch.
    /// Kept within 0...1.
    public var costOptimizedLoadCap: Double {
        get { storedLoadCap }
        set { storedLoadCap = newValue.isNaN ? 1 : max(0, min(1, newValue)) }
    }
    private var storedLoadCap = 0.25
    /// Whether an instance's load counts the requests that other clients run on it: what its
    /// engine's `/metrics` reports running and waiting beyond this control plane's own
    /// requests. On for gateway replicas over one fleet, so that each does not believe it
    /// owns the engines' every slot; off, only this control plane's requests count.
    public var countsOtherClients = false

    public init(
        maxQueueLength: Int = 10_000, maxQueueWait: Duration? = nil, agingInterval: Duration = .seconds(5),
        shedsUnreachableDeadlines: Bool = true, maxFailovers: Int = 2, circuitBreakerThreshold: Int = 5,
        ewmaAlpha: Double = 0.1, costOptimizedLoadCap: Double = 0.25
    ) {
        self.maxQueueLength = maxQueueLength
        self.maxQueueWait = maxQueueWait
        self.agingInterval = agingInterval
        self.shedsUnreachableDeadlines = shedsUnreachableDeadlines
        self.maxFailovers = maxFailovers
        self.circuitBreakerThreshold = circuitBreakerThreshold
        self.ewmaAlpha = ewmaAlpha
        self.costOptimizedLoadCap = costOptimizedLoadCap
    }
}
