import SageSupport

/// The live scheduler: the ``SchedulingCore`` in a waiting room (one lock for the core and the
/// callers waiting in its queue), on the real clock. Requests wait here, ordered by the
/// policy, and are dispatched as soon as a slot frees (no polling). Load counters go up at
/// dispatch and down at release, whatever the outcome.
package final class Scheduler: Sendable {
    let configuration: SchedulerConfiguration
    let metrics: ControlPlaneMetrics
    private let room: WaitingRoom<SchedulingCore, Lease>

    package init(
        policy: SchedulingPolicy, routing: RoutingStrategy, configuration: SchedulerConfiguration, metrics: ControlPlaneMetrics,
        disaggregation: DisaggregationConfiguration = DisaggregationConfiguration()
    ) {
        self.configuration = configuration
        self.metrics = metrics
        var core = SchedulingCore(
            policy: policy,
            routing: [.whole: routing, .prefill: disaggregation.prefillRouting ?? routing, .decode: disaggregation.decodeRouting ?? routing],
            configuration: configuration, origin: .now)
        core.routers[RequestPhase.decode.rawValue].pairing = disaggregation.topologyPairing ? disaggregation.pairingScores : nil
        room = WaitingRoom(core)
    }

    // MARK: Instances

    package func add(_ spec: InstanceSpec) throws(ControlPlaneError) { try add(spec, client: nil) }

    func add(_ spec: InstanceSpec, client: InstanceClient?) throws(ControlPlaneError) {
        do {
            try room.tryUpdate { core in Self.handovers(try core.add(spec, client: client, now: .now)) }
        } catch let error as ControlPlaneError {
            throw error
        } catch {
            throw ControlPlaneError(.invalidConfiguration, "\(error)", instanceID: spec.id)
        }
    }

    /// Stops sending new requests to `id`; those it runs finish. `remove` also forgets it once idle.
    func drain(_ id: String, remove: Bool) -> Bool { room.withState { $0.drain(id, remove: remove) } }

    func setHealth(_ id: String, healthy: Bool, reason: String) {
        room.update { core in Self.handovers(core.setHealth(id, healthy: healthy, reason: reason, now: .now)) }
    }

    func setEngineFigures(_ id: String, running: Double?, waiting: Double?, kvCacheUsage: Double?, ownBefore: Int) {
        room.update { core in
            Self.handovers(core.setEngineFigures(id, running: running, waiting: waiting, kvCacheUsage: kvCacheUsage, ownBefore: ownBefore, now: .now))
        }
    }

    var instanceStates: [InstanceState] { room.withState { $0.instances } }
    var queueLength: Int { room.withState { $0.waiting.count } }
    var adaptiveSummary: (choices: [SchedulingPolicy: Int], reason: String) {
        room.withState { ($0.adaptiveChoices, $0.adaptiveReason) }
    }

    /// Whether a prefill-heavy request for `model` should be split now (see ``SchedulingCore/splits(_:_:)``).
    func splits(_ model: String, _ disaggregation: DisaggregationConfiguration) -> Bool {
        room.withState { $0.splits(model, disaggregation) }
    }

    // MARK: Admission

    /// Waits for an instance for `request` (at once when one has a free slot and nobody
    /// waits), at most ``SchedulerConfiguration/maxQueueWait``.
    package func acquire(_ request: QueuedRequest) async throws -> Lease {
        // The common case, a free slot and nobody waiting, takes one lock and no continuation.
        switch room.withState({ $0.admit(request, now: .now) }) {
        case .leased(let lease): return lease
        case .failed(let error): throw error
        case .mustWait: break
        }
        guard let maxWait = configuration.maxQueueWait else { return try await wait(request) }
        return try await withThrowingTaskGroup(of: Lease?.self) { group in
            group.addTask { try await self.wait(request) }
            group.addTask {
                try await Task.sleep(for: maxWait)
                self.room.withdraw(
                    request.id,
                    error: ControlPlaneError(.queueTimeout, "the request waited \(SchedulingCore.format(maxWait)) in the queue without a free instance"),
                    using: { _ = $0.withdraw(request.id) })
                return nil
            }
            // Every child is awaited: a lease granted while the caller was cancelled is returned
            // (the caller gives it back), never dropped with the slot it holds.
            var granted: Lease?
            var failure: (any Error)?
            while !group.isEmpty {
                do {
                    if let lease = try await group.next() ?? nil {
                        granted = lease
                        group.cancelAll()
                    }
                } catch {
                    if failure == nil { failure = error }
                    group.cancelAll()
                }
            }
            if let granted { return granted }
            throw failure ?? ControlPlaneError(.cancelled, "the request was cancelled while it waited")
        }
    }

    private func wait(_ request: QueuedRequest) async throws -> Lease {
        try await room.wait(
            id: request.id,
            admit: { core in
                switch core.admit(request, now: .now) {
                case .leased(let lease): return (.ready(lease), [])
                case .failed(let error): return (.failed(error), [])
                case .mustWait: return (.park, Self.handovers(core.enqueue(request, now: .now)))
                }
            },
            withdraw: { _ = $0.withdraw(request.id) },
            cancelled: { ControlPlaneError(.cancelled, "the request was cancelled while it waited") })
    }

    /// Gives an instance back, updates its figures, and dispatches whoever can go now.
    package func release(_ lease: Lease, outcome: LeaseOutcome) {
        room.update { core in Self.handovers(core.release(lease, outcome: outcome, now: .now)) }
    }

    func shutdown() {
        room.update { core in Self.handovers(core.shutdown()) }
    }

    /// The waiters to resume for what the core decided.
    private static func handovers(_ decisions: [QueueDecision]) -> [WaitingRoom<SchedulingCore, Lease>.Handover] {
        decisions.map { decision in
            switch decision {
            case .dispatched(let lease): .init(lease.requestID, .success(lease))
            case .rejected(let id, let error): .init(id, .failure(error))
            }
        }
    }
}
