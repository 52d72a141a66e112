import Foundation
import Logging
import NIOHTTP1
import SageControlPlane
import SageSimulator
import SageTesting
import ServiceLifecycle
import Testing

@testable import SageGateway

/// Three gateway replicas over one fleet in etcd (a real three-member cluster on loopback;
/// skipped where `etcd` is not installed): the same sessions reach the same engines through
/// any replica, and each replica enforces its share of a key's limits over the live replicas.
@Suite("Gateway replicas", .serialized, .enabled(if: EtcdTestCluster.binary != nil, "etcd is not installed (apt-get install etcd-server, or set ETCD_BINARY)"))
struct GatewayReplicasTests {
    static let quiet: Logger = {
        var logger = Logger(label: "sagellm.gateway.replicas.test")
        logger.logLevel = .critical
        return logger
    }()

    /// Registers every simulator under `prefix` (as `sagellm register` would, without a lease).
    static func register(_ simulators: [RunningSimulator], in cluster: EtcdTestCluster, prefix: String) async throws {
        for (index, simulator) in simulators.enumerated() {
            let entry = #"{"instance_id":"e\#(index)","base_url":"\#(simulator.baseURL)","model_name":"m","max_concurrent_requests":16}"#
            try await EtcdTestCluster.put(cluster.clientURLs[0], key: prefix + "e\(index)", value: entry)
        }
    }

    static func controlPlane(_ cluster: EtcdTestCluster, prefix: String) throws -> ControlPlaneClient {
        try ControlPlaneClient(
            instances: [], schedulingPolicy: .fifo, routingStrategy: .affinity,
            discovery: [FleetSourceConfiguration(kind: .etcd(endpoints: cluster.clientURLs, prefix: prefix), template: InstanceTemplate(model: "any"))],
            logger: quiet)
    }

    static func chat(session: String) -> (body: String, headers: [(String, String)]) {
        (#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#, [("x-session-id", session)])
    }

    @Test func threeReplicasSendEachSessionToTheSameEngine() async throws {
        let cluster = try await EtcdTestCluster.start(members: 3)
        defer { cluster.shutdown() }
        try await withSimulatorServers(configurations: (0..<4).map { _ in engine() }) { simulators in
            let prefix = "/sagellm/replicas-\(UUID().uuidString)/"
            try await Self.register(simulators, in: cluster, prefix: prefix)
            let planes = try (0..<3).map { _ in try Self.controlPlane(cluster, prefix: prefix) }
            try await withGatewayService(controlPlane: planes[0], logger: Self.quiet) { first in
                try await withGatewayService(controlPlane: planes[1], logger: Self.quiet) { second in
                    try await withGatewayService(controlPlane: planes[2], logger: Self.quiet) { third in
                        for plane in planes {
                            #expect(await eventually(timeout: .seconds(10)) { plane.instances().filter(\.isHealthy).count == 4 })
                        }
                        var agreed = 0
                        var used = Set<String>()
                        for session in 0..<30 {
                            var chosen: [String] = []
                            for gateway in [first, second, third] {
                                let (body, headers) = Self.chat(session: "user-\(session)")
                                let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body, headers: headers)
                                #expect(answer.status == 200, "\(answer.body)")
                                chosen.append(answer.headers.first(name: "x-sagellm-instance") ?? "?")
                            }
                            if Set(chosen).count == 1 { agreed += 1 }
                            used.formUnion(chosen)
                        }
                        #expect(agreed == 30, "every session on one engine through all three replicas")
                        #expect(used.count >= 3, "and the sessions spread over the fleet: \(used)")
                    }
                }
            }
        }
    }

    @Test func eachReplicaEnforcesItsShareAndTheOthersTakeOverAKilledOnes() async throws {
        let cluster = try await EtcdTestCluster.start(members: 3)
        defer { cluster.shutdown() }
        try await withSimulatorServers(configurations: [engine()]) { simulators in
            let prefix = "/sagellm/limits-\(UUID().uuidString)/"
            try await Self.register(simulators, in: cluster, prefix: prefix + "engines/")
            let keys = try keysFile("keys:\n  - name: team\n    key: sk-team-secret-0001\n    requests_per_minute: 2\n")
            @Sendable func configuration(_ id: String) -> GatewayConfiguration {
                var configuration = gatewayWithKeys(keys)
                configuration.replicaID = id
                configuration.replicaRegistry = .init(etcdEndpoints: cluster.clientURLs, prefix: prefix + "gateways/", ttlSeconds: 2)
                return configuration
            }
            @Sendable func replicas(_ gateway: RunningGateway) async -> Int? {
                RunningGateway.json((try? await gateway.send(.GET, "/ready").body) ?? "")["replicas"] as? Int
            }
            let body = Self.chat(session: "s").body
            try await withGatewayService(
                controlPlane: try Self.controlPlane(cluster, prefix: prefix + "engines/"), configuration: configuration("g1"), logger: Self.quiet
            ) { first in
                try await withGatewayService(
                    controlPlane: try Self.controlPlane(cluster, prefix: prefix + "engines/"), configuration: configuration("g2"), logger: Self.quiet
                ) { second in
                    // The third replica runs in a task of its own, cancelled below as if killed.
                    try await withThrowingTaskGroup(of: Void.self) { killable in
                        let (started, continuation) = AsyncStream.makeStream(of: Bool.self)
                        let controlPlane = try Self.controlPlane(cluster, prefix: prefix + "engines/")
                        killable.addTask {
                            try? await withGatewayService(controlPlane: controlPlane, configuration: configuration("g3"), logger: Self.quiet) { _ in
                                continuation.yield(true)
                                try await Task.sleep(for: .seconds(600))
                            }
                        }
                        var waiting = started.makeAsyncIterator()
                        _ = await waiting.next()
                        #expect(await eventually(timeout: .seconds(10)) {
                            let counts = (await replicas(first), await replicas(second))
                            return counts == (3, 3)
                        })
                        #expect(await eventually(timeout: .seconds(10)) { first.controlPlane.instances().count == 1 })
                        // 2 requests a minute over 3 replicas: one here, and the next is refused.
                        #expect(try await first.send(.POST, "/v1/chat/completions", body: body, headers: bearer("sk-team-secret-0001")).status == 200)
                        let refused = try await first.send(.POST, "/v1/chat/completions", body: body, headers: bearer("sk-team-secret-0001"))
                        #expect(refused.status == 429)
                        #expect((RunningGateway.error(refused.body)["message"] as? String)?.contains("share among 3") == true, "\(refused.body)")
                        let metrics = try await first.send(.GET, "/metrics").body
                        #expect(metrics.contains("sagellm_gateway_replicas 3"), "\(metrics)")

                        let killed = ContinuousClock.now
                        killable.cancelAll()
                        #expect(await eventually(timeout: .seconds(5)) {
                            let counts = (await replicas(first), await replicas(second))
                            return counts == (2, 2)
                        })
                        #expect(ContinuousClock.now - killed < .seconds(4), "within the lease TTL (2 s) and a renewal")
                        let after = try await first.send(.POST, "/v1/chat/completions", body: body, headers: bearer("sk-team-secret-0001"))
                        #expect((RunningGateway.error(after.body)["message"] as? String)?.contains("share among 2") == true, "\(after.body)")
                    }
                }
            }
        }
    }
}
