import Logging
import SageLLM
import Synchronization

/// A fleet from etcd v3: every key under `prefix` is an instance, its value a cluster file's
/// `instances:` entry in JSON (written by `sagellm register`, attached to a lease, so that it
/// goes when its engine's sidecar stops renewing). See ``EtcdPrefixWatch`` for how the prefix
/// is followed. A value that does not read is skipped and logged once.
struct EtcdFleetSource: FleetSource {
    let watch: EtcdPrefixWatch
    var logger: Logger

    init(endpoints: [String], prefix: String, logger: Logger = Logger(label: "sagellm.discovery.etcd")) {
        watch = EtcdPrefixWatch(endpoints: endpoints, prefix: prefix)
        self.logger = logger
    }

    var name: String { "etcd \(watch.prefix)" }

    func run(_ report: @escaping @Sendable (FleetSourceReport) async -> Void) async {
        let entries = Mutex(EtcdInstanceEntries(logger: logger))
        await watch.run(logger: logger) { update in
            switch update {
            case .values(let values): await report(.fleet(entries.withLock { $0.fleet(of: values) }))
            case .unreachable(let reason): await report(.unreachable(reason))
            }
        }
    }
}

/// The instances that etcd values describe, read once per value.
struct EtcdInstanceEntries {
    let logger: Logger
    /// Per key, the value last read and the instance it described (nil: it did not read).
    private var read: [String: (value: String, instance: InstanceSpec?)] = [:]

    init(logger: Logger) { self.logger = logger }

    /// Every instance of `values`, ordered by key; an id used by two keys counts once (the first key's).
    mutating func fleet(of values: [String: String]) -> [InstanceSpec] {
        read = read.filter { values[$0.key] != nil }
        var seen = Set<String>()
        var fleet: [InstanceSpec] = []
        for key in values.keys.sorted() {
            guard let value = values[key] else { continue }
            if read[key]?.value != value { read[key] = (value, instance(key: key, value: value)) }
            if let instance = read[key]?.instance, seen.insert(instance.id).inserted { fleet.append(instance) }
        }
        return fleet
    }

    private func instance(key: String, value: String) -> InstanceSpec? {
        do {
            return try ClusterConfiguration.instance(from: value, source: "etcd key \(key)")
        } catch {
            logger.warning(
                "an etcd key under the discovery prefix is not an instance entry; it is skipped",
                metadata: ["sage.key": "\(key)", "sage.reason": "\(error.message)"])
            return nil
        }
    }
}
