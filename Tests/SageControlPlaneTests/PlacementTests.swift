import SageTesting
import SageControlPlane
import SageLLM
import SageSimulator
import Testing

@Suite("Control plane placement and admission")
struct PlacementTests {
    @Test func costOptimizedUsesTheCheapestInstanceThatHasRoom() async throws {
        try await withSimulators([engine(tbtMs: 1), engine(tbtMs: 1)]) { simulators in
            let instances = [
                InstanceSpec(id: "pricey", baseURL: simulators[0].baseURL, model: "m", maxConcurrentRequests: 2, costPerGPUHour: 9),
                InstanceSpec(id: "cheap", baseURL: simulators[1].baseURL, model: "m", maxConcurrentRequests: 2, costPerGPUHour: 1),
            ]
            let cluster = try ControlPlaneClient(instances: instances, schedulingPolicy: .costOptimized)
            for _ in 0..<4 {
                let routed = try await cluster.routedChat([.user("hi")], options: ChatOptions(maxTokens: 2))
                #expect(routed.instanceID == "cheap")
            }
            // When the cheap one is full, the next request still goes (to the pricey one) instead of waiting.
            let placed = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<4 { group.addTask { try await cluster.routedChat([.user("x")], options: ChatOptions(maxTokens: 30)).instanceID } }
                return try await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
            }
            #expect(placed["cheap"] ?? 0 >= 2)
            #expect(placed["pricey"] ?? 0 >= 1)
            await cluster.shutdown()
        }
    }

    /// The cheapest instance takes requests only while its load is below the cap (a quarter of
    /// its slots by default): cheap hardware is slow, and a full batch on it misses TPOT targets.
    @Test(arguments: [(cap: 0.25, expected: "pricey"), (cap: 1.0, expected: "cheap")])
    func costOptimizedFillsTheCheapestOnlyUpToItsLoadCap(cap: Double, expected: String) async throws {
        try await withSimulators([engine(tbtMs: 1), engine(tbtMs: 1)]) { simulators in
            let instances = [
                InstanceSpec(id: "pricey", baseURL: simulators[0].baseURL, model: "m", maxConcurrentRequests: 4, costPerGPUHour: 9),
                InstanceSpec(id: "cheap", baseURL: simulators[1].baseURL, model: "m", maxConcurrentRequests: 4, costPerGPUHour: 1),
            ]
            let cluster = try ControlPlaneClient(
                instances: instances, schedulingPolicy: .costOptimized, configuration: SchedulerConfiguration(costOptimizedLoadCap: cap))
            // A long request holds one of the cheap instance's four slots (cancelled at the end).
            let busy = Task { try await cluster.chat("busy", options: ChatOptions(maxTokens: 2_000)) }
            #expect(await eventually { cluster.instances().first { $0.instanceID == "cheap" }?.activeRequests == 1 })
            let routed = try await cluster.routedChat([.user("next")], options: ChatOptions(maxTokens: 2))
            #expect(routed.instanceID == expected)
            busy.cancel()
            _ = try? await busy.value  // cancelled on purpose
            await cluster.shutdown()
        }
        #expect(SchedulerConfiguration(costOptimizedLoadCap: .nan).costOptimizedLoadCap == 1)
        #expect(SchedulerConfiguration(costOptimizedLoadCap: -2).costOptimizedLoadCap == 0)
    }

    @Test func topologyAwarePrefersTheSameMachine() async throws {
        try await withSimulators([engine(tbtMs: 3), engine(tbtMs: 1), engine(tbtMs: 1)]) { simulators in
            let instances = [
                InstanceSpec(id: "a", baseURL: simulators[0].baseURL, model: "m", maxConcurrentRequests: 1,
                             topology: Topology(machineID: "node-1", rackID: "rack-1")),
                InstanceSpec(id: "b", baseURL: simulators[1].baseURL, model: "m", maxConcurrentRequests: 4,
                             topology: Topology(machineID: "node-1", rackID: "rack-1")),
                InstanceSpec(id: "c", baseURL: simulators[2].baseURL, model: "m", maxConcurrentRequests: 4,
                             topology: Topology(machineID: "node-9", rackID: "rack-9")),
            ]
            let cluster = try ControlPlaneClient(instances: instances, schedulingPolicy: .fifo, routingStrategy: .topologyAware)
            let near = RequestPlacement(preferredInstanceID: "a")
            let first = try await cluster.routedChat([.user("hi")], options: ChatOptions(maxTokens: 2), placement: near)
            #expect(first.instanceID == "a", "the preferred instance itself when it has room")
            // A long request keeps "a" full (it is cancelled once the others are placed).
            let busy = Task { try await cluster.chat("busy", options: ChatOptions(maxTokens: 2_000), placement: near) }
            #expect(await eventually { cluster.instances().first { $0.instanceID == "a" }?.activeRequests == 1 })
            for _ in 0..<4 {
                let routed = try await cluster.routedChat([.user("next")], options: ChatOptions(maxTokens: 2), placement: near)
                #expect(routed.instanceID == "b", "same machine before another rack")
            }
            busy.cancel()
            _ = try? await busy.value  // cancelled on purpose
            await cluster.shutdown()
        }
    }

    @Test func unreachableDeadlinesAreShedAndTheQueueIsBounded() async throws {
        try await withSimulators([engine(tbtMs: 5)]) { simulators in
            let cluster = try ControlPlaneClient(
                instances: specs(simulators, maxConcurrent: 1), schedulingPolicy: .sloAware,
                configuration: SchedulerConfiguration(maxQueueLength: 2, maxQueueWait: .milliseconds(150)))
            _ = try await cluster.chat("measure", options: ChatOptions(maxTokens: 20))  // ~100 ms: the instance's measured latency
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await cluster.chat("blocker", options: ChatOptions(maxTokens: 20)) }
                #expect(await eventually { cluster.metrics().activeRequests == 1 })
                let hopeless = await controlPlaneError {
                    _ = try await cluster.chat("hopeless", options: ChatOptions(maxTokens: 2), placement: RequestPlacement(sloDeadlineMs: 20))
                }
                #expect(hopeless?.code == .deadlineUnreachable, "\(hopeless.map { "\($0)" } ?? "served")")
                try await group.waitForAll()
            }
            // Two wait, a third is refused; the waiting ones time out after 150 ms behind a long request.
            try await withThrowingTaskGroup(of: ControlPlaneError?.self) { group in
                group.addTask { _ = try await cluster.chat("long", options: ChatOptions(maxTokens: 80)); return nil }
                #expect(await eventually { cluster.metrics().activeRequests == 1 })
                for index in 0..<2 {
                    group.addTask { await controlPlaneError { _ = try await cluster.chat("w\(index)", options: ChatOptions(maxTokens: 2)) } }
                }
                #expect(await eventually { cluster.metrics().queuedRequests == 2 })
                let refused = await controlPlaneError { _ = try await cluster.chat("third", options: ChatOptions(maxTokens: 2)) }
                #expect(refused?.code == .queueFull)
                let outcomes = try await group.reduce(into: [ControlPlaneError?]()) { $0.append($1) }
                #expect(outcomes.compactMap { $0?.code }.filter { $0 == .queueTimeout }.count == 2)
            }
            let rejected = cluster.metrics().rejected
            #expect(rejected["queue full"] == 1 && rejected["queue timeout"] == 2 && rejected["deadline unreachable"] == 1, "\(rejected)")
            await cluster.shutdown()
        }
    }
}
