public import HTTPTypes
public import NIOCore
public import NIOHTTPTypes

/// Keeps a client's connection from holding the server forever, as a real engine's server
/// does: a request whose head arrived but whose body stops coming for `readTimeout` is
/// dropped, and a client that closes its side of the connection is gone (HTTP/1.1 clients do
/// not half-close and then wait), so the connection is closed and its generation stops.
/// Idle keep-alive connections between requests are closed by Hummingbird's own idle timeout.
///
/// Sits in each connection's pipeline after the HTTP codec; runs on the connection's event loop.
/// The simulator's server and the gateway both use it: closing the connection is what tells
/// the handler above it that the client left (its `closeFuture` fires), so that the work for
/// that client (a generation, a relayed request, a place in a queue) ends at once.
public final class ClientConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart

    private let readTimeout: TimeAmount
    /// While a request is being received: when its last bytes arrived, and the check.
    private var receivingSince: NIODeadline?
    private var check: Scheduled<Void>?

    public init(readTimeout: TimeAmount) {
        self.readTimeout = readTimeout
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head, .body:
            receivingSince = .now()
            if check == nil { schedule(context, in: readTimeout) }
        case .end:
            receivingSince = nil
            check?.cancel()
            check = nil
        }
        context.fireChannelRead(data)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    private func schedule(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = loopBound.value
            handler.check = nil
            guard let since = handler.receivingSince else { return }
            let silent = NIODeadline.now() - since
            if silent >= handler.readTimeout {
                context.close(promise: nil)
            } else {
                handler.schedule(context, in: handler.readTimeout - silent)
            }
        }
    }
}
