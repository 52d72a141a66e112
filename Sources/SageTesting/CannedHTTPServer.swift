import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A loopback HTTP server with fixed answers per path, for what the simulator cannot pose as:
/// a server that answers late or never, an empty model list, HTML, another engine's fingerprints.
package struct CannedHTTPServer {
    package struct Reply: Sendable {
        package var status: HTTPResponseStatus = .ok
        package var body: String
        /// Answer only after this long.
        package var delay: Duration = .zero
        /// Never answer.
        package var hang = false

        package init(status: HTTPResponseStatus = .ok, body: String, delay: Duration = .zero, hang: Bool = false) {
            self.status = status
            self.body = body
            self.delay = delay
            self.hang = hang
        }
    }

    /// Counts the connections the server accepted.
    package final class ConnectionCount: Sendable {
        package let value = Atomic<Int>(0)
        package init() {}
    }

    /// Runs `body` with the server's API root (`http://127.0.0.1:PORT/v1`); unknown paths answer 404.
    package static func with<Result>(
        _ routes: [String: Reply], connections: ConnectionCount? = nil, _ body: (String) async throws -> Result
    ) async throws -> Result {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connections?.value.add(1, ordering: .relaxed)
                return channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(routes: routes))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        do {
            let result = try await body("http://127.0.0.1:\(port)/v1")
            try await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Runs `body` with a base URL whose port refuses connections (see `withRefusedLoopbackPort`).
    package static func withRefusedBaseURL<Result>(_ body: (String) async throws -> Result) async throws -> Result {
        try await withRefusedLoopbackPort { port in try await body("http://127.0.0.1:\(port)/v1") }
    }

    /// An OpenAI model list with one model.
    package static func modelList(_ id: String, ownedBy: String) -> String {
        #"{"object":"list","data":[{"id":"\#(id)","object":"model","created":0,"owned_by":"\#(ownedBy)"}]}"#
    }

    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let routes: [String: Reply]
        init(routes: [String: Reply]) { self.routes = routes }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = unwrapInboundIn(data) else { return }
            let path = String(head.uri.prefix { $0 != "?" })
            let reply = routes[path] ?? Reply(status: .notFound, body: #"{"error":{"message":"not found"}}"#)
            if reply.hang { return }
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let send = {
                let context = loopBound.value
                var headers = HTTPHeaders()
                headers.add(name: "content-length", value: String(reply.body.utf8.count))
                headers.add(name: "content-type", value: reply.body.hasPrefix("{") ? "application/json" : "text/html")
                context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: reply.status, headers: headers))), promise: nil)
                context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: reply.body)))), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            }
            if reply.delay > .zero {
                let nanoseconds = reply.delay.components.seconds * 1_000_000_000 + reply.delay.components.attoseconds / 1_000_000_000
                context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) { send() }
            } else {
                send()
            }
        }
    }
}
