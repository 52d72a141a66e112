import SageTesting
import Foundation
import SageLLM
import SageSimulator
import Testing

@testable import SageControlPlane

@Suite("Cluster files")
struct ClusterConfigurationTests {
    static func file(_ text: String) throws -> String {
        let path = TestFiles.path("cluster", suffix: ".yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theSeedsArgumentsInSnakeCase() throws {
        let path = try Self.file(
            """
            scheduling_policy: slo_aware
            routing_strategy: topology_aware
            enable_pd_separation: false
            pd:
              min_prompt_tokens: 2000
              min_input_output_ratio: 8
              max_prefill_backlog_per_slot: 1.5
              fallback_to_direct: false
              prefill_routing: affinity
              topology_pairing: false
            instances:
              - instance_id: p0
                host: 10.0.0.5
                port: 8000
                model_name: qwen
                instance_type: PREFILLING
                gpu_count: 2
                max_concurrent_requests: 16
                cost_per_gpu_hour: 2.5
                machine_id: node-1
                rack_id: rack-a
                numa_node: 0
                nvlink_peers: [d0]
              - instance_id: d0
                base_url: http://10.0.0.6:8000/v1
                model_name: qwen
                instance_type: decoding
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }  // cleanup only
        let configuration = try ClusterConfiguration.load(file: path)
        #expect(configuration.schedulingPolicy == .sloAware)
        #expect(configuration.routingStrategy == .topologyAware)
        #expect(!configuration.enablePDSeparation)
        let pd = configuration.disaggregation
        #expect(pd.minimumPromptTokens == 2000 && pd.minimumInputOutputRatio == 8 && !pd.fallbackToDirect && !pd.topologyPairing)
        #expect(pd.prefillRouting == .affinity && pd.decodeRouting == .loadBalanced && pd.conditional && pd.bytesPerToken == 4)
        #expect(pd.maxPrefillBacklogPerSlot == 1.5)
        #expect(configuration.instances.map(\.id) == ["p0", "d0"])
        let prefill = configuration.instances[0]
        #expect(prefill.baseURL == "http://10.0.0.5:8000/v1")
        #expect(prefill.type == .prefill && configuration.instances[1].type == .decode)
        #expect(prefill.gpuCount == 2 && prefill.maxConcurrentRequests == 16 && prefill.costPerGPUHour == 2.5)
        #expect(prefill.topology == Topology(machineID: "node-1", rackID: "rack-a", numaNode: 0, nvlinkPeers: ["d0"]))
    }

    @Test(arguments: [
        ("instances: []\n", "lists no instances"),
        ("scheduling_policy: fastest\ninstances:\n  - {instance_id: a, host: h, port: 1, model_name: m}\n", "unknown scheduling policy 'fastest'"),
        ("instances:\n  - {instance_id: a, model_name: m}\n", "needs base_url, or host and port"),
        ("instances:\n  - {instance_id: a, host: h, port: 1, model_name: m, max_concurrent_requests: 0}\n", "max_concurrent_requests must be at least 1"),
        ("instances:\n  - {instance_id: a, host: h, port: 1, model_name: m}\n  - {instance_id: a, host: h, port: 2, model_name: m}\n", "used twice"),
        ("instances:\n  - {instance_id: a, host: h, port: eighty, model_name: m}\n", "instances[0].port"),
        ("instances: [\n", "not valid"),
        ("pd: {decode_routing: nearest}\ninstances:\n  - {instance_id: a, host: h, port: 1, model_name: m}\n", "unknown routing strategy 'nearest'"),
        ("pd: {bytes_per_token: 0}\ninstances:\n  - {instance_id: a, host: h, port: 1, model_name: m}\n", "pd.bytes_per_token"),
        ("pd: {max_prefill_backlog_per_slot: -1}\ninstances:\n  - {instance_id: a, host: h, port: 1, model_name: m}\n", "pd.max_prefill_backlog_per_slot"),
    ])
    func badFilesAreClearErrors(text: String, expected: String) throws {
        let path = try Self.file(text)
        defer { try? FileManager.default.removeItem(atPath: path) }  // cleanup only
        let error = #expect(throws: ControlPlaneError.self) { try ClusterConfiguration.load(file: path) }
        #expect(error?.description.contains(expected) == true, "\(error.map { "\($0)" } ?? "")")
        #expect(error?.file == path)
    }

    @Test func applyingAChangedFileAddsRemovesAndReplaces() async throws {
        try await withSimulators([engine(tbtMs: 1), engine(tbtMs: 1)]) { simulators in
            let first = ClusterConfiguration(
                schedulingPolicy: .fifo,
                instances: [InstanceSpec(id: "a", baseURL: simulators[0].baseURL, model: "m", maxConcurrentRequests: 2)])
            let cluster = try ControlPlaneClient(configuration: first)
            _ = try await cluster.chat("hi", options: ChatOptions(maxTokens: 2))
            let second = ClusterConfiguration(
                schedulingPolicy: .fifo,
                instances: [InstanceSpec(id: "b", baseURL: simulators[1].baseURL, model: "m", maxConcurrentRequests: 2)])
            let changes = try cluster.apply(second)
            #expect(changes.added == ["b"] && changes.removed == ["a"])
            #expect(cluster.instances().map(\.instanceID) == ["b"])
            let routed = try await cluster.routedChat([.user("hi")], options: ChatOptions(maxTokens: 2))
            #expect(routed.instanceID == "b")
            #expect(cluster.clients.retiredCount == 0, "the removed instance's idle client was shut down")
            await cluster.shutdown()
        }
    }

    /// A replaced instance's client keeps serving the stream it has, and is shut down (its
    /// connections closed) when that stream ends, not when something lets go of it.
    @Test func aReplacedClientIsShutDownAfterItsLastRequest() async throws {
        try await withSimulators([engine(tbtMs: 5)]) { simulators in
            let spec = InstanceSpec(id: "a", baseURL: simulators[0].baseURL, model: "m", maxConcurrentRequests: 2)
            let cluster = try ControlPlaneClient(configuration: ClusterConfiguration(schedulingPolicy: .fifo, instances: [spec]))
            var iterator = cluster.streamChat("hi", options: ChatOptions(maxTokens: 20)).makeAsyncIterator()
            _ = try await iterator.next()  // the stream holds the first client
            let old = try #require(cluster.clients.current("a"))
            var changed = spec
            changed.maxConcurrentRequests = 3
            let changes = try cluster.apply(ClusterConfiguration(schedulingPolicy: .fifo, instances: [changed]))
            #expect(changes.changed == ["a"])
            #expect(cluster.clients.retiredCount == 1, "retired, still serving")
            #expect(cluster.clients.current("a") !== old)
            var chunks = 1
            while try await iterator.next() != nil { chunks += 1 }
            #expect(chunks > 2, "the stream ran to its end on the old client")
            #expect(cluster.clients.retiredCount == 0, "shut down after its last request")
            _ = try await cluster.chat("again", options: ChatOptions(maxTokens: 2))
            await cluster.shutdown()
        }
    }
}

extension ClusterConfigurationTests {
    @Test func theWatcherReloadsAChangedFileAndKeepsRunningOnABrokenOne() async throws {
        try await withSimulators([engine(tbtMs: 1), engine(tbtMs: 1)]) { simulators in
            func yaml(_ ids: [Int]) -> String {
                "scheduling_policy: fifo\ninstances:\n" + ids.map { "  - {instance_id: e\($0), base_url: \"\(simulators[$0].baseURL)\", model_name: m}\n" }.joined()
            }
            let path = try Self.file(yaml([0]))
            defer { try? FileManager.default.removeItem(atPath: path) }  // cleanup only
            let cluster = try ControlPlaneClient(
                configuration: try ClusterConfiguration.load(file: path),
                clusterFile: ClusterFileWatching(path: path, interval: .milliseconds(20)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await cluster.run() }  // the control plane as a Service: its watcher reloads the file
                try await Task.sleep(for: .milliseconds(100))  // a later modification time than the first read
                try yaml([0, 1]).write(toFile: path, atomically: true, encoding: .utf8)
                #expect(await eventually { cluster.instances().map(\.instanceID) == ["e0", "e1"] })
                try await Task.sleep(for: .milliseconds(100))
                try "instances: [\n".write(toFile: path, atomically: true, encoding: .utf8)
                try await Task.sleep(for: .milliseconds(200))
                #expect(cluster.instances().map(\.instanceID) == ["e0", "e1"], "a broken file changes nothing")
                group.cancelAll()
            }
            await cluster.shutdown()
        }
    }

    @Test func portsOutsideTheRangeAndBombsAreErrorsNotCrashes() throws {
        for instance in [
            "{instance_id: a, base_url: \"http://127.0.0.1:99999/v1\", model_name: m}",
            "{instance_id: a, host: 127.0.0.1, port: 99999, model_name: m}",
            "{instance_id: a, host: 127.0.0.1, port: -1, model_name: m}",
            "{instance_id: a, base_url: \"http://user:pw@127.0.0.1:8000/v1\", model_name: m}",
        ] {
            let path = try Self.file("instances:\n  - \(instance)\n")
            #expect(throws: ControlPlaneError.self, "\(instance)") { _ = try ClusterConfiguration.load(file: path) }
            do {
                _ = try ClusterConfiguration.load(file: path)
            } catch {
                #expect(!"\(error)".contains(":pw@"), "user info is not repeated")
            }
        }
        var bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            bomb += "l\(level): &l\(level) [" + Array(repeating: level == 1 ? "*a" : "*l\(level - 1)", count: 9).joined(separator: ", ") + "]\n"
        }
        let started = ContinuousClock.now
        let bombPath = try Self.file(bomb + "instances:\n  - {instance_id: a, base_url: \"http://127.0.0.1:1/v1\", model_name: m}\n")
        #expect(throws: ControlPlaneError.self) { _ = try ClusterConfiguration.load(file: bombPath) }
        #expect(ContinuousClock.now - started < .seconds(5))
        // 40,000 keys: read (or refused) in well under the 17 s a quadratic reader took.
        let flat = (0..<40_000).map { "k\($0): \($0)" }.joined(separator: "\n")
        let flatPath = try Self.file(flat + "\ninstances:\n  - {instance_id: a, base_url: \"http://127.0.0.1:1/v1\", model_name: m}\n")
        let flatStarted = ContinuousClock.now
        _ = try? ClusterConfiguration.load(file: flatPath)
        #expect(ContinuousClock.now - flatStarted < .seconds(5))
        let secretPath = try Self.file("instances:\n  - {instance_id: a, api_key: \"sk-cluster-secret-1111, model_name: m}\n")
        do {
            _ = try ClusterConfiguration.load(file: secretPath)
            Issue.record("a broken file loaded")
        } catch {
            #expect(!"\(error)".contains("sk-cluster-secret"), "\(error)")
        }
    }
}
