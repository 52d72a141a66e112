import SageControlPlane
import SageLLM
import SageTesting
import Testing

/// Gateway replicas share engines: with ``SchedulerConfiguration/countsOtherClients`` an
/// instance's load includes what its engine runs for other clients (from its `/metrics`), so
/// a replica sends new requests where the engines are really free.
@Suite("Shared engine load")
struct SharedEngineLoadTests {
    static func run(countingOthers: Bool) async throws -> (chosen: [String], others: Int) {
        try await withSimulators([engine(tbtMs: 20), engine(tbtMs: 0)]) { simulators in
            let specs = specs(simulators, maxConcurrent: 4)
            // Another replica, which only knows the first engine, keeps three long streams on it.
            let other = try ControlPlaneClient(instances: [specs[0]], schedulingPolicy: .fifo)
            var streams: [AsyncThrowingStream<RoutedChunk, any Error>.AsyncIterator] = []
            for _ in 0..<3 {
                var stream = other.routedStreamChat([.user("long")], options: ChatOptions(model: "m", maxTokens: 400)).makeAsyncIterator()
                _ = try await stream.next()
                streams.append(stream)
            }
            var scheduler = SchedulerConfiguration()
            scheduler.countsOtherClients = countingOthers
            let controlPlane = try ControlPlaneClient(
                instances: specs, schedulingPolicy: .fifo, routingStrategy: .loadBalanced, configuration: scheduler,
                monitoring: HealthMonitorConfiguration(probeInterval: .seconds(5), scrapeInterval: .milliseconds(50)))
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await controlPlane.run() }
                defer { group.cancelAll() }
                #expect(await eventually { controlPlane.metrics().instances.first { $0.instanceID == "i0" }?.engineRunning == 3 })
                var chosen: [String] = []
                for _ in 0..<4 {
                    chosen.append(try await controlPlane.routedChat([.user("hi")], options: ChatOptions(model: "m", maxTokens: 2)).instanceID)
                }
                let others = controlPlane.metrics().instances.first { $0.instanceID == "i0" }?.otherClientsRequests ?? -1
                withExtendedLifetime(streams) {}
                await other.shutdown()
                await controlPlane.shutdown()
                return (chosen, others)
            }
        }
    }

    @Test func anotherReplicasRequestsCountAsLoad() async throws {
        let counted = try await Self.run(countingOthers: true)
        #expect(counted.others == 3)
        #expect(counted.chosen == ["i1", "i1", "i1", "i1"], "the engine busy with the other replica's streams is passed over")
        let alone = try await Self.run(countingOthers: false)
        #expect(alone.others == 0)
        #expect(alone.chosen.contains("i0"), "without counting them, both engines look idle: \(alone.chosen)")
    }
}
