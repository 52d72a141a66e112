import Foundation
import Logging
import SageLLM
import SageSimulator
import SageTesting
import Synchronization
import Testing

@testable import SageControlPlane

/// etcd discovery and the registration sidecar against a real three-member etcd cluster on
/// loopback (skipped, saying why, where `etcd` is not installed; CI installs it).
@Suite("etcd discovery", .serialized, .enabled(if: EtcdTestCluster.binary != nil, "etcd is not installed (apt-get install etcd-server, or set ETCD_BINARY)"))
struct EtcdDiscoveryTests {
    static let quiet: Logger = {
        var logger = Logger(label: "sagellm.etcd.test")
        logger.logLevel = .critical
        return logger
    }()

    static func withCluster<Result: Sendable>(_ body: (EtcdTestCluster) async throws -> Result) async throws -> Result {
        let cluster = try await EtcdTestCluster.start(members: 3)
        defer { cluster.shutdown() }
        return try await body(cluster)
    }

    static func source(_ cluster: EtcdTestCluster, prefix: String) -> FleetSourceConfiguration {
        FleetSourceConfiguration(kind: .etcd(endpoints: cluster.clientURLs, prefix: prefix), template: InstanceTemplate(model: "any"))
    }

    /// An instance registered by the sidecar is routed to; one whose lease is not renewed
    /// goes within its TTL; one whose check fails goes at once, and comes back when it passes;
    /// a sidecar that stops deletes its key; a control plane started afresh finds the fleet.
    @Test func registeredInstancesAreRoutedToAndExpire() async throws {
        try await Self.withCluster { cluster in
            try await withSimulators([engine(tbtMs: 1)]) { simulators in
                let prefix = "/sagellm/test-\(UUID().uuidString)/"
                let instance = InstanceSpec(id: "engine-a", baseURL: simulators[0].baseURL, model: "m", maxConcurrentRequests: 4)
                let registered = Mutex<[Bool]>([])
                let sidecar = try EtcdRegistration(
                    endpoints: cluster.clientURLs, prefix: prefix, instance: instance, ttl: 3, logger: Self.quiet,
                    onChange: { value in registered.withLock { $0.append(value) } })
                let controlPlane = try ControlPlaneClient(
                    instances: [], schedulingPolicy: .fifo, discovery: [Self.source(cluster, prefix: prefix)], logger: Self.quiet)
                let etcd = try EtcdClient(endpoints: cluster.clientURLs, logger: Self.quiet)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let sidecarGroup = ServiceGroupRunner(sidecar)
                    group.addTask { try await controlPlane.run() }
                    group.addTask { try await sidecarGroup.run() }
                    defer { group.cancelAll() }
                    #expect(await eventually(timeout: .seconds(10)) { FleetDiscoveryTests.ids(controlPlane) == ["engine-a"] }, "\(FleetDiscoveryTests.ids(controlPlane))")
                    let answer = try await controlPlane.routedChat([.user("hi")], options: ChatOptions(model: "m", maxTokens: 3))
                    #expect(answer.instanceID == "engine-a")
                    let spec = try #require(controlPlane.instances().first { $0.instanceID == "engine-a" })
                    #expect(spec.baseURL == simulators[0].baseURL && spec.maxConcurrentRequests == 4)

                    // A key whose lease is never renewed disappears within its TTL.
                    let lease = try await etcd.grant(seconds: 2)
                    let other = InstanceSpec(id: "engine-b", baseURL: "http://127.0.0.1:9/v1", model: "m")
                    try await etcd.put(key: prefix + "engine-b", value: ClusterConfiguration.entryJSON(of: other), lease: lease)
                    #expect(await eventually(timeout: .seconds(5)) { FleetDiscoveryTests.ids(controlPlane) == ["engine-a", "engine-b"] })
                    #expect(await eventually(timeout: .seconds(8)) { FleetDiscoveryTests.ids(controlPlane) == ["engine-a"] }, "expired")

                    // A value that is not an instance entry is skipped; the rest stay.
                    try await etcd.put(key: prefix + "junk", value: "{not json", lease: nil)
                    try await etcd.put(key: prefix + "zz", value: ClusterConfiguration.entryJSON(of: InstanceSpec(id: "engine-z", baseURL: "http://127.0.0.1:9/v1", model: "m")), lease: nil)
                    #expect(await eventually { FleetDiscoveryTests.ids(controlPlane) == ["engine-a", "engine-z"] })
                    try await etcd.delete(key: prefix + "zz")
                    try await etcd.delete(key: prefix + "junk")
                    #expect(await eventually { FleetDiscoveryTests.ids(controlPlane) == ["engine-a"] })

                    // A restarted control plane (a gateway restart) rebuilds the fleet from etcd.
                    let restarted = try ControlPlaneClient(instances: [], schedulingPolicy: .fifo, discovery: [Self.source(cluster, prefix: prefix)])
                    group.addTask { try await restarted.run() }
                    #expect(await eventually(timeout: .seconds(5)) { FleetDiscoveryTests.ids(restarted) == ["engine-a"] })

                    // The sidecar stops: its key goes at once (revoked), not after the TTL.
                    let stopped = ContinuousClock.now
                    await sidecarGroup.stop()
                    #expect(await eventually(timeout: .seconds(5)) { FleetDiscoveryTests.ids(controlPlane).isEmpty })
                    #expect(ContinuousClock.now - stopped < .seconds(2), "deleted on exit, not expired")
                    #expect(registered.withLock { $0 } == [true, false])
                }
                await etcd.shutdown()
                await controlPlane.shutdown()
            }
        }
    }

    /// The sidecar takes the key away while its engine's check fails twice, and puts it back
    /// when it passes.
    @Test func theSidecarFollowsItsEngineHealth() async throws {
        try await Self.withCluster { cluster in
            let prefix = "/sagellm/test-\(UUID().uuidString)/"
            let healthy = Atomic<Bool>(true)
            let registration = try EtcdRegistration(
                endpoints: cluster.clientURLs, key: prefix + "e", value: #"{"instance_id":"e","base_url":"http://127.0.0.1:9/v1","model_name":"m"}"#,
                ttl: 3, logger: Self.quiet, check: { healthy.load(ordering: .relaxed) ? nil : "down" })
            let etcd = try EtcdClient(endpoints: cluster.clientURLs, logger: Self.quiet)
            func keys() async -> Int { (try? await etcd.range(prefix: prefix).pairs.count) ?? -1 }
            let runner = ServiceGroupRunner(registration)
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await runner.run() }  // its end is checked through etcd below
                defer { group.cancelAll() }
                #expect(await eventually(timeout: .seconds(5)) { await keys() == 1 })
                healthy.store(false, ordering: .relaxed)
                #expect(await eventually(timeout: .seconds(6)) { await keys() == 0 }, "deregistered while the check fails")
                healthy.store(true, ordering: .relaxed)
                #expect(await eventually(timeout: .seconds(6)) { await keys() == 1 }, "registered again")
                await runner.stop()
                #expect(await keys() == 0)
            }
            await etcd.shutdown()
        }
    }

    /// The member a watch is connected to dies: the watch moves to another member and resumes
    /// from the last revision it delivered, so changes made meanwhile arrive.
    @Test func aWatchSurvivesTheLossOfItsMember() async throws {
        try await Self.withCluster { cluster in
            let prefix = "/sagellm/test-\(UUID().uuidString)/"
            let writer = try EtcdClient(endpoints: Array(cluster.clientURLs.dropFirst()), logger: Self.quiet)
            func entry(_ id: String) -> String { ClusterConfiguration.entryJSON(of: InstanceSpec(id: id, baseURL: "http://127.0.0.1:9/v1", model: "m")) }
            try await writer.put(key: prefix + "a", value: entry("a"), lease: nil)
            let reports = SourceReports()
            let source = EtcdFleetSource(endpoints: cluster.clientURLs, prefix: prefix, logger: Self.quiet)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await source.run { reports.append($0) } }
                defer { group.cancelAll() }
                #expect(await eventually { reports.lastFleet == ["a"] })
                try await writer.put(key: prefix + "b", value: entry("b"), lease: nil)
                #expect(await eventually { reports.lastFleet == ["a", "b"] })
                cluster.kill(member: 0)  // the watch's member: the first endpoint
                // Changes while the watch reconnects: one put, one delete.
                try await writer.put(key: prefix + "c", value: entry("c"), lease: nil)
                try await writer.delete(key: prefix + "a")
                #expect(await eventually(timeout: .seconds(10)) { reports.lastFleet == ["b", "c"] }, "\(reports.all.suffix(3))")
                try await writer.put(key: prefix + "d", value: entry("d"), lease: nil)
                #expect(await eventually(timeout: .seconds(5)) { reports.lastFleet == ["b", "c", "d"] })
            }
            await writer.shutdown()
        }
    }

    /// With every member gone the source reports why and keeps retrying; the control plane
    /// keeps the last fleet.
    @Test func anUnreachableEtcdKeepsTheLastFleet() async throws {
        try await Self.withCluster { cluster in
            let prefix = "/sagellm/test-\(UUID().uuidString)/"
            let writer = try EtcdClient(endpoints: cluster.clientURLs, logger: Self.quiet)
            try await writer.put(
                key: prefix + "a", value: ClusterConfiguration.entryJSON(of: InstanceSpec(id: "a", baseURL: "http://127.0.0.1:9/v1", model: "m")), lease: nil)
            await writer.shutdown()
            let controlPlane = try ControlPlaneClient(
                instances: [], schedulingPolicy: .fifo, monitoring: HealthMonitorConfiguration(scrapeInterval: nil),
                discovery: [Self.source(cluster, prefix: prefix)])
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await controlPlane.run() }
                defer { group.cancelAll() }
                #expect(await eventually(timeout: .seconds(5)) { FleetDiscoveryTests.ids(controlPlane) == ["a"] })
                for member in cluster.clientURLs.indices { cluster.kill(member: member) }
                #expect(await eventually(timeout: .seconds(10)) { controlPlane.discoveryStatus().first?.isReachable == false })
                let status = try #require(controlPlane.discoveryStatus().first)
                #expect(status.instances == 1 && status.name == "etcd \(prefix)")
                #expect(status.lastError?.contains("127.0.0.1") == true, "names the endpoints: \(status.lastError ?? "")")
                #expect(FleetDiscoveryTests.ids(controlPlane) == ["a"], "the last fleet stays")
            }
            await controlPlane.shutdown()
        }
    }
}

/// The etcd pieces that need no server.
@Suite("etcd wire")
struct EtcdWireTests {
    @Test func prefixEndsAndNumbers() throws {
        #expect(EtcdClient.prefixEnd("/a/") == "/a0")
        #expect(EtcdClient.prefixEnd("") == "\0")
        let response = try JSONDecoder().decode(EtcdWire.LeaseResponse.self, from: Data(#"{"ID":"7587883","TTL":10}"#.utf8))
        #expect(response.id?.value == 7_587_883 && response.ttl?.value == 10)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(EtcdWire.LeaseResponse.self, from: Data(#"{"ID":"1e99"}"#.utf8)) }
    }

    @Test func entriesReadOnceAndBadOnesAreSkipped() {
        var entries = EtcdInstanceEntries(logger: EtcdDiscoveryTests.quiet)
        let good = ClusterConfiguration.entryJSON(of: InstanceSpec(id: "x", baseURL: "http://h:1/v1", model: "m", type: .decode))
        let fleet = entries.fleet(of: ["/p/1": good, "/p/2": "[]", "/p/3": good, "/p/4": #"{"instance_id":"y","model_name":"m"}"#])
        #expect(fleet.map(\.id) == ["x"], "the duplicate id counts once; entries without a URL are skipped")
        #expect(fleet.first?.type == .decode)
    }
}
