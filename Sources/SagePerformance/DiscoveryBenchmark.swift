import Foundation
import SageControlPlane
import SageLLM
import SageSimulator
import SageTesting

extension SagePerformance {
    /// How fast the fleet follows Kubernetes: a control plane watches a fake API server on
    /// loopback; an endpoint is added by a watch event and the time to its first routed
    /// request is taken, then it is deleted and the time until it takes no more requests.
    static func discoveryBenchmark() async throws {
        print("Discovery (Kubernetes watch on a fake API server, 127.0.0.1)")
        let rounds = 30
        let configuration = SimulatedEngineConfiguration(model: "m", ttft: .zero, tbt: .zero, prefillTokensPerSecond: 0, jitter: 0)
        try await withSimulatorServer(configuration: configuration) { simulator in
            try await FakeKubernetesAPI.with { api, url in
                let source = FleetSourceConfiguration(
                    kind: .kubernetes(
                        access: KubernetesAccess(apiServer: url), namespace: "bench", selection: .endpointSlices(service: "vllm", portName: nil),
                        port: simulator.port),
                    template: InstanceTemplate(model: "m"))
                let controlPlane = try ControlPlaneClient(instances: [], schedulingPolicy: .fifo, discovery: [source])
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await controlPlane.run() }
                    defer { group.cancelAll() }
                    while api.openWatches == 0 { try await Task.sleep(for: .milliseconds(1)) }
                    var toFirstRequest: [Double] = []
                    var toLastRequest: [Double] = []
                    for round in 0..<rounds {
                        let pod = "pod-\(round)"
                        let added = ContinuousClock.now
                        api.send(#"{"type":"ADDED","object":{"metadata":{"name":"s-\#(round)","uid":"u-\#(round)","resourceVersion":"\#(10 + 2 * round)"},"endpoints":[{"addresses":["127.0.0.1"],"conditions":{"ready":true},"targetRef":{"name":"\#(pod)"}}],"ports":[{"port":\#(simulator.port)}]}}"#)
                        // The first request that the control plane routes to the new instance (one that
                        // goes elsewhere, or fails while the instance joins, is simply sent again).
                        while true {
                            if let answer = try? await controlPlane.routedChat([.user("hi")], options: ChatOptions(model: "m", maxTokens: 1)),
                                answer.instanceID == pod
                            { break }
                            try await Task.sleep(for: .microseconds(200))
                        }
                        toFirstRequest.append((ContinuousClock.now - added).seconds * 1000)
                        let deleted = ContinuousClock.now
                        api.send(#"{"type":"DELETED","object":{"metadata":{"name":"s-\#(round)","uid":"u-\#(round)","resourceVersion":"\#(11 + 2 * round)"}}}"#)
                        // Until it takes no new request: drained (then removed once idle).
                        while controlPlane.instances().contains(where: { $0.instanceID == pod && $0.isAvailable }) {
                            try await Task.sleep(for: .microseconds(200))
                        }
                        toLastRequest.append((ContinuousClock.now - deleted).seconds * 1000)
                    }
                    print("  \(rounds) endpoints added and deleted one at a time, ms (p50 / p90 / max):")
                    print("    watch event ADDED -> first request routed to it:   \(millisecondPercentile(toFirstRequest, 50)) / \(millisecondPercentile(toFirstRequest, 90)) / \(millisecondPercentile(toFirstRequest, 100))")
                    print("    watch event DELETED -> it takes no new requests:   \(millisecondPercentile(toLastRequest, 50)) / \(millisecondPercentile(toLastRequest, 90)) / \(millisecondPercentile(toLastRequest, 100))")
                }
                await controlPlane.shutdown()
            }
        }
        print("")
    }

    /// The `p`th percentile of `values` (nearest rank), as text with `decimals` digits.
    static func millisecondPercentile(_ values: [Double], _ p: Int, decimals: Int = 2) -> String {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return "-" }
        return String(format: "%.\(decimals)f", sorted[min(sorted.count - 1, sorted.count * p / 100)])
    }
}
