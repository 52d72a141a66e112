import SageControlPlane

extension SagePerformance {
    /// The cluster simulation's speed: 1,000 instances and about 100,000 requests per run must
    /// simulate in under 5 s, at the fleet's capacity and far beyond it.
    static func clusterSimulationBenchmark() throws {
        print("Cluster simulation")
        print("  1,000 instances, 1,700 req/s for 60 s of arrivals (seed 1); wall time of each run:")
        print("    policy          | routing        | pd  | requests | simulated s | wall s")
        try timeRuns(
            ClusterScenario(instances: 1_000, rate: 1_700, duration: 60, seed: 1),
            [
                SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: false),
                SimulationVariant(policy: .sloAware, routing: .locality, disaggregated: false),
                SimulationVariant(policy: .priority, routing: .affinity, disaggregated: false),
                SimulationVariant(policy: .costOptimized, routing: .loadBalanced, disaggregated: true),
                SimulationVariant(policy: .sloAware, routing: .locality, disaggregated: true),
                SimulationVariant(policy: .adaptive, routing: .topologyAware, disaggregated: true),
            ])
        // The issue's own command, `sagellm cluster simulate --instances 1000 --rate 5000
        // --duration 20`: 2.5 times the fleet's capacity, where queues grow long.
        print("  1,000 instances, 5,000 req/s for 20 s of arrivals (2.5x capacity, seed 1):")
        try timeRuns(
            ClusterScenario(instances: 1_000, rate: 5_000, duration: 20, seed: 1),
            [
                SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: true),
                SimulationVariant(policy: .sloAware, routing: .loadBalanced, disaggregated: true),
                SimulationVariant(policy: .sloAware, routing: .locality, disaggregated: false),
            ])
        print("")
    }

    /// Runs each variant on its own and prints a row with its wall time.
    private static func timeRuns(_ scenario: ClusterScenario, _ variants: [SimulationVariant]) throws {
        for variant in variants {
            let result = try ClusterSimulation.run(scenario, variant)
            print(
                "    \(pad(result.policy, 15)) | \(pad(result.routing, 14)) | \(pad(result.pd ? "on" : "off", 3)) | \(pad(String(result.requests), 8)) | \(pad(fmt3(result.simulatedSeconds), 11)) | \(fmt3(result.wallSeconds))"
            )
        }
    }
}
