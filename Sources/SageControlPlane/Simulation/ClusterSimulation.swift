import Foundation
import Histogram
import SageLLM
import SageSupport

/// One policy, routing and PD setting to simulate.
public struct SimulationVariant: Sendable, Hashable {
    public var policy: SchedulingPolicy
    public var routing: RoutingStrategy
    public var disaggregated: Bool
    /// A baseline row (round robin or least loaded under FIFO), for comparison.
    public var baseline: Bool
    /// With PD: the share of PREFILL instances among those split (nil: the scenario's
    /// ``ClusterScenario/prefillShare``), so that one comparison can try several splits.
    public var prefillShare: Double?

    public init(
        policy: SchedulingPolicy, routing: RoutingStrategy, disaggregated: Bool, baseline: Bool = false, prefillShare: Double? = nil
    ) {
        self.policy = policy
        self.routing = routing
        self.disaggregated = disaggregated
        self.baseline = baseline
        self.prefillShare = prefillShare
    }

    /// Every `policies` x `routings` pair for each PD setting (with PD, for each of
    /// `prefillShares`; nil is the scenario's), after the baselines (FIFO with round robin,
    /// FIFO with least loaded) for that setting.
    public static func matrix(
        policies: [SchedulingPolicy], routings: [RoutingStrategy], pd: [Bool], prefillShares: [Double?] = [nil]
    ) -> [SimulationVariant] {
        var variants: [SimulationVariant] = []
        for disaggregated in pd {
            for share in disaggregated ? prefillShares : [nil] {
                let baselines = [RoutingStrategy.roundRobin, .loadBalanced].map {
                    SimulationVariant(policy: .fifo, routing: $0, disaggregated: disaggregated, baseline: true, prefillShare: share)
                }
                variants += baselines
                for policy in policies {
                    for routing in routings where !(policy == .fifo && (routing == .roundRobin || routing == .loadBalanced)) {
                        variants.append(SimulationVariant(policy: policy, routing: routing, disaggregated: disaggregated, prefillShare: share))
                    }
                }
            }
        }
        return variants
    }
}

/// A discrete-event simulation of a fleet on a virtual clock: no sockets and no sleeping. It
/// drives the control plane's real ``SchedulingCore`` (admission queue, policies, routers,
/// prefill/decode pairing, health) against modelled instances: heterogeneous speeds, batch
/// steps with a token budget (``StepBatch``, the simulated engine's model too), prefix
/// caches, KV transfer by distance, failures.
///
/// ```swift
/// let scenario = ClusterScenario(instances: 100, rate: 200, duration: 60)
/// let results = try ClusterSimulation.compare(scenario, SimulationVariant.matrix(
///     policies: SchedulingPolicy.allCases, routings: [.loadBalanced, .locality], pd: [false, true]))
/// ```
public enum ClusterSimulation {
    /// Simulates each variant over the same workload.
    public static func compare(_ scenario: ClusterScenario, _ variants: [SimulationVariant]) throws(ControlPlaneError) -> [SimulationResult] {
        try scenario.validate()
        for variant in variants {
            if let share = variant.prefillShare, !(0.05...0.95).contains(share) {
                throw ControlPlaneError(.invalidConfiguration, "the prefill share must be within 0.05...0.95, got \(share)", field: "prefill_share")
            }
        }
        let workload = SimulationWorkload.generate(scenario)
        return variants.map { variant in
            // Each PD run names the split it used; runs without PD have none.
            var resolved = variant
            resolved.prefillShare = variant.disaggregated ? (variant.prefillShare ?? scenario.prefillShare) : nil
            var run = SimulationRun(scenario: scenario, variant: resolved, workload: workload)
            return run.run()
        }
    }

    public static func run(_ scenario: ClusterScenario, _ variant: SimulationVariant) throws(ControlPlaneError) -> SimulationResult {
        try compare(scenario, [variant])[0]
    }
}

/// What happens next in a simulation.
private struct SimulationEvent: HeapOrdered {
    enum Kind: Sendable {
        case arrival(Int)
        /// An instance's batch changes (a first token, a finished sequence), if its version is still current.
        case batchChange(instance: Int, version: Int)
        /// A decode phase's KV cache has arrived: it joins its instance's batch.
        case kvArrived(Int)
        case failure(Int)
        case recovery(Int)
    }

    let time: Double
    let sequence: UInt64
    let kind: Kind

    func precedes(_ other: SimulationEvent) -> Bool { time < other.time || (time == other.time && sequence < other.sequence) }
}

/// One request phase running on an instance.
private struct RunningPhase: Sendable {
    let lease: Lease
    let instance: Int
    let started: Double
    var firstToken: Double?
}

/// One variant's simulation.
private struct SimulationRun {
    let scenario: ClusterScenario
    let variant: SimulationVariant
    let workload: [SimulatedRequest]
    var core: SchedulingCore
    let origin = ContinuousClock.now
    let disaggregation: DisaggregationConfiguration
    var specs: [InstanceSpec] = []
    var hardware: [Int] = []
    var positionOf: [String: Int] = [:]
    var prefixCaches: [[Int]] = []
    var runningOn: [Set<Int>] = []
    /// Each instance's engine: its batch, stepped on the virtual clock.
    var batches: [StepBatch] = []
    var batchVersions: [Int] = []
    var batchChangeAt: [Double?] = []
    var batchEvents: [StepBatch.Event] = []
    var running: [Int: RunningPhase] = [:]
    var nextToken = 0
    var events = BinaryHeap<SimulationEvent>()
    var sequence: UInt64 = 0
    var failovers: [Int: Int] = [:]
    var excluded: [Int: Set<String>] = [:]
    var anchors: [Int: InstanceSpec] = [:]
    var outcomes = SimulationOutcomes()
    var paths: [String: Int] = [:]
    var cost = 0.0

    init(scenario: ClusterScenario, variant: SimulationVariant, workload: [SimulatedRequest]) {
        self.scenario = scenario
        self.variant = variant
        self.workload = workload
        disaggregation = DisaggregationConfiguration(maxPrefillBacklogPerSlot: scenario.maxPrefillBacklogPerSlot)
        core = SchedulingCore(
            policy: variant.policy,
            routing: [.whole: variant.routing, .prefill: variant.routing, .decode: disaggregation.decodeRouting ?? variant.routing],
            configuration: SchedulerConfiguration(maxQueueLength: 1_000_000), origin: origin)
        core.routers[RequestPhase.decode.rawValue].pairing = disaggregation.pairingScores
        var fleetScenario = scenario
        fleetScenario.prefillShare = variant.prefillShare ?? scenario.prefillShare
        for (index, member) in fleetScenario.fleet(disaggregated: variant.disaggregated).enumerated() {
            specs.append(member.spec)
            hardware.append(member.hardwareIndex)
            positionOf[member.spec.id] = index
        }
        // The order of the specs is the table's order: position == index (nothing is removed here).
        _ = try? core.add(specs, now: origin)  // the specs above are valid by construction
        prefixCaches = Array(repeating: [], count: scenario.instances)
        runningOn = Array(repeating: [], count: scenario.instances)
        batches = hardware.map { StepBatch(cost: scenario.hardware[$0].stepCost(maxBatchedTokens: scenario.maxBatchedTokens)) }
        batchVersions = Array(repeating: 0, count: scenario.instances)
        batchChangeAt = Array(repeating: nil, count: scenario.instances)
    }

    func instant(_ time: Double) -> ContinuousClock.Instant { origin + .nanoseconds(Int64(time * 1e9)) }

    mutating func schedule(_ time: Double, _ kind: SimulationEvent.Kind) {
        sequence += 1
        events.push(SimulationEvent(time: time, sequence: sequence, kind: kind))
    }

    mutating func run() -> SimulationResult {
        let wallStart = ContinuousClock.now
        for index in workload.indices { schedule(workload[index].arrival, .arrival(index)) }
        if scenario.failures > 0 {
            var random = SeededGenerator(seed: SeededGenerator.mix(scenario.seed, 0x6661_696C))
            var chosen = Set<Int>()
            while chosen.count < scenario.failures { chosen.insert(Int(random.next() % UInt64(scenario.instances))) }
            for index in chosen.sorted() {
                schedule(scenario.duration / 3, .failure(index))
                schedule(scenario.duration * 2 / 3, .recovery(index))
            }
        }
        while let event = events.pop() {
            let now = event.time
            switch event.kind {
            case .arrival(let index): arrive(index, now: now)
            case .batchChange(let instance, let version):
                guard version == batchVersions[instance] else { break }  // the batch changed since
                batchChangeAt[instance] = nil
                stepBatch(instance, now: now)
            case .kvArrived(let token):
                guard let phase = running[token] else { break }  // its instance failed meanwhile
                let request = workload[Int(phase.lease.requestID)]
                join(token, instance: phase.instance, prefillTokens: 0, outputTokens: request.outputTokens, now: now)
            case .failure(let index): fail(index, now: now)
            case .recovery(let index):
                handle(core.setHealth(specs[index].id, healthy: true, reason: "recovered", now: instant(now)), now: now)
            }
        }
        return result(wallTime: ContinuousClock.now - wallStart)
    }

    // MARK: Requests

    func queued(_ index: Int, phase: RequestPhase) -> QueuedRequest {
        let request = workload[index]
        let arrival = instant(request.arrival)
        return QueuedRequest(
            id: UInt64(index), model: "m",
            placement: RequestPlacement(
                priority: request.priority, sloDeadline: request.slo.map(SimulationOutcomes.duration), sessionKey: request.sessionKey,
                firstTokenTarget: phase == .decode ? nil : request.ttftSLO.map(SimulationOutcomes.duration),
                timePerTokenTarget: request.tpotSLO.map(SimulationOutcomes.duration)),
            arrival: arrival, deadline: request.slo.map { instant(request.arrival + $0) }, prefixBlocks: request.prefixBlocks,
            expectedOutputTokens: request.outputTokens, excluded: excluded[index] ?? [], topologyAnchor: anchors[index], phase: phase)
    }

    mutating func arrive(_ index: Int, now: Double) {
        let request = workload[index]
        let split =
            variant.disaggregated && disaggregation.isPrefillHeavy(promptTokens: request.promptTokens, maxTokens: request.outputTokens)
            && core.splits("m", disaggregation)
        paths[split ? "disaggregated" : "direct", default: 0] += 1
        submit(queued(index, phase: split ? .prefill : .whole), now: now)
    }

    mutating func submit(_ request: QueuedRequest, now: Double) {
        switch core.admit(request, now: instant(now)) {
        case .leased(let lease): start(lease, now: now)
        case .failed(let error): finishFailed(Int(request.id), error.code, now: now)
        case .mustWait: handle(core.enqueue(request, now: instant(now)), now: now)
        }
    }

    mutating func handle(_ decisions: [QueueDecision], now: Double) {
        for decision in decisions {
            switch decision {
            case .dispatched(let lease): start(lease, now: now)
            case .rejected(let id, let error): finishFailed(Int(id), error.code, now: now)
            }
        }
    }

    /// Prompt tokens the instance must compute: its prefix cache may hold the shared prefix.
    mutating func promptToCompute(_ request: SimulatedRequest, on instance: Int) -> Int {
        guard let group = request.prefixGroup else { return request.promptTokens }
        if let found = prefixCaches[instance].firstIndex(of: group) {
            prefixCaches[instance].remove(at: found)
            prefixCaches[instance].append(group)
            return max(1, request.promptTokens - scenario.prefixTokens)
        }
        prefixCaches[instance].append(group)
        if prefixCaches[instance].count > scenario.prefixCacheGroups { prefixCaches[instance].removeFirst() }
        return request.promptTokens
    }

    mutating func start(_ lease: Lease, now: Double) {
        guard let instance = positionOf[lease.instance.id] else { return }
        let request = workload[Int(lease.requestID)]
        nextToken += 1
        let token = nextToken
        running[token] = RunningPhase(lease: lease, instance: instance, started: now)
        runningOn[instance].insert(token)
        switch lease.phase {
        case .whole:
            join(token, instance: instance, prefillTokens: promptToCompute(request, on: instance), outputTokens: request.outputTokens, now: now)
        case .prefill:
            // vLLM's prefill leg asks for one token: the step that completes the prompt ends it.
            join(token, instance: instance, prefillTokens: promptToCompute(request, on: instance), outputTokens: 1, now: now)
        case .decode:
            // The prompt's KV cache crosses from the prefill instance first; the slot is held meanwhile.
            let from = anchors[Int(lease.requestID)] ?? lease.instance
            let transfer = Double(request.promptTokens) * scenario.kvBytesPerToken / bandwidth(from.distance(to: lease.instance))
            schedule(now + transfer, .kvArrived(token))
        }
    }

    /// A phase's sequence joins its instance's batch.
    mutating func join(_ token: Int, instance: Int, prefillTokens: Int, outputTokens: Int, now: Double) {
        batches[instance].add(id: token, prefillTokens: prefillTokens, outputTokens: outputTokens, now: now, events: &batchEvents)
        settle(instance, now: now)
    }

    /// Advances an instance's batch to `now` and acts on what happened in it.
    mutating func stepBatch(_ instance: Int, now: Double) {
        batches[instance].advance(to: now, events: &batchEvents)
        settle(instance, now: now)
    }

    /// Acts on the batch's events (first tokens, finished phases), then books its next change.
    mutating func settle(_ instance: Int, now: Double) {
        while !batchEvents.isEmpty {
            let events = batchEvents
            batchEvents.removeAll(keepingCapacity: true)
            for event in events {
                switch event.kind {
                case .firstToken: running[event.id]?.firstToken = event.time
                case .finished: endPhase(event.id, now: event.time)
                }
            }
        }
        let next = batches[instance].nextChange
        guard next != batchChangeAt[instance] else { return }
        batchVersions[instance] += 1
        batchChangeAt[instance] = next
        if let next { schedule(next, .batchChange(instance: instance, version: batchVersions[instance])) }
    }

    func bandwidth(_ distance: TopologyDistance) -> Double {
        switch distance {
        case .nvlink: scenario.bandwidthNVLink
        case .machine: scenario.bandwidthMachine
        case .rack: scenario.bandwidthRack
        case .remote: scenario.bandwidthRemote
        }
    }

    mutating func endPhase(_ token: Int, now: Double) {
        guard let phase = running.removeValue(forKey: token) else { return }  // its instance failed first
        runningOn[phase.instance].remove(token)
        let index = Int(phase.lease.requestID)
        let request = workload[index]
        let spec = specs[phase.instance]
        let duration = now - phase.started
        let firstTokenAt = phase.firstToken ?? now
        cost += duration * spec.costPerGPUHour * Double(spec.gpuCount) / 3600 / Double(spec.maxConcurrentRequests)
        handle(
            core.release(
                phase.lease,
                outcome: .success(
                    latency: .nanoseconds(Int64(duration * 1e9)), timeToFirstToken: .nanoseconds(Int64((firstTokenAt - phase.started) * 1e9)),
                    outputTokens: phase.lease.phase == .prefill ? nil : request.outputTokens),
                now: instant(now)),
            now: now)
        if phase.lease.phase == .prefill {
            anchors[index] = spec
            excluded[index] = nil
            submit(queued(index, phase: .decode), now: now)
            return
        }
        outcomes.completed(request, timeToFirstToken: firstTokenAt - request.arrival, now: now)
        cleanUp(index)
    }

    /// An instance fails: its requests fail over elsewhere (as the live control plane does).
    mutating func fail(_ instance: Int, now: Double) {
        let spec = specs[instance]
        handle(core.setHealth(spec.id, healthy: false, reason: "simulated failure", now: instant(now)), now: now)
        // Its engine is gone with everything in its batch.
        batches[instance] = StepBatch(cost: batches[instance].cost)
        batchVersions[instance] += 1
        batchChangeAt[instance] = nil
        for token in runningOn[instance].sorted() {
            guard let phase = running.removeValue(forKey: token) else { continue }
            handle(core.release(phase.lease, outcome: .instanceFailure, now: instant(now)), now: now)
            let index = Int(phase.lease.requestID)
            failovers[index, default: 0] += 1
            guard failovers[index, default: 0] <= core.configuration.maxFailovers else {
                finishFailed(index, .instanceFailed, now: now)
                continue
            }
            excluded[index, default: []].insert(spec.id)
            submit(queued(index, phase: phase.lease.phase), now: now)
        }
        runningOn[instance] = []
    }

    mutating func finishFailed(_ index: Int, _ code: ControlPlaneError.Code, now: Double) {
        outcomes.failed(workload[index], reason: code.description, now: now)
        cleanUp(index)
    }

    mutating func cleanUp(_ index: Int) {
        failovers[index] = nil
        excluded[index] = nil
        anchors[index] = nil
    }

    func result(wallTime: Duration) -> SimulationResult {
        outcomes.result(
            variant: variant, requests: workload.count, arrivalWindow: scenario.duration, cost: cost, paths: paths, wallTime: wallTime)
    }
}

/// One variant's outcome; the JSON keys are `sagellm cluster simulate --json`'s.
public struct SimulationResult: Sendable, Codable, Hashable {
    public var policy: String
    public var routing: String
    public var pd: Bool
    /// With PD, the share of PREFILL instances among those split; nil without PD.
    public var prefillShare: Double?
    public var baseline: Bool
    public var requests: Int
    public var completed: Int
    /// Shed, refused or failed after every failover.
    public var failed: Int
    public var rejected: [String: Int]
    /// Requests with an SLO that completed within it, over all with an SLO (shed ones count as missed).
    public var sloCompliance: Double?
    public var sloComplianceByPriority: [String: Double]
    /// Completed requests that met their SLO (or had none), per second of arrivals.
    public var goodputRPS: Double
    /// Requests that met their time-to-first-token target, and their time-per-output-token
    /// target, over all with one (shed ones missed them).
    public var ttftCompliance: Double?
    public var tpotCompliance: Double?
    /// DistServe's goodput: completed requests that met their TTFT and TPOT targets and their
    /// end-to-end SLO (each where they have one), per second of arrivals (the offered rate times
    /// the share that was good).
    public var sloGoodputRPS: Double
    /// Shed, refused or failed after every failover, over all requests.
    public var shedShare: Double
    public var p50LatencyMilliseconds: Double?
    public var p99LatencyMilliseconds: Double?
    public var p50TimeToFirstTokenMilliseconds: Double?
    public var p99TimeToFirstTokenMilliseconds: Double?
    /// The same for requests with a long prompt (where PD should help).
    public var p99LongPromptTimeToFirstTokenMilliseconds: Double?
    /// Time per output token after the first, `(latency - TTFT) / (output - 1)`.
    public var p50TimePerOutputTokenMilliseconds: Double?
    public var p99TimePerOutputTokenMilliseconds: Double?
    /// Instance time used (each request pays its share of a batch slot) per 1,000 prompt and output tokens served.
    public var costPer1kTokens: Double?
    /// Requests split between prefill and decode, and those sent whole.
    public var paths: [String: Int]
    /// From the first arrival to the last completion (at least the arrival window).
    public var simulatedSeconds: Double
    /// How long the simulation itself took.
    public var wallSeconds: Double

    private enum CodingKeys: String, CodingKey {
        case policy, routing, pd, prefillShare = "prefill_share", baseline, requests, completed, failed, rejected, sloCompliance = "slo_compliance",
            sloComplianceByPriority = "slo_compliance_by_priority", goodputRPS = "goodput_rps", ttftCompliance = "ttft_slo_compliance",
            tpotCompliance = "tpot_slo_compliance", sloGoodputRPS = "slo_goodput_rps", shedShare = "shed_share",
            p50LatencyMilliseconds = "p50_latency_ms", p99LatencyMilliseconds = "p99_latency_ms",
            p50TimeToFirstTokenMilliseconds = "p50_ttft_ms", p99TimeToFirstTokenMilliseconds = "p99_ttft_ms",
            p99LongPromptTimeToFirstTokenMilliseconds = "p99_ttft_long_prompt_ms", p50TimePerOutputTokenMilliseconds = "p50_tpot_ms",
            p99TimePerOutputTokenMilliseconds = "p99_tpot_ms", costPer1kTokens = "cost_per_1k_tokens", paths,
            simulatedSeconds = "simulated_seconds", wallSeconds = "wall_seconds"
    }
}
