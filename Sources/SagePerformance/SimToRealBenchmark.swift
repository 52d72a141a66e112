import Foundation
import SageControlPlane
import SageLLM
import SageSimulator
import Synchronization

extension SagePerformance {
    /// The cluster simulation checked against the real thing: one scenario run through the
    /// `ClusterSimulation` and through a real `ControlPlaneClient` over simulated engines on
    /// loopback (HTTP, streaming), the engines stepped with the same model and speeds as the
    /// simulation's instances. Both sides count with the same `SimulationOutcomes`.
    ///
    /// `SIM_TO_REAL_RATE` and `SIM_TO_REAL_DURATION` change the load and the arrival window;
    /// `SIM_TO_REAL_SIM_ONLY=1` runs only the simulation (to choose a load).
    static func simToRealBenchmark() async throws {
        let environment = ProcessInfo.processInfo.environment
        var scenario = simToRealScenario()
        if let rate = environment["SIM_TO_REAL_RATE"].flatMap(Double.init), rate > 0, rate <= 200 { scenario.rate = rate }
        if let duration = environment["SIM_TO_REAL_DURATION"].flatMap(Double.init), duration > 0, duration <= 3_600 { scenario.duration = duration }
        let simulationOnly = environment["SIM_TO_REAL_SIM_ONLY"] == "1"
        print("Sim-to-real: the cluster simulation against the real control plane over \(scenario.instances) simulated engines")
        print(
            "  \(scenario.instances) instances, \(fmt3(scenario.rate)) req/s for \(fmt3(scenario.duration)) s (seed \(scenario.seed)), long-prompt share \(scenario.longPromptShare), outputs \(scenario.outputTokens), steps at half the reference hardware's speed"
        )
        print("    policy     | pd  | side | done | shed  | p50 TTFT ms | p99 TTFT ms | p50 TPOT ms | p99 TPOT ms | TTFT ok | TPOT ok | goodput/s")
        for disaggregated in [false, true] {
            for policy in [SchedulingPolicy.fifo, .priority, .sloAware] {
                let variant = SimulationVariant(policy: policy, routing: .loadBalanced, disaggregated: disaggregated)
                let simulated = try ClusterSimulation.run(scenario, variant)
                let real = simulationOnly ? nil : try await realRun(scenario, variant)
                for (side, result) in [("sim", simulated)] + (real.map { [("real", $0)] } ?? []) {
                    print(
                        "    \(pad(policy.rawValue, 10)) | \(pad(disaggregated ? "on" : "off", 3)) | \(pad(side, 4)) | \(pad(String(result.completed), 4)) | \(pad(percent(result.shedShare), 5)) | \(pad(ms(result.p50TimeToFirstTokenMilliseconds), 11)) | \(pad(ms(result.p99TimeToFirstTokenMilliseconds), 11)) | \(pad(ms(result.p50TimePerOutputTokenMilliseconds), 11)) | \(pad(ms(result.p99TimePerOutputTokenMilliseconds), 11)) | \(pad(percent(result.ttftCompliance), 7)) | \(pad(percent(result.tpotCompliance), 7)) | \(String(format: "%.2f", result.sloGoodputRPS))"
                    )
                }
                guard let real else { continue }
                print(
                    "    \(pad("", 10)) |     | diff |      |       | \(pad(gap(simulated.p50TimeToFirstTokenMilliseconds, real.p50TimeToFirstTokenMilliseconds), 11)) | \(pad(gap(simulated.p99TimeToFirstTokenMilliseconds, real.p99TimeToFirstTokenMilliseconds), 11)) | \(pad(gap(simulated.p50TimePerOutputTokenMilliseconds, real.p50TimePerOutputTokenMilliseconds), 11)) | \(pad(gap(simulated.p99TimePerOutputTokenMilliseconds, real.p99TimePerOutputTokenMilliseconds), 11)) | \(pad(gap(simulated.ttftCompliance, real.ttftCompliance), 7)) | \(pad(gap(simulated.tpotCompliance, real.tpotCompliance), 7)) | \(gap(simulated.sloGoodputRPS, real.sloGoodputRPS))"
                )
            }
        }
        print("")
    }

    /// Small enough for two cores: 16 instances at half the reference hardware's speed (the
    /// engines' timers then dwarf the machine's scheduling noise), outputs of 20-120 tokens,
    /// no shared prefixes (the two prefix caches are modelled differently), the same link
    /// everywhere (the engines know one transfer speed), SLO targets doubled with the step times.
    static func simToRealScenario() -> ClusterScenario {
        var scenario = ClusterScenario(instances: 16, rate: 24, duration: 90, seed: 11)
        scenario.instancesPerMachine = 4
        scenario.longPromptShare = 0.4
        scenario.outputTokens = 20...120
        scenario.sharedPrefixShare = 0
        scenario.hardware = scenario.hardware.map {
            var slower = $0
            slower.prefillTokensPerSecond /= 2
            slower.secondsPerOutputToken *= 2
            slower.secondsPerDecodeSequence *= 2
            return slower
        }
        scenario.ttftSLOSeconds = scenario.ttftSLOSeconds.map { $0 * 2 }
        scenario.tpotSLOSeconds = scenario.tpotSLOSeconds.map { $0 * 2 }
        for keyPath in [\ClusterScenario.bandwidthNVLink, \.bandwidthMachine, \.bandwidthRack, \.bandwidthRemote] {
            scenario[keyPath: keyPath] = 25e9
        }
        return scenario
    }

    /// The scenario's workload sent through a real control plane to simulated engines that
    /// step like the simulation's instances, on the scenario's arrival times (open loop).
    static func realRun(_ scenario: ClusterScenario, _ variant: SimulationVariant) async throws -> SimulationResult {
        let fleet = scenario.fleet(disaggregated: variant.disaggregated)
        let configurations = try fleet.map { member in
            let hardware = scenario.hardware[member.hardwareIndex]
            var configuration = SimulatedEngineConfiguration(
                model: "m", ttft: .zero, tbt: .zero, prefillTokensPerSecond: hardware.prefillTokensPerSecond, jitter: 0,
                maxBatch: member.spec.maxConcurrentRequests, maxContext: 8_192, prefixCaching: false)
            configuration.steps = BatchSteps(
                stepTime: .seconds(hardware.secondsPerOutputToken), timePerDecodeSequence: .seconds(hardware.secondsPerDecodeSequence),
                maxBatchedTokens: scenario.maxBatchedTokens)
            configuration.role = member.spec.type == .prefill ? .prefill : (member.spec.type == .decode ? .decode : .general)
            configuration.kvBytesPerToken = Int(scenario.kvBytesPerToken)
            configuration.kvTransferBytesPerSecond = scenario.bandwidthMachine
            try configuration.validate()
            return configuration
        }
        let workload = SimulationWorkload.generate(scenario)
        return try await withSimulatorServers(configurations: configurations) { servers in
            var specs: [InstanceSpec] = []
            for (member, server) in zip(fleet, servers) {
                var spec = member.spec
                spec.baseURL = server.baseURL
                specs.append(spec)
            }
            // As the simulation: the variant's routing on both sides of a split except decode's
            // least loaded, and a queue that never refuses.
            let cluster = try ControlPlaneClient(
                instances: specs, schedulingPolicy: variant.policy, routingStrategy: variant.routing,
                enablePDSeparation: variant.disaggregated, disaggregation: DisaggregationConfiguration(prefillRouting: nil),
                configuration: SchedulerConfiguration(maxQueueLength: 1_000_000))
            let recorder = RealRunRecorder()
            let started = recorder.started
            await withTaskGroup(of: Void.self) { group in
                for request in workload {
                    // Only cancellation ends this sleep early; the run then just stops sending.
                    guard (try? await Task.sleep(until: started + .seconds(request.arrival), clock: .continuous)) != nil else { break }
                    group.addTask {
                        // Three-letter words with their space: one token and four bytes each, so
                        // the control plane's byte estimate is the token count; the chat template adds 7.
                        let words = max(1, request.promptTokens - SimulatedTokenizer.tokensPerMessage - SimulatedTokenizer.generationPromptTokens)
                        let prompt = String(repeating: " the", count: words)
                        let options = ChatOptions(model: "m", maxTokens: request.outputTokens)
                        let placement = RequestPlacement(
                            priority: request.priority, sloDeadline: request.slo.map { .seconds($0) },
                            firstTokenTarget: request.ttftSLO.map { .seconds($0) }, timePerTokenTarget: request.tpotSLO.map { .seconds($0) })
                        var firstToken: Double?
                        var path = ExecutionPath.direct.name
                        do {
                            for try await routed in cluster.routedStreamChat([.user(prompt)], options: options, placement: placement) {
                                if firstToken == nil, routed.chunk.choices.contains(where: { !($0.delta.content ?? "").isEmpty }) {
                                    firstToken = recorder.seconds()
                                }
                                path = routed.path.name
                            }
                            recorder.completed(request, firstToken: firstToken, path: path)
                        } catch {
                            let code = (error as? ControlPlaneError)?.code.description ?? "failed"
                            recorder.failed(request, reason: code)
                        }
                    }
                }
            }
            await cluster.shutdown()
            let (summary, paths) = recorder.state.withLock { ($0.outcomes, $0.paths) }
            return summary.result(
                variant: variant, requests: workload.count, arrivalWindow: scenario.duration, cost: 0, paths: paths,
                wallTime: ContinuousClock.now - started)
        }
    }

    private static func percent(_ share: Double?) -> String { share.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }

    private static func ms(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }

    /// The real side against the simulated one, in percent of the simulated.
    private static func gap(_ simulated: Double?, _ real: Double?) -> String {
        guard let simulated, let real, simulated != 0 else { return "-" }
        return String(format: "%+.1f%%", (real - simulated) / simulated * 100)
    }
}

/// What a real run saw, recorded from the request tasks, in seconds from its start.
private final class RealRunRecorder: Sendable {
    struct State {
        var outcomes = SimulationOutcomes()
        var paths: [String: Int] = [:]
    }
    let state = Mutex(State())
    let started = ContinuousClock.now

    func seconds() -> Double { (ContinuousClock.now - started) / .seconds(1) }

    func completed(_ request: SimulatedRequest, firstToken: Double?, path: String) {
        let now = seconds()
        state.withLock {
            $0.outcomes.completed(request, timeToFirstToken: (firstToken ?? now) - request.arrival, now: now)
            $0.paths[path, default: 0] += 1
        }
    }

    func failed(_ request: SimulatedRequest, reason: String) {
        let now = seconds()
        state.withLock { $0.outcomes.failed(request, reason: reason, now: now) }
    }
}
