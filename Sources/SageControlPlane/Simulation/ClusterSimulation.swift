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

    public init(policy: SchedulingPolicy, routing: RoutingStrategy, disaggregated: Bool, baseline: Bool = false) {
        self.policy = policy
        self.routing = routing
        self.disaggregated = disaggregated
        self.baseline = baseline
    }

    /// Every `policies` x `routings` pair for each PD setting, after the baselines (FIFO with
    /// round robin, FIFO with least loaded) for that setting.
    public static func matrix(policies: [SchedulingPolicy], routings: [RoutingStrategy], pd: [Bool]) -> [SimulationVariant] {
        var variants: [SimulationVariant] = []
        for disaggregated in pd {
            let baselines = [RoutingStrategy.roundRobin, .loadBalanced].map {
                SimulationVariant(policy: .fifo, routing: $0, disaggregated: disaggregated, baseline: true)
            }
            variants += baselines
            for policy in policies {
                for routing in routings where !(policy == .fifo && (routing == .roundRobin || routing == .loadBalanced)) {
                    variants.append(SimulationVariant(policy: policy, routing: routing, disaggregated: disaggregated))
                }
            }
        }
        return variants
    }
}

/// A discrete-event simulation of a fleet on a virtual clock: no sockets and no sleeping. It
/// drives the control plane's real ``SchedulingCore`` (admission queue, policies, routers,
/// prefill/decode pairing, health) against modelled instances: heterogeneous speeds, batch
/// slowdown, prefix caches, KV transfer by distance, failures.
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
        let workload = SimulationWorkload.generate(scenario)
        return variants.map { variant in
            var run = SimulationRun(scenario: scenario, variant: variant, workload: workload)
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
        case phaseEnd(Int)
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
    let duration: Double
    let ownTimeToFirstToken: Double
}

/// One variant's simulation.
private struct SimulationRun {
    let scenario: ClusterScenario
    let variant: SimulationVariant
    let workload: [SimulatedRequest]
    var core: SchedulingCore
    let origin = ContinuousClock.now
    let disaggregation = DisaggregationConfiguration()
    var specs: [InstanceSpec] = []
    var hardware: [Int] = []
    var positionOf: [String: Int] = [:]
    var prefixCaches: [[Int]] = []
    var runningOn: [Set<Int>] = []
    var running: [Int: RunningPhase] = [:]
    var nextToken = 0
    var events = BinaryHeap<SimulationEvent>()
    var sequence: UInt64 = 0
    var failovers: [Int: Int] = [:]
    var excluded: [Int: Set<String>] = [:]
    var anchors: [Int: InstanceSpec] = [:]
    // Outcomes.
    var tally = OutcomeTally()
    var targets = SLOTargetTally()
    var longTimeToFirstToken = OutcomeTally.histogram()
    var rejected: [String: Int] = [:]
    var paths: [String: Int] = [:]
    var cost = 0.0
    var tokens = 0
    var lastCompletion = 0.0

    init(scenario: ClusterScenario, variant: SimulationVariant, workload: [SimulatedRequest]) {
        self.scenario = scenario
        self.variant = variant
        self.workload = workload
        core = SchedulingCore(
            policy: variant.policy,
            routing: [.whole: variant.routing, .prefill: variant.routing, .decode: disaggregation.decodeRouting ?? variant.routing],
            configuration: SchedulerConfiguration(maxQueueLength: 1_000_000), origin: origin)
        core.routers[.decode]?.pairing = disaggregation.pairingScores
        // With PD: GENERAL ones first (by share), then PREFILL spread evenly among the rest.
        let generalCount = variant.disaggregated ? Int((Double(scenario.instances) * scenario.generalShare).rounded()) : scenario.instances
        let split = scenario.instances - generalCount
        let prefillCount = split == 0 ? 0 : min(split - 1, max(1, Int((Double(split) * scenario.prefillShare).rounded())))
        for index in 0..<scenario.instances {
            let machine = index / scenario.instancesPerMachine
            let hardwareIndex = index % scenario.hardware.count
            let type: InstanceType =
                index < generalCount
                ? .general : (Self.isPrefill(index - generalCount, of: split, prefills: prefillCount) ? .prefill : .decode)
            let spec = InstanceSpec(
                id: "sim-\(index)", baseURL: "http://sim-\(index):8000/v1", model: "m", type: type,
                maxConcurrentRequests: scenario.maxConcurrentPerInstance, costPerGPUHour: scenario.hardware[hardwareIndex].costPerGPUHour,
                topology: Topology(machineID: "machine-\(machine)", rackID: "rack-\(machine / scenario.machinesPerRack)"))
            specs.append(spec)
            hardware.append(hardwareIndex)
            positionOf[spec.id] = index
        }
        // The order of the specs is the table's order: position == index (nothing is removed here).
        _ = try? core.add(specs, now: origin)  // the specs above are valid by construction
        prefixCaches = Array(repeating: [], count: scenario.instances)
        runningOn = Array(repeating: [], count: scenario.instances)
    }

    /// Spreads PREFILL instances evenly, so that every machine has some where possible.
    static func isPrefill(_ index: Int, of total: Int, prefills: Int) -> Bool {
        (index * prefills) / total != ((index + 1) * prefills) / total
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
            case .phaseEnd(let token): endPhase(token, now: now)
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
                priority: request.priority, sloDeadline: request.slo.map { .nanoseconds(Int64($0 * 1e9)) }, sessionKey: request.sessionKey),
            arrival: arrival, deadline: request.slo.map { instant(request.arrival + $0) }, prefixBlocks: request.prefixBlocks,
            expectedOutputTokens: request.outputTokens, excluded: excluded[index] ?? [], topologyAnchor: anchors[index], phase: phase)
    }

    mutating func arrive(_ index: Int, now: Double) {
        let request = workload[index]
        let split = variant.disaggregated && disaggregation.isPrefillHeavy(promptTokens: request.promptTokens, maxTokens: request.outputTokens)
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
        let model = scenario.hardware[hardware[instance]]
        let load = Double(core.instances[instance].inFlight) / Double(scenario.maxConcurrentPerInstance)
        let duration: Double
        let firstToken: Double
        switch lease.phase {
        case .whole:
            let prefill = Double(promptToCompute(request, on: instance)) / model.prefillTokensPerSecond * (1 + scenario.prefillSlowdownMixed * load)
            let perToken = model.secondsPerOutputToken * (1 + scenario.decodeSlowdownMixed * load)
            firstToken = prefill + perToken
            duration = prefill + Double(request.outputTokens) * perToken
        case .prefill:
            duration =
                Double(promptToCompute(request, on: instance)) / model.prefillTokensPerSecond * (1 + scenario.prefillSlowdownDedicated * load)
            firstToken = duration
        case .decode:
            let from = anchors[Int(lease.requestID)] ?? lease.instance
            let transfer = Double(request.promptTokens) * scenario.kvBytesPerToken / bandwidth(from.distance(to: lease.instance))
            let perToken = model.secondsPerOutputToken * (1 + scenario.decodeSlowdownDedicated * load)
            firstToken = transfer + perToken
            duration = transfer + Double(request.outputTokens) * perToken
        }
        nextToken += 1
        running[nextToken] = RunningPhase(lease: lease, instance: instance, started: now, duration: duration, ownTimeToFirstToken: firstToken)
        runningOn[instance].insert(nextToken)
        schedule(now + duration, .phaseEnd(nextToken))
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
        cost += phase.duration * spec.costPerGPUHour * Double(spec.gpuCount) / 3600 / Double(spec.maxConcurrentRequests)
        handle(
            core.release(
                phase.lease,
                outcome: .success(
                    latency: .nanoseconds(Int64(phase.duration * 1e9)), timeToFirstToken: .nanoseconds(Int64(phase.ownTimeToFirstToken * 1e9)),
                    outputTokens: phase.lease.phase == .prefill ? nil : request.outputTokens),
                now: instant(now)),
            now: now)
        if phase.lease.phase == .prefill {
            anchors[index] = spec
            excluded[index] = nil
            submit(queued(index, phase: .decode), now: now)
            return
        }
        let latency = now - request.arrival
        let firstToken = phase.started + phase.ownTimeToFirstToken - request.arrival
        tally.record(
            succeeded: true, latency: .nanoseconds(Int64(latency * 1e9)), timeToFirstToken: .nanoseconds(Int64(firstToken * 1e9)),
            queueWait: nil, priority: request.priority, deadline: request.slo.map { .nanoseconds(Int64($0 * 1e9)) })
        targets.completed(request, timeToFirstToken: firstToken, latency: latency)
        if request.longPrompt { _ = longTimeToFirstToken.record(OutcomeTally.microseconds(.nanoseconds(Int64(firstToken * 1e9)))) }
        tokens += request.promptTokens + request.outputTokens
        lastCompletion = max(lastCompletion, now)
        cleanUp(index)
    }

    /// An instance fails: its requests fail over elsewhere (as the live control plane does).
    mutating func fail(_ instance: Int, now: Double) {
        let spec = specs[instance]
        handle(core.setHealth(spec.id, healthy: false, reason: "simulated failure", now: instant(now)), now: now)
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
        let request = workload[index]
        rejected[code.description, default: 0] += 1
        targets.failed(request)
        tally.record(
            succeeded: false, latency: .nanoseconds(Int64((now - request.arrival) * 1e9)), timeToFirstToken: nil, queueWait: nil,
            priority: request.priority, deadline: request.slo.map { .nanoseconds(Int64($0 * 1e9)) }, failuresMissDeadlines: true)
        cleanUp(index)
    }

    mutating func cleanUp(_ index: Int) {
        failovers[index] = nil
        excluded[index] = nil
        anchors[index] = nil
    }

    func result(wallTime: Duration) -> SimulationResult {
        let span = max(lastCompletion, scenario.duration)
        func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double? { OutcomeTally.milliseconds(histogram, percentile) }
        return SimulationResult(
            policy: variant.policy.rawValue, routing: variant.routing.rawValue, pd: variant.disaggregated, baseline: variant.baseline,
            requests: workload.count, completed: tally.completed, failed: tally.failed, rejected: rejected,
            sloCompliance: tally.sloCompliance, sloComplianceByPriority: tally.sloComplianceByPriority,
            goodputRPS: Double(tally.good) / span, ttftCompliance: targets.ttftCompliance, tpotCompliance: targets.tpotCompliance,
            sloGoodputRPS: Double(targets.good) / span, shedShare: targets.shedShare, p50LatencyMilliseconds: ms(tally.latency, 50),
            p99LatencyMilliseconds: ms(tally.latency, 99), p50TimeToFirstTokenMilliseconds: ms(tally.timeToFirstToken, 50),
            p99TimeToFirstTokenMilliseconds: ms(tally.timeToFirstToken, 99),
            p99LongPromptTimeToFirstTokenMilliseconds: ms(longTimeToFirstToken, 99),
            costPer1kTokens: tokens == 0 ? nil : cost / Double(tokens) * 1000, paths: paths, simulatedSeconds: span,
            wallSeconds: wallTime.seconds)
    }
}

/// One variant's outcome; the JSON keys are `sagellm cluster simulate --json`'s.
public struct SimulationResult: Sendable, Codable, Hashable {
    public var policy: String
    public var routing: String
    public var pd: Bool
    public var baseline: Bool
    public var requests: Int
    public var completed: Int
    /// Shed, refused or failed after every failover.
    public var failed: Int
    public var rejected: [String: Int]
    /// Requests with an SLO that completed within it, over all with an SLO (shed ones count as missed).
    public var sloCompliance: Double?
    public var sloComplianceByPriority: [String: Double]
    /// Completed requests that met their SLO (or had none), per simulated second.
    public var goodputRPS: Double
    /// Requests that met their time-to-first-token target, and their time-per-output-token
    /// target, over all with one (shed ones missed them).
    public var ttftCompliance: Double?
    public var tpotCompliance: Double?
    /// DistServe's goodput: completed requests that met their TTFT and TPOT targets and their
    /// end-to-end SLO (each where they have one), per simulated second.
    public var sloGoodputRPS: Double
    /// Shed, refused or failed after every failover, over all requests.
    public var shedShare: Double
    public var p50LatencyMilliseconds: Double?
    public var p99LatencyMilliseconds: Double?
    public var p50TimeToFirstTokenMilliseconds: Double?
    public var p99TimeToFirstTokenMilliseconds: Double?
    /// The same for requests with a long prompt (where PD should help).
    public var p99LongPromptTimeToFirstTokenMilliseconds: Double?
    /// Instance time used (each request pays its share of a batch slot) per 1,000 prompt and output tokens served.
    public var costPer1kTokens: Double?
    /// Requests split between prefill and decode, and those sent whole.
    public var paths: [String: Int]
    /// From the first arrival to the last completion (at least the arrival window).
    public var simulatedSeconds: Double
    /// How long the simulation itself took.
    public var wallSeconds: Double

    private enum CodingKeys: String, CodingKey {
        case policy, routing, pd, baseline, requests, completed, failed, rejected, sloCompliance = "slo_compliance",
            sloComplianceByPriority = "slo_compliance_by_priority", goodputRPS = "goodput_rps", ttftCompliance = "ttft_slo_compliance",
            tpotCompliance = "tpot_slo_compliance", sloGoodputRPS = "slo_goodput_rps", shedShare = "shed_share",
            p50LatencyMilliseconds = "p50_latency_ms", p99LatencyMilliseconds = "p99_latency_ms",
            p50TimeToFirstTokenMilliseconds = "p50_ttft_ms", p99TimeToFirstTokenMilliseconds = "p99_ttft_ms",
            p99LongPromptTimeToFirstTokenMilliseconds = "p99_ttft_long_prompt_ms", costPer1kTokens = "cost_per_1k_tokens", paths,
            simulatedSeconds = "simulated_seconds", wallSeconds = "wall_seconds"
    }
}
