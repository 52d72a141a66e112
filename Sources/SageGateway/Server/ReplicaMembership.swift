import Foundation
import Logging
import SageControlPlane
import ServiceLifecycle
import Synchronization

/// A gateway among replicas: it keeps its own key in etcd under the replica prefix (on a lease,
/// revoked at shutdown, expiring within the TTL when the process dies) and follows the
/// prefix, so that each replica enforces its share of every API key's limits over the live
/// replica count, split again when a replica comes or goes. While etcd cannot be read the last
/// count stands, and `/ready` says so.
final class ReplicaMembership: Sendable {
    let registry: GatewayConfiguration.ReplicaRegistry
    let replicaID: String
    private let keys: KeyRing
    private let logger: Logger
    private let status = Mutex<(replicas: Int, problem: String?)>((1, nil))

    init(registry: GatewayConfiguration.ReplicaRegistry, replicaID: String, keys: KeyRing, logger: Logger) {
        self.registry = registry
        self.replicaID = replicaID
        self.keys = keys
        self.logger = logger
    }

    /// Live replicas (this one included) and, while etcd cannot be read, why.
    var current: (replicas: Int, problem: String?) { status.withLock { $0 } }

    /// The services: this replica's registration, and the watch of the replicas.
    func services() throws(GatewayError) -> [any Service] {
        let value = #"{"replica_id":"\#(replicaID)"}"#  // the id has no quotes or line breaks (validated)
        do {
            let registration = try EtcdRegistration(
                endpoints: registry.etcdEndpoints, key: registry.prefix + replicaID, value: value, ttl: registry.ttlSeconds, logger: logger)
            return [Watch(membership: self), registration]
        } catch {
            throw GatewayError(.invalidConfiguration, "gateway.replicas: \(error.message)", status: 500, field: "gateway.replicas")
        }
    }

    fileprivate func update(_ update: EtcdPrefixWatch.Update) {
        switch update {
        case .values(let values):
            // This replica counts even before its own key is seen (it registers concurrently).
            let count = Set(values.keys).union([registry.prefix + replicaID]).count
            let before = status.withLock { status in
                defer { status = (count, nil) }
                return status.replicas
            }
            keys.replicas = count
            if before != count {
                logger.notice("gateway replicas changed; each key's limits are split among them", metadata: ["sage.replicas": "\(count)"])
            }
        case .unreachable(let reason):
            let first = status.withLock { status in
                defer { status.problem = reason }
                return status.problem == nil
            }
            if first {
                logger.warning("the replica registry cannot be read; keeping the last replica count", metadata: ["sage.reason": "\(reason)"])
            }
        }
    }

    /// Follows the replica prefix until graceful shutdown.
    private struct Watch: Service {
        let membership: ReplicaMembership

        func run() async throws {
            let watch = EtcdPrefixWatch(endpoints: membership.registry.etcdEndpoints, prefix: membership.registry.prefix)
            let logger = membership.logger
            let membership = self.membership
            await cancelWhenGracefulShutdown {
                await watch.run(logger: logger) { membership.update($0) }
            }
        }
    }
}
