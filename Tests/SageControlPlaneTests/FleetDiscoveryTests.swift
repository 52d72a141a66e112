import Foundation
import SageLLM
import SageSimulator
import SageTesting
import Synchronization
import Testing

@testable import SageControlPlane

/// A resolver whose answers the test sets: addresses, or a failure.
final class ScriptedResolver: HostResolving {
    private let answer = Mutex<Result<[String], ControlPlaneError>>(.success([]))
    private let lookups = Atomic<Int>(0)

    func set(_ addresses: [String]) { answer.withLock { $0 = .success(addresses) } }
    func fail(_ reason: String) { answer.withLock { $0 = .failure(ControlPlaneError(.invalidConfiguration, reason)) } }
    var lookupCount: Int { lookups.load(ordering: .relaxed) }

    func addresses(of host: String) async throws(ControlPlaneError) -> [String] {
        lookups.add(1, ordering: .relaxed)
        return try answer.withLock { $0 }.get()
    }
}

/// Instances discovered from a DNS name (a resolver the test scripts, and the system's own
/// for `localhost`): added when they appear, drained (their requests finish) when they
/// vanish, kept when the source cannot be read; the static list is never touched.
@Suite("Fleet discovery")
struct FleetDiscoveryTests {
    static func dns(port: Int, refresh: Duration = .milliseconds(100)) -> FleetSourceConfiguration {
        FleetSourceConfiguration(
            kind: .dns(host: "engines.test", port: port), template: InstanceTemplate(model: "m", maxConcurrentRequests: 4), refresh: refresh)
    }

    static func ids(_ controlPlane: ControlPlaneClient) -> Set<String> {
        Set(controlPlane.instances().filter { $0.healthReason != "removed" }.map(\.instanceID))
    }

    @Test func aDNSNameBecomesInstancesThatComeAndGoWithItsAddresses() async throws {
        try await withSimulators([engine(tbtMs: 20)]) { simulators in
            let port = simulators[0].port
            let resolver = ScriptedResolver()
            resolver.set(["127.0.0.1"])
            let controlPlane = try ControlPlaneClient(
                instances: [InstanceSpec(id: "static", baseURL: "http://127.0.0.1:9/v1", model: "other")], schedulingPolicy: .fifo,
                discovery: [Self.dns(port: port)], resolver: resolver)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await controlPlane.run() }
                defer { group.cancelAll() }
                let first = "127.0.0.1:\(port)"
                #expect(await eventually { Self.ids(controlPlane) == ["static", first] }, "\(Self.ids(controlPlane))")
                let answer = try await controlPlane.routedChat([.user("hi")], options: ChatOptions(model: "m", maxTokens: 3))
                #expect(answer.instanceID == first)

                // A stream in flight on the instance that vanishes runs to its end.
                var stream = controlPlane.routedStreamChat([.user("long")], options: ChatOptions(model: "m", maxTokens: 40)).makeAsyncIterator()
                let firstChunk = try await stream.next()
                #expect(firstChunk?.instanceID == first)
                resolver.set(["127.0.0.2"])
                let second = "127.0.0.2:\(port)"
                #expect(await eventually { controlPlane.instances().contains { $0.instanceID == second } })
                var chunks = 1
                while let chunk = try await stream.next() {
                    #expect(chunk.instanceID == first)
                    chunks += 1
                }
                #expect(chunks > 20, "the drained instance finished the stream (\(chunks) chunks)")
                #expect(await eventually { Self.ids(controlPlane) == ["static", second] }, "\(Self.ids(controlPlane))")
                #expect(await eventually { !controlPlane.instances().contains { $0.instanceID == first } }, "removed once idle")

                // The source fails: the last fleet stays, and the status says why.
                resolver.fail("no servers could be reached")
                let failedAt = resolver.lookupCount
                #expect(await eventually { resolver.lookupCount > failedAt + 1 })
                #expect(Self.ids(controlPlane) == ["static", second])
                let status = try #require(controlPlane.discoveryStatus().first)
                #expect(status.name == "dns engines.test:\(port)" && !status.isReachable && status.instances == 1)
                #expect(status.lastError?.contains("no servers could be reached") == true && status.failures >= 1)

                // It comes back with the first address again.
                resolver.set(["127.0.0.1"])
                #expect(await eventually { Self.ids(controlPlane) == ["static", first] }, "\(Self.ids(controlPlane))")
                #expect(controlPlane.discoveryStatus().first?.isReachable == true)
            }
        }
    }

    @Test func theSystemResolverFindsLocalhost() async throws {
        let addresses = try await SystemHostResolver().addresses(of: "localhost")
        #expect(addresses.contains("127.0.0.1") || addresses.contains("::1"), "\(addresses)")
        let missing = await controlPlaneError { _ = try await SystemHostResolver().addresses(of: "no-such-host.invalid") }
        #expect(missing?.message.contains("no-such-host.invalid") == true, "\(String(describing: missing))")
        let source = DNSFleetSource(host: "localhost", port: 8000, template: InstanceTemplate(model: "m"), interval: .seconds(1), resolver: SystemHostResolver())
        guard case .fleet(let fleet) = await source.read() else {
            Issue.record("localhost did not resolve")
            return
        }
        #expect(fleet.contains { $0.id == "127.0.0.1:8000" && $0.baseURL == "http://127.0.0.1:8000/v1" } || fleet.contains { $0.baseURL == "http://[::1]:8000/v1" })
    }

    /// An id the static list holds is not taken over; a reload of the cluster file keeps the
    /// discovered instances.
    @Test func discoveryAndTheClusterFileEachKeepTheirOwnInstances() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-discovery-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }  // cleanup only
        let path = directory.appendingPathComponent("cluster.yaml").path
        try """
        instances:
          - instance_id: 10.0.0.9:8000
            base_url: http://10.0.0.9:8000/v1
            model_name: m
        discovery:
          - dns: engines.test
            port: 8000
            model_name: m
            instance_type: DECODE
            refresh_seconds: 0.5
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try ClusterConfiguration.load(file: path)
        #expect(configuration.discovery.count == 1)
        #expect(configuration.discovery.first?.template.type == .decode)
        #expect(configuration.discovery.first?.refresh == .milliseconds(500))
        let controlPlane = try ControlPlaneClient(configuration: configuration, clusterFile: ClusterFileWatching(path: path))
        let discovery = try #require(controlPlane.discovery)
        let name = discovery.sources[0].name
        let template = configuration.discovery[0].template
        discovery.receive(
            .fleet([template.instance(id: "10.0.0.9:8000", address: "10.0.0.9", port: 8000), template.instance(id: "10.0.0.7:8000", address: "10.0.0.7", port: 8000)]),
            from: name, on: controlPlane)
        #expect(Self.ids(controlPlane) == ["10.0.0.9:8000", "10.0.0.7:8000"])
        #expect(controlPlane.instances().first { $0.instanceID == "10.0.0.9:8000" }?.type == .general, "the static one stays as it was")
        try await controlPlane.reloadClusterFile()
        #expect(Self.ids(controlPlane) == ["10.0.0.9:8000", "10.0.0.7:8000"], "a reload leaves the discovered instance")
        discovery.receive(.fleet([]), from: name, on: controlPlane)
        #expect(Self.ids(controlPlane) == ["10.0.0.9:8000"], "an empty fleet read successfully drains what it found")
        await controlPlane.shutdown()
    }

    @Test func badDiscoverySectionsNameTheKey() throws {
        for (yaml, key, words) in [
            ("discovery:\n  - dns: engines.test\n    model_name: m\n", "discovery[0].port", "port"),
            ("discovery:\n  - dns: engines.test\n    port: 8000\n", "discovery[0].model_name", "model_name"),
            ("discovery:\n  - port: 8000\n    model_name: m\n", "discovery[0].dns", "dns: NAME"),
            ("discovery:\n  - dns: engines.test\n    port: 70000\n    model_name: m\n", "discovery[0].port", "1-65535"),
            ("discovery:\n  - dns: engines.test\n    port: 80\n    model_name: m\n    refresh_seconds: 0\n", "discovery[0].refresh_seconds", "0.1-3600"),
            ("discovery: []\n", "instances", "no discovery sources"),
            ("discovery:\n  - etcd: http://127.0.0.1:2379\n", "discovery[0].prefix", "key prefix"),
            ("discovery:\n  - etcd: 127.0.0.1:2379\n    prefix: /p/\n", "discovery[0].etcd", "http(s) URL"),
            ("discovery:\n  - etcd: http://a:2379\n    dns: x\n    prefix: /p/\n", "discovery[0].dns", "dns and etcd"),
        ] {
            do {
                _ = try ClusterConfiguration.parse(yaml, file: "c.yaml")
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect(error.field == key && error.message.contains(words) && error.file == "c.yaml", "\(error)")
            }
        }
    }
}

/// Several gateways over one fleet share no store: each builds the same consistent-hashing
/// ring from the same instance ids, so a session goes to the same engine through any of them.
@Suite("Replica agreement")
struct ReplicaAgreementTests {
    @Test func threeControlPlanesSendEachSessionToTheSameInstance() throws {
        let fleet = (0..<12).map { InstanceSpec(id: "10.0.0.\($0):8000", baseURL: "http://10.0.0.\($0):8000/v1", model: "m", maxConcurrentRequests: 8) }
        let origin = ContinuousClock.now
        // Three replicas, each with the fleet discovered in its own order.
        var replicas = try [fleet, fleet.reversed(), fleet.shuffled()].map { order in
            var core = SchedulingCore(policy: .fifo, routing: [.whole: .affinity], configuration: SchedulerConfiguration(), origin: origin)
            _ = try core.add(order, now: origin)
            return core
        }
        var agreed = 0
        var used = Set<String>()
        for session in 0..<60 {
            var chosen: [String] = []
            for index in replicas.indices {
                let request = QueuedRequest(
                    id: UInt64(session), model: "m", placement: RequestPlacement(sessionKey: "user-\(session)"), arrival: origin, deadline: nil,
                    prefixBlocks: [], excluded: [], topologyAnchor: nil)
                guard case .leased(let lease) = replicas[index].admit(request, now: origin) else { continue }
                chosen.append(lease.instance.id)
                // Each replica's own load stays even: the lease ends at once.
                _ = replicas[index].release(lease, outcome: .cancelled, now: origin)
            }
            if chosen.count == 3 && Set(chosen).count == 1 { agreed += 1 }
            used.formUnion(chosen)
        }
        #expect(agreed == 60, "every session on one instance through all three replicas")
        #expect(used.count >= 8, "and the sessions spread over the fleet: \(used.count) of 12 used")
    }
}
