import SageLLM
/// Every scheduling and routing decision, with no locks, tasks or clock of its own: the
/// time is passed in. The live ``Scheduler`` runs it under a lock with the real clock; the
/// ``ClusterSimulation`` runs the very same code on a virtual clock.
struct SchedulingCore: Sendable {
    let configuration: SchedulerConfiguration
    var instances: [InstanceState] = []
    var index = FleetIndex()
    /// `cost_optimized`: per pool, positions by cost per token, refreshed at most every 100 ms.
    var costOrder: [PoolKey: (computed: ContinuousClock.Instant, positions: [Int])] = [:]
    /// Requests dispatched and not yet released, over all instances.
    var inFlightTotal = 0
    var waiting: WaitingQueue
    /// One router per phase (indexed by its raw value), so prefill and decode can be routed differently.
    var routers: [Router]
    var policy: SchedulingPolicy
    var shutDown = false
    /// `adaptive`: how often each policy was chosen, and the last reason.
    /// `adaptive`: how often each policy was chosen (indexed like ``AdaptiveChoice/policies``),
    /// and why the last one was; kept as figures and worded only when asked.
    private var adaptiveCounts = [Int](repeating: 0, count: AdaptiveChoice.policies.count)
    private var lastAdaptiveChoice: AdaptiveChoice?
    /// `slo_aware`: when every waiting request was last checked against its deadline, and
    /// the fastest predictions per pool found then.
    private var lastShedSweep: ContinuousClock.Instant?
    private var fastest: [PoolKey: (computed: ContinuousClock.Instant, prediction: FastestPrediction)] = [:]

    /// How often `slo_aware` checks every waiting request, per 1,000 waiting (the first in line
    /// is checked at each dispatch).
    static let shedSweepInterval = Duration.milliseconds(10)

    init(
        policy: SchedulingPolicy, routing: [RequestPhase: RoutingStrategy], configuration: SchedulerConfiguration,
        origin: ContinuousClock.Instant
    ) {
        self.policy = policy
        self.configuration = configuration
        waiting = WaitingQueue(origin: origin)
        routers = RequestPhase.allCases.map { phase in Router(strategy: routing[phase] ?? routing[.whole] ?? .loadBalanced) }
    }

    // MARK: Instances

    mutating func add(_ spec: InstanceSpec, client: InstanceClient? = nil, now: ContinuousClock.Instant) throws(ControlPlaneError)
        -> [QueueDecision]
    {
        try add([spec], clients: client.map { [spec.id: $0] } ?? [:], now: now)
    }

    /// Adds (or replaces drained) instances, indexing the fleet once for all of them.
    mutating func add(_ specs: [InstanceSpec], clients: [String: InstanceClient] = [:], now: ContinuousClock.Instant)
        throws(ControlPlaneError) -> [QueueDecision]
    {
        // Everything is checked before anything changes, so a bad spec leaves the table as it was.
        for spec in specs {
            try spec.validate()
            if let index = instances.firstIndex(where: { $0.spec.id == spec.id }), !instances[index].draining {
                throw ControlPlaneError(.invalidConfiguration, "an instance with this id is already present", instanceID: spec.id, field: "instance_id")
            }
        }
        for spec in specs {
            if let index = instances.firstIndex(where: { $0.spec.id == spec.id }) {
                // A changed instance: its requests still running are counted on the new entry.
                var fresh = InstanceState(spec: spec, client: clients[spec.id])
                fresh.inFlight = instances[index].inFlight
                instances[index] = fresh
            } else {
                instances.append(InstanceState(spec: spec, client: clients[spec.id]))
            }
        }
        reindex()
        return pump(now: now)
    }

    /// Stops sending new requests to `id`; those it runs finish. `remove` also forgets it once idle.
    mutating func drain(_ id: String, remove: Bool) -> Bool {
        guard let index = instances.firstIndex(where: { $0.spec.id == id }) else { return false }
        instances[index].draining = true
        instances[index].healthReason = remove ? "removed" : "drained"
        if remove && instances[index].inFlight == 0 { instances.remove(at: index) }
        reindex()
        return true
    }

    mutating func setHealth(_ id: String, healthy: Bool, reason: String, now: ContinuousClock.Instant) -> [QueueDecision] {
        guard let index = index.positionOf[id] else { return [] }
        let changed = instances[index].healthy != healthy
        instances[index].healthy = healthy
        instances[index].healthReason = reason
        if healthy {
            instances[index].consecutiveFailures = 0
            instances[index].circuitOpen = false
        }
        if changed { reindex() }
        return healthy ? pump(now: now) : failUnservable()
    }

    /// An engine's own figures. With ``SchedulerConfiguration/countsOtherClients``, what it
    /// runs and queues beyond this control plane's requests (`ownBefore` of them when the
    /// scrape began, or more now) takes that many of its slots; freed slots start waiting requests.
    mutating func setEngineFigures(
        _ id: String, running: Double?, waiting: Double?, kvCacheUsage: Double?, ownBefore: Int, now: ContinuousClock.Instant
    ) -> [QueueDecision] {
        guard let position = index.positionOf[id] else { return [] }
        instances[position].engineRunning = running
        instances[position].engineWaiting = waiting
        instances[position].kvCacheUsage = kvCacheUsage
        guard configuration.countsOtherClients else { return [] }
        let capacity = instances[position].spec.maxConcurrentRequests
        let reported = (running ?? 0) + (waiting ?? 0)
        // A server's figure: a number of requests within 0...capacity once our own are taken off.
        let engineCount = reported.isFinite ? Int(min(max(reported.rounded(), 0), Double(capacity) * 4)) : 0
        let others = min(capacity, max(0, engineCount - max(ownBefore, instances[position].inFlight)))
        let change = others - instances[position].othersInFlight
        guard change != 0 else { return [] }
        countInPools(position, by: change)
        instances[position].othersInFlight = others
        return change < 0 ? pump(now: now) : []
    }

    /// Counts `change` more requests in flight on the instance at `position`, and in its pools.
    private mutating func occupy(_ position: Int, by change: Int) {
        countInPools(position, by: change)
        instances[position].inFlight += change
    }

    /// Counts `change` more slots taken on the instance at `position` in its pools (before
    /// its own count changes).
    private mutating func countInPools(_ position: Int, by change: Int) {
        index.occupy(
            position: position, capacity: instances[position].spec.maxConcurrentRequests, occupied: instances[position].occupied,
            serving: instances[position].isServing, by: change)
    }

    private mutating func reindex() {
        index = FleetIndex(instances)
        costOrder = [:]
        fastest = [:]
    }

    /// Whether the fleet has healthy instances for `pool` now.
    func serves(_ pool: PoolKey) -> Bool { index.servingCount(of: pool) > 0 }

    /// Whether a prefill-heavy request for `model` should be split now: PREFILL and DECODE
    /// instances serve it, and the prefill side keeps up (see
    /// ``DisaggregationConfiguration/maxPrefillBacklogPerSlot``). A prompt that would queue
    /// behind a prefill backlog starts sooner whole, where a slot is free.
    func splits(_ model: String, _ disaggregation: DisaggregationConfiguration) -> Bool {
        let prefill = PoolKey(model: model, phase: .prefill)
        guard serves(prefill), serves(PoolKey(model: model, phase: .decode)) else { return false }
        guard let perSlot = disaggregation.maxPrefillBacklogPerSlot else { return true }
        return Double(waiting.waiters(in: prefill)) <= perSlot * Double(index.servingCapacity(of: prefill))
    }

    // MARK: Admission

    enum Admission {
        case leased(Lease)
        case failed(ControlPlaneError)
        /// Queue it with ``enqueue(_:now:)``.
        case mustWait
    }

    /// The fast path: an instance at once when one has a free slot and nobody of its pool waits.
    mutating func admit(_ request: QueuedRequest, now: ContinuousClock.Instant) -> Admission {
        if shutDown { return .failed(ControlPlaneError(.shutDown, "the control plane was shut down")) }
        if !isServable(request) { return .failed(noInstance(request)) }
        if !waiting.hasWaiters(in: request.pool), let lease = dispatchNow(request, now: now) { return .leased(lease) }
        if waiting.count >= configuration.maxQueueLength {
            return .failed(ControlPlaneError(.queueFull, "the admission queue holds \(configuration.maxQueueLength) requests already; try again later"))
        }
        return .mustWait
    }

    /// Queues a request that could not go at once, and dispatches whoever can go now.
    mutating func enqueue(_ request: QueuedRequest, now: ContinuousClock.Instant) -> [QueueDecision] {
        waiting.insert(request)
        return pump(now: now)
    }

    /// Takes a waiting request out of the queue (cancelled, timed out); false when it was not waiting.
    mutating func withdraw(_ id: UInt64) -> Bool { waiting.remove(id) != nil }

    /// Gives an instance back, updates its figures, and dispatches whoever can go now.
    mutating func release(_ lease: Lease, outcome: LeaseOutcome, now: ContinuousClock.Instant) -> [QueueDecision] {
        inFlightTotal -= 1
        guard let index = position(of: lease) else { return pump(now: now) }
        occupy(index, by: -1)
        switch outcome {
        case .success(let latency, let ttft, let tokens):
            instances[index].recordSuccess(latency: latency, timeToFirstToken: ttft, outputTokens: tokens, alpha: configuration.ewmaAlpha)
        case .instanceFailure:
            let threshold = configuration.circuitBreakerThreshold
            instances[index].failed += 1
            instances[index].consecutiveFailures += 1
            if instances[index].consecutiveFailures >= threshold && instances[index].healthy {
                instances[index].healthy = false
                instances[index].circuitOpen = true
                instances[index].healthReason = "circuit open: \(threshold) failed requests in a row"
                reindex()
                return failUnservable() + pump(now: now)
            }
        case .cancelled: break
        }
        if instances[index].draining && instances[index].healthReason == "removed" && instances[index].inFlight == 0 {
            instances.remove(at: index)
            reindex()
            return failUnservable() + pump(now: now)
        }
        return pump(now: now)
    }

    /// Where the instance of `lease` is in the table now: where it was granted, unless the
    /// table changed since (then looked up by id); nil once it is gone.
    private func position(of lease: Lease) -> Int? {
        if lease.position < instances.count, instances[lease.position].sharedSpec === lease.sharedInstance { return lease.position }
        return index.positionOf[lease.instance.id]
    }

    /// Refuses new requests and fails the waiting ones.
    mutating func shutdown() -> [QueueDecision] {
        shutDown = true
        let ids = Array(waiting.entries.keys)
        return ids.compactMap { id in
            waiting.remove(id).map { .rejected(requestID: $0.request.id, ControlPlaneError(.shutDown, "the control plane was shut down")) }
        }
    }

    // MARK: Dispatching

    /// Routes `request` to an instance with a free slot now, and counts it there.
    private mutating func dispatchNow(_ request: QueuedRequest, now: ContinuousClock.Instant, policy: SchedulingPolicy? = nil) -> Lease? {
        let policy = policy ?? effectivePolicy()
        let pool = request.pool
        guard let poolNumber = index.number(of: pool), index.hasFreeSlot(inPool: poolNumber) else { return nil }
        let positions = index.positionsInPool[poolNumber]
        let chosen: Int?
        do {
            // This copy of the table must be gone before the table is changed below, or the
            // change would copy the whole table.
            let instances = self.instances
            let excluded = request.excluded
            let eligible = { (position: Int) -> Bool in
                instances[position].hasFreeSlot && instances[position].healthy && !instances[position].draining
                    && (excluded.isEmpty || !excluded.contains(instances[position].spec.id))
            }
            // The two halves of a split request follow their own routing (and the decode side
            // its pairing, which is the cost that matters there); only whole requests are priced.
            if policy == .costOptimized && request.phase == .whole {
                if let cached = costOrder[pool], now - cached.computed < .milliseconds(100), cached.positions.count == positions.count {
                    chosen = Self.cheapest(instances, cached.positions, request, now: now, loadCap: configuration.costOptimizedLoadCap, eligible)
                } else {
                    let sorted = positions.sorted { instances[$0].costPerToken < instances[$1].costPerToken }
                    costOrder[pool] = (now, sorted)
                    chosen = Self.cheapest(instances, sorted, request, now: now, loadCap: configuration.costOptimizedLoadCap, eligible)
                }
            } else if policy == .sloAware, request.phase != .prefill, let target = request.placement.timePerTokenTarget {
                // Protects the request's TPOT: instances whose measured time per output token
                // meets its target first (unmeasured ones count as meeting it), else any.
                let seconds = target.seconds
                let fastEnough = { (position: Int) -> Bool in
                    eligible(position) && (instances[position].tokensPerSecond.map { 1 / $0 <= seconds } ?? true)
                }
                chosen =
                    routers[request.phase.rawValue].choose(instances, positions: positions, index: index, for: request, eligible: fastEnough)
                    ?? routers[request.phase.rawValue].choose(instances, positions: positions, index: index, for: request, eligible: eligible)
            } else {
                chosen = routers[request.phase.rawValue].choose(instances, positions: positions, index: index, for: request, eligible: eligible)
            }
        }
        guard let position = chosen else { return nil }
        // The hold fails only for a client retired after its instance left or was replaced,
        // which the table no longer holds: the request then finds no client and goes elsewhere.
        let client = instances[position].client.flatMap { $0.hold() ? $0 : nil }
        occupy(position, by: 1)
        inFlightTotal += 1
        routers[request.phase.rawValue].dispatched(request, to: instances[position].spec.id)
        return Lease(
            requestID: request.id, instance: instances[position].sharedSpec, position: position, arrival: request.arrival, dispatched: now,
            placement: request.placement, policy: policy, phase: request.phase, client: client)
    }

    /// `cost_optimized`: the cheapest per token among those below `loadCap` whose measured
    /// latency still meets the deadline (the least loaded among equally cheap ones), else the
    /// least loaded; `byCost` is sorted by cost.
    private static func cheapest(
        _ instances: [InstanceState], _ byCost: [Int], _ request: QueuedRequest, now: ContinuousClock.Instant, loadCap: Double,
        _ eligible: (Int) -> Bool
    ) -> Int? {
        let remaining = request.deadline.map { ($0 - now).seconds }
        func meets(_ position: Int) -> Bool { remaining.map { (instances[position].predictedLatency(request) ?? 0) <= $0 } ?? true }
        var fallback: Int?
        var best: Int?
        for position in byCost where eligible(position) {
            if let current = fallback {
                if instances[position].load < instances[current].load { fallback = position }
            } else {
                fallback = position
            }
            guard meets(position), instances[position].load < loadCap else { continue }
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
    func isServable(_ request: QueuedRequest) -> Bool {
        if request.excluded.isEmpty { return serves(request.pool) }
        return index.positions(in: request.pool).contains { position in
            instances[position].serves(request.pool) && !request.excluded.contains(instances[position].spec.id)
        }
    }

    /// `adaptive` resolved for this moment, recorded with its reason.
    private mutating func effectivePolicy() -> SchedulingPolicy {
        guard policy == .adaptive else { return policy }
        // In flight over the serving capacity: the fleet's load, without a scan per decision.
        let capacity = index.totalCapacity
        let meanLoad = capacity == 0 ? 0 : Double(inFlightTotal) / Double(capacity)
        let urgent = waiting.urgentCount > 0
        let withDeadlines = waiting.withDeadlineCount > 0
        let choice = AdaptiveChoice(urgentWaiting: urgent, deadlinesWaiting: withDeadlines, meanLoad: meanLoad)
        adaptiveCounts[choice.rule.policyIndex] += 1
        lastAdaptiveChoice = choice
        return choice.policy
    }

    /// How often `adaptive` chose each policy.
    var adaptiveChoices: [SchedulingPolicy: Int] {
        var choices: [SchedulingPolicy: Int] = [:]
        for (index, count) in adaptiveCounts.enumerated() where count > 0 { choices[AdaptiveChoice.policies[index]] = count }
        return choices
    }

    /// Why `adaptive` chose the policy it chose last.
    var adaptiveReason: String { lastAdaptiveChoice?.reason ?? "no decision yet" }

    private func ordering(_ policy: SchedulingPolicy) -> WaitingQueue.Ordering {
        switch policy {
        case .fifo, .costOptimized, .adaptive: .arrival
        case .priority: .priority(aging: configuration.agingInterval.seconds)
        case .sloAware: .deadline
        }
    }

    /// Dispatches waiting requests in policy order while instances have free slots. Requests
    /// of one pool keep their order: once the first cannot go, the later ones wait too.
    mutating func pump(now: ContinuousClock.Instant) -> [QueueDecision] {
        guard !waiting.isEmpty else { return [] }
        var decisions: [QueueDecision] = []
        let policy = effectivePolicy()
        waiting.order(by: ordering(policy))
        let sheds = policy == .sloAware
        // A long queue is swept less often (every 10 ms per 1,000 waiting), so that sweeping
        // stays a small share of the work; the first in line is checked at every dispatch.
        let sweepInterval = Self.shedSweepInterval * max(1, waiting.count / 1_000)
        if sheds, lastShedSweep.map({ now - $0 >= sweepInterval }) ?? true {
            lastShedSweep = now
            for id in Array(waiting.entries.keys) {
                if let entry = waiting.entries[id], let decision = checkDeadline(entry.request, now: now) { decisions.append(decision) }
            }
        }
        // Pools can share instances (whole requests and decode halves both go to DECODE
        // instances), so the next request is the first over every pool still open.
        var open = Set(waiting.poolsWithWaiters.filter { index.hasFreeSlot(in: $0) })
        while let (pool, entry) = waiting.first(among: open) {
            if sheds, let decision = checkDeadline(entry.request, now: now) {
                decisions.append(decision)
                continue
            }
            guard let lease = dispatchNow(entry.request, now: now, policy: policy) else {
                open.remove(pool)
                continue
            }
            waiting.remove(entry.request.id)
            decisions.append(.dispatched(lease))
        }
        return decisions
    }

    /// `slo_aware`: a waiting request that can no longer meet its deadline given the fastest
    /// measured instance of its pool, or get its first token by its first-token deadline given
    /// the pool's average measured time to a first token, is shed (or loses that deadline).
    /// The first-token check takes the average, not the fastest: a request sent now lands
    /// where the routing sends it, and one let through on the fastest instance's figure
    /// usually misses its target anyway, after costing a slot (measured in
    /// `Docs/CONTROL_PLANE.md`: goodput at 150% load 214 -> 248 with PD).
    private mutating func checkDeadline(_ request: QueuedRequest, now: ContinuousClock.Instant) -> QueueDecision? {
        guard request.deadline != nil || request.firstTokenDeadline != nil else { return nil }
        let pool = request.pool
        let prediction: FastestPrediction
        if let cached = fastest[pool], now - cached.computed < Self.shedSweepInterval {
            prediction = cached.prediction
        } else {
            prediction = FastestPrediction(instances, positions: index.positions(in: pool), pool: pool)
            fastest[pool] = (now, prediction)
        }
        if let firstTokenDeadline = request.firstTokenDeadline,
            now + OutsideNumber.clampedDuration(seconds: prediction.typicalTimeToFirstToken ?? 0) > firstTokenDeadline
        {
            if configuration.shedsUnreachableDeadlines {
                waiting.remove(request.id)
                let waited = now - request.arrival
                return .rejected(
                    requestID: request.id,
                    ControlPlaneError(
                        .deadlineUnreachable,
                        "the request's time-to-first-token target can no longer be met: it waited \(Self.format(waited)) of \(Self.format(firstTokenDeadline - request.arrival)), and its instances take \(Self.format(OutsideNumber.clampedDuration(seconds: prediction.typicalTimeToFirstToken ?? 0))) to a first token on average"
                    ))
            }
            waiting.update(request.id) { $0.firstTokenDeadline = nil }
        }
        guard let deadline = request.deadline else { return nil }
        guard let seconds = prediction.latency(request), now + OutsideNumber.clampedDuration(seconds: seconds) > deadline else { return nil }
        if configuration.shedsUnreachableDeadlines {
            waiting.remove(request.id)
            return .rejected(
                requestID: request.id,
                ControlPlaneError(
                    .deadlineUnreachable,
                    "the request's SLO deadline can no longer be met: \(Self.format(max(.zero, deadline - now))) left, the fastest instance takes \(Self.format(OutsideNumber.clampedDuration(seconds: seconds)))"))
        }
        waiting.update(request.id) { $0.deadline = nil }
        return nil
    }

    /// Waiting requests that no instance can serve any more fail at once.
    private mutating func failUnservable() -> [QueueDecision] {
        var decisions: [QueueDecision] = []
        for id in Array(waiting.entries.keys) {
            guard let entry = waiting.entries[id], !isServable(entry.request) else { continue }
            waiting.remove(id)
            decisions.append(.rejected(requestID: id, noInstance(entry.request)))
        }
        return decisions
    }

    func noInstance(_ request: QueuedRequest) -> ControlPlaneError {
        let same = instances.filter { $0.spec.model == request.model && $0.spec.type.takes(request.phase) }
        let detail =
            same.isEmpty
            ? "no instance serves \(request.pool) (served: \(Set(instances.map(\.spec.model)).sorted().joined(separator: ", ")))"
            : "every instance serving \(request.pool) is unavailable: "
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

/// The fastest latency any serving instance of a pool predicts, found in one pass so that
/// checking many waiting requests does not scan the fleet for each.
struct FastestPrediction: Sendable {
    /// The lowest seconds per output token, among instances that measured it.
    var secondsPerToken: Double?
    /// The lowest average latency among instances without a per-token figure.
    var latencyWithoutPerToken: Double?
    /// The lowest average latency overall.
    var latency: Double?
    private var firstTokenSum = 0.0
    private var firstTokenCount = 0
    /// The mean of the instances' average times to first token: what a request dispatched
    /// now is likely to take, wherever the routing sends it.
    var typicalTimeToFirstToken: Double? { firstTokenCount == 0 ? nil : firstTokenSum / Double(firstTokenCount) }

    init(_ instances: [InstanceState], positions: [Int], pool: PoolKey) {
        for position in positions where instances[position].serves(pool) {
            let instance = instances[position]
            if let perToken = instance.secondsPerToken { secondsPerToken = min(secondsPerToken ?? perToken, perToken) }
            else if let latency = instance.latency { latencyWithoutPerToken = min(latencyWithoutPerToken ?? latency, latency) }
            if let latency = instance.latency { self.latency = min(self.latency ?? latency, latency) }
            if let first = instance.timeToFirstToken {
                firstTokenSum += first
                firstTokenCount += 1
            }
        }
    }

    /// The least any instance would likely take for `request` (see ``InstanceState/predictedLatency(_:)``).
    func latency(_ request: QueuedRequest) -> Double? {
        guard let tokens = request.expectedOutputTokens else { return latency }
        let candidates = [secondsPerToken.map { $0 * Double(tokens) }, latencyWithoutPerToken].compactMap { $0 }
        return candidates.min()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// `adaptive` resolved at one moment: the rule that applied and the load it saw.
struct AdaptiveChoice: Sendable {
    enum Rule: Sendable {
        case urgentWaiting, deadlinesAtHighLoad, lowLoad, otherwise

        var policyIndex: Int {
            switch self {
            case .urgentWaiting: 0
            case .lowLoad: 1
            case .deadlinesAtHighLoad, .otherwise: 2
            }
        }
    }

    /// The policies `adaptive` chooses between.
    static let policies: [SchedulingPolicy] = [.priority, .costOptimized, .sloAware]

    let rule: Rule
    let meanLoad: Double

    init(urgentWaiting: Bool, deadlinesWaiting: Bool, meanLoad: Double) {
        self.meanLoad = meanLoad
        rule =
            if urgentWaiting { .urgentWaiting }
            else if deadlinesWaiting && meanLoad > 0.8 { .deadlinesAtHighLoad }
            else if meanLoad < 0.3 { .lowLoad }
            else { .otherwise }
    }

    var policy: SchedulingPolicy { Self.policies[rule.policyIndex] }

    var reason: String {
        switch rule {
        case .urgentWaiting: "CRITICAL or HIGH requests are waiting"
        case .deadlinesAtHighLoad: "requests with deadlines wait and mean load is \(SchedulingCore.percent(meanLoad))"
        case .lowLoad: "mean load is \(SchedulingCore.percent(meanLoad)), below 30%"
        case .otherwise: "mean load is \(SchedulingCore.percent(meanLoad))"
        }
    }
}
