import Synchronization

/// The live scheduler: the ``SchedulingCore`` behind one lock, on the real clock. Requests
/// wait here, ordered by the policy, and are dispatched as soon as a slot frees (no
/// polling). Load counters go up at dispatch and down at release, whatever the outcome.
final class Scheduler: Sendable {
    struct State {
        var core: SchedulingCore
        /// Callers waiting in the queue, by request id.
        var continuations: [UInt64: CheckedContinuation<Lease, any Error>] = [:]
        var cancelledBeforeEnqueue = Set<UInt64>()
    }

    let configuration: SchedulerConfiguration
    let metrics: ControlPlaneMetrics
    private let state: Mutex<State>

    init(
        policy: SchedulingPolicy, routing: RoutingStrategy, configuration: SchedulerConfiguration, metrics: ControlPlaneMetrics,
        disaggregation: DisaggregationConfiguration = DisaggregationConfiguration()
    ) {
        self.configuration = configuration
        self.metrics = metrics
        var core = SchedulingCore(
            policy: policy,
            routing: [.whole: routing, .prefill: disaggregation.prefillRouting ?? routing, .decode: disaggregation.decodeRouting ?? routing],
            configuration: configuration, origin: .now)
        core.routers[.decode]?.pairing = disaggregation.topologyPairing ? disaggregation.pairingScores : nil
        state = Mutex(State(core: core))
    }

    // MARK: Instances

    func add(_ spec: InstanceSpec) throws(ControlPlaneError) {
        let decisions = try state.withLock { (state) throws(ControlPlaneError) -> [Resume] in
            Self.resumes(for: try state.core.add(spec, now: .now), &state)
        }
        decisions.forEach { $0() }
    }

    /// Stops sending new requests to `id`; those it runs finish. `remove` also forgets it once idle.
    func drain(_ id: String, remove: Bool) -> Bool { state.withLock { $0.core.drain(id, remove: remove) } }

    func setHealth(_ id: String, healthy: Bool, reason: String) {
        let resumes = state.withLock { state in
            Self.resumes(for: state.core.setHealth(id, healthy: healthy, reason: reason, now: .now), &state)
        }
        resumes.forEach { $0() }
    }

    func setEngineFigures(_ id: String, running: Double?, waiting: Double?, kvCacheUsage: Double?) {
        state.withLock { $0.core.setEngineFigures(id, running: running, waiting: waiting, kvCacheUsage: kvCacheUsage) }
    }

    var instanceStates: [InstanceState] { state.withLock { $0.core.instances } }
    var queueLength: Int { state.withLock { $0.core.waiting.count } }
    var adaptiveSummary: (choices: [SchedulingPolicy: Int], reason: String) {
        state.withLock { ($0.core.adaptiveChoices, $0.core.adaptiveReason) }
    }

    /// Whether healthy instances serve `model` in every one of `phases` now.
    func serves(_ model: String, _ phases: RequestPhase...) -> Bool {
        state.withLock { state in phases.allSatisfy { state.core.serves(PoolKey(model: model, phase: $0)) } }
    }

    // MARK: Admission

    typealias Resume = @Sendable () -> Void

    /// Waits for an instance for `request` (at once when one has a free slot and nobody waits).
    func acquire(_ request: QueuedRequest) async throws -> Lease {
        switch state.withLock({ $0.core.admit(request, now: .now) }) {
        case .leased(let lease): return lease
        case .failed(let error): throw error
        case .mustWait: return try await wait(request)
        }
    }

    private func wait(_ request: QueuedRequest) async throws -> Lease {
        let maxWait = configuration.maxQueueWait
        return try await withThrowingTaskGroup(of: Lease?.self) { group in
            group.addTask {
                try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
                        let resumes: [Resume] = self.state.withLock { state in
                            if state.cancelledBeforeEnqueue.remove(request.id) != nil {
                                return [{ continuation.resume(throwing: ControlPlaneError(.cancelled, "the request was cancelled while it waited")) }]
                            }
                            state.continuations[request.id] = continuation
                            return Self.resumes(for: state.core.enqueue(request, now: .now), &state)
                        }
                        resumes.forEach { $0() }
                    }
                } onCancel: {
                    self.withdraw(request.id, with: ControlPlaneError(.cancelled, "the request was cancelled while it waited"))
                }
            }
            if let maxWait {
                group.addTask {
                    try await Task.sleep(for: maxWait)
                    self.withdraw(
                        request.id,
                        with: ControlPlaneError(.queueTimeout, "the request waited \(SchedulingCore.format(maxWait)) in the queue without a free instance"))
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
    private func withdraw(_ id: UInt64, with error: ControlPlaneError) {
        let continuation: CheckedContinuation<Lease, any Error>? = state.withLock { state in
            if state.core.withdraw(id) { return state.continuations.removeValue(forKey: id) }
            if error.code == .cancelled && state.continuations[id] == nil { state.cancelledBeforeEnqueue.insert(id) }
            return nil
        }
        continuation?.resume(throwing: error)
    }

    /// Gives an instance back, updates its figures, and dispatches whoever can go now.
    func release(_ lease: Lease, outcome: LeaseOutcome) {
        let resumes = state.withLock { state in
            state.cancelledBeforeEnqueue.remove(lease.requestID)
            return Self.resumes(for: state.core.release(lease, outcome: outcome, now: .now), &state)
        }
        resumes.forEach { $0() }
    }

    func shutdown() {
        let resumes = state.withLock { state in Self.resumes(for: state.core.shutdown(), &state) }
        resumes.forEach { $0() }
    }

    /// The continuations to resume, outside the lock, for what the core decided.
    private static func resumes(for decisions: [QueueDecision], _ state: inout State) -> [Resume] {
        decisions.compactMap { decision in
            switch decision {
            case .dispatched(let lease):
                guard let continuation = state.continuations.removeValue(forKey: lease.requestID) else { return nil }
                return { continuation.resume(returning: lease) }
            case .rejected(let id, let error):
                guard let continuation = state.continuations.removeValue(forKey: id) else { return nil }
                return { continuation.resume(throwing: error) }
            }
        }
    }
}
