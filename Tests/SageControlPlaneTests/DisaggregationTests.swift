import SageControlPlane
import SageLLM
import SageSimulator
import Testing

/// Prefill/decode disaggregation end to end over loopback: simulated PREFILL and DECODE
/// engines, the control plane between them speaking vLLM's KV-transfer protocol.
@Suite("Prefill/decode disaggregation")
struct DisaggregationTests {
    static func engine(_ role: EngineRole, port: Int = 5600) -> SimulatedEngineConfiguration {
        var configuration = SimulatedEngineConfiguration(
            model: "m", ttft: .milliseconds(1), tbt: .milliseconds(1), prefillTokensPerSecond: 0, jitter: 0)
        configuration.role = role
        configuration.kvSideChannelPort = port
        return configuration
    }

    static func spec(_ id: String, _ simulator: RunningSimulator, _ type: InstanceType, machine: String? = nil) -> InstanceSpec {
        InstanceSpec(
            id: id, baseURL: simulator.baseURL, model: "m", type: type, maxConcurrentRequests: 4,
            topology: Topology(machineID: machine, rackID: "r1"))
    }

    /// About 1,500 estimated tokens: prefill-heavy by the default threshold of 800.
    static let longPrompt = String(repeating: "The quick brown fox jumps. ", count: 220)

    static let requestedPrefill: JSONValue = [
        "do_remote_decode": true, "do_remote_prefill": false, "remote_engine_id": nil, "remote_block_ids": nil,
        "remote_host": nil, "remote_port": nil,
    ]

    @Test func aLongPromptIsSplitWithVLLMsRequestBodies() async throws {
        try await withSimulators([Self.engine(.prefill, port: 5611), Self.engine(.decode)]) { engines in
            engines.forEach {
                $0.ledger.recordBodies()
                $0.ledger.recordTimings()  // keyed by x-request-id
            }
            let cluster = try ControlPlaneClient(
                instances: [Self.spec("p", engines[0], .prefill), Self.spec("d", engines[1], .decode)], schedulingPolicy: .fifo)
            var options = ChatOptions(temperature: 0.2, maxTokens: 6)
            options.extraBody["max_completion_tokens"] = 6
            options.requestID = "split-1"
            let routed = try await cluster.routedChat([.user(Self.longPrompt)], options: options)
            await cluster.shutdown()

            #expect(routed.path == .disaggregated(prefillInstanceID: "p"))
            #expect(routed.instanceID == "d")
            #expect(routed.result.usage?.completionTokens == 6)
            #expect(!routed.text.isEmpty)
            let prefill = try #require(routed.prefill)
            #expect(prefill.instanceID == "p")
            #expect(routed.result.latency >= prefill.latency, "the latency covers both phases")

            let prefillBody = try #require(engines[0].ledger.requestBodies.first)
            #expect(engines[0].ledger.requestBodies.count == 1)
            #expect(prefillBody["max_tokens"] == 1)
            #expect(prefillBody["max_completion_tokens"] == 1)
            #expect(prefillBody["stream"] == false)
            #expect(prefillBody["stream_options"] == nil)
            #expect(prefillBody["kv_transfer_params"] == Self.requestedPrefill)
            #expect(prefillBody["temperature"] == 0.2)
            #expect(prefillBody["messages"]?[0]?["content"]?.stringValue == Self.longPrompt)

            let decodeBody = try #require(engines[1].ledger.requestBodies.first)
            #expect(engines[1].ledger.requestBodies.count == 1)
            #expect(decodeBody["max_tokens"] == 6)
            #expect(decodeBody["max_completion_tokens"] == 6)
            #expect(decodeBody["stream"] == false)
            #expect(decodeBody["temperature"] == 0.2)
            #expect(decodeBody["messages"] == prefillBody["messages"])
            let handedOver = try #require(decodeBody["kv_transfer_params"])
            #expect(handedOver == prefill.kvTransferParameters)
            #expect(handedOver["remote_port"] == 5611)
            #expect(handedOver["remote_host"] == "127.0.0.1")
            #expect(handedOver["do_remote_prefill"] == true)
            #expect(handedOver["remote_request_id"]?.stringValue?.isEmpty == false)
            #expect(cluster.metrics().paths == ["disaggregated": 1])
            #expect(engines.map { Array($0.ledger.requestTimings.keys) } == [["split-1"], ["split-1"]], "one request id for both halves")
        }
    }

    @Test func theDecodeInstanceStreamsTheAnswer() async throws {
        try await withSimulators([Self.engine(.prefill), Self.engine(.decode)]) { engines in
            engines.forEach { $0.ledger.recordBodies() }
            let cluster = try ControlPlaneClient(instances: [Self.spec("p", engines[0], .prefill), Self.spec("d", engines[1], .decode)])
            var answer = ChatStreamAccumulator()
            var sources = Set<String>()
            var paths = Set<ExecutionPath>()
            for try await routed in cluster.routedStreamChat([.user(Self.longPrompt)], options: ChatOptions(maxTokens: 5)) {
                answer.add(routed.chunk)
                sources.insert(routed.instanceID)
                paths.insert(routed.path)
            }
            await cluster.shutdown()
            #expect(answer.contentEvents == 5)
            #expect(answer.usage?.completionTokens == 5)
            #expect(sources == ["d"])
            #expect(paths == [.disaggregated(prefillInstanceID: "p")])
            let prefillBody = try #require(engines[0].ledger.requestBodies.first)
            #expect(prefillBody["stream"] == false)
            #expect(prefillBody["stream_options"] == nil)
            let decodeBody = try #require(engines[1].ledger.requestBodies.first)
            #expect(decodeBody["stream"] == true)
            #expect(decodeBody["stream_options"]?["include_usage"] == true)
            #expect(decodeBody["max_tokens"] == 5)
            #expect(decodeBody["kv_transfer_params"]?["remote_engine_id"]?.stringValue?.isEmpty == false)
        }
    }

    @Test func aFailedPrefillFallsBackToADirectRequest() async throws {
        var failing = Self.engine(.prefill)
        failing.faults = FaultConfiguration(failStatus: 503, failFirst: 1_000)
        try await withSimulators([failing, Self.engine(.decode)]) { engines in
            engines[1].ledger.recordBodies()
            let instances = [Self.spec("p", engines[0], .prefill), Self.spec("d", engines[1], .decode)]
            let cluster = try ControlPlaneClient(instances: instances)
            let routed = try await cluster.routedChat([.user(Self.longPrompt)], options: ChatOptions(maxTokens: 3))
            await cluster.shutdown()
            guard case .fallback(let reason) = routed.path else {
                Issue.record("expected a fallback, got \(routed.path)")
                return
            }
            #expect(reason.contains("prefill instance p failed"))
            #expect(routed.instanceID == "d")
            #expect(routed.result.usage?.completionTokens == 3)
            #expect(engines[1].ledger.requestBodies.first?["kv_transfer_params"] == nil, "the decode instance computed the prompt itself")

            var strict = DisaggregationConfiguration()
            strict.fallbackToDirect = false
            let noFallback = try ControlPlaneClient(instances: instances, disaggregation: strict)
            let error = await controlPlaneError { _ = try await noFallback.routedChat([.user(Self.longPrompt)], options: ChatOptions(maxTokens: 3)) }
            await noFallback.shutdown()
            #expect(error?.code == .instanceFailed)
            #expect(error?.description.contains("fallbackToDirect") == true)
        }
    }

    @Test func shortPromptsSkipThePrefillInstance() async throws {
        try await withSimulators([Self.engine(.prefill), Self.engine(.decode), Self.engine(.general)]) { engines in
            let cluster = try ControlPlaneClient(instances: [
                Self.spec("p", engines[0], .prefill), Self.spec("d", engines[1], .decode), Self.spec("g", engines[2], .general),
            ])
            for _ in 0..<4 {
                let routed = try await cluster.routedChat([.user("Say hi.")], options: ChatOptions(maxTokens: 8))
                #expect(routed.path == .direct)
                #expect(["d", "g"].contains(routed.instanceID))
            }
            // A short prompt with a tiny answer is prefill-heavy by the ratio rule (over 4 to 1).
            let ratio = try await cluster.routedChat([.user(String(repeating: "tokens ", count: 40))], options: ChatOptions(maxTokens: 2))
            #expect(ratio.path == .disaggregated(prefillInstanceID: "p"))
            await cluster.shutdown()
            #expect(engines[0].ledger.total == 1)
        }
    }

    @Test func theDecodeSideIsPairedOnThePrefillsMachine() async throws {
        try await withSimulators([Self.engine(.prefill), Self.engine(.decode), Self.engine(.decode), Self.engine(.decode)]) { engines in
            let cluster = try ControlPlaneClient(instances: [
                Self.spec("p", engines[0], .prefill, machine: "node-a"),
                Self.spec("d-far", engines[1], .decode, machine: "node-b"),
                Self.spec("d-near", engines[2], .decode, machine: "node-a"),
                Self.spec("d-far-2", engines[3], .decode, machine: "node-c"),
            ])
            for _ in 0..<5 {
                let routed = try await cluster.routedChat([.user(Self.longPrompt)], options: ChatOptions(maxTokens: 2))
                #expect(routed.instanceID == "d-near")
            }
            await cluster.shutdown()

            var unpaired = DisaggregationConfiguration()
            unpaired.topologyPairing = false
            let spread = try ControlPlaneClient(
                instances: [
                    Self.spec("p", engines[0], .prefill, machine: "node-a"),
                    Self.spec("d-far", engines[1], .decode, machine: "node-b"),
                    Self.spec("d-near", engines[2], .decode, machine: "node-a"),
                ],
                disaggregation: unpaired)
            var used = Set<String>()
            for _ in 0..<4 { used.insert(try await spread.routedChat([.user(Self.longPrompt)], options: ChatOptions(maxTokens: 2)).instanceID) }
            await spread.shutdown()
            #expect(used == ["d-far", "d-near"], "without pairing, least loaded takes turns")
        }
    }
}
