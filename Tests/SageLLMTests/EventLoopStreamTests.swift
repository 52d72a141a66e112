import SageTesting
import SageSimulator
import Synchronization
import Testing

@testable import SageLLM

/// `streamChatOnEventLoop`, the benchmark's path: chunks stamped where their bytes are read,
/// with the same errors as `streamChat`. Every test runs on both ways of sending: the direct
/// SwiftNIO connections used for `http://`, and AsyncHTTPClient, used for `https://`.
@Suite("Streaming on the event loop")
struct EventLoopStreamTests {
    enum Path: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case direct, asyncHTTPClient
        var testDescription: String { rawValue }

        func run<Result>(_ body: () async throws -> Result) async rethrows -> Result {
            try await HTTPTransport.$automaticEngine.withValue(self == .asyncHTTPClient ? .asyncHTTPClient : .automatic) { try await body() }
        }
    }

    /// Chunks and the instants they were read at, in order.
    final class Received: Sendable {
        let chunks = Mutex<[(ChatCompletionChunk, ContinuousClock.Instant)]>([])
        func add(_ chunk: ChatCompletionChunk, _ instant: ContinuousClock.Instant) { chunks.withLock { $0.append((chunk, instant)) } }
        var all: [(ChatCompletionChunk, ContinuousClock.Instant)] { chunks.withLock { $0 } }
    }

    @Test(arguments: Path.allCases) func chunksArriveStampedInOrderWithTheServersUsage(path: Path) async throws {
        try await path.run {
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
    }

    @Test(arguments: Path.allCases) func theRequestIsStampedWhereItIsWritten(path: Path) async throws {
        try await path.run {
            let engine = SimulatedEngineConfiguration(model: "timed", ttft: .milliseconds(20), tbt: .milliseconds(2), prefillTokensPerSecond: 0, jitter: 0)
            try await withSimulatorAndClient(engine) { simulator, client in
                simulator.ledger.recordTimings()
                for attempt in 0..<3 {  // the first opens a connection, the others reuse it
                    let requestID = "stamped-\(attempt)"
                    let written = Mutex<[ContinuousClock.Instant]>([])
                    let received = Received()
                    let started = ContinuousClock.now
                    var options = ChatOptions(maxTokens: 3)
                    options.requestID = requestID
                    try await client.streamChatOnEventLoop(
                        [.user("hi")], options: options, onWritten: { instant in written.withLock { $0.append(instant) } }
                    ) { received.add($0, $1) }
                    let stamps = written.withLock { $0 }
                    let firstRead = try #require(received.all.first?.1)
                    let server = try #require(simulator.ledger.requestTimings[requestID])
                    #expect(firstRead >= server.arrived, "read after the server read the request")
                    // AsyncHTTPClient tells nothing when it writes: its engine stamps just before it
                    // hands the request over, earlier than the write; the SwiftNIO engine at the write.
                    #expect(stamps.count == 1, "told once per request")
                    let write = try #require(stamps.first)
                    #expect(started <= write && write <= firstRead)
                    // Stamped before the bytes go out, so never after the server has read them.
                    #expect(write <= server.arrived, "stamped \(write - server.arrived) after the server read it")
                }
            }
        }
    }

    @Test(arguments: Path.allCases) func aFailedStatusIsTheServersError(path: Path) async throws {
        try await path.run {
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
    }

    @Test(arguments: Path.allCases) func anErrorEventMidStreamAndAnUnreadableEventAreErrors(path: Path) async throws {
        try await path.run {
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
    }

    @Test(arguments: Path.allCases) func cancellingTheTaskStopsGenerationOnTheServer(path: Path) async throws {
        try await path.run {
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
    }

    @Test(arguments: Path.allCases) func aStalledServerIsAnIdleReadTimeout(path: Path) async throws {
        try await path.run {
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

    @Test(arguments: Path.allCases) func connectionsAreKeptAliveAndReused(path: Path) async throws {
        try await path.run {
            let chunk = #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#
            let connections = CannedHTTPServer.ConnectionCount()
            try await CannedHTTPServer.with(
                ["/v1/chat/completions": .init(body: "data: \(chunk)\n\ndata: [DONE]\n\n")], connections: connections
            ) { baseURL in
                let client = try IntelligentLLMClient(configuration: LLMClientConfiguration(baseURL: baseURL, model: "m"))
                for _ in 0..<5 {
                    let received = Received()
                    try await client.streamChatOnEventLoop([.user("hi")]) { received.add($0, $1) }
                    #expect(received.all.count == 1)
                }
                // AsyncHTTPClient hands a connection back to its pool a moment after the response
                // ends, so the next request may open a second one; the direct path reuses at once.
                let opened = connections.value.load(ordering: .relaxed)
                #expect(path == .direct ? opened == 1 : opened < 5, "\(opened) connections for five requests in a row")
                try await client.shutdown()
            }
        }
    }

    @Test(arguments: Path.allCases) func aServerThatClosesMidStreamIsAnInterruptedStream(path: Path) async throws {
        try await path.run {
            var engine = SimulatedEngineConfiguration.instant(model: "cut")
            engine.faults.disconnectAfterTokens = 3
            try await withSimulatorAndClient(engine) { _, client in
                let received = Received()
                let error = await sageError {
                    try await client.streamChatOnEventLoop([.user("hi")], options: ChatOptions(model: "cut", maxTokens: 10)) {
                        received.add($0, $1)
                    }
                }
                #expect(error?.code == .streamInterrupted, "\(error.map { "\($0)" } ?? "no error")")
                #expect(error?.receivedPartialOutput == true)
                #expect(error?.receivedResponseHead == true)
                #expect(!received.all.isEmpty, "the chunks before the cut were delivered")
                #expect(error?.endpoint?.hasSuffix("/v1/chat/completions") == true)
            }
        }
    }

    @Test(arguments: Path.allCases) func theTotalDeadlineEndsAStreamThatKeepsTalking(path: Path) async throws {
        try await path.run {
            let engine = SimulatedEngineConfiguration(model: "long", ttft: .zero, tbt: .milliseconds(20), jitter: 0)
            try await withSimulatorAndClient(engine) { simulator, client in
                let options = ChatOptions(model: "long", maxTokens: 1000, timeout: .milliseconds(500))
                let received = Received()
                let error = await sageError {
                    try await client.streamChatOnEventLoop([.user("Go on.")], options: options) { received.add($0, $1) }
                }
                #expect(error?.code == .timeout)
                #expect(error?.timeoutKind == .total)
                #expect(error?.timeoutLimit == .milliseconds(500))
                #expect(error?.receivedPartialOutput == !received.all.isEmpty, "partial output is flagged when chunks arrived")
                #expect(await eventually { simulator.engine.statistics().running == 0 }, "closing the connection stops the generation")
            }
        }
    }

    @Test(arguments: Path.allCases) func aRefusedConnectionFailsAtOnce(path: Path) async throws {
        try await path.run {
            try await CannedHTTPServer.withRefusedBaseURL { baseURL in
                let client = try IntelligentLLMClient(configuration: LLMClientConfiguration(baseURL: baseURL, model: "m"))
                let error = await sageError { try await client.streamChatOnEventLoop([.user("hi")]) { _, _ in } }
                #expect(error?.code == .connectionFailed, "\(error.map { "\($0)" } ?? "no error")")
                #expect(error?.receivedPartialOutput == false)
                #expect(error?.endpoint == baseURL + "/chat/completions")
                try await client.shutdown()
            }
        }
    }

    @Test func directConnectionsReadTheBaseURL() {
        let plain = NIOHTTP1Engine.Target(baseURL: "http://127.0.0.1:8000/v1")
        #expect(plain == .init(host: "127.0.0.1", port: 8000, hostHeader: "127.0.0.1:8000", basePath: "/v1"))
        #expect(NIOHTTP1Engine.Target(baseURL: "http://llm.internal")?.port == 80)
        #expect(NIOHTTP1Engine.Target(baseURL: "http://llm.internal")?.basePath == "")
        let six = NIOHTTP1Engine.Target(baseURL: "http://[::1]:9000/api/v1")
        #expect(six?.host == "::1" && six?.port == 9000 && six?.basePath == "/api/v1" && six?.hostHeader == "[::1]:9000")
        #expect(NIOHTTP1Engine.Target(baseURL: "https://api.example.com/v1") == nil, "https stays on AsyncHTTPClient")
        #expect(NIOHTTP1Engine.Target(baseURL: "http://host:99999/v1") == nil)
        #expect(NIOHTTP1Engine.Target(baseURL: "http://user:pw@host/v1") == nil)
    }
}
