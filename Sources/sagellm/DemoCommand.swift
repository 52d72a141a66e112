import ArgumentParser
import SageControlPlane
import SageLLM
import SageSimulator

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a simulated engine in-process, chat with it through IntelligentLLMClient, and show what happened.")

    @Option(help: "Prompt for the streamed chat.")
    var prompt = "Explain in one paragraph why LLM servers batch requests."

    @Option(name: .customLong("max-tokens"), help: "Tokens to generate in the streamed chat.")
    var maxTokens = 48

    @Option(help: "Concurrent requests in the burst that follows.")
    var concurrency = 32

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if concurrency < 1 || concurrency > 1024 { throw ValidationError("--concurrency must be 1-1024") }
    }

    func run() async throws {
        let engine = SimulatedEngineConfiguration(
            model: "sagellm-sim-demo", ttft: .milliseconds(40), tbt: .milliseconds(8), prefillTokensPerSecond: 8_000,
            maxBatch: 16)
        let prompt = self.prompt
        let maxTokens = self.maxTokens
        let concurrency = self.concurrency
        try await reportingErrors {
            try await withSimulatorServer(configuration: engine) { simulator in
                say("SageLLM demo: a simulated engine (vLLM API) is serving '\(engine.model)' at \(simulator.baseURL)")
                say("  engine: TTFT \(Terminal.milliseconds(engine.ttft)) + prefill at \(Int(engine.prefillTokensPerSecond)) tok/s, TBT \(Terminal.milliseconds(engine.tbt)), batch limit \(engine.maxBatch)\n")
                try await withIntelligentLLMClient(configuration: LLMClientConfiguration(baseURL: simulator.baseURL)) { client in
                    let models = try await client.models()
                    say("1. GET /v1/models -> \(models.map { "\($0.id) (owned_by \($0.ownedBy ?? "-"))" }.joined(separator: ", "))\n")

                    say("2. Streamed chat: \"\(prompt)\"\n")
                    Terminal.write("   ")
                    let started = ContinuousClock.now
                    var firstToken: Duration?
                    var answer = ChatStreamAccumulator()
                    for try await chunk in client.streamChat(prompt, options: ChatOptions(maxTokens: maxTokens)) {
                        answer.add(chunk)
                        if !chunk.contentDelta.isEmpty {
                            if firstToken == nil { firstToken = ContinuousClock.now - started }
                            Terminal.write(ServerText.forTerminal(chunk.contentDelta))
                        }
                    }
                    let total = ContinuousClock.now - started
                    let usage = answer.usage
                    let tokens = usage?.completionTokens ?? 0
                    let decode = total - (firstToken ?? .zero)
                    let tpot = tokens > 1 ? decode / (tokens - 1) : .zero
                    say("\n")
                    say("   TTFT \(firstToken.map(Terminal.milliseconds) ?? "-"), total \(Terminal.milliseconds(total)), \(tokens) tokens, TPOT \(Terminal.milliseconds(tpot)), finish: \(answer.finishReason ?? "-")")
                    say("   usage from the server: prompt \(usage?.promptTokens ?? 0), completion \(tokens), cached \(usage?.promptTokensDetails?.cachedTokens ?? 0); content events seen: \(answer.contentEvents)\n")

                    say("3. Burst: \(concurrency) concurrent chats of 16 tokens (the engine runs \(engine.maxBatch) at a time, the rest queue)")
                    let burstStarted = ContinuousClock.now
                    let latencies = try await withThrowingTaskGroup(of: Duration.self) { group in
                        for index in 0..<concurrency {
                            group.addTask {
                                try await client.chat(
                                    [.system(sharedSystemPrompt), .user("Request \(index): name a prime.")],
                                    options: ChatOptions(maxTokens: 16)
                                ).latency
                            }
                        }
                        var all: [Duration] = []
                        for try await latency in group { all.append(latency) }
                        return all.sorted()
                    }
                    let burst = ContinuousClock.now - burstStarted
                    let seconds = Double(burst.components.seconds) + Double(burst.components.attoseconds) / 1e18
                    let statistics = simulator.engine.statistics()
                    say("   \(latencies.count) answers in \(Terminal.milliseconds(burst)) (\(String(format1: Double(latencies.count) / seconds, digits: 1)) req/s); latency min \(Terminal.milliseconds(latencies.first ?? .zero)), median \(Terminal.milliseconds(latencies[latencies.count / 2])), max \(Terminal.milliseconds(latencies.last ?? .zero))")
                    say("   engine: peak running \(statistics.peakRunning) of \(engine.maxBatch), completed \(statistics.completed), prefix-cache hits \(statistics.prefixCacheHits)/\(statistics.prefixCacheQueries) tokens\n")
                }
            }
            try await controlPlaneDemo()
            try await disaggregationDemo()
            say(Self.nextSteps)
        }
    }

    /// The demo's closing line: commands to try next, each runnable as printed.
    static let nextSteps =
        "Next: `swift run sagellm simulate --port 8001` in one terminal; in another, `swift run sagellm detect` shows it is found, and `swift run sagellm chat \"Hello\"` talks to it. `sagellm cluster --config FILE status` runs the control plane over your own instances."

    /// Step 4: three engines of different speeds behind the control plane, a burst with mixed priorities.
    func controlPlaneDemo() async throws {
        let speeds = [4, 8, 16]
        let engines = speeds.map { tbt in
            SimulatedEngineConfiguration(model: "sagellm-sim-demo", ttft: .milliseconds(20), tbt: .milliseconds(tbt), prefillTokensPerSecond: 0)
        }
        try await withSimulatorServer(configuration: engines[0]) { fast in
            try await withSimulatorServer(configuration: engines[1]) { medium in
                try await withSimulatorServer(configuration: engines[2]) { slow in
                    let instances = zip(["fast", "medium", "slow"], [fast, medium, slow]).map { name, simulator in
                        InstanceSpec(id: name, baseURL: simulator.baseURL, model: "sagellm-sim-demo", maxConcurrentRequests: 4)
                    }
                    let cluster = try ControlPlaneClient(instances: instances, schedulingPolicy: .priority, routingStrategy: .loadBalanced)
                    say("4. Control plane: 3 engines (TBT \(speeds.map { "\($0) ms" }.joined(separator: ", ")), 4 slots each), priority scheduling, load-balanced routing")
                    say("   24 chats of 16 tokens: 12 BACKGROUND fill every slot; then 8 more BACKGROUND queue, and 4 CRITICAL arrive last")
                    let results = try await withThrowingTaskGroup(of: (String, RoutedChatResult).self) { group in
                        func send(_ index: Int, _ priority: RequestPriority, _ label: String) {
                            group.addTask {
                                let routed = try await cluster.routedChat(
                                    [.user("Request \(index): name a prime.")], options: ChatOptions(maxTokens: 16),
                                    placement: RequestPlacement(priority: priority))
                                return (label, routed)
                            }
                        }
                        for index in 0..<12 { send(index, .background, "first BACKGROUND") }
                        while cluster.metrics().activeRequests < 12 { try await Task.sleep(for: .milliseconds(1)) }
                        for index in 12..<20 { send(index, .background, "queued BACKGROUND") }
                        while cluster.metrics().queuedRequests < 8 { try await Task.sleep(for: .milliseconds(1)) }
                        for index in 20..<24 { send(index, .critical, "CRITICAL (arrived last)") }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    for label in ["first BACKGROUND", "queued BACKGROUND", "CRITICAL (arrived last)"] {
                        let waits = results.filter { $0.0 == label }.map { $0.1.queueWait }.sorted()
                        say("   \(label): median queue wait \(Terminal.milliseconds(waits[waits.count / 2])), max \(Terminal.milliseconds(waits.last ?? .zero))")
                    }
                    let metrics = cluster.metrics()
                    say("   completed \(metrics.completedRequests), latency p50 \(metrics.p50LatencyMilliseconds.map { String(format1: $0, digits: 1) } ?? "-") ms, p99 \(metrics.p99LatencyMilliseconds.map { String(format1: $0, digits: 1) } ?? "-") ms")
                    say(ClusterTable.render(cluster.instances()).split(separator: "\n").map { "   " + $0 }.joined(separator: "\n") + "\n")
                    await cluster.shutdown()
                }
            }
        }
    }
}

extension DemoCommand {
    /// Step 5: a PREFILL and a DECODE engine behind the control plane; a long prompt is split
    /// over vLLM's protocol, a short one goes straight to the decode engine.
    func disaggregationDemo() async throws {
        var prefill = SimulatedEngineConfiguration(
            model: "sagellm-sim-demo", ttft: .milliseconds(5), tbt: .milliseconds(4), prefillTokensPerSecond: 20_000)
        prefill.role = .prefill
        var decoding = prefill
        decoding.role = .decode
        let decode = decoding
        try await withSimulatorServer(configuration: prefill) { prefillServer in
            try await withSimulatorServer(configuration: decode) { decodeServer in
                let cluster = try ControlPlaneClient(instances: [
                    InstanceSpec(id: "prefill", baseURL: prefillServer.baseURL, model: "sagellm-sim-demo", type: .prefill),
                    InstanceSpec(id: "decode", baseURL: decodeServer.baseURL, model: "sagellm-sim-demo", type: .decode),
                ])
                say("5. Prefill/decode disaggregation: a PREFILL and a DECODE engine (prefill 20,000 tok/s), vLLM's kv_transfer_params between them")
                let document = String(repeating: "The quarterly report shows steady growth in every region. ", count: 60)
                for (label, prompt) in [("long prompt", document + "Summarize."), ("short prompt", "Name a prime.")] {
                    let routed = try await cluster.routedChat([.user(prompt)], options: ChatOptions(maxTokens: 12))
                    var line = "   \(label) (\(routed.result.usage?.promptTokens ?? 0) tokens): \(routed.path), answered by \(routed.instanceID) in \(Terminal.milliseconds(routed.result.latency))"
                    if let phase = routed.prefill {
                        line += " (prefill \(Terminal.milliseconds(phase.latency)), \(phase.kvTransferParameters["remote_block_ids"]?.arrayValue?.count ?? 0) KV blocks handed over)"
                    }
                    say(line)
                }
                say("")
                await cluster.shutdown()
            }
        }
    }
}

/// Writes a line to standard output at once, in order with streamed tokens.
private func say(_ line: String) { Terminal.write(line + "\n") }

/// A system prompt shared by the burst's requests, so the engine's prefix cache has something to reuse.
private let sharedSystemPrompt =
    "You are a concise assistant for infrastructure engineers. Answer in one short sentence, name concrete numbers when you can, and never apologise."
