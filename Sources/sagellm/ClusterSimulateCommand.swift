import ArgumentParser
import Foundation
import SageBenchmark
import SageControlPlane

/// `sagellm cluster simulate`: the control plane's real scheduler and routers over a
/// simulated fleet on a virtual clock, every policy side by side.
struct ClusterSimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Compare scheduling policies and routing strategies on a simulated fleet (virtual clock, no servers).",
        discussion: """
            Runs a discrete-event simulation of N instances (GENERAL, or PREFILL and DECODE with PD) \
            with heterogeneous speeds, engine steps with a token budget (as vLLM schedules them), prefix caches, KV transfer cost by distance and \
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
    @Option(help: "Share of requests that start with one of 20 shared 512-token prefixes (prefix caches, locality).")
    var sharedPrefixShare = 0.5
    @Option(help: "Shares of CRITICAL,HIGH,NORMAL,LOW,BACKGROUND requests (any scale; each level has its own TTFT/TPOT targets).")
    var priorityMix = "0.05,0.15,0.5,0.2,0.1"
    @Option(help: "Instances that fail at a third of the run and recover at two thirds.") var failures = 0
    @Option(
        help: "With PD: share of the PREFILL instances among those split (the rest DECODE); a comma-separated list, or auto (0.2,0.3,0.4,0.5), runs each PD configuration with each split.")
    var prefillShare = "0.3"
    @Option(
        name: .customLong("prefill-backlog"),
        help: "With PD: requests waiting for PREFILL instances per prefill slot beyond which prefill-heavy requests run whole (none: always split).")
    var prefillBacklog = "none"
    @Option(help: "With PD: share of the instances that stay GENERAL (a mixed fleet).") var generalShare = 0.0
    @Flag(help: "Print JSON: {\"scenario\": ..., \"results\": [...]}.") var json = false
    @Option(help: "Also run at these multiples of --rate (e.g. 0.5,1,1.5,2) and show goodput against load.") var loads: String?
    @Option(help: "Write every result (each load, each configuration) as CSV to this file.") var csv: String?
    @Option(help: "Write goodput and TTFT/TPOT compliance against load per configuration as one HTML file of charts.") var html: String?

    func validate() throws {
        if let loads { _ = try Self.loadFactors(loads) }
        _ = try Self.prefillShares(prefillShare)
        _ = try Self.priorityShares(priorityMix)
    }

    /// `0.5,1,1.5,2`: 1 to 16 increasing multiples of the rate, each above 0 and at most 100.
    static func loadFactors(_ text: String) throws -> [Double] {
        let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.count <= 16, values.allSatisfy({ $0.map { $0 > 0 && $0 <= 100 } ?? false }) else {
            throw ValidationError("--loads takes 1 to 16 multiples of --rate, each above 0 and at most 100, such as 0.5,1,1.5,2; got '\(text)'")
        }
        let factors = values.compactMap { $0 }
        guard factors == factors.sorted(), Set(factors).count == factors.count else {
            throw ValidationError("--loads: give the multiples in increasing order, each once; got '\(text)'")
        }
        return factors
    }

    /// `0.3`, `0.2,0.4` or `auto`: the PREFILL shares to try, each within 0.05...0.95.
    static func prefillShares(_ text: String) throws -> [Double] {
        if text.lowercased() == "auto" { return [0.2, 0.3, 0.4, 0.5] }
        let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.count <= 16, values.allSatisfy({ $0.map { (0.05...0.95).contains($0) } ?? false }) else {
            throw ValidationError("--prefill-share takes 1 to 16 shares within 0.05...0.95 (such as 0.3 or 0.2,0.3,0.4), or auto; got '\(text)'")
        }
        return values.compactMap { $0 }
    }

    /// `on 30%` (PD with that PREFILL share) or `off`.
    static func pdLabel(_ result: SimulationResult) -> String {
        guard result.pd else { return "off" }
        return result.prefillShare.map { "on \(String(format1: $0 * 100, digits: 0))%" } ?? "on"
    }

    /// `0.05,0.15,0.5,0.2,0.1`: five numbers, CRITICAL to BACKGROUND (the scenario checks them).
    static func priorityShares(_ text: String) throws -> [Double] {
        let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == 5, values.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--priority-mix takes five comma-separated shares for CRITICAL,HIGH,NORMAL,LOW,BACKGROUND, such as 0.05,0.15,0.5,0.2,0.1; got '\(text)'")
        }
        return values.compactMap { $0 }
    }

    func run() async throws {
        try await reportingClusterErrors {
            var scenario = ClusterScenario(instances: instances, rate: rate, duration: duration, seed: seed)
            scenario.burstiness = burstiness
            scenario.longPromptShare = longPromptShare
            scenario.sharedPrefixShare = sharedPrefixShare
            scenario.priorityMix = try Self.priorityShares(priorityMix)
            scenario.failures = failures
            let shares = try Self.prefillShares(prefillShare)
            if shares.count == 1 { scenario.prefillShare = shares[0] }
            if prefillBacklog.lowercased() == "none" {
                scenario.maxPrefillBacklogPerSlot = nil
            } else {
                guard let backlog = Double(prefillBacklog), backlog >= 0, backlog.isFinite else {
                    throw ValidationError("--prefill-backlog must be a number of requests per slot (0 or more) or none, got \(prefillBacklog)")
                }
                scenario.maxPrefillBacklogPerSlot = backlog
            }
            scenario.generalShare = generalShare
            let variants = SimulationVariant.matrix(
                policies: try Self.list(policies, field: "policies", all: SchedulingPolicy.allCases, parse: SchedulingPolicy.init(name:)),
                routings: try Self.list(routing, field: "routing", all: RoutingStrategy.allCases, parse: RoutingStrategy.init(name:)),
                pd: try Self.pdSettings(pd), prefillShares: shares.count == 1 ? [nil] : shares)
            let factors = try loads.map { try Self.loadFactors($0) } ?? [1]
            var sweep: [(rate: Double, results: [SimulationResult])] = []
            for factor in factors {
                var point = scenario
                point.rate = rate * factor
                sweep.append((point.rate, try ClusterSimulation.compare(point, variants)))
            }
            if let csv { try Self.write(Self.csvText(sweep), to: csv) }
            if let html { try Self.write(Self.htmlText(sweep, scenario: scenario), to: html) }
            if loads != nil {
                if json {
                    print(try Terminal.json(LoadsOutput(scenario: scenario, loads: sweep.map { LoadsOutput.Point(rate: $0.rate, results: $0.results) })))
                } else {
                    print(Self.loadTable(sweep))
                }
                return
            }
            let results = sweep[0].results
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
        func name(_ result: SimulationResult) -> String { "\(result.policy) + \(result.routing), PD \(pdLabel(result))" }
        func percent(_ value: Double?) -> String { value.map { String(format1: $0 * 100, digits: 1) + "%" } ?? "-" }
        var lines = ["best here: \(name(best)), \(String(format1: best.sloGoodputRPS, digits: 1)) good requests/s (TTFT and TPOT targets met)"]
        for routing in ["round_robin", "load_balanced"] {
            guard let baseline = results.first(where: { $0.baseline && $0.routing == routing && $0.pd == best.pd && $0.prefillShare == best.prefillShare }), baseline.sloGoodputRPS > 0 else { continue }
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

    static func write(_ text: String, to path: String) throws {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw ControlPlaneError(.invalidConfiguration, "cannot write \(path): \(error.localizedDescription)", field: "output")
        }
    }

    static func name(_ result: SimulationResult) -> String {
        "\(result.policy)\(result.baseline ? " (baseline)" : "") + \(result.routing), PD \(pdLabel(result))"
    }

    /// Goodput (TTFT and TPOT targets met) per configuration at each load, and the best at each.
    static func loadTable(_ sweep: [(rate: Double, results: [SimulationResult])]) -> String {
        var rows = [["configuration"] + sweep.map { "\(String(format1: $0.rate, digits: 0)) req/s" }]
        for (index, result) in (sweep.first?.results ?? []).enumerated() {
            rows.append([name(result)] + sweep.map { point in index < point.results.count ? String(format1: point.results[index].sloGoodputRPS, digits: 1) : "-" })
        }
        var out = "good requests/s (TTFT and TPOT targets met) against offered load\n" + ClusterTable.aligned(rows)
        for point in sweep {
            if let best = point.results.max(by: { $0.sloGoodputRPS < $1.sloGoodputRPS }) {
                out += "\nat \(String(format1: point.rate, digits: 0)) req/s the best is \(name(best)): \(String(format1: best.sloGoodputRPS, digits: 1))/s"
            }
        }
        return out
    }

    /// One row per load and configuration, every figure of the result.
    static func csvText(_ sweep: [(rate: Double, results: [SimulationResult])]) -> String {
        let header = [
            "offered_rate", "policy", "routing", "pd", "prefill_share", "baseline", "requests", "completed", "failed", "slo_compliance", "goodput_rps",
            "ttft_slo_compliance", "tpot_slo_compliance", "slo_goodput_rps", "shed_share", "p50_latency_ms", "p99_latency_ms", "p50_ttft_ms",
            "p99_ttft_ms", "p99_ttft_long_prompt_ms", "p50_tpot_ms", "p99_tpot_ms", "cost_per_1k_tokens",
        ]
        func cell(_ value: Double?) -> String { value.map { String($0) } ?? "" }
        var lines = [header.joined(separator: ",")]
        for point in sweep {
            for r in point.results {
                lines.append(
                    [
                        String(point.rate), r.policy, r.routing, String(r.pd), cell(r.prefillShare), String(r.baseline), String(r.requests), String(r.completed),
                        String(r.failed), cell(r.sloCompliance), String(r.goodputRPS), cell(r.ttftCompliance), cell(r.tpotCompliance),
                        String(r.sloGoodputRPS), String(r.shedShare), cell(r.p50LatencyMilliseconds), cell(r.p99LatencyMilliseconds),
                        cell(r.p50TimeToFirstTokenMilliseconds), cell(r.p99TimeToFirstTokenMilliseconds),
                        cell(r.p99LongPromptTimeToFirstTokenMilliseconds), cell(r.p50TimePerOutputTokenMilliseconds),
                        cell(r.p99TimePerOutputTokenMilliseconds), cell(r.costPer1kTokens),
                    ].joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func htmlText(_ sweep: [(rate: Double, results: [SimulationResult])], scenario: ClusterScenario) -> String {
        let configurations = sweep.first?.results.map(name) ?? []
        func series(_ figure: (SimulationResult) -> Double?) -> [(name: String, points: [(x: Double, y: Double)])] {
            configurations.enumerated().map { index, configuration in
                (configuration, sweep.compactMap { point in
                    guard index < point.results.count, let value = figure(point.results[index]) else { return nil }
                    return (point.rate, value)
                })
            }
        }
        let charts = [
            LineChart(title: "Goodput against load", xAxis: "offered load (req/s)", yAxis: "good requests/s (TTFT and TPOT met)", series: series { $0.sloGoodputRPS }),
            LineChart(title: "TTFT targets met", xAxis: "offered load (req/s)", yAxis: "requests meeting TTFT (%)", series: series { $0.ttftCompliance.map { $0 * 100 } }),
            LineChart(title: "TPOT targets met", xAxis: "offered load (req/s)", yAxis: "requests meeting TPOT (%)", series: series { $0.tpotCompliance.map { $0 * 100 } }),
            LineChart(title: "Shed", xAxis: "offered load (req/s)", yAxis: "shed, refused or failed (%)", series: series { $0.shedShare * 100 }),
        ]
        var table = [["configuration"] + sweep.map { "\(String(format1: $0.rate, digits: 0)) req/s" }]
        for (index, configuration) in configurations.enumerated() {
            table.append([configuration] + sweep.map { index < $0.results.count ? String(format1: $0.results[index].sloGoodputRPS, digits: 1) : "-" })
        }
        return LineChartPage.render(
            title: "Cluster simulation: goodput against load",
            intro: "\(scenario.instances) instances, \(String(format1: scenario.duration, digits: 0)) s of arrivals per load, seed \(scenario.seed). Goodput counts the requests that met their TTFT and TPOT targets (DistServe's definition); the table gives it per configuration and load.",
            charts: charts, table: table)
    }

    /// `--loads` with `--json`: the results at each offered load.
    struct LoadsOutput: Encodable {
        struct Point: Encodable {
            let rate: Double
            let results: [SimulationResult]
        }
        let scenario: ClusterScenario
        let loads: [Point]
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
                result.policy + (result.baseline ? " (baseline)" : ""), result.routing, pdLabel(result), percent(result.sloCompliance),
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
