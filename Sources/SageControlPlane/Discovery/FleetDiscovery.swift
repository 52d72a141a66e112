import Logging
import Synchronization

/// Keeps the control plane's discovered instances in line with its sources: each source's
/// last fleet is kept (also while the source is unreachable, so an outage of etcd, the
/// Kubernetes API or DNS never empties the fleet), the union of them is the discovered fleet,
/// and the difference with what was discovered before is applied: new instances are added,
/// vanished ones drained (their requests finish, then they are removed), changed ones
/// replaced. Instances of the static list or added by hand are never touched; an id that
/// one of them holds already is skipped.
final class FleetDiscovery: Sendable {
    private struct SourceState: Sendable {
        var fleet: [InstanceSpec] = []
        var isReachable = false
        var lastError: String?
        var lastSuccess: ContinuousClock.Instant?
        var failures = 0
    }

    private struct State: Sendable {
        var sources: [String: SourceState] = [:]
        /// Instance ids this discovery added and still owns.
        var owned: Set<String> = []
    }

    let sources: [any FleetSource]
    private let state = Mutex(State())
    private let logger: Logger

    init(sources: [any FleetSource], logger: Logger) {
        self.sources = sources
        self.logger = logger
        state.withLock { state in
            for source in sources { state.sources[source.name] = SourceState() }
        }
    }

    /// The ids discovery owns now (a cluster-file reload leaves them alone).
    var ownedIDs: Set<String> { state.withLock { $0.owned } }

    /// Each source's state, in the order they were configured.
    var status: [FleetSourceStatus] {
        state.withLock { state in
            sources.map { source in
                let current = state.sources[source.name] ?? SourceState()
                return FleetSourceStatus(
                    name: source.name, isReachable: current.isReachable, instances: current.fleet.count, lastError: current.lastError,
                    lastSuccess: current.lastSuccess, failures: current.failures)
            }
        }
    }

    /// Reads every source until the task is cancelled, applying what they report to `controlPlane`.
    func run(on controlPlane: ControlPlaneClient) async {
        await withDiscardingTaskGroup { group in
            for source in sources {
                group.addTask {
                    await source.run { report in self.receive(report, from: source.name, on: controlPlane) }
                }
            }
        }
    }

    /// Records a source's report and applies the discovered fleet that results.
    func receive(_ report: FleetSourceReport, from name: String, on controlPlane: ControlPlaneClient) {
        let (wasReachable, previousError) = state.withLock { state -> (Bool, String?) in
            let before = (state.sources[name]?.isReachable ?? false, state.sources[name]?.lastError)
            switch report {
            case .fleet(let fleet):
                state.sources[name, default: SourceState()].fleet = fleet
                state.sources[name, default: SourceState()].isReachable = true
                state.sources[name, default: SourceState()].lastError = nil
                state.sources[name, default: SourceState()].lastSuccess = .now
            case .unreachable(let reason):
                state.sources[name, default: SourceState()].isReachable = false
                state.sources[name, default: SourceState()].lastError = reason
                state.sources[name, default: SourceState()].failures += 1
            }
            return before
        }
        switch report {
        case .unreachable(let reason):
            // A warning when the source fails, or fails differently; the same failure again is
            // a debug line (a source retried every second would flood the log).
            let kept = state.withLock { $0.sources[name]?.fleet.count ?? 0 }
            let metadata: Logger.Metadata = ["sage.source": "\(name)", "sage.error": "\(reason)", "sage.kept": "\(kept)"]
            if wasReachable || previousError != reason {
                logger.warning("discovery source unreachable; its last known instances stay", metadata: metadata)
            } else {
                logger.debug("discovery source still unreachable", metadata: metadata)
            }
        case .fleet:
            if !wasReachable { logger.info("discovery source read", metadata: ["sage.source": "\(name)"]) }
            reconcile(controlPlane)
        }
    }

    /// Brings the control plane's discovered instances in line with the sources' fleets.
    private func reconcile(_ controlPlane: ControlPlaneClient) {
        // One reconciliation at a time: the lock is held across it (it takes no other lock
        // that waits for this one).
        state.withLock { state in
            var wanted: [InstanceSpec] = []
            var seen = Set<String>()
            for source in sources {
                for spec in state.sources[source.name]?.fleet ?? [] where seen.insert(spec.id).inserted { wanted.append(spec) }
            }
            let others = Set(controlPlane.scheduler.instanceStates.filter { $0.healthReason != "removed" }.map(\.spec.id)).subtracting(state.owned)
            wanted.removeAll { others.contains($0.id) }
            let changes = controlPlane.bringInLine(wanted, among: state.owned)
            let refused = Set(changes.refused.map(\.id))
            state.owned = Set(wanted.map(\.id)).subtracting(refused)
            if !changes.added.isEmpty || !changes.removed.isEmpty || !changes.changed.isEmpty {
                logger.info(
                    "discovered fleet changed",
                    metadata: ["sage.added": "\(changes.added)", "sage.removed": "\(changes.removed)", "sage.changed": "\(changes.changed)"])
            }
            for (id, error) in changes.refused {
                logger.error("a discovered instance was refused", metadata: ["sage.instance": "\(id)", "sage.error": "\(error)"])
            }
        }
    }
}
