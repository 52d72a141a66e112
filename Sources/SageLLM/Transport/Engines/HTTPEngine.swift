import NIOCore
import NIOHTTP1

/// What moves bytes for ``HTTPTransport``: one HTTP exchange at a time, over pooled
/// connections. Two engines conform: ``AsyncHTTPClientEngine`` (https, HTTP/2, any URL) and
/// ``NIOHTTP1Engine`` (plain `http://`, HTTP/1.1 on SwiftNIO alone, which costs less CPU per
/// request). Another engine slots in as one more conforming type.
///
/// An engine reports every failure as a ``TransportFailure`` (what happened and how far the
/// exchange got); ``HTTPTransport`` turns that into a ``SageLLMError`` in one place. Engines
/// stamp where the bytes are: ``EngineRequest/onWritten`` as the request is handed to the
/// connection, and each ``BodyPiece`` as it is read from the socket.
package protocol HTTPEngine: Sendable {
    /// Sends `request` and returns once the response head has arrived; the body is read from
    /// the returned response. `receiver`, when given, gets each piece of a 2xx body on the
    /// connection's event loop instead (it must be quick and must not block; what it throws
    /// ends the exchange).
    func open(_ request: EngineRequest, receiver: BodyReceiver?) async throws(TransportFailure) -> EngineResponse

    /// Closes the pooled connections; exchanges in flight end as their connections close.
    func shutdown() async
}

/// Gets each piece of a 2xx body where it is read (see ``HTTPEngine/open(_:receiver:)``).
package typealias BodyReceiver = @Sendable (BodyPiece) throws -> Void

/// One request for an engine.
package struct EngineRequest: Sendable {
    package var method: HTTPMethod
    /// The absolute URL, e.g. `http://127.0.0.1:8000/v1/chat/completions`.
    package var url: String
    /// The URL's path (and the base URL's), e.g. `/v1/chat/completions`.
    package var path: String
    package var headers: HTTPHeaders
    package var body: ByteBuffer?
    /// When the whole exchange must have ended; nil: no total deadline (a healthy stream).
    package var deadline: ContinuousClock.Instant?
    /// When the response head must have arrived (a stream's bound while it has no total deadline).
    package var headDeadline: ContinuousClock.Instant?
    /// The longest silence while the response is awaited or read.
    package var readTimeout: Duration
    /// Send on a new connection, not a kept-alive one.
    package var freshConnection = false
    /// Told the instant the request is handed to its connection.
    package var onWritten: (@Sendable (ContinuousClock.Instant) -> Void)?

    package init(
        method: HTTPMethod, url: String, path: String, headers: HTTPHeaders, body: ByteBuffer?, deadline: ContinuousClock.Instant?,
        readTimeout: Duration
    ) {
        self.method = method
        self.url = url
        self.path = path
        self.headers = headers
        self.body = body
        self.deadline = deadline
        self.readTimeout = readTimeout
    }
}

/// A response whose head has arrived.
package struct EngineResponse: Sendable {
    package var status: HTTPResponseStatus
    package var headers: HTTPHeaders
    /// The body, read piece by piece (empty when a receiver got the pieces).
    package var body: ResponseBody

    package init(status: HTTPResponseStatus, headers: HTTPHeaders, body: ResponseBody) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A piece of a response body and the instant the engine read it from the connection.
package struct BodyPiece: Sendable {
    package var bytes: ByteBuffer
    package var received: ContinuousClock.Instant

    package init(bytes: ByteBuffer, received: ContinuousClock.Instant) {
        self.bytes = bytes
        self.received = received
    }
}

/// How an exchange ended when it did not end with a whole response, and how far it got: the
/// engines' one vocabulary of failures.
package struct TransportFailure: Error, Sendable {
    package enum Kind: Sendable {
        /// No connection within the connect timeout.
        case connectTimeout
        /// No connection: refused, unreachable, no such host.
        case connectFailed
        /// The server closed or reset the connection.
        case closed
        /// Nothing arrived for the read timeout.
        case idleRead
        /// The request's total deadline (or its deadline for the head) passed.
        case deadline
        case cancelled
        /// What arrived is not a valid HTTP response (a bad status line, chunked encoding).
        case malformedResponse
        /// The receiver threw ``underlying``.
        case receiverFailed
    }

    package var kind: Kind
    /// The engine's own error, for the message.
    package var underlying: (any Error)?
    /// Whether any of the request may have reached the server (false only when it certainly did not).
    package var requestWritten: Bool
    package var receivedHead = false
    package var receivedBody = false
    /// Whether the request went out on a kept-alive connection that had carried one before.
    package var reusedConnection = false

    package init(
        _ kind: Kind, underlying: (any Error)? = nil, requestWritten: Bool, receivedHead: Bool = false, receivedBody: Bool = false,
        reusedConnection: Bool = false
    ) {
        self.kind = kind
        self.underlying = underlying
        self.requestWritten = requestWritten
        self.receivedHead = receivedHead
        self.receivedBody = receivedBody
        self.reusedConnection = reusedConnection
    }

    /// A kept-alive connection the server had closed: the request reached no server, so it
    /// may go out again at once.
    var isStaleConnection: Bool {
        guard !receivedHead else { return false }
        return !requestWritten || (reusedConnection && kind == .closed)
    }
}
