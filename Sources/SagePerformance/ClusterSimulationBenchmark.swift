import SageControlPlane

extension SagePerformance {
    /// The cluster simulation's speed: 1,000 instances and about 100,000 requests per run must
    /// simulate in under 5 s.
    static func clusterSimulationBenchmark() throws {
        print("Cluster simulation")
        let scenario = ClusterScenario(instances: 1_000, rate: 1_700, duration: 60, seed: 1)
        print("  1,000 instances, 1,700 req/s for 60 s of arrivals (seed 1); wall time of each run:")
        print("    policy          | routing        | pd  | requests | simulated s | wall s")
        for variant in [
            SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: false),
            SimulationVariant(policy: .sloAware, routing: .locality, disaggregated: false),
            SimulationVariant(policy: .priority, routing: .affinity, disaggregated: false),
            SimulationVariant(policy: .costOptimized, routing: .loadBalanced, disaggregated: true),
            SimulationVariant(policy: .sloAware, routing: .locality, disaggregated: true),
            SimulationVariant(policy: .adaptive, routing: .topologyAware, disaggregated: true),
        ] {
            let result = try ClusterSimulation.run(scenario, variant)
            print(
                "    \(pad(result.policy, 15)) | \(pad(result.routing, 14)) | \(pad(result.pd ? "on" : "off", 3)) | \(pad(String(result.requests), 8)) | \(pad(fmt3(result.simulatedSeconds), 11)) | \(fmt3(result.wallSeconds))"
            )
        }
        print("")
    }
}
