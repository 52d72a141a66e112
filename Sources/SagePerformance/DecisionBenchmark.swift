import SageControlPlane

/// Times the scheduling and routing decision alone (admission, routing, counting, release)
/// for the benchmark program, without any network.
enum DecisionBenchmark {
    /// One decision per iteration over `instanceCount` instances with free slots; returns each
    /// acquire-and-release time.
    static func run(
        instanceCount: Int, policy: SchedulingPolicy, routing: RoutingStrategy, iterations: Int
    ) async throws -> [Duration] {
        let scheduler = Scheduler(
            policy: policy, routing: routing, configuration: SchedulerConfiguration(), metrics: ControlPlaneMetrics())
        for index in 0..<instanceCount {
            try scheduler.add(
                InstanceSpec(
                    id: "i\(index)", baseURL: "http://10.0.\(index / 250).\(index % 250):8000/v1", model: "m",
                    maxConcurrentRequests: 64, costPerGPUHour: Double(1 + index % 7),
                    topology: Topology(machineID: "node-\(index / 8)", rackID: "rack-\(index / 64)")))
        }
        var timings: [Duration] = []
        timings.reserveCapacity(iterations)
        let prompt = PrefixBlocks.of(String(repeating: "You are a helpful assistant. ", count: 20))
        for iteration in 0..<iterations {
            let request = QueuedRequest(
                id: UInt64(iteration), model: "m",
                placement: RequestPlacement(priority: .normal, sessionKey: "user-\(iteration % 100)", preferredInstanceID: "i\(iteration % instanceCount)"),
                arrival: .now, deadline: nil, prefixBlocks: prompt, expectedOutputTokens: 16, excluded: [], topologyAnchor: nil)
            let started = ContinuousClock.now
            let lease = try await scheduler.acquire(request)
            scheduler.release(lease, outcome: .cancelled)
            timings.append(ContinuousClock.now - started)
        }
        return timings
    }
}
