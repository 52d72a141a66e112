import SageLLM
import SageSimulator
import Testing

/// The simulated engine's prefill and decode roles speak vLLM's NIXL `kv_transfer_params`.
@Suite("Simulator prefill/decode roles")
struct DisaggregationRoleTests {
    static func engine(_ role: EngineRole) -> SimulatedEngineConfiguration {
        var configuration = SimulatedEngineConfiguration(
            model: "m", ttft: .milliseconds(5), tbt: .milliseconds(1), prefillTokensPerSecond: 1_000, jitter: 0)
        configuration.role = role
        configuration.kvSideChannelPort = 5601
        configuration.prefixCaching = false  // so that a repeated prompt is computed again
        return configuration
    }

    static let prefillRequest: [String: JSONValue] = [
        "kv_transfer_params": [
            "do_remote_decode": true, "do_remote_prefill": false, "remote_engine_id": nil, "remote_block_ids": nil,
            "remote_host": nil, "remote_port": nil,
        ]
    ]

    @Test func prefillAnswersTheParamsAndDecodeSkipsThePrompt() async throws {
        let prompt = String(repeating: "word ", count: 1_000)  // about 1,007 prompt tokens: 1 s of prefill at 1,000 tok/s
        try await withSimulatorServer(configuration: Self.engine(.prefill)) { prefill in
            try await withSimulatorServer(configuration: Self.engine(.decode)) { decode in
                let prefillClient = try IntelligentLLMClient(baseURL: prefill.baseURL, model: "m")
                var options = ChatOptions(maxTokens: 1)
                options.extraBody = Self.prefillRequest
                let first = try await prefillClient.chat(prompt, options: options)
                try await prefillClient.shutdown()
                let params = try #require(first.response.extraFields["kv_transfer_params"])
                #expect(params["do_remote_prefill"] == true)
                #expect(params["remote_engine_id"]?.stringValue?.isEmpty == false)
                #expect(params["remote_port"] == 5601)
                let promptTokens = try #require(first.usage?.promptTokens)
                #expect(params["remote_block_ids"]?.arrayValue?.count == (promptTokens + 15) / 16)

                let decodeClient = try IntelligentLLMClient(baseURL: decode.baseURL, model: "m")
                var decodeOptions = ChatOptions(maxTokens: 4)
                decodeOptions.extraBody = ["kv_transfer_params": params]
                let transferred = try await decodeClient.chat(prompt, options: decodeOptions)
                let computed = try await decodeClient.chat(prompt, options: ChatOptions(maxTokens: 4))
                #expect(transferred.usage?.completionTokens == 4)
                #expect(computed.latency >= .milliseconds(1_000), "computed: the whole prefill")
                #expect(transferred.latency < computed.latency - .milliseconds(500), "no prefill: \(transferred.latency) vs \(computed.latency)")

                var malformed = params
                if case .object(var members) = malformed {
                    members["remote_block_ids"] = "seven"
                    malformed = .object(members)
                }
                decodeOptions.extraBody = ["kv_transfer_params": malformed]
                let error = await #expect(throws: SageLLMError.self) { _ = try await decodeClient.chat(prompt, options: decodeOptions) }
                #expect(error?.status == 400)
                #expect(error?.serverMessage?.contains("kv_transfer_params.remote_block_ids") == true)
                try await decodeClient.shutdown()
            }
        }
    }
}
