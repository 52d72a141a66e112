#if Curl
import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// An https server on loopback for the libcurl engine's tests (trait Curl), with certificates made by
/// `openssl` for the run: a CA, the server's for 127.0.0.1, and a client's. It speaks HTTP/1.1
/// or (by ALPN) HTTP/2, may require a client certificate, and answers every request with
/// `{"protocol": ...}`, the protocol the request came over.
package struct TLSTestServer {
    package struct Certificates {
        package var directory: String
        package var ca: String { directory + "/ca.pem" }
        package var serverCertificate: String { directory + "/server.pem" }
        package var serverKey: String { directory + "/server.key" }
        package var clientCertificate: String { directory + "/client.pem" }
        package var clientKey: String { directory + "/client.key" }
    }

    package struct OpenSSLFailed: Error { package var arguments: [String] }

    /// Fresh certificates in a new directory, or nil where `openssl` is not installed.
    package static func makeCertificates() throws -> Certificates? {
        let openssl = "/usr/bin/openssl"
        guard FileManager.default.isExecutableFile(atPath: openssl) else { return nil }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func run(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: openssl)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw OpenSSLFailed(arguments: arguments) }
        }
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try run(["req", "-x509"] + key + ["-keyout", directory + "/ca.key", "-out", directory + "/ca.pem", "-days", "1", "-subj", "/CN=sagellm test CA"])
        for (name, extensions) in [("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")] {
            try extensions.write(toFile: directory + "/\(name).ext", atomically: true, encoding: .utf8)
            try run(["req"] + key + ["-keyout", directory + "/\(name).key", "-out", directory + "/\(name).csr", "-subj", "/CN=sagellm test \(name)"])
            try run([
                "x509", "-req", "-in", directory + "/\(name).csr", "-CA", directory + "/ca.pem", "-CAkey", directory + "/ca.key", "-CAcreateserial",
                "-out", directory + "/\(name).pem", "-days", "1", "-extfile", directory + "/\(name).ext",
            ])
        }
        return Certificates(directory: directory)
    }

    /// Runs `body` with the server's API root (`https://127.0.0.1:PORT/v1`). `answer`, when
    /// given, is the body of every response instead of the protocol's name.
    package static func with<Result>(
        _ certificates: Certificates, requireClientCertificate: Bool, http2: Bool, answer: String? = nil, _ body: (String) async throws -> Result
    ) async throws -> Result {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificates.serverCertificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certificates.serverKey, format: .pem)))
        tls.applicationProtocols = http2 ? ["h2"] : ["http/1.1"]
        if requireClientCertificate {
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .file(certificates.ca)
        }
        let context = try NIOSSLContext(configuration: tls)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                }.flatMap { () -> EventLoopFuture<Void> in
                    if http2 {
                        return channel.configureHTTP2Pipeline(mode: .server) { stream in
                            stream.eventLoop.makeCompletedFuture {
                                try stream.pipeline.syncOperations.addHandlers([HTTP2FramePayloadToHTTP1ServerCodec(), Responder(protocolName: "h2", answer: answer)])
                            }
                        }.map { _ in }
                    }
                    return channel.pipeline.configureHTTPServerPipeline().flatMap {
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Responder(protocolName: "http/1.1", answer: answer)) }
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let root = "https://127.0.0.1:\(channel.localAddress?.port ?? 0)/v1"
        do {
            let result = try await body(root)
            try await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Answers each request, once its end has arrived, with the protocol's name.
    final class Responder: ChannelInboundHandler, @unchecked Sendable {
        // Safety: every method runs on the channel's event loop.
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let protocolName: String
        let answer: String?
        init(protocolName: String, answer: String?) {
            self.protocolName = protocolName
            self.answer = answer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let body = ByteBuffer(string: answer ?? #"{"protocol":"\#(protocolName)"}"#)
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: String(body.readableBytes))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
#endif
