import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Takes the simulator's own record of each generation request where it meets the network:
/// arrival when the request head is decoded on the connection, and the first chunk when its
/// bytes have been written to the socket. Work the server does in between, including waiting
/// for its own threads, counts as the server's time, as it would for a real engine; what a
/// client measures on top of it is the client's and the network's.
///
/// Sits in each connection's pipeline after the HTTP codec. HTTP/1.1 answers one request at a
/// time per connection, so one pending request id per connection is enough.
final class WireTimingHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private static let requestIDField = HTTPField.Name("x-request-id")
    private let ledger: RequestLedger
    /// The request whose first body bytes are still to be written.
    private var awaitingFirstChunk: String?

    init(ledger: RequestLedger) {
        self.ledger = ledger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            let now = ContinuousClock.now
            awaitingFirstChunk = nil
            if head.method == .post, head.path?.hasSuffix("completions") == true,
                let field = Self.requestIDField, let requestID = head.headerFields[field], ledger.isRecordingTimings
            {
                ledger.arrived(requestID, at: now)
                awaitingFirstChunk = requestID
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let requestID = awaitingFirstChunk, case .body = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        awaitingFirstChunk = nil
        let written = promise ?? context.eventLoop.makePromise()
        let ledger = self.ledger
        written.futureResult.whenSuccess { ledger.firstChunkWritten(requestID, at: .now) }
        context.write(data, promise: written)
    }
}
