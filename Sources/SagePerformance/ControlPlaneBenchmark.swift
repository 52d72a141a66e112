import Foundation
import SageControlPlane
import SageLLM
import SageSimulator

extension SagePerformance {
    /// The control plane's own cost: the decision per request with 1,000 instances, and the
    /// latency it adds over calling an instance directly.
    static func controlPlaneBenchmark() async throws {
        print("Control plane")
        print("  Decision (admission + routing + counting + release), 1,000 instances, 20,000 requests:")
        print("    policy          | routing        | median µs | p99 µs")
        for (policy, routing) in [
            (SchedulingPolicy.fifo, RoutingStrategy.loadBalanced), (.adaptive, .loadBalanced), (.fifo, .roundRobin),
            (.fifo, .affinity), (.fifo, .locality), (.fifo, .topologyAware), (.costOptimized, .loadBalanced),
        ] {
            _ = try await DecisionBenchmark.run(instanceCount: 1000, policy: policy, routing: routing, iterations: 2_000)
            let timings = try await DecisionBenchmark.run(instanceCount: 1000, policy: policy, routing: routing, iterations: 20_000)
            let micros = timings.map { $0.seconds * 1e6 }.sorted()
            print("    \(pad(policy.rawValue, 15)) | \(pad(routing.rawValue, 14)) | \(pad(fmt3(micros[micros.count / 2]), 9)) | \(fmt3(micros[micros.count * 99 / 100]))")
        }
        try await addedLatency()
        print("")
    }

    /// The `fifo` + `load_balanced` decision alone, for a long time (to profile it).
    static func decisionAlone() async throws {
        let timings = try await DecisionBenchmark.run(instanceCount: 1000, policy: .fifo, routing: .loadBalanced, iterations: 2_000_000)
        let micros = timings.map { $0.seconds * 1e6 }.sorted()
        print("  Decision, fifo + load_balanced, 1,000 instances, 2,000,000 requests: median \(fmt3(micros[micros.count / 2])) µs")
    }

    static func addedLatency() async throws {
        try await withSimulatorServer(configuration: .instant(model: "cp")) { simulator in
            let direct = try IntelligentLLMClient(
                configuration: LLMClientConfiguration(
                    baseURL: simulator.baseURL, model: "cp", resilience: ResilienceConfiguration(retry: .none)))
            let cluster = try ControlPlaneClient(
                instances: [InstanceSpec(id: "only", baseURL: simulator.baseURL, model: "cp", maxConcurrentRequests: 64)],
                schedulingPolicy: .adaptive, routingStrategy: .loadBalanced)
            let options = ChatOptions(model: "cp", maxTokens: 4)
            var directTimes: [Double] = []
            var clusterTimes: [Double] = []
            for round in 0..<6_000 {
                // Alternate which goes first; the first 1,000 rounds warm up.
                for viaCluster in round.isMultiple(of: 2) ? [false, true] : [true, false] {
                    let started = ContinuousClock.now
                    if viaCluster {
                        _ = try await cluster.chat("latency probe", options: options)
                    } else {
                        _ = try await direct.chat("latency probe", options: options)
                    }
                    let elapsed = (ContinuousClock.now - started).seconds * 1e6
                    if round >= 1_000 {
                        if viaCluster { clusterTimes.append(elapsed) } else { directTimes.append(elapsed) }
                    }
                }
            }
            directTimes.sort()
            clusterTimes.sort()
            let p50Direct = directTimes[directTimes.count / 2]
            let p50Cluster = clusterTimes[clusterTimes.count / 2]
            print("  Added latency over calling the instance directly, sequential non-streamed chat, simulator TTFT = TBT = 0, 5,000 each:")
            print("    direct p50 \(fmt3(p50Direct)) µs, through the control plane p50 \(fmt3(p50Cluster)) µs: added \(fmt3(p50Cluster - p50Direct)) µs at p50")
            print("    p99: direct \(fmt3(directTimes[directTimes.count * 99 / 100])) µs, control plane \(fmt3(clusterTimes[clusterTimes.count * 99 / 100])) µs")
            try await direct.shutdown()
            await cluster.shutdown()
        }
    }
}
