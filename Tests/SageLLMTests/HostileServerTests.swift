import SageTesting
import Logging
import MetricsTestKit
import SageLLM
import Synchronization
import Testing

/// The client against servers that misbehave on purpose (``HostileHTTPServer``). Each case
/// checks the exact error code, that the message names the endpoint, how many times the
/// server saw the request, and that the key is nowhere: not in the error, the logs or the
/// metrics.
extension TimingSensitiveTests {
@Suite("Hostile servers")
struct HostileServerTests {
    static let key = "sk-hostile-secret-4242"

    /// A client of `baseURL` with the key, quick retries, short time limits, a log that keeps
    /// everything and test metrics; `body` gets it and then the checks run on what it left.
    static func withClient<Result>(
        _ baseURL: String, readTimeout: Duration = .seconds(2), requestTimeout: Duration = .seconds(10),
        retry: RetryPolicy = RetryPolicy(maxRetries: 3, baseDelay: .milliseconds(5), jitter: 0),
        _ body: (IntelligentLLMClient) async throws -> Result
    ) async throws -> Result {
        let log = LogCapture()
        let metrics = TestMetrics()
        var logger = Logger(label: "hostile") { _ in log.handler }
        logger.logLevel = .trace
        var configuration = LLMClientConfiguration(
            baseURL: baseURL, model: "m", apiKey: APIKey(key),
            transport: TransportConfiguration(readTimeout: readTimeout, requestTimeout: requestTimeout))
        configuration.resilience = ResilienceConfiguration(retry: retry, metricsFactory: metrics)
        let result = try await withIntelligentLLMClient(configuration: configuration, logger: logger, body)
        #expect(!log.text.contains(key), "the key is not logged")
        for counter in metrics.counters {
            #expect(!counter.dimensions.contains { $0.1.contains(key) }, "the key is not a metric dimension")
        }
        return result
    }

    /// The error a call throws, checked for what every error must have.
    static func failure(
        of call: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
    ) async -> SageLLMError? {
        let error = await sageError(call)
        #expect(error != nil, "the call failed", sourceLocation: sourceLocation)
        if let error {
            #expect(error.endpoint?.hasPrefix("http://127.0.0.1:") == true, "\(error)", sourceLocation: sourceLocation)
            #expect(!"\(error)".contains(key), "\(error)", sourceLocation: sourceLocation)
            #expect(!(error.responseBody ?? "").contains(key), sourceLocation: sourceLocation)
        }
        return error
    }

    static func drain(_ stream: AsyncThrowingStream<ChatCompletionChunk, any Error>) async throws -> ChatStreamAccumulator {
        var answer = ChatStreamAccumulator()
        for try await chunk in stream { answer.add(chunk) }
        return answer
    }

    // MARK: Numbers from the server

    @Test(arguments: ["1e300", "-1e300", "1.5", "9223372036854775808"])
    func anErrorCodeOfAnySizeIsKeptAsText(code: String) async throws {
        let body = #"{"error":{"message":"no","type":"bad","code":\#(code)}}"#
        try await HostileHTTPServer.with(respond: { _ in [.send(HostileHTTPServer.response(status: "400 Bad Request", body: body))] }) {
            url, record in
            try await Self.withClient(url) { client in
                let error = await Self.failure { _ = try await client.chat("hi") }
                #expect(error?.code == .httpStatus)
                #expect(error?.status == 400)
                #expect(error?.serverMessage == "no")
            }
        }
        let event = #"data: {"error":{"message":"mid","code":\#(code)}}"# + "\n\n"
        try await HostileHTTPServer.with(respond: { _ in
            [.send(HostileHTTPServer.streamHead + HostileHTTPServer.chunk(event) + HostileHTTPServer.lastChunk)]
        }) { url, record in
            try await Self.withClient(url) { client in
                let error = await Self.failure { _ = try await Self.drain(client.streamChat("hi")) }
                #expect(error?.code == .httpStatus)
                #expect(error?.serverMessage == "mid")
                #expect(record.requests.load(ordering: .relaxed) == 1, "an answer that arrived is not retried")
            }
        }
    }

    @Test func hugeTokenCountsSaturateInsteadOfTrapping() async throws {
        let body =
            #"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":5}}"#
        try await HostileHTTPServer.with(respond: { _ in [.send(HostileHTTPServer.response(body: body))] }) { url, _ in
            try await Self.withClient(url) { client in
                let answer = try await client.chat("hi")
                #expect(answer.usage?.totalTokens == Int.max)
                _ = try await client.chat("again")
                #expect(client.metrics().totalTokens == Int.max)
            }
        }
    }

    @Test(arguments: ["1e16", "inf", "nan", "-5", "Fri, 31 Dec 9999 23:59:59 GMT"])
    func anAbsurdRetryAfterEndsWithinTheDeadline(retryAfter: String) async throws {
        try await HostileHTTPServer.with(respond: { _ in
            [.send(HostileHTTPServer.response(status: "429 Too Many Requests", headers: ["retry-after: \(retryAfter)"], body: #"{"error":{"message":"slow down"}}"#))]
        }) { url, record in
            try await Self.withClient(url, requestTimeout: .seconds(3), retry: RetryPolicy(maxRetries: 3, baseDelay: .milliseconds(5), maxDelay: .seconds(60), jitter: 0)) {
                client in
                let started = ContinuousClock.now
                let error = await Self.failure { _ = try await client.chat("hi") }
                // The last 429, or, on a machine so loaded that the attempts used up the 3 s,
                // the request's deadline: never a wait of the server's choosing.
                let ended = error?.code == .httpStatus ? error?.status == 429 : error?.timeoutKind == .total
                #expect(ended, "\(String(describing: error))")
                #expect(ContinuousClock.now - started < .seconds(4), "one deadline bounds attempts and waits")
            }
            #expect(record.requests.load(ordering: .relaxed) >= 1)
        }
    }

    // MARK: Bodies that would exhaust the client

    @Test func deeplyNestedJSONIsADecodingError() async throws {
        let nested = String(repeating: "[", count: 600_000)
        try await HostileHTTPServer.with(respond: { _ in
            [.send(HostileHTTPServer.streamHead + HostileHTTPServer.chunk("data: " + nested + "\n\n") + HostileHTTPServer.lastChunk)]
        }) { url, _ in
            try await Self.withClient(url) { client in
                let error = await Self.failure { _ = try await Self.drain(client.streamChat("hi")) }
                #expect(error?.code == .decoding)
            }
        }
        try await HostileHTTPServer.with(respond: { _ in [.send(HostileHTTPServer.response(body: nested))] }) { url, _ in
            try await Self.withClient(url) { client in
                let error = await Self.failure { _ = try await client.chat("hi") }
                #expect(error?.code == .decoding)
            }
        }
    }

    @Test func aStreamOfCommentsThatEndsWithoutDoneIsInterrupted() async throws {
        try await HostileHTTPServer.with(respond: { _ in
            [
                .send(HostileHTTPServer.streamHead), .repeated(HostileHTTPServer.chunk(": keep-alive\n"), count: 50_000),
                .send(HostileHTTPServer.lastChunk),
            ]
        }) { url, record in
            try await Self.withClient(url) { client in
                let error = await Self.failure { _ = try await Self.drain(client.streamChat("hi")) }
                #expect(error?.code == .streamInterrupted)
                #expect(error?.receivedPartialOutput == false)
                #expect(!"\(error.map { "\($0)" } ?? "")".contains("already been delivered"))
                #expect(record.requests.load(ordering: .relaxed) == 1)
            }
        }
    }

    @Test func streamedTextIsKeptOnlyUpToTheCap() {
        var answer = ChatStreamAccumulator(maximumTextBytes: 10)
        for _ in 0..<5 {
            answer.add(ChatCompletionChunk(id: "c", model: "m", choices: [.init(index: 0, delta: .init(content: "abcd"))]))
        }
        #expect(answer.text == "abcdabcdab")
        #expect(answer.truncated)
        #expect(answer.contentEvents == 5, "every event is still counted")
    }

    // MARK: Unsafe retries

    @Test func aPostThatWasWrittenAndThenStalledIsNotSentAgain() async throws {
        try await HostileHTTPServer.with(respond: { _ in [.hang] }) { url, record in
            try await Self.withClient(url, readTimeout: .seconds(1)) { client in
                let error = await Self.failure { _ = try await client.chat("hi") }
                #expect(error?.code == .timeout)
                #expect(error?.requestSent == true)
                #expect(error?.attempts == 1)
                #expect(error?.notRetriedBecause?.contains("had been sent") == true, "\(String(describing: error))")
            }
            // The server may read it a moment after the client gave up, on a loaded machine.
            #expect(await eventually { record.requests.load(ordering: .relaxed) == 1 }, "the engine got the request")
            #expect(record.requests.load(ordering: .relaxed) == 1, "once")
        }
    }

    @Test func aPostThatWasWrittenAndThenClosedIsNotSentAgain() async throws {
        try await HostileHTTPServer.with(respond: { _ in [.close] }) { url, record in
            try await Self.withClient(url) { client in
                let error = await Self.failure { _ = try await client.chat("hi") }
                #expect(error?.code == .connectionFailed)
                #expect(error?.reason.contains("before answering") == true)
                #expect(error?.attempts == 1)
            }
            #expect(record.requests.load(ordering: .relaxed) == 1, "a fresh connection that closed is not a stale one")
        }
    }

    @Test func aCallerMayOptInToRetriesAfterSend() async throws {
        try await HostileHTTPServer.with(respond: { request in
            request.number == 1 ? [.close] : [.send(HostileHTTPServer.response(body: HostileHTTPServer.goodChat))]
        }) { url, record in
            var retry = RetryPolicy(maxRetries: 2, baseDelay: .milliseconds(5), jitter: 0)
            retry.retriesAfterSend = true
            try await Self.withClient(url, retry: retry) { client in
                let answer = try await client.chat("hi")
                #expect(answer.text == "ok")
                #expect(answer.attempts == 2)
            }
            #expect(record.requests.load(ordering: .relaxed) == 2)
        }
    }

    @Test func aResponseThatBreaksAfterItsHeadIsInterruptedNotUnreachable() async throws {
        let cases: [[HostileHTTPServer.Step]] = [
            [.send(HostileHTTPServer.streamHead + "zz\r\nnot a chunk"), .close],  // chunked-encoding error
            [.send(HostileHTTPServer.streamHead), .close],  // head, then nothing
            [.send(HostileHTTPServer.streamHead + HostileHTTPServer.chunk(#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}"# + "\n\n")), .close],
        ]
        for steps in cases {
            try await HostileHTTPServer.with(respond: { _ in steps }) { url, record in
                try await Self.withClient(url) { client in
                    let error = await Self.failure { _ = try await Self.drain(client.streamChat("hi")) }
                    #expect(error?.code == .streamInterrupted, "\(String(describing: error))")
                    #expect(error?.reason.contains("could not reach") == false)
                    #expect(error?.attempts == 1)
                }
                #expect(record.requests.load(ordering: .relaxed) == 1, "an answer that began is not retried")
            }
        }
    }

    @Test func aServerErrorIsRetriedAndElapsedCoversEveryAttempt() async throws {
        try await HostileHTTPServer.with(respond: { _ in
            [.pause(.milliseconds(50)), .send(HostileHTTPServer.response(status: "503 Service Unavailable", body: #"{"error":{"message":"busy"}}"#))]
        }) { url, record in
            try await Self.withClient(url) { client in
                let error = await Self.failure { _ = try await client.chat("hi") }
                #expect(error?.code == .httpStatus)
                #expect(error?.attempts == 4)
                #expect((error?.elapsed ?? .zero) >= .milliseconds(200), "elapsed is the whole call's, not the last attempt's")
            }
            #expect(record.requests.load(ordering: .relaxed) == 4)
        }
    }

    // MARK: Secrets and server text

    @Test func aServerThatEchoesTheKeyOrSendsEscapeCodesIsCleaned() async throws {
        try await HostileHTTPServer.with(respond: { request in
            let authorization = request.head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("authorization:") } ?? ""
            let message = "denied for \(authorization) \u{1B}[31mred\u{1B}[0m \u{07}"
            let body = #"{"error":{"message":"\#(message.replacing("\u{1B}", with: "\\u001b").replacing("\u{07}", with: "\\u0007"))"}}"#
            return [.send(HostileHTTPServer.response(status: "401 Unauthorized", body: body))]
        }) { url, _ in
            try await Self.withClient(url) { client in
                let error = await Self.failure { _ = try await client.chat("hi") }
                #expect(error?.code == .httpStatus)
                let text = "\(error.map { "\($0)" } ?? "")"
                #expect(text.contains("<redacted>"))
                #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "no control characters")
            }
        }
    }

    @Test func answersWrittenToATerminalKeepLinesButNoEscapes() {
        #expect(ServerText.forTerminal("a\u{1B}[2Jb\nc\td\u{07}\u{202E}e") == "a [2Jb\nc\td  e")
        #expect(ServerText.forTerminal("plain text\n") == "plain text\n")
    }

    @Test func aLongServerMessageIsCapped() async throws {
        let message = String(repeating: "x", count: 100_000)
        try await HostileHTTPServer.with(respond: { _ in
            [.send(HostileHTTPServer.response(status: "500 Internal Server Error", body: #"{"error":{"message":"\#(message)"}}"#))]
        }) { url, _ in
            try await Self.withClient(url, retry: .none) { client in
                let error = await Self.failure { _ = try await client.chat("hi") }
                #expect((error?.serverMessage?.count ?? 0) <= ServerTextLimit.message + 3)
                #expect("\(error.map { "\($0)" } ?? "")".count < 4_000)
            }
        }
    }
}
}

/// The documented cap on a server's message in an error.
enum ServerTextLimit {
    static let message = 1024
}

