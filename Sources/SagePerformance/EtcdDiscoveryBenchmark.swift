import Foundation
import Logging
import SageControlPlane
import SageLLM
import SageSimulator
import SageTesting

extension SagePerformance {
    /// How fast the fleet follows etcd: a control plane watches a prefix of a three-member etcd
    /// cluster on loopback. An instance is registered (a key on a lease, as `sagellm register`
    /// writes it) and the time to its first routed request is taken; its lease is revoked (the
    /// sidecar's exit) and the time until it takes no new requests is taken; and leases left to
    /// expire give the time from expiry to the last request. Skipped without `etcd`.
    static func etcdDiscoveryBenchmark() async throws {
        print("Discovery (etcd v3, three members on 127.0.0.1)")
        guard EtcdTestCluster.binary != nil else {
            print("  skipped: \(EtcdTestCluster.skipReason ?? "no etcd")\n")
            return
        }
        let quiet = {
            var logger = Logger(label: "sagellm.perf.etcd")
            logger.logLevel = .critical
            return logger
        }()
        let cluster = try await EtcdTestCluster.start(members: 3)
        defer { cluster.shutdown() }
        let configuration = SimulatedEngineConfiguration(model: "m", ttft: .zero, tbt: .zero, prefillTokensPerSecond: 0, jitter: 0)
        try await withSimulatorServer(configuration: configuration) { simulator in
            let prefix = "/sagellm/perf/"
            let source = FleetSourceConfiguration(kind: .etcd(endpoints: cluster.clientURLs, prefix: prefix), template: InstanceTemplate(model: "any"))
            let controlPlane = try ControlPlaneClient(
                instances: [], schedulingPolicy: .fifo, monitoring: HealthMonitorConfiguration(scrapeInterval: nil), discovery: [source], logger: quiet)
            let etcd = try EtcdClient(endpoints: cluster.clientURLs, logger: quiet)
            func entry(_ id: String) -> String {
                ClusterConfiguration.entryJSON(of: InstanceSpec(id: id, baseURL: simulator.baseURL, model: "m"))
            }
            /// Sends requests until one is routed to `id`.
            func firstRequest(to id: String) async throws {
                while true {
                    if let answer = try? await controlPlane.routedChat([.user("hi")], options: ChatOptions(model: "m", maxTokens: 1)),
                        answer.instanceID == id
                    { return }
                    try await Task.sleep(for: .microseconds(200))
                }
            }
            func takesRequests(_ id: String) -> Bool { controlPlane.instances().contains { $0.instanceID == id && $0.isAvailable } }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await controlPlane.run() }
                defer { group.cancelAll() }
                while controlPlane.discoveryStatus().first?.lastSuccess == nil { try await Task.sleep(for: .milliseconds(1)) }
                var toFirstRequest: [Double] = []
                var toLastRequest: [Double] = []
                let rounds = 20
                for round in 0..<rounds {
                    let id = "engine-\(round)"
                    let lease = try await etcd.grant(seconds: 10)
                    let registered = ContinuousClock.now
                    try await etcd.put(key: prefix + id, value: entry(id), lease: lease)
                    try await firstRequest(to: id)
                    toFirstRequest.append((ContinuousClock.now - registered).seconds * 1000)
                    let revoked = ContinuousClock.now
                    try await etcd.revoke(lease: lease)
                    while takesRequests(id) { try await Task.sleep(for: .microseconds(200)) }
                    toLastRequest.append((ContinuousClock.now - revoked).seconds * 1000)
                }
                // Leases left to expire: from the end of the TTL (counted from the grant) to the
                // last request. etcd checks for expired leases every 500 ms.
                var afterExpiry: [Double] = []
                for round in 0..<5 {
                    let id = "expiring-\(round)"
                    let granted = ContinuousClock.now
                    let lease = try await etcd.grant(seconds: 2)
                    try await etcd.put(key: prefix + id, value: entry(id), lease: lease)
                    try await firstRequest(to: id)
                    while takesRequests(id) { try await Task.sleep(for: .milliseconds(1)) }
                    afterExpiry.append((ContinuousClock.now - (granted + .seconds(2))).seconds * 1000)
                }
                print("  \(rounds) instances registered and revoked one at a time, ms (p50 / p90 / max):")
                print("    put (registration) -> first request routed to it:  \(millisecondPercentile(toFirstRequest, 50, decimals: 1)) / \(millisecondPercentile(toFirstRequest, 90, decimals: 1)) / \(millisecondPercentile(toFirstRequest, 100, decimals: 1))")
                print("    lease revoked -> it takes no new requests:         \(millisecondPercentile(toLastRequest, 50, decimals: 1)) / \(millisecondPercentile(toLastRequest, 90, decimals: 1)) / \(millisecondPercentile(toLastRequest, 100, decimals: 1))")
                print("  5 leases of 2 s left to expire, ms after the TTL (p50 / max):")
                print("    lease TTL over -> it takes no new requests:        \(millisecondPercentile(afterExpiry, 50, decimals: 1)) / \(millisecondPercentile(afterExpiry, 100, decimals: 1))")
            }
            await etcd.shutdown()
            await controlPlane.shutdown()
        }
        print("")
    }
}
