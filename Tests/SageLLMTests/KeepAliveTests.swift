import SageLLM
import Synchronization
import Testing

/// Servers that close keep-alive connections, as llama.cpp's and uvicorn's do: after each
/// response, after a few requests, or when idle. A request that goes out on a connection the
/// server had already closed reached no server; it must go out again on a new connection, so
/// a healthy server never shows up as failed requests. Both ways of sending are checked: the
/// client's AsyncHTTPClient pool and the direct connections the benchmark uses.
extension TimingSensitiveTests {
@Suite("Keep-alive connections closed by the server")
struct KeepAliveTests {
    enum Closing: String, CaseIterable, Sendable {
        /// Closes every connection right after its response, without `Connection: close`.
        case afterEachResponse
        /// Closes after the fifth response on a connection, as llama.cpp's server does.
        case afterFiveRequests
    }

    static func steps(_ closing: Closing, _ request: HostileHTTPServer.Request, streamed: Bool) -> [HostileHTTPServer.Step] {
        let answer =
            streamed
            ? HostileHTTPServer.streamHead
                + HostileHTTPServer.chunk(
                    #"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}"#
                        + "\n\ndata: [DONE]\n\n") + HostileHTTPServer.lastChunk
            : HostileHTTPServer.response(body: HostileHTTPServer.goodChat)
        switch closing {
        case .afterEachResponse: return [.send(answer), .close]
        case .afterFiveRequests: return request.numberOnConnection >= 5 ? [.send(answer), .close] : [.send(answer)]
        }
    }

    /// Sends `count` requests, `concurrency` at a time, and returns the failures.
    static func failures(count: Int, concurrency: Int, _ send: @escaping @Sendable () async throws -> Void) async -> [String] {
        await withTaskGroup(of: String?.self) { group in
            var started = 0
            var failures: [String] = []
            for _ in 0..<concurrency {
                started += 1
                group.addTask { await Self.outcome(send) }
            }
            for await failure in group {
                if let failure { failures.append(failure) }
                if started < count {
                    started += 1
                    group.addTask { await Self.outcome(send) }
                }
            }
            return failures
        }
    }

    static func outcome(_ send: @Sendable () async throws -> Void) async -> String? {
        do {
            try await send()
            return nil
        } catch {
            return "\(error)"
        }
    }

    static func client(_ url: String) throws -> IntelligentLLMClient {
        try IntelligentLLMClient(
            configuration: LLMClientConfiguration(
                baseURL: url, model: "m", resilience: ResilienceConfiguration(retry: .none)))
    }

    @Test(arguments: Closing.allCases)
    func wholeRequestsNeverFailOnAClosedConnection(closing: Closing) async throws {
        try await HostileHTTPServer.with(respond: { Self.steps(closing, $0, streamed: false) }) { url, record in
            let client = try Self.client(url)
            let failures = await Self.failures(count: 600, concurrency: 4) { _ = try await client.chat("hi") }
            try await client.shutdown()
            #expect(failures.isEmpty, "\(failures.count) failed, e.g. \(failures.first ?? "")")
            #expect(record.requests.load(ordering: .relaxed) >= 600)
        }
    }

    @Test(arguments: Closing.allCases)
    func streamsNeverFailOnAClosedConnection(closing: Closing) async throws {
        try await HostileHTTPServer.with(respond: { Self.steps(closing, $0, streamed: true) }) { url, _ in
            let client = try Self.client(url)
            let failures = await Self.failures(count: 300, concurrency: 4) {
                for try await _ in client.streamChat("hi") {}
            }
            #expect(failures.isEmpty, "\(failures.count) failed, e.g. \(failures.first ?? "")")
            let direct = await Self.failures(count: 300, concurrency: 4) {
                try await client.streamChatOnEventLoop([.user("hi")]) { _, _ in }
            }
            try await client.shutdown()
            #expect(direct.isEmpty, "direct connections: \(direct.count) failed, e.g. \(direct.first ?? "")")
        }
    }

    @Test func connectionsClosedWhileIdleAreNotUsedAgain() async throws {
        try await HostileHTTPServer.with(idleClose: .milliseconds(100), respond: { _ in
            [.send(HostileHTTPServer.response(body: HostileHTTPServer.goodChat))]
        }) { url, _ in
            let client = try Self.client(url)
            var failures: [String] = []
            // Rounds spaced around the server's idle limit, so some connections close just as
            // the next round would use them.
            for round in 0..<20 {
                failures += await Self.failures(count: 4, concurrency: 4) { _ = try await client.chat("hi") }
                try await Task.sleep(for: .milliseconds(90 + (round % 5) * 5))  // spacing, not a wait for an outcome
            }
            try await client.shutdown()
            #expect(failures.isEmpty, "\(failures.count) failed, e.g. \(failures.first ?? "")")
        }
    }
}
}
