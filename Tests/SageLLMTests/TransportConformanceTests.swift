import SageTesting
import SageCurl
import Logging
import NIOCore
import NIOHTTP1
import SageSimulator
import Testing

@testable import SageLLM

extension TimingSensitiveTests {
/// Every HTTP engine behind the transport meets the same faults with the same error: the same
/// code, the same kind of timeout, and the same account of how far the exchange got (sent,
/// answered), with the endpoint and request id.
@Suite("Transport conformance over every engine")
struct TransportConformanceTests {
    enum Engine: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case swiftNIO, asyncHTTPClient
        #if Curl
        case curl
        #endif
        var testDescription: String { rawValue }
        var configuration: TransportConfiguration.Engine {
            switch self {
            case .swiftNIO: .swiftNIO
            case .asyncHTTPClient: .asyncHTTPClient
            #if Curl
            case .curl: .curl
            #endif
            }
        }
    }

    /// What a test expects of the error.
    struct Expected: Sendable {
        var code: SageLLMError.Code
        var timeoutKind: SageLLMError.TimeoutKind? = nil
        var requestSent: Bool
        var receivedHead: Bool
        var reason: String? = nil
    }

    static func transport(_ baseURL: String, _ engine: Engine, readTimeout: Duration = .seconds(2), maximumResponseBytes: Int = 1 << 20)
        throws -> HTTPTransport
    {
        CurlTransport.install()  // nothing without the trait Curl
        return try HTTPTransport(
            baseURL: baseURL, apiKey: nil,
            configuration: TransportConfiguration(
                connectTimeout: .seconds(2), readTimeout: readTimeout, requestTimeout: .seconds(10),
                maximumResponseBytes: maximumResponseBytes, engine: engine.configuration),
            logger: Logger(label: "test"))
    }

    /// Sends a whole request, or opens a stream and reads it to the end; returns the error.
    static func failure(_ transport: HTTPTransport, stream: Bool, timeout: Duration? = nil) async -> SageLLMError? {
        do {
            let body = ByteBuffer(string: #"{"model":"m","messages":[]}"#)
            if stream {
                let response = try await transport.openStream(path: "chat/completions", body: body, requestID: "conf-1", timeout: timeout)
                let reader = StreamingBodyReader(response)
                while try await reader.next() != nil {}
            } else {
                _ = try await transport.send(method: .POST, path: "chat/completions", body: body, requestID: "conf-1", timeout: timeout)
            }
            return nil
        } catch {
            return error
        }
    }

    static func check(_ error: SageLLMError?, _ expected: Expected, _ engine: Engine, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error else {
            Issue.record("\(engine): no error", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == expected.code, "\(engine): \(error)", sourceLocation: sourceLocation)
        #expect(error.timeoutKind == expected.timeoutKind, "\(engine): \(error)", sourceLocation: sourceLocation)
        #expect(error.requestSent == expected.requestSent, "\(engine): \(error)", sourceLocation: sourceLocation)
        #expect(error.receivedResponseHead == expected.receivedHead, "\(engine): \(error)", sourceLocation: sourceLocation)
        #expect(error.endpoint?.hasSuffix("/v1/chat/completions") == true, "\(engine): \(error)", sourceLocation: sourceLocation)
        #expect(error.requestID == "conf-1", "\(engine): \(error)", sourceLocation: sourceLocation)
        if let reason = expected.reason {
            #expect(error.reason.contains(reason), "\(engine): \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Runs one fault against each engine.
    static func fault(
        _ steps: [HostileHTTPServer.Step], stream: Bool = false, readTimeout: Duration = .seconds(2), maximumResponseBytes: Int = 1 << 20,
        timeout: Duration? = nil, expect expected: Expected, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        for engine in Engine.allCases {
            try await HostileHTTPServer.with(respond: { _ in steps }) { baseURL, _ in
                let transport = try transport(baseURL, engine, readTimeout: readTimeout, maximumResponseBytes: maximumResponseBytes)
                check(await failure(transport, stream: stream, timeout: timeout), expected, engine, sourceLocation: sourceLocation)
                try await transport.shutdown()
            }
        }
    }

    @Test func aRefusedConnection() async throws {
        try await withRefusedLoopbackPort { port in
            for engine in Engine.allCases {
                let transport = try Self.transport("http://127.0.0.1:\(port)/v1", engine)
                Self.check(
                    await Self.failure(transport, stream: false),
                    Expected(code: .connectionFailed, requestSent: false, receivedHead: false, reason: "could not reach the server"), engine)
                try await transport.shutdown()
            }
        }
    }

    @Test func aResetMidHead() async throws {
        try await Self.fault(
            [.send("HTTP/1.1 200 OK\r\ncontent-ty"), .close],
            expect: Expected(code: .connectionFailed, requestSent: true, receivedHead: false, reason: "before answering"))
    }

    @Test func aResetMidStream() async throws {
        try await Self.fault(
            [.send(HostileHTTPServer.streamHead + HostileHTTPServer.chunk("data: {}\n\n")), .pause(.milliseconds(20)), .close], stream: true,
            expect: Expected(code: .streamInterrupted, requestSent: true, receivedHead: true, reason: "mid-response"))
    }

    @Test func aStallBeforeTheHead() async throws {
        try await Self.fault(
            [.hang], readTimeout: .milliseconds(300),
            expect: Expected(code: .timeout, timeoutKind: .idleRead, requestSent: true, receivedHead: false, reason: "sent nothing"))
    }

    @Test func aStallBetweenChunks() async throws {
        try await Self.fault(
            [.send(HostileHTTPServer.streamHead + HostileHTTPServer.chunk("data: {}\n\n")), .hang], stream: true,
            readTimeout: .milliseconds(300),
            expect: Expected(code: .timeout, timeoutKind: .idleRead, requestSent: true, receivedHead: true, reason: "stopped sending"))
    }

    @Test func anOversizeBody() async throws {
        try await Self.fault(
            [.send(HostileHTTPServer.response(body: String(repeating: "x", count: 5_000)))], maximumResponseBytes: 2_000,
            expect: Expected(code: .decoding, requestSent: true, receivedHead: true, reason: "larger than maximumResponseBytes"))
    }

    @Test func aChunkedEncodingError() async throws {
        try await Self.fault(
            [.send(HostileHTTPServer.streamHead + "zz\r\nnot a chunk\r\n"), .hang], stream: true,
            expect: Expected(code: .streamInterrupted, requestSent: true, receivedHead: true, reason: "not valid HTTP"))
    }

    @Test func aSlowServerMeetsTheTotalDeadline() async throws {
        // A byte every 50 ms keeps the read timeout happy; the request's 400 ms do not.
        let drip = (0..<40).flatMap { _ in [HostileHTTPServer.Step.send("x"), .pause(.milliseconds(50))] }
        try await Self.fault(
            [.send("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n")] + drip,
            timeout: .milliseconds(400),
            expect: Expected(code: .timeout, timeoutKind: .total, requestSent: true, receivedHead: true, reason: "did not complete in time"))
    }

    @Test func aNonSuccessStatusIsTheServersErrorWithItsBody() async throws {
        for engine in Engine.allCases {
            let body = #"{"error":{"message":"too busy","type":"overloaded"}}"#
            try await HostileHTTPServer.with(respond: { _ in
                [.send(HostileHTTPServer.response(status: "503 Service Unavailable", headers: ["retry-after: 2"], body: body))]
            }) { baseURL, _ in
                let transport = try Self.transport(baseURL, engine)
                let error = await Self.failure(transport, stream: true)
                #expect(error?.code == .httpStatus && error?.status == 503, "\(engine)")
                #expect(error?.serverMessage == "too busy" && error?.retryAfter == .seconds(2), "\(engine)")
                try await transport.shutdown()
            }
        }
    }
}
}
