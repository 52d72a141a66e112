import Foundation
import SageLLM

/// A whole benchmark: each workload run in turn against one client, the metrics of each,
/// the contracts checked, and the report that `run` writes.
public struct BenchmarkSession: Sendable {
    public var client: any BenchmarkBackend
    public var workloads: [Workload]
    public var seed: UInt64
    public var timeout: Duration
    public var goodput: GoodputSLO?
    public var contracts: [Contract]
    public var prompts: PromptFactory
    public var progress: (@Sendable (RunProgress) -> Void)?

    public init(
        client: any BenchmarkBackend, workloads: [Workload], seed: UInt64 = 0, timeout: Duration = .seconds(600),
        goodput: GoodputSLO? = nil, contracts: [Contract] = [.year1], prompts: PromptFactory = PromptFactory(),
        progress: (@Sendable (RunProgress) -> Void)? = nil
    ) {
        self.client = client
        self.workloads = workloads
        self.seed = seed
        self.timeout = timeout
        self.goodput = goodput
        self.contracts = contracts
        self.prompts = prompts
        self.progress = progress
    }

    /// Runs every workload and returns the report (metrics, verdicts, every request).
    public func run() async throws(BenchmarkError) -> BenchmarkReport {
        // Calibrate synthetic prompt lengths with the server's tokenizer when it has one.
        let calibrated = workloads.contains { $0.prompts == nil } ? await client.calibratedPrompts() : nil
        let prompts = calibrated ?? self.prompts
        var runs: [[String: JSONValue]] = []
        var metrics: [RunMetrics] = []
        var requests: [String: [BenchmarkResult]] = [:]
        for workload in workloads {
            var perWorkload: (@Sendable (RunProgress) -> Void)?
            if let progress {
                let name = workload.name
                perWorkload = { state in
                    var named = state
                    named.workload = name
                    progress(named)
                }
            }
            let runner = LoadRunner(client: client, seed: seed, timeout: timeout, prompts: prompts, progress: perWorkload)
            let outcome = try await runner.run(workload)
            let measured = RunMetrics(outcome, backend: client.backendName, model: client.modelName, goodput: goodput)
            metrics.append(measured)
            runs.append(Dictionary(uniqueKeysWithValues: measured.entries.map { ($0.key, $0.value) }))
            requests[workload.name] = outcome.results
        }
        // A contract is judged on the whole session: the worst workload decides each check.
        let verdicts = contracts.map { contract in Self.judge(contract, metrics) }
        var info: [String: JSONValue] = [
            "tool": "sagellm-benchmark", "backend": .string(client.backendName), "seed": .int(Int(truncatingIfNeeded: seed)),
            "date": .string(ISO8601DateFormatter().string(from: Date())),
            "workloads": .array(workloads.map { .string($0.name) }),
        ]
        info["model"] = client.modelName.map { .string($0) } ?? .null
        info["prompt_calibration"] = .string(
            calibrated?.calibration ?? "no tokenizer endpoint: one token per word assumed, corrected by the warm-up's usage when the server reports it")
        return BenchmarkReport(info: info, runs: runs, verdicts: verdicts, requests: requests)
    }

    /// Each check on every workload; a check passes only if it passes on all of them, and
    /// reports the worst measured value (missing anywhere: missing).
    static func judge(_ contract: Contract, _ runs: [RunMetrics]) -> Contract.Verdict {
        let perRun = runs.map { contract.check($0) }
        guard var merged = perRun.first else {
            return Contract.Verdict(contract: contract.name, passed: false, checks: [])
        }
        for (index, check) in merged.checks.enumerated() {
            let all = perRun.map { $0.checks[index] }
            let actuals = all.map(\.actual)
            var worst: Double?
            if !actuals.contains(where: { $0 == nil }) {
                let values = actuals.compactMap { $0 }
                worst = check.comparison == "<=" ? values.max() : values.min()
            }
            merged.checks[index].actual = worst
            merged.checks[index].passed = all.allSatisfy(\.passed)
        }
        merged.passed = merged.checks.allSatisfy(\.passed)
        return merged
    }
}
