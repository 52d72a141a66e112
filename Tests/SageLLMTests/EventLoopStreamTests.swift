import SageSimulator
import Synchronization
import Testing

@testable import SageLLM

/// `streamChatOnEventLoop`, the benchmark's path: chunks stamped where their bytes are read,
/// with the same errors as `streamChat`.
@Suite("Streaming on the event loop")
struct EventLoopStreamTests {
    /// Chunks and the instants they were read at, in order.
    final class Received: Sendable {
        let chunks = Mutex<[(ChatCompletionChunk, ContinuousClock.Instant)]>([])
        func add(_ chunk: ChatCompletionChunk, _ instant: ContinuousClock.Instant) { chunks.withLock { $0.append((chunk, instant)) } }
        var all: [(ChatCompletionChunk, ContinuousClock.Instant)] { chunks.withLock { $0 } }
    }

    @Test func chunksArriveStampedInOrderWithTheServersUsage() async throws {
        let engine = SimulatedEngineConfiguration(model: "timed", ttft: .milliseconds(30), tbt: .milliseconds(5), prefillTokensPerSecond: 0, jitter: 0)
        try await withSimulatorAndClient(engine) { simulator, client in
            let received = Received()
            let started = ContinuousClock.now
            try await client.streamChatOnEventLoop([.user("Twenty tokens, please.")], options: ChatOptions(maxTokens: 20)) {
                received.add($0, $1)
            }
            let chunks = received.all
            var answer = ChatStreamAccumulator()
            for (chunk, _) in chunks { answer.add(chunk) }
            #expect(answer.usage?.completionTokens == 20)
            #expect(answer.contentEvents == 20)
            #expect(answer.finishReason == "length")
            let instants = chunks.map(\.1)
            #expect(instants == instants.sorted(), "stamped in the order they were read")
            let first = try #require(instants.first)
            #expect(first - started >= .milliseconds(30), "no chunk before the simulator's TTFT")
            #expect(simulator.engine.statistics().generationTokens == 20)
        }
    }

    @Test func aFailedStatusIsTheServersError() async throws {
        var engine = SimulatedEngineConfiguration.instant(model: "busy")
        engine.faults.failFirst = 1
        engine.faults.failStatus = 503
        engine.faults.retryAfterSeconds = 2
        try await withSimulatorAndClient(engine) { _, client in
            let error = await sageError {
                try await client.streamChatOnEventLoop([.user("hi")], options: ChatOptions(model: "busy", maxTokens: 2)) { _, _ in }
            }
            #expect(error?.code == .httpStatus)
            #expect(error?.status == 503)
            #expect(error?.serverMessage?.contains("injected failure") == true, "\(error?.serverMessage ?? "no message")")
            #expect(error?.retryAfter == .seconds(2))
            #expect(error?.endpoint?.hasSuffix("/v1/chat/completions") == true)
        }
    }

    @Test func anErrorEventMidStreamAndAnUnreadableEventAreErrors() async throws {
        let chunk = #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#
        let routes: [String: CannedHTTPServer.Reply] = [
            "/v1/chat/completions": .init(
                body: "data: \(chunk)\n\ndata: {\"error\":{\"message\":\"out of KV cache\",\"type\":\"InternalServerError\",\"code\":500}}\n\n")
        ]
        try await CannedHTTPServer.with(routes) { baseURL in
            let client = try IntelligentLLMClient(configuration: LLMClientConfiguration(baseURL: baseURL, model: "m"))
            let received = Received()
            let error = await sageError {
                try await client.streamChatOnEventLoop([.user("hi")]) { received.add($0, $1) }
            }
            #expect(received.all.count == 1, "the chunk before the error was delivered")
            #expect(error?.code == .httpStatus)
            #expect(error?.serverMessage == "out of KV cache")
            #expect(error?.receivedPartialOutput == true)
            #expect(error?.endpoint?.hasSuffix("/v1/chat/completions") == true, "\(error?.endpoint ?? "no endpoint")")
            try await client.shutdown()
        }
        try await CannedHTTPServer.with(["/v1/chat/completions": .init(body: "data: {not json\n\n")]) { baseURL in
            let client = try IntelligentLLMClient(configuration: LLMClientConfiguration(baseURL: baseURL, model: "m"))
            let error = await sageError { try await client.streamChatOnEventLoop([.user("hi")]) { _, _ in } }
            #expect(error?.code == .decoding)
            #expect(error?.description.contains("{not json") == true, "\(error.map { "\($0)" } ?? "no error")")
            try await client.shutdown()
        }
    }

    @Test func cancellingTheTaskStopsGenerationOnTheServer() async throws {
        let engine = SimulatedEngineConfiguration(model: "slow", ttft: .zero, tbt: .milliseconds(20), jitter: 0)
        try await withSimulatorAndClient(engine) { simulator, client in
            let consumer = Task {
                try await client.streamChatOnEventLoop([.user("Go on.")], options: ChatOptions(maxTokens: 1000)) { _, _ in }
            }
            #expect(await eventually { simulator.engine.statistics().generationTokens >= 3 })
            consumer.cancel()
            if case .failure(let error as SageLLMError) = await consumer.result {
                #expect(error.code == .cancelled)
            } else {
                Issue.record("a cancelled stream must end with an error")
            }
            #expect(await eventually { simulator.engine.statistics().running == 0 })
            #expect(simulator.engine.statistics().aborted == 1)
        }
    }

    @Test func aStalledServerIsAnIdleReadTimeout() async throws {
        var engine = SimulatedEngineConfiguration.instant(model: "stall")
        engine.faults.stall = .seconds(3)
        let transport = TransportConfiguration(readTimeout: .milliseconds(300))
        try await withSimulatorAndClient(engine, transport: transport) { _, client in
            let error = await sageError {
                try await client.streamChatOnEventLoop([.user("hi")], options: ChatOptions(model: "stall", maxTokens: 5)) { _, _ in }
            }
            #expect(error?.code == .timeout)
            #expect(error?.timeoutKind == .idleRead)
            #expect(error?.endpoint?.hasSuffix("/v1/chat/completions") == true)
        }
    }
}
