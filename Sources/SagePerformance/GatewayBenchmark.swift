import Foundation
import SageBenchmark
import SageLLM
import SageSimulator

extension SagePerformance {
    /// The gateway's own cost: `sagellm serve` (built beside this program) in its own process
    /// over one simulated engine (TTFT = TBT = 0) in this process, against the same engine
    /// called directly, at 1 and 64 concurrent, whole requests and the first chunk of streams.
    /// Rounds alternate direct and through the gateway.
    static func gatewayBenchmark(duration: Duration) async throws {
        print("Gateway (sagellm serve in its own process; simulator TTFT = TBT = 0 and the client in this process)")
        let sagellm = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sagellm").path
        var engine = SimulatedEngineConfiguration.instant(model: "gw")
        engine.maxBatch = 1024
        try await withSimulatorServer(configuration: engine) { simulator in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-perf-gateway-\(getpid()).yaml").path
            try """
            scheduling_policy: fifo
            routing_strategy: load_balanced
            instances:
              - instance_id: only
                base_url: \(simulator.baseURL)
                model_name: gw
                max_concurrent_requests: 1024
            """.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let port = try await withSimulatorServer { $0.port }  // free a moment ago
            let server = try await ManagedServer.start(
                [sagellm, "serve", "--config", file, "--port", String(port)], root: "http://127.0.0.1:\(port)", startupTimeout: .seconds(30))
            let transport = TransportConfiguration(maximumConnectionsPerHost: 64)
            let direct = try IntelligentLLMClient(
                configuration: LLMClientConfiguration(baseURL: simulator.baseURL, model: "gw", transport: transport, resilience: ResilienceConfiguration(retry: .none)))
            let viaGateway = try IntelligentLLMClient(
                configuration: LLMClientConfiguration(baseURL: server.baseURL, model: "gw", transport: transport, resilience: ResilienceConfiguration(retry: .none)))
            let options = ChatOptions(model: "gw", maxTokens: 4)
            for (concurrency, streamed) in [(1, false), (1, true), (64, false), (64, true)] {
                var samples: [Bool: [Double]] = [false: [], true: []]
                var gatewayRequests = 0
                var gatewayCPU = 0.0
                var gatewayWall = Duration.zero
                for round in 0..<4 {
                    let throughGateway = round % 2 == 1
                    let client = throughGateway ? viaGateway : direct
                    let cpuBefore = processCPUSeconds(server.pid)
                    let started = ContinuousClock.now
                    let latencies = try await concurrentLatencies(concurrency: concurrency, duration: duration) {
                        let begun = ContinuousClock.now
                        if streamed {
                            for try await chunk in client.streamChat("gateway probe", options: options) where !chunk.contentDelta.isEmpty {
                                return (ContinuousClock.now - begun).seconds * 1e6  // the first chunk
                            }
                            return (ContinuousClock.now - begun).seconds * 1e6
                        }
                        _ = try await client.chat("gateway probe", options: options)
                        return (ContinuousClock.now - begun).seconds * 1e6
                    }
                    if throughGateway {
                        gatewayWall += ContinuousClock.now - started
                        gatewayCPU += processCPUSeconds(server.pid) - cpuBefore
                        gatewayRequests += latencies.count
                    }
                    samples[throughGateway, default: []] += latencies
                }
                let directTimes = (samples[false] ?? []).sorted()
                let gatewayTimes = (samples[true] ?? []).sorted()
                guard !directTimes.isEmpty, !gatewayTimes.isEmpty else { continue }
                func percentile(_ values: [Double], _ p: Int) -> Double { values[min(values.count - 1, values.count * p / 100)] }
                let what = (streamed ? "streamed, first chunk" : "whole, 4 tokens") + ", concurrency \(concurrency)"
                print("  \(what): direct p50 \(fmt3(percentile(directTimes, 50))) µs p99 \(fmt3(percentile(directTimes, 99))) µs; through the gateway p50 \(fmt3(percentile(gatewayTimes, 50))) µs p99 \(fmt3(percentile(gatewayTimes, 99))) µs")
                print("    added: p50 \(fmt3(percentile(gatewayTimes, 50) - percentile(directTimes, 50))) µs, p99 \(fmt3(percentile(gatewayTimes, 99) - percentile(directTimes, 99))) µs")
                let seconds = max(gatewayWall.seconds, 1e-9)
                print("    through the gateway: \(Int((Double(gatewayRequests) / seconds).rounded())) req/s; gateway process CPU per request \(fmt3(gatewayCPU / Double(max(gatewayRequests, 1)) * 1e6)) µs")
            }
            try await direct.shutdown()
            try await viaGateway.shutdown()
            await server.stop()
        }
        print("")
    }

    /// Runs `body` from `concurrency` tasks until `duration` passes; each call's figure, in order of completion.
    static func concurrentLatencies(concurrency: Int, duration: Duration, _ body: @escaping @Sendable () async throws -> Double) async throws
        -> [Double]
    {
        let end = ContinuousClock.now + duration
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var figures: [Double] = []
                    while ContinuousClock.now < end { figures.append(try await body()) }
                    return figures
                }
            }
            var all: [Double] = []
            for try await figures in group { all += figures }
            return all
        }
    }

    /// A process's CPU time (user and system) from `/proc/PID/stat`; 0 when unreadable.
    static func processCPUSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let afterName = stat.range(of: ") ")
        else { return 0 }
        let fields = stat[afterName.upperBound...].split(separator: " ")
        // Fields 14 and 15 of the file (utime, stime) are 12 and 13 after the name.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
