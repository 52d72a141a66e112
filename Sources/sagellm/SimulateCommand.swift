import ArgumentParser
import Logging
import SageBenchmarkCommands
import SageSimulator
import ServiceLifecycle
import UnixSignals

struct SimulateCommand: AsyncParsableCommand, HandlesItsOwnSignals {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Serve a simulated LLM engine with vLLM's OpenAI-compatible API until SIGINT/SIGTERM.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8000
    @Option(help: "The served model name.") var model = "sagellm-sim"
    @Option(name: .customLong("owned-by"), help: "owned_by in /v1/models: vllm, sglang, lmdeploy, llamacpp...")
    var ownedBy = "vllm"
    @Option(name: .customLong("ttft-ms"), help: "Fixed part of the time to first token, ms.") var ttftMs = 20.0
    @Option(name: .customLong("tbt-ms"), help: "Time between tokens, ms.") var tbtMs = 10.0
    @Option(name: .customLong("prefill-tps"), help: "Prefill speed, prompt tokens per second (0 = instant).")
    var prefillTPS = 8000.0
    @Option(
        name: .customLong("step-ms"),
        help: "Step the whole batch as vLLM does instead of fixed TTFT/TBT: the fixed time of one engine step, ms (TBT of a lone stream).")
    var stepMs: Double?
    @Option(name: .customLong("decode-seq-us"), help: "With --step-ms: time a step adds per decoding sequence, µs.")
    var decodeSequenceMicroseconds = 500.0
    @Option(name: .customLong("max-batched-tokens"), help: "With --step-ms: tokens one step carries (decodes first, then prompt chunks).")
    var maxBatchedTokens = 2_048
    @Option(name: .customLong("kv-gbps"), help: "decode role: how fast a prompt's KV cache arrives, GB/s (0 = at once).")
    var kvGBps = 0.0
    @Option(help: "Relative jitter of TTFT and TBT (0.1 = ±10%).") var jitter = 0.1
    @Option(name: .customLong("max-batch"), help: "Most sequences running at once; more wait.") var maxBatch = 256
    @Option(name: .customLong("max-context"), help: "Context length in tokens.") var maxContext = 8192
    @Option(help: "Seed for jitter, text and faults.") var seed: UInt64 = 42
    @Option(name: .customLong("api-key"), help: "Require this bearer key on /v1/*.") var apiKey: String?

    @Option(name: .customLong("fail-rate"), help: "Share of generation requests that fail (0-1).") var failRate = 0.0
    @Option(name: .customLong("fail-status"), help: "Status of injected failures.") var failStatus = 503
    @Option(name: .customLong("fail-first"), help: "The first N generation requests fail.") var failFirst = 0
    @Option(name: .customLong("retry-after"), help: "Retry-After seconds sent with injected failures.")
    var retryAfter: Int?
    @Option(name: .customLong("disconnect-after"), help: "Drop the connection after N streamed tokens.")
    var disconnectAfter: Int?
    @Option(name: .customLong("stall-ms"), help: "Send nothing for MS milliseconds before the first token.")
    var stallMs: Double?
    @Option(name: .customLong("slow-start-ms"), help: "Report 503 on /health (loading) for the first MS milliseconds.")
    var slowStartMs: Double?
    @Option(help: "Prefill/decode role: general, prefill (answers kv_transfer_params for a remote decode) or decode (takes them and skips prefill).")
    var role = "general"
    @Option(name: .customLong("kv-port"), help: "prefill role: the KV side-channel port it advertises in remote_port.")
    var kvPort = 5600
    @Option(name: .customLong("idle-timeout"), help: "Seconds a connection may sit idle between requests, or stall while sending one, before it is closed.")
    var idleTimeout = 60.0
    @Flag(name: .customLong("no-stream-usage"), help: "Never send usage in streams, even when asked (as some servers do).")
    var noStreamUsage = false
    @Flag(name: .customLong("record-timings"), help: "Keep each generation request's time to first chunk, from its head read to its first bytes written at the socket, served at /debug/request-timings (for benchmark accuracy checks).")
    var recordTimings = false

    func engineConfiguration() throws -> SimulatedEngineConfiguration {
        guard let engineRole = EngineRole(rawValue: role.lowercased()) else {
            throw ValidationError("--role must be general, prefill or decode, got \(role)")
        }
        if !(1...65535).contains(kvPort) { throw ValidationError("--kv-port must be 1-65535, got \(kvPort)") }
        var configuration = SimulatedEngineConfiguration(
            model: model, ownedBy: ownedBy, ttft: try FlagNumber.milliseconds(ttftMs, "--ttft-ms"),
            tbt: try FlagNumber.milliseconds(tbtMs, "--tbt-ms"),
            prefillTokensPerSecond: prefillTPS, jitter: jitter, maxBatch: maxBatch, maxContext: maxContext,
            kvCacheTokens: max(262_144, maxContext), seed: seed, apiKey: apiKey,
            faults: FaultConfiguration(
                failRate: failRate, failStatus: failStatus, failFirst: failFirst, retryAfterSeconds: retryAfter,
                disconnectAfterTokens: disconnectAfter, stall: try stallMs.map { try FlagNumber.milliseconds($0, "--stall-ms") },
                slowStart: try slowStartMs.map { try FlagNumber.milliseconds($0, "--slow-start-ms") }, omitStreamUsage: noStreamUsage))
        configuration.role = engineRole
        configuration.kvSideChannelPort = kvPort
        if let stepMs {
            guard maxBatchedTokens > maxBatch else {
                throw ValidationError("--max-batched-tokens (\(maxBatchedTokens)) must exceed --max-batch (\(maxBatch)), or prompts never get a chunk")
            }
            guard decodeSequenceMicroseconds.isFinite, (0...1e9).contains(decodeSequenceMicroseconds) else {
                throw ValidationError("--decode-seq-us must be a number of microseconds from 0 to 1000000000, got \(decodeSequenceMicroseconds)")
            }
            configuration.steps = BatchSteps(
                stepTime: try FlagNumber.milliseconds(stepMs, "--step-ms"),
                timePerDecodeSequence: .nanoseconds(Int64(decodeSequenceMicroseconds * 1_000)),
                maxBatchedTokens: maxBatchedTokens)
        }
        if !(kvGBps >= 0) || !kvGBps.isFinite || kvGBps > 1e6 { throw ValidationError("--kv-gbps must be from 0 to 1000000, got \(kvGBps)") }
        configuration.kvTransferBytesPerSecond = kvGBps * 1e9
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.message)
        }
        return configuration
    }

    func validate() throws {
        _ = try engineConfiguration()
        if !(0...65_535).contains(port) { throw ValidationError("--port must be 0-65535, got \(port)") }
        _ = try FlagNumber.seconds(idleTimeout, "--idle-timeout")
    }

    func run() async throws {
        var logger = Logger(label: "sagellm.simulate")
        logger.logLevel = .info
        let engine = try SimulatedEngine(configuration: try engineConfiguration())
        let host = self.host
        let model = self.model
        let ledger = RequestLedger()
        if recordTimings { ledger.recordTimings() }
        let server = SimulatorServer(
            engine: engine, host: host, port: port, ledger: ledger, idleTimeout: try FlagNumber.seconds(idleTimeout, "--idle-timeout"),
            logger: logger
        ) { port in
            Terminal.error("Simulated engine '\(model)' serving at http://\(host):\(port)/v1 (Ctrl-C to stop)")
        }
        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
        try await group.run()
        Terminal.error("Simulated engine stopped.")
    }
}
