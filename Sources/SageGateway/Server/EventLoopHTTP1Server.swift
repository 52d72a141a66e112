import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import SageSupport

/// Hummingbird's HTTP/1.1 server with each connection's handling run on the connection's own
/// event loop (a task executor preference): reading the request, the relay through the
/// control plane and writing the answer happen on the thread that owns the socket, and (with
/// the upstream connection on the same loop, see `NIOHTTP1Engine`) a request through the
/// gateway never changes thread.
struct EventLoopHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> { inner.setup(channel: channel, logger: logger) }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await inner.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1, each connection handled on its own event loop, guarded by a
    /// ``ClientConnectionGuard``: a client that closes its side of the connection has left
    /// (its request's work ends at once, as nginx does), and a request body that stops
    /// arriving for `readTimeout` drops the connection.
    static func http1OnEventLoops(readTimeout: TimeAmount) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            EventLoopHTTP1Channel(
                inner: HTTP1Channel(
                    responder: responder, configuration: .init(additionalChannelHandlers: [ClientConnectionGuard(readTimeout: readTimeout)])))
        }
    }
}
