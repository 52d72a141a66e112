#if Curl
import NIOCore
import NIOPosix
import Synchronization

/// An HTTP proxy on loopback that tunnels `CONNECT host:port` (how a client reaches an https
/// endpoint through `HTTPS_PROXY`): it connects to the target, answers `200 Connection
/// established`, then copies bytes both ways. It records every target it was asked for.
package struct ConnectProxy {
    package final class Record: Sendable {
        package init() {}
        package let targets = Mutex<[String]>([])
    }

    /// Runs `body` with the proxy's URL (`http://127.0.0.1:PORT`).
    package static func with<Result>(record: Record = Record(), _ body: (String) async throws -> Result) async throws -> Result {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ConnectHandler(record: record)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            let result = try await body("http://127.0.0.1:\(channel.localAddress?.port ?? 0)")
            try await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Reads the CONNECT head, opens the tunnel, then glues the two connections.
    private final class ConnectHandler: ChannelInboundHandler, @unchecked Sendable {
        // Safety: every method runs on the client connection's event loop; `peer` is set there too.
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let record: Record
        private var head = ByteBuffer()
        private var peer: (any Channel)?

        init(record: Record) { self.record = record }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            if let peer {
                peer.writeAndFlush(bytes, promise: nil)
                return
            }
            head.writeBuffer(&bytes)
            let text = String(buffer: head)
            guard text.contains("\r\n\r\n"), let requestLine = text.split(separator: "\r\n", maxSplits: 1).first else { return }
            let parts = requestLine.split(separator: " ")
            guard parts.count >= 2, parts[0] == "CONNECT", let colon = parts[1].lastIndex(of: ":"), let port = Int(parts[1][parts[1].index(after: colon)...])
            else {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")), promise: nil)
                context.close(promise: nil)
                return
            }
            let host = String(parts[1][..<colon])
            record.targets.withLock { $0.append("\(host):\(port)") }
            let client = context.channel
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            ClientBootstrap(group: context.eventLoop)
                .channelInitializer { peer in
                    peer.eventLoop.makeCompletedFuture { try peer.pipeline.syncOperations.addHandler(Relay(to: client)) }
                }
                .connect(host: host, port: port)
                .whenComplete { result in
                    let (handler, context) = bound.value
                    switch result {
                    case .success(let peer):
                        handler.peer = peer
                        context.writeAndFlush(handler.wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n")), promise: nil)
                    case .failure:
                        context.writeAndFlush(handler.wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")), promise: nil)
                        context.close(promise: nil)
                    }
                }
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer?.close(promise: nil)
            context.fireChannelInactive()
        }
    }

    /// Copies what the target sends back to the client.
    private final class Relay: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let client: any Channel
        init(to client: any Channel) { self.client = client }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            client.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            client.close(promise: nil)
            context.fireChannelInactive()
        }
    }
}
#endif
