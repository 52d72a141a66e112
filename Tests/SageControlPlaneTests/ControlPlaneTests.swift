import SageTesting
import SageControlPlane
import SageLLM
import SageSimulator
import Synchronization
import Testing

/// The control plane over 3 to 4 simulated engines of different speeds, on loopback.
@Suite("Control plane")
struct ControlPlaneTests {
    @Test func theOutputIsTheEnginesAndLoadSpreadsWithinLimits() async throws {
        try await withSimulators([engine(tbtMs: 1), engine(tbtMs: 3), engine(tbtMs: 6)]) { simulators in
            let cluster = try IntelligentLLMClient.createWithControlPlane(
                instances: specs(simulators, maxConcurrent: 2), schedulingPolicy: .fifo, routingStrategy: .loadBalanced)
            let direct = try await IntelligentLLMClient(baseURL: simulators[0].baseURL, model: "m")
                .use { try await $0.chat("question 1", options: ChatOptions(maxTokens: 8)) }
            let results = try await withThrowingTaskGroup(of: RoutedChatResult.self) { group in
                for index in 0..<18 {
                    group.addTask { try await cluster.routedChat([.user("question \(index % 3 + 1)")], options: ChatOptions(maxTokens: 8)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.count == 18)
            #expect(results.contains { $0.text == direct.text }, "the engine's real output, not a placeholder")
            #expect(results.allSatisfy { $0.result.usage?.completionTokens == 8 })
            for simulator in simulators {
                #expect(simulator.engine.statistics().peakRunning <= 2, "no instance exceeds its limit")
                #expect(simulator.engine.statistics().completed >= 1, "every instance got work")
            }
            let metrics = cluster.metrics()
            #expect(metrics.completedRequests == 18)
            #expect(metrics.activeRequests == 0)
            #expect(metrics.p50LatencyMilliseconds != nil)
            #expect(cluster.instances().allSatisfy { $0.activeRequests == 0 })
            await cluster.shutdown()
        }
    }

    @Test func loadCountersComeBackWhateverTheOutcome() async throws {
        var failing = engine(tbtMs: 1)
        failing.faults = FaultConfiguration(failStatus: 400, failFirst: 1000)
        try await withSimulators([engine(tbtMs: 5), failing]) { simulators in
            let cluster = try ControlPlaneClient(
                instances: specs(simulators, maxConcurrent: 4), schedulingPolicy: .fifo, routingStrategy: .roundRobin)
            // Failures (a 400 is not failed over), a stream stopped early, a cancelled request.
            for index in 0..<6 {
                _ = try? await cluster.chat("q\(index)", options: ChatOptions(maxTokens: 4))  // some fail on purpose
            }
            for _ in 0..<2 {  // round robin: one of the two lands on the failing instance
                do {
                    for try await _ in cluster.streamChat("stop early", options: ChatOptions(maxTokens: 50)) { break }
                } catch let error as ControlPlaneError {
                    #expect(error.code == .instanceFailed)
                }
            }
            let task = Task { try await cluster.chat("cancelled", options: ChatOptions(maxTokens: 200)) }
            try await Task.sleep(for: .milliseconds(30))
            task.cancel()
            _ = try? await task.value  // cancelled on purpose
            #expect(await eventually { cluster.instances().allSatisfy { $0.activeRequests == 0 } }, "\(cluster.instances().map(\.activeRequests))")
            #expect(cluster.metrics().failedRequests >= 1)
            await cluster.shutdown()
        }
    }

    @Test func underSaturationPriorityOrderIsKept() async throws {
        try await withSimulators([engine(tbtMs: 4)]) { simulators in
            let cluster = try ControlPlaneClient(
                instances: specs(simulators, maxConcurrent: 1), schedulingPolicy: .priority,
                configuration: SchedulerConfiguration(agingInterval: .seconds(60)))
            let order = Log()
            try await withThrowingTaskGroup(of: Void.self) { group in
                try await whileTheOnlySlotIsHeld(cluster) {
                    for (name, priority) in [("low", RequestPriority.low), ("normal", .normal), ("critical", .critical), ("high", .high)] {
                        let queued = cluster.metrics().queuedRequests
                        group.addTask {
                            _ = try await cluster.chat(name, options: ChatOptions(maxTokens: 2), placement: RequestPlacement(priority: priority))
                            order.append(name)
                        }
                        #expect(await eventually { cluster.metrics().queuedRequests == queued + 1 })
                    }
                }
                try await group.waitForAll()
            }
            #expect(order.items == ["critical", "high", "normal", "low"])
            await cluster.shutdown()
        }
    }

    /// Six requests of about 200 ms queue behind a held slot; the later three have tight
    /// deadlines. After the slot frees, FIFO ends them at about 800, 1,000 and 1,200 ms (all
    /// missed, however long queueing took); EDF at 200, 400 and 600 ms.
    static func deadlineCompliance(_ policy: SchedulingPolicy) async throws -> Double? {
        try await withSimulators([engine(tbtMs: 5)]) { simulators in
            let cluster = try ControlPlaneClient(
                instances: specs(simulators, maxConcurrent: 1), schedulingPolicy: policy,
                configuration: SchedulerConfiguration(shedsUnreachableDeadlines: false))
            try await withThrowingTaskGroup(of: Void.self) { group in
                try await whileTheOnlySlotIsHeld(cluster) {
                    for (index, deadline) in [4000, 4000, 4000, 700, 950, 1200].enumerated() {
                        let queued = cluster.metrics().queuedRequests
                        group.addTask {
                            _ = try await cluster.chat(
                                "r\(index)", options: ChatOptions(maxTokens: 40),
                                placement: RequestPlacement(priority: .normal, sloDeadlineMs: Double(deadline)))
                        }
                        #expect(await eventually { cluster.metrics().queuedRequests == queued + 1 })
                    }
                }
                try await group.waitForAll()
            }
            let compliance = cluster.metrics().sloComplianceRate
            await cluster.shutdown()
            return compliance
        }
    }

    @Test func earliestDeadlineFirstMeetsMoreDeadlinesThanFIFO() async throws {
        let fifo = try #require(try await Self.deadlineCompliance(.fifo))
        let edf = try #require(try await Self.deadlineCompliance(.sloAware))
        #expect(edf > fifo, "EDF \(edf) vs FIFO \(fifo)")
        #expect(edf == 1)
    }

    @Test func aQueuedRequestCanBeCancelled() async throws {
        try await withSimulators([engine(tbtMs: 5)]) { simulators in
            let cluster = try ControlPlaneClient(instances: specs(simulators, maxConcurrent: 1), schedulingPolicy: .fifo)
            let blocker = Task { try await cluster.chat("blocker", options: ChatOptions(maxTokens: 30)) }
            #expect(await eventually { cluster.metrics().activeRequests == 1 })
            let waiting = Task { try await cluster.chat("waits", options: ChatOptions(maxTokens: 2)) }
            #expect(await eventually { cluster.metrics().queuedRequests == 1 })
            waiting.cancel()
            let error = await controlPlaneError { _ = try await waiting.value }
            #expect(error?.code == .cancelled)
            #expect(cluster.metrics().queuedRequests == 0)
            _ = try await blocker.value
            #expect(simulators[0].ledger.total == 1, "the cancelled request never reached the engine")
            await cluster.shutdown()
        }
    }

    @Test func affinityIsStickyAndBoundedByLoad() async throws {
        try await withSimulators([engine(tbtMs: 1), engine(tbtMs: 1), engine(tbtMs: 1), engine(tbtMs: 1)]) { simulators in
            let cluster = try ControlPlaneClient(instances: specs(simulators, maxConcurrent: 4), routingStrategy: .affinity)
            var seen: [String: Set<String>] = [:]
            for user in ["alice", "bob", "carol"] {
                for _ in 0..<5 {
                    let result = try await cluster.routedChat(
                        [.user("hi")], options: ChatOptions(maxTokens: 2), placement: RequestPlacement(sessionKey: user))
                    seen[user, default: []].insert(result.instanceID)
                }
            }
            #expect(seen.values.allSatisfy { $0.count == 1 }, "sticky: \(seen)")
            // A burst from one user spills over instead of piling onto one instance.
            let burst = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<12 {
                    group.addTask {
                        try await cluster.routedChat(
                            [.user("burst")], options: ChatOptions(maxTokens: 20), placement: RequestPlacement(sessionKey: "alice")
                        ).instanceID
                    }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(burst.count > 1, "bounded by load")
            #expect(simulators.allSatisfy { $0.engine.statistics().peakRunning <= 4 })
            await cluster.shutdown()
        }
    }

    @Test func localitySendsRepeatedPrefixesToTheSameInstance() async throws {
        try await withSimulators([engine(tbtMs: 1), engine(tbtMs: 1), engine(tbtMs: 1)]) { simulators in
            let cluster = try ControlPlaneClient(instances: specs(simulators, maxConcurrent: 8), routingStrategy: .locality)
            let prefixes = ["You are a helpful assistant for the payroll department. " + String(repeating: "Policy text. ", count: 20),
                            "You translate legal documents from German into English. " + String(repeating: "Glossary. ", count: 20)]
            var placed: [Int: [String]] = [:]
            for round in 0..<6 {
                for (index, prefix) in prefixes.enumerated() {
                    let result = try await cluster.routedChat([.user(prefix + " Question \(round)?")], options: ChatOptions(maxTokens: 2))
                    placed[index, default: []].append(result.instanceID)
                }
            }
            for (index, instances) in placed {
                #expect(Set(instances.dropFirst()).count == 1, "prefix \(index) went to \(instances)")
            }
            await cluster.shutdown()
        }
    }

    @Test func theAdaptivePolicyReportsItsChoices() async throws {
        try await withSimulators([engine(tbtMs: 3)]) { simulators in
            let cluster = try ControlPlaneClient(instances: specs(simulators, maxConcurrent: 1))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await cluster.chat("blocker", options: ChatOptions(maxTokens: 20)) }
                #expect(await eventually { cluster.metrics().activeRequests == 1 })
                group.addTask {
                    _ = try await cluster.chat("urgent", options: ChatOptions(maxTokens: 2), placement: RequestPlacement(priority: .critical))
                }
                try await group.waitForAll()
            }
            let metrics = cluster.metrics()
            #expect(metrics.adaptivePolicyChoices["priority", default: 0] >= 1, "\(metrics.adaptivePolicyChoices)")
            #expect(metrics.adaptiveReason != nil)
            await cluster.shutdown()
        }
    }

    @Test func aDeadInstanceIsMarkedUnhealthyAndNoRequestIsLost() async throws {
        try await withRefusedLoopbackPort { deadPort in
        try await withSimulators([engine(tbtMs: 1), engine(tbtMs: 2)]) { simulators in
            var instances = specs(simulators, maxConcurrent: 4)
            instances.append(InstanceSpec(id: "dead", host: "127.0.0.1", port: deadPort, model: "m", maxConcurrentRequests: 4))
            let cluster = try ControlPlaneClient(
                instances: instances, schedulingPolicy: .fifo, routingStrategy: .roundRobin,
                monitoring: HealthMonitorConfiguration(
                    probeInterval: .milliseconds(50), probeTimeout: .milliseconds(500), unhealthyAfter: 2, healthyAfter: 1,
                    scrapeInterval: .milliseconds(100)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await cluster.run() }  // the control plane as a Service: its monitor probes and scrapes
                // Requests that land on the dead instance before it is marked fail over: none is lost.
                let results = try await withThrowingTaskGroup(of: RoutedChatResult.self) { inner in
                    for index in 0..<12 {
                        inner.addTask { try await cluster.routedChat([.user("r\(index)")], options: ChatOptions(maxTokens: 3)) }
                    }
                    return try await inner.reduce(into: []) { $0.append($1) }
                }
                #expect(results.count == 12)
                #expect(results.allSatisfy { $0.instanceID != "dead" })
                #expect(await eventually { cluster.instances().first { $0.instanceID == "dead" }?.isHealthy == false })
                let dead = cluster.instances().first { $0.instanceID == "dead" }
                #expect(dead?.healthReason.contains("probes failed") == true || dead?.healthReason.contains("circuit") == true)
                #expect(await eventually { cluster.instances().first { $0.instanceID == "i0" }?.engineRunning != nil }, "scraped /metrics")
                group.cancelAll()
            }
            await cluster.shutdown()
        }
        }
    }

    @Test func clearErrorsForUnservableRequests() async throws {
        try await withSimulators([engine(tbtMs: 1)]) { simulators in
            let cluster = try ControlPlaneClient(instances: specs(simulators, maxConcurrent: 1))
            let unknown = await controlPlaneError { _ = try await cluster.chat("hi", options: ChatOptions(model: "other")) }
            #expect(unknown?.code == .noInstance)
            #expect(unknown?.description.contains("no instance serves model 'other'") == true)
            cluster.drain("i0")
            let drained = await controlPlaneError { _ = try await cluster.chat("hi") }
            #expect(drained?.code == .noInstance)
            #expect(drained?.description.contains("i0 drained") == true)
            #expect(throws: ControlPlaneError.self) {
                try ControlPlaneClient(instances: [InstanceSpec(id: "x", baseURL: "ftp://nope", model: "m")])
            }
            await cluster.shutdown()
        }
    }
}

/// A list appended to from several tasks.
final class Log: Sendable {
    private let entries = Mutex<[String]>([])
    func append(_ entry: String) { entries.withLock { $0.append(entry) } }
    var items: [String] { entries.withLock { $0 } }
}

extension ControlPlaneTests {
    @Test func anEngineStoppedMidRunLosesItsTrafficAndNoRequestIsLost() async throws {
        try await withSimulators([engine(tbtMs: 1)]) { survivors in
            // The second engine runs only inside this scope; the cluster outlives it.
            let cluster = try await withSimulatorServer(configuration: engine(tbtMs: 1)) { doomed in
                let cluster = try ControlPlaneClient(
                    instances: [
                        InstanceSpec(id: "survivor", baseURL: survivors[0].baseURL, model: "m", maxConcurrentRequests: 4),
                        InstanceSpec(id: "doomed", baseURL: doomed.baseURL, model: "m", maxConcurrentRequests: 4),
                    ], schedulingPolicy: .fifo, routingStrategy: .roundRobin,
                    monitoring: HealthMonitorConfiguration(
                        probeInterval: .milliseconds(30), probeTimeout: .milliseconds(300), unhealthyAfter: 2, scrapeInterval: nil))
                for index in 0..<4 { _ = try await cluster.chat("before \(index)", options: ChatOptions(maxTokens: 2)) }
                #expect(doomed.engine.statistics().completed == 2, "round robin used both")
                return cluster
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await cluster.run() }
                for index in 0..<10 {
                    let routed = try await cluster.routedChat([.user("after \(index)")], options: ChatOptions(maxTokens: 2))
                    #expect(routed.instanceID == "survivor")
                }
                #expect(await eventually { cluster.instances().first { $0.instanceID == "doomed" }?.isHealthy == false })
                group.cancelAll()
            }
            #expect(cluster.metrics().failedRequests == 0, "every request that had not started was served elsewhere")
            await cluster.shutdown()
        }
    }
}
