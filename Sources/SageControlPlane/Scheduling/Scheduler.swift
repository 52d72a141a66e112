import Synchronization

/// A request waiting for, or holding, an instance.
struct QueuedRequest: Sendable {
    let id: UInt64
    let model: String
    let placement: RequestPlacement
    let arrival: ContinuousClock.Instant
    var deadline: ContinuousClock.Instant?
    let prefixBlocks: [UInt64]
    /// The request's `max_tokens`, for latency predictions.
    var expectedOutputTokens: Int? = nil
    /// Instances this request already failed on (failover goes elsewhere).
    var excluded: Set<String>
    var topologyAnchor: InstanceSpec?
}

/// An instance handed to a request; give it back with ``Scheduler/release(_:outcome:)`` exactly once.
struct Lease: Sendable {
    let requestID: UInt64
    let instance: InstanceSpec
    let arrival: ContinuousClock.Instant
    let dispatched: ContinuousClock.Instant
    let placement: RequestPlacement
    let policy: SchedulingPolicy
}

/// How a dispatched request ended.
enum LeaseOutcome: Sendable {
    case success(latency: Duration, timeToFirstToken: Duration?, outputTokens: Int?)
    /// The instance failed it (counts toward its circuit breaker).
    case instanceFailure
    /// The caller went away; says nothing about the instance.
    case cancelled
}

/// The admission queue and the instance table, behind one lock: requests wait here, ordered
/// by the policy, and are dispatched as soon as a slot frees (no polling). Load counters go
/// up at dispatch and down at release, whatever the outcome.
final class Scheduler: Sendable {
    struct Waiter {
        var request: QueuedRequest
        let sequence: UInt64
        let continuation: CheckedContinuation<Lease, any Error>
    }

    struct State {
        var instances: [InstanceState] = []
        var index = FleetIndex()
        /// `cost_optimized`: per model, positions by cost per token, refreshed at most every 100 ms.
        var costOrder: [String: (computed: ContinuousClock.Instant, positions: [Int])] = [:]
        /// Requests dispatched and not yet released, over all instances.
        var inFlightTotal = 0
        var waiting: [Waiter] = []
        var nextID: UInt64 = 0
        var router: Router
        var policy: SchedulingPolicy
        var shutDown = false
        /// `adaptive`: how often each policy was chosen, and the last reason.
        var adaptiveChoices: [SchedulingPolicy: Int] = [:]
        var adaptiveReason = "no decision yet"
        var cancelledBeforeEnqueue = Set<UInt64>()
    }

    let configuration: SchedulerConfiguration
    let metrics: ControlPlaneMetrics
    private let state: Mutex<State>

    init(policy: SchedulingPolicy, routing: RoutingStrategy, configuration: SchedulerConfiguration, metrics: ControlPlaneMetrics) {
        self.configuration = configuration
        self.metrics = metrics
        state = Mutex(State(router: Router(strategy: routing), policy: policy))
    }

    // MARK: Instances

    func add(_ spec: InstanceSpec) throws(ControlPlaneError) {
        try spec.validate()
        let resumes: [Resume] = try state.withLock { (state) throws(ControlPlaneError) -> [Resume] in
            if let index = state.instances.firstIndex(where: { $0.spec.id == spec.id }) {
                guard state.instances[index].draining else {
                    throw ControlPlaneError(.invalidConfiguration, "an instance with this id is already present", instanceID: spec.id, field: "instance_id")
                }
                // A changed instance: its requests still running are counted on the new entry.
                var fresh = InstanceState(spec: spec)
                fresh.inFlight = state.instances[index].inFlight
                state.instances[index] = fresh
            } else {
                state.instances.append(InstanceState(spec: spec))
            }
            state.index = FleetIndex(state.instances)
            state.costOrder = [:]
            return pump(&state)
        }
        resumes.forEach { $0() }
    }

    /// Stops sending new requests to `id`; those it runs finish. `remove` also forgets it once idle.
    func drain(_ id: String, remove: Bool) -> Bool {
        state.withLock { state in
            guard let index = state.instances.firstIndex(where: { $0.spec.id == id }) else { return false }
            state.instances[index].draining = true
            state.instances[index].healthReason = remove ? "removed" : "drained"
            if remove && state.instances[index].inFlight == 0 { state.instances.remove(at: index) }
            state.index = FleetIndex(state.instances)
            return true
        }
    }

    func setHealth(_ id: String, healthy: Bool, reason: String) {
        let resumes: [Resume] = state.withLock { state in
            guard let index = state.instances.firstIndex(where: { $0.spec.id == id }) else { return [] }
            let changed = state.instances[index].healthy != healthy
            state.instances[index].healthy = healthy
            state.instances[index].healthReason = reason
            if healthy { state.instances[index].consecutiveFailures = 0 }
            if changed { state.index = FleetIndex(state.instances) }
            return healthy ? pump(&state) : failUnservable(&state)
        }
        resumes.forEach { $0() }
    }

    func setEngineFigures(_ id: String, running: Double?, waiting: Double?, kvCacheUsage: Double?) {
        state.withLock { state in
            guard let index = state.instances.firstIndex(where: { $0.spec.id == id }) else { return }
            state.instances[index].engineRunning = running
            state.instances[index].engineWaiting = waiting
            state.instances[index].kvCacheUsage = kvCacheUsage
        }
    }

    var instanceStates: [InstanceState] { state.withLock { $0.instances } }
    var queueLength: Int { state.withLock { $0.waiting.count } }
    var adaptiveSummary: (choices: [SchedulingPolicy: Int], reason: String) {
        state.withLock { ($0.adaptiveChoices, $0.adaptiveReason) }
    }

    // MARK: Admission

    typealias Resume = @Sendable () -> Void

    /// Waits for an instance for `request` (at once when one has a free slot and nobody waits).
    func acquire(_ request: QueuedRequest) async throws -> Lease {
        // The fast path, and the queue entry, under one lock.
        enum Admission { case leased(Lease), failed(ControlPlaneError), queued(UInt64) }
        let admission: Admission = state.withLock { state in
            if state.shutDown { return .failed(ControlPlaneError(.shutDown, "the control plane was shut down")) }
            if !Self.isServable(request, state) { return .failed(Self.noInstance(request, state)) }
            if state.waiting.isEmpty, let lease = dispatchNow(request, &state) { return .leased(lease) }
            if state.waiting.count >= configuration.maxQueueLength {
                return .failed(ControlPlaneError(.queueFull, "the admission queue holds \(configuration.maxQueueLength) requests already; try again later"))
            }
            state.nextID += 1
            return .queued(state.nextID)
        }
        switch admission {
        case .leased(let lease): return lease
        case .failed(let error): throw error
        case .queued(let sequence): return try await wait(request, sequence: sequence)
        }
    }

    private func wait(_ request: QueuedRequest, sequence: UInt64) async throws -> Lease {
        let maxWait = configuration.maxQueueWait
        return try await withThrowingTaskGroup(of: Lease?.self) { group in
            group.addTask {
                try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
                        let resumes: [Resume] = self.state.withLock { state in
                            if state.cancelledBeforeEnqueue.remove(request.id) != nil {
                                return [{ continuation.resume(throwing: ControlPlaneError(.cancelled, "the request was cancelled while it waited")) }]
                            }
                            state.waiting.append(Waiter(request: request, sequence: sequence, continuation: continuation))
                            return self.pump(&state)
                        }
                        resumes.forEach { $0() }
                    }
                } onCancel: {
                    self.remove(request.id, with: ControlPlaneError(.cancelled, "the request was cancelled while it waited"))
                }
            }
            if let maxWait {
                group.addTask {
                    try await Task.sleep(for: maxWait)
                    self.remove(
                        request.id,
                        with: ControlPlaneError(.queueTimeout, "the request waited \(Self.format(maxWait)) in the queue without a free instance"))
                    return nil
                }
            }
            while let next = try await group.next() {
                if let lease = next {
                    group.cancelAll()
                    return lease
                }
            }
            throw ControlPlaneError(.cancelled, "the request was cancelled while it waited")
        }
    }

    /// Takes a waiting request out of the queue with `error` (cancelled, timed out).
    private func remove(_ id: UInt64, with error: ControlPlaneError) {
        let continuation: CheckedContinuation<Lease, any Error>? = state.withLock { state in
            if let index = state.waiting.firstIndex(where: { $0.request.id == id }) {
                return state.waiting.remove(at: index).continuation
            }
            if error.code == .cancelled { state.cancelledBeforeEnqueue.insert(id) }
            return nil
        }
        continuation?.resume(throwing: error)
    }

    /// Gives an instance back, updates its figures, and dispatches whoever can go now.
    func release(_ lease: Lease, outcome: LeaseOutcome) {
        let alpha = configuration.ewmaAlpha
        let threshold = configuration.circuitBreakerThreshold
        let resumes: [Resume] = state.withLock { state in
            state.cancelledBeforeEnqueue.remove(lease.requestID)
            state.inFlightTotal -= 1
            guard let index = state.index.positionOf[lease.instance.id] else { return pump(&state) }
            state.instances[index].inFlight -= 1
            switch outcome {
            case .success(let latency, let ttft, let tokens):
                state.instances[index].completed += 1
                state.instances[index].consecutiveFailures = 0
                var instance = state.instances[index]
                instance.latency = InstanceState.averaged(instance.latency, latency.seconds, alpha: alpha)
                if let ttft { instance.timeToFirstToken = InstanceState.averaged(instance.timeToFirstToken, ttft.seconds, alpha: alpha) }
                if let tokens, tokens > 0 {
                    instance.secondsPerToken = InstanceState.averaged(instance.secondsPerToken, latency.seconds / Double(tokens), alpha: alpha)
                }
                if let tokens, tokens > 1, let ttft, latency > ttft {
                    instance.tokensPerSecond = InstanceState.averaged(
                        instance.tokensPerSecond, Double(tokens - 1) / (latency - ttft).seconds, alpha: alpha)
                }
                state.instances[index] = instance
            case .instanceFailure:
                state.instances[index].failed += 1
                state.instances[index].consecutiveFailures += 1
                if state.instances[index].consecutiveFailures >= threshold && state.instances[index].healthy {
                    state.instances[index].healthy = false
                    state.instances[index].healthReason = "circuit open: \(threshold) failed requests in a row"
                    state.index = FleetIndex(state.instances)
                    return failUnservable(&state) + pump(&state)
                }
            case .cancelled: break
            }
            if state.instances[index].draining && state.instances[index].healthReason == "removed" && state.instances[index].inFlight == 0 {
                state.instances.remove(at: index)
                state.index = FleetIndex(state.instances)
                return failUnservable(&state) + pump(&state)
            }
            return pump(&state)
        }
        resumes.forEach { $0() }
    }

    func shutdown() {
        let waiters: [Waiter] = state.withLock { state in
            state.shutDown = true
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for waiter in waiters { waiter.continuation.resume(throwing: ControlPlaneError(.shutDown, "the control plane was shut down")) }
    }

    // MARK: Dispatching (under the lock)

    /// Routes `request` to an instance with a free slot now, and counts it there.
    private func dispatchNow(_ request: QueuedRequest, _ state: inout State, policy: SchedulingPolicy? = nil) -> Lease? {
        let policy = policy ?? effectivePolicy(&state)
        guard let positions = state.index.positionsByModel[request.model], !positions.isEmpty else { return nil }
        let chosen: Int?
        do {
            // This copy of the table must be gone before the table is changed below, or the
            // change would copy the whole table.
            let instances = state.instances
            let excluded = request.excluded
            let eligible = { (position: Int) -> Bool in
                instances[position].hasFreeSlot && instances[position].healthy && !instances[position].draining
                    && (excluded.isEmpty || !excluded.contains(instances[position].spec.id))
            }
            if policy == .costOptimized {
                let now = ContinuousClock.now
                if let cached = state.costOrder[request.model], now - cached.computed < .milliseconds(100), cached.positions.count == positions.count {
                    chosen = cheapest(instances, cached.positions, request, eligible)
                } else {
                    let sorted = positions.sorted { instances[$0].costPerToken < instances[$1].costPerToken }
                    state.costOrder[request.model] = (now, sorted)
                    chosen = cheapest(instances, sorted, request, eligible)
                }
            } else {
                chosen = state.router.choose(instances, positions: positions, index: state.index, for: request, eligible: eligible)
            }
        }
        guard let position = chosen else { return nil }
        state.instances[position].inFlight += 1
        state.inFlightTotal += 1
        state.router.dispatched(request, to: state.instances[position].spec.id)
        return Lease(
            requestID: request.id, instance: state.instances[position].spec, arrival: request.arrival, dispatched: .now,
            placement: request.placement, policy: policy)
    }

    /// `cost_optimized`: the cheapest per token among those whose measured latency still meets
    /// the deadline (the least loaded among equally cheap ones); `byCost` is sorted by cost.
    private func cheapest(_ instances: [InstanceState], _ byCost: [Int], _ request: QueuedRequest, _ eligible: (Int) -> Bool) -> Int? {
        let remaining = request.deadline.map { ($0 - .now).seconds }
        func meets(_ position: Int) -> Bool { remaining.map { (instances[position].predictedLatency(request) ?? 0) <= $0 } ?? true }
        var fallback: Int?
        var best: Int?
        for position in byCost where eligible(position) {
            if fallback == nil { fallback = position }
            guard meets(position) else { continue }
            if let current = best {
                // Sorted by cost: past the cheapest price, stop; at the same price, prefer less load.
                guard instances[position].costPerToken == instances[current].costPerToken else { break }
                if instances[position].load < instances[current].load { best = position }
            } else {
                best = position
            }
        }
        return best ?? fallback
    }

    /// Whether some instance can take `request` at all (ignoring free slots).
    static func isServable(_ request: QueuedRequest, _ state: State) -> Bool {
        if request.excluded.isEmpty { return (state.index.servingCount[request.model] ?? 0) > 0 }
        return (state.index.positionsByModel[request.model] ?? []).contains { position in
            state.instances[position].serves(request.model) && !request.excluded.contains(state.instances[position].spec.id)
        }
    }

    /// `adaptive` resolved for this moment (the originals' rule), recorded with its reason.
    private func effectivePolicy(_ state: inout State) -> SchedulingPolicy {
        guard state.policy == .adaptive else { return state.policy }
        // In flight over the serving capacity: the fleet's load, without a scan per decision.
        let capacity = state.index.servingCapacity.values.reduce(0, +)
        let meanLoad = capacity == 0 ? 0 : Double(state.inFlightTotal) / Double(capacity)
        let urgent = state.waiting.contains { $0.request.placement.priority <= .high }
        let withDeadlines = state.waiting.contains { $0.request.deadline != nil }
        let (choice, reason): (SchedulingPolicy, String) =
            if urgent { (.priority, "CRITICAL or HIGH requests are waiting") }
            else if withDeadlines && meanLoad > 0.8 { (.sloAware, "requests with deadlines wait and mean load is \(Self.percent(meanLoad))") }
            else if meanLoad < 0.3 { (.costOptimized, "mean load is \(Self.percent(meanLoad)), below 30%") }
            else { (.sloAware, "mean load is \(Self.percent(meanLoad))") }
        state.adaptiveChoices[choice, default: 0] += 1
        state.adaptiveReason = reason
        return choice
    }

    /// Dispatches waiting requests in policy order while instances have free slots.
    private func pump(_ state: inout State) -> [Resume] {
        guard !state.waiting.isEmpty else { return [] }
        var resumes: [Resume] = []
        let policy = effectivePolicy(&state)
        let now = ContinuousClock.now
        if policy == .sloAware { resumes += shed(&state, now: now) }
        let order = state.waiting.indices.sorted { rank(state.waiting[$0], now: now, policy) < rank(state.waiting[$1], now: now, policy) }
        var blockedModels = Set<String>()
        var dispatched: [Int] = []
        for index in order {
            let waiter = state.waiting[index]
            // Requests for one model keep their order: once one cannot go, later ones wait too.
            if blockedModels.contains(waiter.request.model) { continue }
            guard let lease = dispatchNow(waiter.request, &state, policy: policy) else {
                blockedModels.insert(waiter.request.model)
                continue
            }
            dispatched.append(index)
            let continuation = waiter.continuation
            resumes.append { continuation.resume(returning: lease) }
        }
        for index in dispatched.sorted(by: >) { state.waiting.remove(at: index) }
        return resumes
    }

    /// The sort key of a waiting request under `policy` (smaller goes first).
    private func rank(_ waiter: Waiter, now: ContinuousClock.Instant, _ policy: SchedulingPolicy) -> (Double, Double, UInt64) {
        switch policy {
        case .fifo, .costOptimized, .adaptive:
            return (0, 0, waiter.sequence)
        case .priority:
            let waited = (now - waiter.request.arrival).seconds
            let aged = Double(waiter.request.placement.priority.rawValue) - waited / configuration.agingInterval.seconds
            return (aged, 0, waiter.sequence)
        case .sloAware:
            let deadline = waiter.request.deadline.map { ($0 - now).seconds } ?? .infinity
            return (deadline, 0, waiter.sequence)
        }
    }

    /// `slo_aware`: waiting requests that can no longer meet their deadline, given the fastest
    /// measured instance for their model, are shed (or lose their deadline).
    private func shed(_ state: inout State, now: ContinuousClock.Instant) -> [Resume] {
        var resumes: [Resume] = []
        var kept: [Waiter] = []
        for var waiter in state.waiting {
            guard let deadline = waiter.request.deadline else {
                kept.append(waiter)
                continue
            }
            let fastest = (state.index.positionsByModel[waiter.request.model] ?? []).compactMap { position in
                state.instances[position].serves(waiter.request.model) ? state.instances[position].predictedLatency(waiter.request) : nil
            }.min()
            guard let fastest, now + .nanoseconds(Int64(fastest * 1e9)) > deadline else {
                kept.append(waiter)
                continue
            }
            if configuration.shedsUnreachableDeadlines {
                let error = ControlPlaneError(
                    .deadlineUnreachable,
                    "the request's SLO deadline can no longer be met: \(Self.format(max(.zero, deadline - now))) left, the fastest instance takes \(Self.format(.nanoseconds(Int64(fastest * 1e9))))")
                let continuation = waiter.continuation
                resumes.append { continuation.resume(throwing: error) }
            } else {
                waiter.request.deadline = nil
                kept.append(waiter)
            }
        }
        state.waiting = kept
        return resumes
    }

    /// Waiting requests whose model no instance serves any more fail at once.
    private func failUnservable(_ state: inout State) -> [Resume] {
        var resumes: [Resume] = []
        let snapshot = state
        state.waiting.removeAll { waiter in
            guard !Self.isServable(waiter.request, snapshot) else { return false }
            let error = Self.noInstance(waiter.request, snapshot)
            let continuation = waiter.continuation
            resumes.append { continuation.resume(throwing: error) }
            return true
        }
        return resumes
    }

    static func noInstance(_ request: QueuedRequest, _ state: State) -> ControlPlaneError {
        let same = state.instances.filter { $0.spec.model == request.model }
        let detail =
            same.isEmpty
            ? "no instance serves model '\(request.model)' (served: \(Set(state.instances.map(\.spec.model)).sorted().joined(separator: ", ")))"
            : "every instance serving '\(request.model)' is unavailable: "
                + same.map { "\($0.spec.id) \($0.draining ? "drained" : ($0.healthy ? (request.excluded.contains($0.spec.id) ? "already failed this request" : "busy") : "unhealthy: \($0.healthReason)"))" }
                .joined(separator: "; ")
        return ControlPlaneError(.noInstance, detail)
    }

    static func format(_ duration: Duration) -> String {
        let seconds = duration.seconds
        return seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : "\((seconds * 100).rounded() / 100) s"
    }

    static func percent(_ value: Double) -> String { "\(Int((value * 100).rounded()))%" }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
