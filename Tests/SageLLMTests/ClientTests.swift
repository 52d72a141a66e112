import SageTesting
import Foundation
import SageSimulator
import Testing

@testable import SageLLM

@Suite("IntelligentLLMClient against the simulator")
struct ClientTests {
    @Test func chatReturnsTextUsageAndLatency() async throws {
        try await withSimulatorAndClient { simulator, client in
            let prompt = "How many tokens does this prompt have?"
            let result = try await client.chat([.system("Be brief."), .user(prompt)], options: ChatOptions(maxTokens: 12))
            #expect(!result.text.isEmpty)
            #expect(result.finishReason == "length")
            #expect(result.usage?.completionTokens == 12)
            let expectedPrompt = SimulatedTokenizer.tokenize(messages: [("system", "Be brief."), ("user", prompt)]).count
            #expect(result.usage?.promptTokens == expectedPrompt)
            #expect(result.model == "test-model")
            #expect(result.latency > .zero)
            #expect(result.requestID.hasPrefix("sage-"))
            #expect(simulator.engine.statistics().generationTokens == 12)
        }
    }

    @Test func streamedChatUsageEqualsTheEnginesCount() async throws {
        try await withSimulatorAndClient { simulator, client in
            var answer = ChatStreamAccumulator()
            for try await chunk in client.streamChat("Stream me twenty tokens.", options: ChatOptions(maxTokens: 20)) {
                answer.add(chunk)
            }
            #expect(answer.usage?.completionTokens == 20)
            #expect(answer.contentEvents == 20)
            #expect(answer.finishReason == "length")
            #expect(simulator.engine.statistics().generationTokens == 20)
            #expect(SimulatedTokenizer.count(answer.text) == 20)
        }
    }

    @Test func modelIsTakenFromTheServerWhenNotConfigured() async throws {
        try await withSimulatorAndClient { _, client in
            let models = try await client.models()
            #expect(models.map(\.id) == ["test-model"])
            #expect(models.first?.ownedBy == "vllm")
            let result = try await client.generate(prompt: "hi", options: ChatOptions(maxTokens: 3))
            #expect(result.model == "test-model")
        }
    }

    @Test func textCompletionWholeAndStreamed() async throws {
        try await withSimulatorAndClient { _, client in
            let whole = try await client.complete("Once upon a time", options: ChatOptions(maxTokens: 7))
            #expect(whole.usage?.completionTokens == 7)
            #expect(whole.usage?.promptTokens == SimulatedTokenizer.count("Once upon a time"))
            var text = ""
            var usage: Usage?
            for try await chunk in client.streamComplete("Once upon a time", options: ChatOptions(maxTokens: 7)) {
                text += chunk.text
                usage = chunk.usage ?? usage
            }
            #expect(text == whole.text)
            #expect(usage?.completionTokens == 7)
        }
    }

    @Test func stopStringEndsTheAnswer() async throws {
        try await withSimulatorAndClient { _, client in
            let free = try await client.chat("Tell me something.", options: ChatOptions(maxTokens: 30))
            let words = free.text.split(separator: " ")
            try #require(words.count > 4)
            let stop = " " + words[3]
            let stopped = try await client.chat("Tell me something.", options: ChatOptions(maxTokens: 30, stop: [stop]))
            #expect(stopped.finishReason == "stop")
            #expect(!stopped.text.contains(stop))
            #expect(free.text.hasPrefix(stopped.text))
        }
    }

    @Test func cancellingAStreamStopsGenerationOnTheServer() async throws {
        let engine = SimulatedEngineConfiguration(model: "slow", ttft: .zero, tbt: .milliseconds(20), jitter: 0)
        try await withSimulatorAndClient(engine) { simulator, client in
            var received = 0
            for try await chunk in client.streamChat("Go on and on.", options: ChatOptions(maxTokens: 1000)) {
                if !chunk.contentDelta.isEmpty { received += 1 }
                if received == 3 { break }
            }
            #expect(received == 3)
            let stopped = await eventually { simulator.engine.statistics().running == 0 }
            #expect(stopped, "the engine kept generating after the consumer stopped")
            #expect(simulator.engine.statistics().aborted == 1)
            #expect(simulator.engine.statistics().generationTokens < 200)
        }
    }

    @Test func cancellingTheConsumingTaskCancelsTheRequest() async throws {
        let engine = SimulatedEngineConfiguration(model: "slow", ttft: .zero, tbt: .milliseconds(20), jitter: 0)
        try await withSimulatorAndClient(engine) { simulator, client in
            let consumer = Task {
                var count = 0
                for try await _ in client.streamChat("Go on.", options: ChatOptions(maxTokens: 1000)) { count += 1 }
                return count
            }
            #expect(await eventually { simulator.engine.statistics().generationTokens >= 3 })
            consumer.cancel()
            let outcome = await consumer.result
            if case .failure(let error as SageLLMError) = outcome {
                #expect(error.code == .cancelled)
            }
            #expect(await eventually { simulator.engine.statistics().running == 0 })
        }
    }

    @Test func stallGivesAReadTimeoutWithElapsedTime() async throws {
        var engine = SimulatedEngineConfiguration.instant(model: "stall")
        engine.faults.stall = .seconds(3)
        let transport = TransportConfiguration(readTimeout: .milliseconds(300))
        try await withSimulatorAndClient(engine, transport: transport) { _, client in
            let error = await sageError {
                // The model is named, so that no model-list request (under the same 300 ms limit) comes first.
                for try await _ in client.streamChat("hi", options: ChatOptions(model: "stall", maxTokens: 5)) {}
            }
            #expect(error?.code == .timeout)
            #expect(error?.timeoutKind == .idleRead)
            #expect(error?.timeoutLimit == .milliseconds(300))
            let elapsed = try #require(error?.elapsed)
            #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(3))
            #expect(error?.description.contains("after") == true)
            #expect(error?.endpoint?.hasSuffix("/v1/chat/completions") == true, "\(error?.endpoint ?? "no endpoint")")
            // The seed's timeout family: endpoint, limit, elapsed.
            #expect(error?.timeoutError?.endpoint == error?.endpoint)
            #expect(error?.timeoutError?.limit == .milliseconds(300))
            #expect(error?.timeoutError?.elapsed == error?.elapsed)
            #expect(error?.apiError == nil)
        }
    }

    @Test func aStreamsOwnTimeoutBoundsItsBody() async throws {
        let engine = SimulatedEngineConfiguration(model: "slow", ttft: .zero, tbt: .milliseconds(50), jitter: 0)
        // 3 s for a 10 s answer whose first token is due after 50 ms: room for the whole suite
        // loading the 2 cores.
        let transport = TransportConfiguration(readTimeout: .seconds(30))
        try await withSimulatorAndClient(engine, transport: transport) { simulator, client in
            var received = 0
            let error = await sageError {
                for try await chunk in client.streamChat("hi", options: ChatOptions(maxTokens: 200, timeout: .seconds(3))) {
                    if !chunk.contentDelta.isEmpty { received += 1 }
                }
            }
            #expect(error?.code == .timeout)
            #expect(error?.timeoutKind == .total)
            #expect(error?.receivedPartialOutput == true)
            #expect(received > 0)
            let elapsed = try #require(error?.elapsed)
            #expect(elapsed >= .seconds(3) && elapsed < .seconds(7))
            #expect(await eventually { simulator.engine.statistics().running == 0 })
        }
    }

    /// A healthy stream has no total deadline unless it asks for one: the request timeout bounds
    /// the wait for its head, and every silence is bounded by the read timeout.
    @Test func aHealthyStreamOutlivesTheRequestTimeout() async throws {
        let engine = SimulatedEngineConfiguration(model: "slow", ttft: .zero, tbt: .milliseconds(20), jitter: 0)
        // 2 s for the head: room for a machine loaded by the tests running alongside.
        let transport = TransportConfiguration(readTimeout: .seconds(30), requestTimeout: .seconds(2))
        try await withSimulatorAndClient(engine, transport: transport) { _, client in
            var answer = ChatStreamAccumulator()
            let started = ContinuousClock.now
            for try await chunk in client.streamChat("hi", options: ChatOptions(maxTokens: 125)) { answer.add(chunk) }
            #expect(ContinuousClock.now - started > .seconds(2), "it ran past the request timeout")
            #expect(answer.usage?.completionTokens == 125 && answer.finishReason == "length")
        }
    }

    @Test func totalDeadlineBoundsAWholeResponse() async throws {
        let engine = SimulatedEngineConfiguration(model: "slow", ttft: .zero, tbt: .milliseconds(50), jitter: 0)
        try await withSimulatorAndClient(engine) { _, client in
            let error = await sageError {
                _ = try await client.chat("hi", options: ChatOptions(maxTokens: 200, timeout: .milliseconds(300)))
            }
            #expect(error?.code == .timeout)
            #expect(error?.timeoutKind == .total)
            #expect(error?.timeoutLimit == .milliseconds(300))
        }
    }

    @Test func refusedConnectionIsAClearError() async throws {
        // A port held bound but not listening: nothing else can take it while the test runs
        // (a port bound and closed could be reused by a server of a test running alongside).
        try await withRefusedLoopbackPort { port in
            let client = try IntelligentLLMClient(
                configuration: LLMClientConfiguration(
                    baseURL: "http://127.0.0.1:\(port)/v1", model: "m", resilience: ResilienceConfiguration(retry: .none)))
            let started = ContinuousClock.now
            let error = await sageError { _ = try await client.chat("hi") }
            try await client.shutdown()
            #expect(error?.code == .connectionFailed)
            #expect(error?.endpoint == "http://127.0.0.1:\(port)/v1/chat/completions")
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(error?.description.contains("127.0.0.1:\(port)") == true)
        }
    }

    @Test func errorStatusesSurfaceTheServersMessage() async throws {
        try await withSimulatorAndClient(.instant(model: "m"), apiKey: nil) { simulator, client in
            // 404: unknown model
            let notFound = await sageError { _ = try await client.chat("hi", options: ChatOptions(model: "nope")) }
            #expect(notFound?.status == 404)
            #expect(notFound?.serverMessage == "The model `nope` does not exist.")
            #expect(notFound?.serverErrorType == "NotFoundError")
            // 400: prompt over the context length
            let long = String(repeating: "word ", count: 9_000)
            let tooLong = await sageError { _ = try await client.chat(long, options: ChatOptions(maxTokens: 10)) }
            #expect(tooLong?.status == 400)
            #expect(tooLong?.serverMessage?.contains("maximum context length is 8192") == true)
            // 500: injected failure
            try simulator.engine.setFaults(FaultConfiguration(failStatus: 500, failFirst: 1))
            let failed = await sageError { _ = try await client.chat("hi", options: ChatOptions(requestID: "req-42")) }
            #expect(failed?.status == 500)
            #expect(failed?.requestID == "req-42")
            #expect(failed?.snippet?.contains("injected failure") == true)
            #expect(simulator.ledger.byStatus[500] == 1)
        }
    }

    @Test func unauthorizedAndTheKeyNeverPrinted() async throws {
        var engine = SimulatedEngineConfiguration.instant(model: "m")
        engine.apiKey = "sk-secret-123"
        try await withSimulatorAndClient(engine, apiKey: "sk-wrong-456") { simulator, client in
            let error = await sageError { _ = try await client.chat("hi") }
            #expect(error?.status == 401)
            #expect(error?.serverMessage?.contains("Invalid API key") == true)
            #expect(error?.description.contains("sk-wrong-456") == false)
            #expect(client.configuration.description.contains("sk-wrong-456") == false)
            let good = try IntelligentLLMClient(baseURL: simulator.baseURL, apiKey: "sk-secret-123")
            let result = try await good.chat("hi", options: ChatOptions(maxTokens: 2))
            try await good.shutdown()
            #expect(result.usage?.completionTokens == 2)
        }
    }

    @Test func disconnectMidStreamSaysPartOfTheAnswerArrived() async throws {
        var engine = SimulatedEngineConfiguration.instant(model: "m")
        engine.faults.disconnectAfterTokens = 2
        try await withSimulatorAndClient(engine) { _, client in
            var received = 0
            let error = await sageError {
                for try await chunk in client.streamChat("hi", options: ChatOptions(maxTokens: 50)) {
                    if !chunk.contentDelta.isEmpty { received += 1 }
                }
            }
            #expect(received == 2)
            #expect(error?.code == .streamInterrupted)
            #expect(error?.receivedPartialOutput == true)
        }
    }

    @Test func badSettingsNameTheField() throws {
        let badURL = #expect(throws: SageLLMError.self) { try IntelligentLLMClient(baseURL: "ftp://example.com") }
        #expect(badURL?.code == .invalidConfiguration)
        #expect(badURL?.field == "baseURL")
        let noHost = #expect(throws: SageLLMError.self) { try IntelligentLLMClient(baseURL: "http:///v1") }
        #expect(noHost?.field == "baseURL")
        let badTimeout = #expect(throws: SageLLMError.self) {
            try IntelligentLLMClient(
                configuration: .init(baseURL: "http://127.0.0.1:1/v1", transport: .init(readTimeout: .seconds(-1))))
        }
        #expect(badTimeout?.field == "readTimeout")
        #expect(throws: SageLLMError.self) { try ChatOptions(temperature: 3).validate() }
    }

    @Test func emptyMessagesAreRejectedBeforeSending() async throws {
        try await withSimulatorAndClient { simulator, client in
            let error = await sageError { _ = try await client.chat([]) }
            #expect(error?.code == .invalidRequest)
            #expect(error?.field == "messages")
            #expect(simulator.ledger.total == 0)
        }
    }
}
