import ArgumentParser
import Foundation
import Synchronization
import SageBenchmark
import SageLLM
import SageSimulator

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run workloads against a backend and write the metrics and reports.")

    @Option(help: "year1 (short + long + stress), short, long or stress. Ignored with --input-len/--output-len or --dataset.")
    var workload = "year1"

    @Option(help: "mock, openai, vllm, lmdeploy, sagellm (the simulated engine in this process) or control-plane.")
    var backend = "mock"

    @Option(name: .customLong("base-url"), help: "The server's API root (openai: required; vllm: default http://127.0.0.1:8000/v1; lmdeploy: default http://127.0.0.1:23333/v1).")
    var baseURL: String?

    @Option(help: "The model (default: the first the server lists; required with --local).")
    var model: String?

    @Flag(help: "vllm or lmdeploy: start the server (vllm serve / lmdeploy serve api_server) and stop it afterwards.")
    var local = false

    @Option(help: "With --local: the server's port (default 8000 for vllm, 23333 for lmdeploy).")
    var port: Int?

    @Option(name: .customLong("startup-timeout"), help: "With --local: seconds to wait for the server to become healthy.")
    var startupTimeout: Double = 600

    @Option(name: .customLong("api-key"), help: "Bearer key for the server.")
    var apiKey: String?

    @Option(help: "control-plane backend: the cluster file (YAML) whose instances the control plane runs.")
    var cluster: String?

    @Option(help: "Requests in flight at once (closed loop). Default 1, or the workload's own.")
    var concurrency: Int?

    @Option(name: .customLong("request-rate"), help: "Requests per second on an open-loop schedule (Poisson, or gamma with --burstiness).")
    var requestRate: Double?

    @Option(help: "Run every workload at several loads: concurrency=1,4,16,64 or rate=1,2,4 (2-32 points); reports throughput against latency per point and the knee.")
    var sweep: String?

    @Option(help: "Gamma shape of the arrivals: 1 is Poisson, lower is burstier.")
    var burstiness: Double = 1

    @Option(name: .customLong("max-concurrency"), help: "With --request-rate: at most this many in flight.")
    var maxConcurrency: Int?

    @Option(name: .customLong("num-prompts"), help: "Requests to send (default: the workload's, or 100 for a custom one).")
    var numPrompts: Int?

    @Option(help: "Seconds to keep sending instead of a number of prompts.")
    var duration: Double?

    @Option(name: .customLong("input-len"), help: "Prompt length in tokens (a custom workload).")
    var inputLen: Int?

    @Option(name: .customLong("output-len"), help: "Output length in tokens (a custom workload).")
    var outputLen: Int?

    @Option(name: .customLong("range-ratio"), help: "Spread of input and output lengths, 0 to <1 (uniform in len×(1±r)).")
    var rangeRatio: Double = 0

    @Option(name: .customLong("shared-prefix"), help: "Tokens every prompt shares at its start (for prefix caching).")
    var sharedPrefix: Int = 0

    @Option(help: "A JSONL file of {\"prompt\": ...} lines, or ShareGPT-format JSON.")
    var dataset: String?

    @Option(help: "Warm-up requests sent first and left out of the figures.")
    var warmup: Int = 0

    @Option(help: "Seed for prompts, arrivals and the mock's jitter.")
    var seed: UInt64 = 0

    @Option(help: "SLOs for goodput, e.g. ttft:100,tpot:20 (milliseconds).")
    var goodput: String?

    @Option(help: "Contracts to check: Y1, Y2, Y3, comma-separated, or none.")
    var contract = "Y1"

    @Option(help: "Seconds before a request counts as failed (\"Timeout after Xs\").")
    var timeout: Double = 600

    @Option(help: "Directory for benchmark_summary.json, <workload>_metrics.json, requests.jsonl and REPORT.md.")
    var output = "./benchmark_results"

    @Flag(name: .customLong("no-stream"), help: "Non-streamed requests (TTFT then equals E2EL).")
    var noStream = false

    @Option(name: .customLong("mock-ttft-ms"), help: "Mock backend: time to first token.")
    var mockTTFT: Double = 50

    @Option(name: .customLong("mock-tbt-ms"), help: "Mock backend: time between tokens.")
    var mockTBT: Double = 15

    @Option(name: .customLong("mock-error-rate"), help: "Mock backend: share of requests that fail.")
    var mockErrorRate: Double = 0

    @Flag(name: .shortAndLong, help: "Print every request's outcome.")
    var verbose = false

    func validate() throws {
        for (name, value) in [("--concurrency", concurrency), ("--num-prompts", numPrompts), ("--max-concurrency", maxConcurrency),
                              ("--input-len", inputLen), ("--output-len", outputLen)] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1, got \(value)") }
        }
        if let requestRate, !(requestRate >= 0.001) {
            throw ValidationError("--request-rate must be at least 0.001 per second, got \(requestRate)")
        }
        if let requestRate { _ = try FlagNumber.rate(requestRate, "--request-rate") }
        if !(burstiness > 0 && burstiness <= 1000) { throw ValidationError("--burstiness must be above 0 and at most 1000, got \(burstiness)") }
        if let duration { _ = try FlagNumber.seconds(duration, "--duration") }
        if numPrompts != nil && duration != nil { throw ValidationError("give --num-prompts or --duration, not both") }
        _ = try FlagNumber.seconds(timeout, "--timeout")
        _ = try FlagNumber.seconds(startupTimeout, "--startup-timeout")
        _ = try FlagNumber.milliseconds(mockTTFT, "--mock-ttft-ms")
        _ = try FlagNumber.milliseconds(mockTBT, "--mock-tbt-ms")
        if !(0...1).contains(mockErrorRate) { throw ValidationError("--mock-error-rate must be from 0 to 1, got \(mockErrorRate)") }
        if !(0..<1).contains(rangeRatio) { throw ValidationError("--range-ratio must be from 0 to below 1, got \(rangeRatio)") }
        if warmup < 0 { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        if sharedPrefix < 0 { throw ValidationError("--shared-prefix must not be negative, got \(sharedPrefix)") }
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be 1-65535, got \(port)") }
        if local && baseURL != nil { throw ValidationError("--local starts its own server; leave out --base-url") }
        if concurrency != nil && requestRate != nil { throw ValidationError("give --concurrency or --request-rate, not both") }
        if let sweep {
            let parsed = try Sweep.parse(sweep)
            if (parsed.axis == .concurrency && (concurrency != nil || requestRate != nil)) || (parsed.axis == .rate && (requestRate != nil || concurrency != nil)) {
                throw ValidationError("--sweep sets the load of each point; leave out --concurrency and --request-rate")
            }
        }
    }

    func run() async throws {
        try await failingClearly {
            let workloads = try makeWorkloads()
            let contracts = try contract.lowercased() == "none" ? [] : contract.split(separator: ",").map { try Contract.named(String($0)) }
            let slo = try goodput.map { try GoodputSLO.parse($0) }
            try await BackendFactory.with(
                backend, baseURL: baseURL, model: model, apiKey: apiKey,
                mock: (ttft: mockTTFT, tbt: mockTBT, errorRate: mockErrorRate, seed: seed),
                local: local ? BackendFactory.Local(port: port, startupTimeout: try FlagNumber.seconds(startupTimeout, "--startup-timeout")) : nil,
                cluster: cluster
            ) { client in
                try await run(client, workloads: workloads, contracts: contracts, goodput: slo)
            }
        }
    }

    func run(_ client: any BenchmarkBackend, workloads: [Workload], contracts: [Contract], goodput: GoodputSLO?) async throws {
            guard await client.healthCheck() else {
                throw BenchmarkError(
                    .backendUnavailable, "the \(backend) backend does not answer at \(baseURL ?? "its default address"); is the server running?")
            }
            say(Self.plan(workloads, custom: inputLen != nil || outputLen != nil || dataset != nil, named: workload))
            let progress = ProgressLine(enabled: isatty(STDERR_FILENO) == 1 && !verbose)
            let session = BenchmarkSession(
                client: client, workloads: workloads, seed: seed, timeout: try FlagNumber.seconds(timeout, "--timeout"),
                goodput: goodput, contracts: contracts,
                progress: { state in progress.update(state) })
            var report = try await session.run()
            progress.finish()
            if verbose {
                for (name, results) in report.requests.sorted(by: { $0.key < $1.key }) {
                    for result in results {
                        say(result.success
                            ? "\(name) \(result.requestID) ok ttft \(format(result.ttftMilliseconds)) ms, e2el \(format(result.e2elMilliseconds)) ms, \(result.outputTokens.map(String.init) ?? "?") tokens"
                            : "\(name) \(result.requestID) FAILED: \(result.error ?? "")")
                    }
                }
            }
            let parsedSweep = try sweep.map { try Sweep.parse($0) }
            if let sweep, let parsedSweep {
                report.info["sweep"] = .string(sweep)
                report.info["sweep_knee"] = parsedSweep.knees(report.runs)
            }
            let written = try report.write(to: output)
            say(ReportFormat.table.render(report))
            if let parsedSweep { say("\n" + parsedSweep.summary(report.runs)) }
            var sizing: [(calibration: String, workloads: [String])] = []
            for run in report.runs {
                guard let calibration = run["prompt_calibration"]?.stringValue else { continue }
                let name = run["workload"]?.stringValue ?? "?"
                if let index = sizing.firstIndex(where: { $0.calibration == calibration }) {
                    sizing[index].workloads.append(name)
                } else {
                    sizing.append((calibration, [name]))
                }
            }
            for (calibration, names) in sizing {
                say("prompt lengths (\(names.count == report.runs.count ? "every run" : names.joined(separator: ", "))): \(calibration)")
            }
            say("\nwrote " + written.joined(separator: ", "))
            // A run that measured nothing, or broke its contract, must not look like a pass to a script.
            let failedContracts = report.verdicts.filter { !$0.passed }.map(\.contract)
            let measured = report.requests.values.joined().contains { $0.success }
            if !failedContracts.isEmpty || !measured {
                var reasons: [String] = []
                if !measured { reasons.append("every request failed") }
                if !failedContracts.isEmpty { reasons.append("contract \(failedContracts.joined(separator: ", ")) failed") }
                FileHandle.standardError.write(Data("error: \(reasons.joined(separator: "; "))\n".utf8))
                throw ExitCode.failure
            }
    }

    func format(_ value: Double?) -> String { value.map { String(($0 * 10).rounded() / 10) } ?? "n/a" }

    /// What is about to run, said first: which workloads (a named set runs every one of its
    /// workloads), their lengths, counts and arrival.
    static func plan(_ workloads: [Workload], custom: Bool, named: String) -> String {
        let source = custom ? "a custom workload (--input-len/--output-len/--dataset)" : "--workload \(named): \(workloads.count) workload\(workloads.count == 1 ? "" : "s")"
        let lines = workloads.map { workload in
            let size = workload.prompts.map { "\($0.count) dataset prompts" } ?? "input \(workload.inputTokens) tokens"
            let amount = workload.durationSeconds.map { "for \($0) s" } ?? "\(workload.numPrompts.map(String.init) ?? "?") requests"
            return "  \(workload.name): \(size), output \(workload.outputTokens) tokens, \(amount), \(workload.arrival.description)"
        }
        return (["Running \(source):"] + lines).joined(separator: "\n")
    }

    func makeWorkloads() throws -> [Workload] {
        let arrival: Workload.Arrival? =
            if let requestRate { .rate(requestRate, burstiness: burstiness, maxConcurrency: maxConcurrency) }
            else { concurrency.map { .concurrency($0) } }
        var workloads: [Workload]
        if inputLen != nil || outputLen != nil || dataset != nil {
            workloads = [Workload(name: "custom", inputTokens: inputLen ?? 128, outputTokens: outputLen ?? 128, numPrompts: 100)]
        } else {
            workloads = try Workload.named(workload)
        }
        if let sweep { workloads = try Sweep.parse(sweep).workloads(workloads, burstiness: burstiness, maxConcurrency: maxConcurrency) }
        let datasetPrompts = try dataset.map { try Dataset.load($0) }
        for index in workloads.indices {
            if let arrival { workloads[index].arrival = arrival }
            if let numPrompts { workloads[index].numPrompts = numPrompts }
            if let duration {
                workloads[index].durationSeconds = duration
                workloads[index].numPrompts = nil
            }
            workloads[index].warmupRequests = warmup
            workloads[index].rangeRatio = rangeRatio
            workloads[index].sharedPrefixTokens = sharedPrefix
            workloads[index].stream = !noStream
            workloads[index].prompts = datasetPrompts
            try workloads[index].validate()
        }
        return workloads
    }
}

/// Runs a command body; a benchmark or client error becomes one clear line and exit status 1.
func failingClearly(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as BenchmarkError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// A progress bar on a terminal, redrawn in place (at most 10 times a second): done of total
/// (or elapsed of the duration), the rate so far, the failures by kind and the time left.
/// Silent when output is piped.
final class ProgressLine: Sendable {
    let enabled: Bool
    private let lastDrawn = Mutex<ContinuousClock.Instant?>(nil)
    init(enabled: Bool) { self.enabled = enabled }

    func update(_ progress: RunProgress) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let draw = lastDrawn.withLock { last -> Bool in
            let done = progress.total.map { progress.finished >= $0 } ?? false
            guard done || last.map({ now - $0 >= .milliseconds(100) }) ?? true else { return false }
            last = now
            return true
        }
        if draw { FileHandle.standardError.write(Data(("\r\u{1B}[2K" + Self.render(progress)).utf8)) }
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
    }

    /// `[short]  ███████░░░░░░░░  40/100  12.3 req/s  2 failed (timeout 2)  ~5 s left`
    static func render(_ progress: RunProgress, width: Int = 20) -> String {
        let fraction: Double? =
            if let total = progress.total, total > 0 { Double(progress.finished) / Double(total) }
            else if let duration = progress.duration, duration > .zero { progress.elapsed / duration }
            else { nil }
        var parts = ["[\(progress.workload)]"]
        if let fraction {
            let filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded())
            parts.append(String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled))
        }
        if let total = progress.total {
            parts.append("\(progress.finished)/\(total)")
        } else if let duration = progress.duration {
            parts.append("\(seconds(progress.elapsed))/\(seconds(duration)) s, \(progress.finished) done")
        }
        parts.append(String((progress.rate * 10).rounded() / 10) + " req/s")
        if progress.failed > 0 {
            let kinds = progress.errors.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            parts.append("\(progress.failed) failed (\(kinds))")
        }
        if let remaining = progress.remaining { parts.append("~\(seconds(remaining)) s left") }
        return parts.joined(separator: "  ")
    }

    private static func seconds(_ duration: Duration) -> Int { Int(duration.components.seconds) }
}
