#if Curl
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import SageCurl
import SageTesting
import Testing

@testable import SageLLM

/// What the libcurl engine brings beyond the conformance cases it shares with the other
/// engines: Unix sockets, backpressure (a slow reader pauses the transfer, and the whole body
/// still arrives in order), and cancellation that closes the connection at once.
@Suite("The libcurl transport")
struct CurlTransportTests {
    static func transport(_ baseURL: String, readTimeout: Duration = .seconds(5)) throws -> HTTPTransport {
        CurlTransport.install()
        return try HTTPTransport(
            baseURL: baseURL, apiKey: "sk-curl-test",
            configuration: TransportConfiguration(connectTimeout: .seconds(2), readTimeout: readTimeout, engine: .curl),
            logger: Logger(label: "test"))
    }

    @Test func aUnixSocketEndpoint() async throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-\(UUID().uuidString.prefix(8)).sock").path
        defer { try? FileManager.default.removeItem(atPath: socket) }  // cleanup only
        try await HostileHTTPServer.with(unixSocket: socket, respond: { _ in [.send(HostileHTTPServer.response(body: HostileHTTPServer.goodChat))] }) { root, record in
            #expect(root == "unix://\(socket):/v1")
            let transport = try Self.transport("unix://\(socket)")  // the API's path defaults to /v1
            let body = try await transport.send(method: .POST, path: "chat/completions", body: ByteBuffer(string: "{}"), requestID: "unix-1")
            #expect(String(buffer: body).contains("chat.completion"))
            let head = record.heads.withLock { $0.first } ?? ""
            #expect(head.hasPrefix("POST /v1/chat/completions HTTP/1.1"), "\(head)")
            #expect(head.lowercased().contains("authorization: bearer sk-curl-test") && head.lowercased().contains("x-request-id: unix-1"))
            try await transport.shutdown()
        }
    }

    @Test func aSlowReaderPausesTheTransferAndGetsEveryByte() async throws {
        // 2 MiB, past the body's 1 MiB pause mark, read slowly at first.
        let piece = String(repeating: "abcdefgh", count: 1024)  // 8 KiB
        let pieces = 256
        try await HostileHTTPServer.with(respond: { _ in
            [.send("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: \(piece.utf8.count * pieces)\r\n\r\n"),
             .repeated(piece, count: pieces)]
        }) { root, _ in
            let transport = try Self.transport(root)
            let response = try await transport.openStream(path: "chat/completions", body: ByteBuffer(string: "{}"), requestID: "slow-1")
            let reader = StreamingBodyReader(response)
            var total = 0
            var reads = 0
            var intact = true
            while let chunk = try await reader.next() {
                reads += 1
                if reads <= 20 { try await Task.sleep(for: .milliseconds(10)) }  // a consumer behind the network
                // The body is "abcdefgh" over and over: a piece lost or given twice after a pause breaks the cycle.
                let first = chunk.readableBytesView.first ?? 0
                intact = intact && first == UInt8(97 + total % 8)
                total += chunk.readableBytes
            }
            #expect(total == piece.utf8.count * pieces)
            #expect(intact)
            try await transport.shutdown()
        }
    }

    @Test func cancellingAStreamClosesItsConnectionAtOnce() async throws {
        let record = HostileHTTPServer.Record()
        try await HostileHTTPServer.with(record: record, respond: { _ in
            [.send(HostileHTTPServer.streamHead + HostileHTTPServer.chunk("data: {}\n\n")), .hang]
        }) { root, _ in
            let transport = try Self.transport(root)
            let response = try await transport.openStream(path: "chat/completions", body: ByteBuffer(string: "{}"), requestID: "cancel-1")
            let reader = StreamingBodyReader(response)
            _ = try await reader.next()
            let started = ContinuousClock.now
            response.body.cancel()
            do {
                while try await reader.next() != nil {}
            } catch {
                // Cancelled: what is asserted is how soon.
            }
            #expect(ContinuousClock.now - started < .seconds(1))
            #expect(transport.requestsInFlight <= 1)
            try await transport.shutdown()
        }
    }

    static func transport(_ root: String, tls: TransportConfiguration.TLSFiles) throws -> HTTPTransport {
        CurlTransport.install()
        var configuration = TransportConfiguration(connectTimeout: .seconds(5), engine: .curl)
        configuration.tls = tls
        return try HTTPTransport(baseURL: root, apiKey: nil, configuration: configuration, logger: Logger(label: "test"))
    }

    static func protocolUsed(_ transport: HTTPTransport) async throws(SageLLMError) -> String {
        let body = try await transport.send(method: .POST, path: "chat/completions", body: ByteBuffer(string: "{}"), requestID: "tls-1")
        return String(buffer: body)
    }

    @Test func mutualTLSWithACustomCABundleAndAClientCertificate() async throws {
        guard let certificates = try TLSTestServer.makeCertificates() else {
            Issue.record("openssl is not installed, so no certificates can be made for this test")
            return
        }
        defer { try? FileManager.default.removeItem(atPath: certificates.directory) }  // cleanup only
        try await TLSTestServer.with(certificates, requireClientCertificate: true, http2: false) { root in
            let full = TransportConfiguration.TLSFiles(
                caBundlePath: certificates.ca, clientCertificatePath: certificates.clientCertificate, clientKeyPath: certificates.clientKey)
            let transport = try Self.transport(root, tls: full)
            #expect(try await Self.protocolUsed(transport).contains("http/1.1"))
            try await transport.shutdown()
            // Without the client certificate the server refuses the handshake.
            let anonymous = try Self.transport(root, tls: .init(caBundlePath: certificates.ca))
            let refused = await #expect(throws: SageLLMError.self) { try await Self.protocolUsed(anonymous) }
            #expect(refused?.code == .connectionFailed, "\(String(describing: refused))")
            try await anonymous.shutdown()
            // Without the CA bundle the server's certificate is not trusted.
            let untrusting = try Self.transport(root, tls: .init(clientCertificatePath: certificates.clientCertificate, clientKeyPath: certificates.clientKey))
            let untrusted = await #expect(throws: SageLLMError.self) { try await Self.protocolUsed(untrusting) }
            #expect(untrusted?.code == .connectionFailed && untrusted?.requestSent == false, "\(String(describing: untrusted))")
            try await untrusting.shutdown()
        }
    }

    @Test func http2ToAnHTTPSEndpoint() async throws {
        guard let certificates = try TLSTestServer.makeCertificates() else {
            Issue.record("openssl is not installed, so no certificates can be made for this test")
            return
        }
        defer { try? FileManager.default.removeItem(atPath: certificates.directory) }  // cleanup only
        try await TLSTestServer.with(certificates, requireClientCertificate: false, http2: true) { root in
            let transport = try Self.transport(root, tls: .init(caBundlePath: certificates.ca))
            #expect(try await Self.protocolUsed(transport).contains("h2"))
            try await transport.shutdown()
        }
    }

    @Test func withoutTheCurlEngineAUnixSocketIsAClearError() {
        let error = #expect(throws: SageLLMError.self) {
            try HTTPTransport(baseURL: "unix:///tmp/engine.sock", apiKey: nil, configuration: TransportConfiguration(), logger: Logger(label: "t"))
        }
        #expect(error?.reason.contains("curl transport") == true)
    }
}
#else
import Logging
import SageCurl
import Testing

@testable import SageLLM

/// In the default build (no trait Curl), asking for libcurl says how to get it.
@Suite("The libcurl transport, absent")
struct CurlTransportAbsentTests {
    @Test func askingForCurlWithoutTheTraitSaysHowToBuildIt() async throws {
        CurlTransport.install()  // does nothing here
        #expect(!CurlTransport.isAvailable)
        let error = #expect(throws: SageLLMError.self) {
            try HTTPTransport(
                baseURL: "http://127.0.0.1:1/v1", apiKey: nil, configuration: TransportConfiguration(engine: .curl), logger: Logger(label: "t"))
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.reason.contains("--traits Curl") == true && error?.reason.contains("libcurl4-openssl-dev") == true, "\(String(describing: error))")
        let settings = try await SageSettings.load(environment: ["SAGE_HTTP_TRANSPORT": "curl"], defaultFileLocations: [])
        #expect(settings.transport.engine == .curl)
        let wrong = await #expect(throws: SageLLMError.self) {
            try await SageSettings.load(environment: ["SAGE_HTTP_TRANSPORT": "carrier-pigeon"], defaultFileLocations: [])
        }
        #expect(wrong?.reason.contains("curl") == true)
    }
}
#endif
