import ArgumentParser
import Foundation
import SageControlPlane

/// `sagellm cluster simulate`: the control plane's real scheduler and routers over a
/// simulated fleet on a virtual clock, every policy side by side.
struct ClusterSimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Compare scheduling policies and routing strategies on a simulated fleet (virtual clock, no servers).",
        discussion: """
            Runs a discrete-event simulation of N instances (GENERAL, or PREFILL and DECODE with PD) \
            with heterogeneous speeds, batch slowdown, prefix caches, KV transfer cost by distance and \
            optional failures, under a mixed workload (priorities, SLOs, short and long prompts, \
            shared prefixes). The control plane's own scheduling and routing code makes every decision. \
            Each row is one policy x routing x PD combination over the same requests; FIFO with round \
            robin and FIFO with least loaded are the baselines.
            """)

    @Option(help: "Instances in the fleet.") var instances = 100
    @Option(help: "Mean arrivals per second.") var rate = 150.0
    @Option(help: "Seconds of arrivals.") var duration = 60.0
    @Option(help: "Policies: all, or a comma-separated list of fifo, priority, slo_aware, cost_optimized, adaptive.")
    var policies = "all"
    @Option(help: "Routing strategies: all, or a comma-separated list of load_balanced, round_robin, random, affinity, locality, topology_aware.")
    var routing = "load_balanced,locality,topology_aware"
    @Option(help: "Prefill/decode disaggregation: on, off or both.") var pd = "both"
    @Option(help: "Random seed (the same seed gives the same results).") var seed: UInt64 = 1
    @Option(help: "Gaps between arrivals: 1 is Poisson, above 1 bursty (gamma).") var burstiness = 1.0
    @Option(help: "Share of requests with a long prompt (1,500-4,000 tokens).") var longPromptShare = 0.3
    @Option(help: "Instances that fail at a third of the run and recover at two thirds.") var failures = 0
    @Option(help: "With PD: share of the PREFILL instances among those split (the rest DECODE).") var prefillShare = 0.3
    @Option(help: "With PD: share of the instances that stay GENERAL (a mixed fleet).") var generalShare = 0.0
    @Flag(help: "Print JSON: {\"scenario\": ..., \"results\": [...]}.") var json = false

    func run() async throws {
        try await reportingClusterErrors {
            var scenario = ClusterScenario(instances: instances, rate: rate, duration: duration, seed: seed)
            scenario.burstiness = burstiness
            scenario.longPromptShare = longPromptShare
            scenario.failures = failures
            scenario.prefillShare = prefillShare
            scenario.generalShare = generalShare
            let variants = SimulationVariant.matrix(
                policies: try Self.list(policies, field: "policies", all: SchedulingPolicy.allCases, parse: SchedulingPolicy.init(name:)),
                routings: try Self.list(routing, field: "routing", all: RoutingStrategy.allCases, parse: RoutingStrategy.init(name:)),
                pd: try Self.pdSettings(pd))
            let results = try ClusterSimulation.compare(scenario, variants)
            if json {
                print(try Terminal.json(Output(scenario: scenario, results: results)))
                return
            }
            print(
                "\(instances) instances, \(String(format1: rate, digits: 0)) req/s for \(String(format1: duration, digits: 0)) s (\(results.first?.requests ?? 0) requests), seed \(seed)\n")
            print(Self.table(results))
            if let verdict = Self.verdict(results) { print("\n" + verdict) }
        }
    }

    /// The configuration with the highest goodput by the field's definition (TTFT and TPOT
    /// targets met), against the two FIFO baselines of the same PD setting, and why it leads.
    static func verdict(_ results: [SimulationResult]) -> String? {
        guard let best = results.max(by: { $0.sloGoodputRPS < $1.sloGoodputRPS }) else { return nil }
        func name(_ result: SimulationResult) -> String { "\(result.policy) + \(result.routing), PD \(result.pd ? "on" : "off")" }
        func percent(_ value: Double?) -> String { value.map { String(format1: $0 * 100, digits: 1) + "%" } ?? "-" }
        var lines = ["best here: \(name(best)), \(String(format1: best.sloGoodputRPS, digits: 1)) good requests/s (TTFT and TPOT targets met)"]
        for routing in ["round_robin", "load_balanced"] {
            guard let baseline = results.first(where: { $0.baseline && $0.routing == routing && $0.pd == best.pd }), baseline.sloGoodputRPS > 0 else { continue }
            lines.append(
                "  \(String(format1: best.sloGoodputRPS / baseline.sloGoodputRPS, digits: 2))x fifo + \(routing) (\(String(format1: baseline.sloGoodputRPS, digits: 1))/s)")
        }
        if let other = results.filter({ $0.pd != best.pd }).max(by: { $0.sloGoodputRPS < $1.sloGoodputRPS }) {
            lines.append("  best with PD \(other.pd ? "on" : "off"): \(name(other)), \(String(format1: other.sloGoodputRPS, digits: 1))/s")
        }
        lines.append(
            "  why: TTFT met \(percent(best.ttftCompliance)), TPOT met \(percent(best.tpotCompliance)), shed \(percent(best.shedShare)), p99 TTFT \(best.p99TimeToFirstTokenMilliseconds.map { String(format1: $0, digits: 0) } ?? "-") ms")
        return lines.joined(separator: "\n")
    }

    struct Output: Encodable {
        let scenario: ClusterScenario
        let results: [SimulationResult]
    }

    static func table(_ results: [SimulationResult]) -> String {
        func number(_ value: Double?, _ digits: Int) -> String { value.map { String(format1: $0, digits: digits) } ?? "-" }
        func percent(_ value: Double?) -> String { value.map { String(format1: $0 * 100, digits: 1) + "%" } ?? "-" }
        var rows = [[
            "policy", "routing", "pd", "slo", "by priority C/H/N/L", "goodput/s", "ttft ok", "tpot ok", "good ttft+tpot/s", "shed", "p50 ms",
            "p99 ms", "p99 ttft", "p99 ttft long", "$/1k tok", "failed",
        ]]
        for result in results {
            rows.append([
                result.policy + (result.baseline ? " (baseline)" : ""), result.routing, result.pd ? "on" : "off", percent(result.sloCompliance),
                ["CRITICAL", "HIGH", "NORMAL", "LOW"].map { result.sloComplianceByPriority[$0].map { String(format1: $0 * 100, digits: 0) } ?? "-" }
                    .joined(separator: "/"),
                number(result.goodputRPS, 1), percent(result.ttftCompliance), percent(result.tpotCompliance), number(result.sloGoodputRPS, 1),
                percent(result.shedShare), number(result.p50LatencyMilliseconds, 0),
                number(result.p99LatencyMilliseconds, 0), number(result.p99TimeToFirstTokenMilliseconds, 0),
                number(result.p99LongPromptTimeToFirstTokenMilliseconds, 0), number(result.costPer1kTokens.map { $0 * 1000 }, 3) + "m",
                "\(result.failed)",
            ])
        }
        return ClusterTable.aligned(rows)
    }

    static func list<Value>(_ text: String, field: String, all: [Value], parse: (String) -> Value?) throws(ControlPlaneError) -> [Value] {
        if text.lowercased() == "all" { return all }
        var values: [Value] = []
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            guard let value = parse(name) else {
                throw ControlPlaneError(.invalidConfiguration, "unknown \(field) value '\(name)'", field: field)
            }
            values.append(value)
        }
        if values.isEmpty { throw ControlPlaneError(.invalidConfiguration, "--\(field) needs at least one value", field: field) }
        return values
    }

    static func pdSettings(_ text: String) throws(ControlPlaneError) -> [Bool] {
        switch text.lowercased() {
        case "on": [true]
        case "off": [false]
        case "both": [false, true]
        default: throw ControlPlaneError(.invalidConfiguration, "--pd must be on, off or both, got '\(text)'", field: "pd")
        }
    }
}
