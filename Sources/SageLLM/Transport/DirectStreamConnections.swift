import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Plain-HTTP/1.1 keep-alive connections on SwiftNIO alone, for
/// ``HTTPTransport/receiveStream(path:body:requestID:timeout:written:receive:)`` to `http://` servers.
///
/// A load generator's own cost per request lands in what it measures when client and server
/// share the machine. AsyncHTTPClient's request bag, state machines and pool bookkeeping cost
/// 230-280 µs more CPU per request (client and server together, `Docs/PERFORMANCE.md`) than
/// one `ChannelHandler` that writes the request in one flush and hands each body piece to its
/// callback where it is read. This is that handler, and a stack of idle connections: one
/// connection per request in flight, with no cap, as a load generator wants; at most
/// `maximumIdle` are kept. `https://` keeps AsyncHTTPClient.
final class DirectStreamConnections: Sendable {
    /// Where requests go: host and port to connect to, the `Host` header and the base path.
    struct Target: Sendable, Equatable {
        var host: String
        var port: Int
        var hostHeader: String
        /// The base URL's path, e.g. `/v1` (empty for the root).
        var basePath: String
    }

    /// How an exchange ended when it did not end with a whole response, and how far it got.
    struct Failure: Error {
        enum Kind {
            /// The connection closed before the response ended.
            case connectionClosed
            /// Nothing was read for the read timeout.
            case idleRead
            /// The request's total deadline passed.
            case deadline
            case cancelled
            /// The receive callback threw this; the connection was closed.
            case receive(any Error)
            /// Connecting or the channel failed with this.
            case channel(any Error)
        }
        var kind: Kind
        var receivedHead = false
        var receivedBody = false

        /// The connection closed or was reset before any of the response arrived.
        var closedBeforeAnswer: Bool {
            guard !receivedHead else { return false }
            switch kind {
            case .connectionClosed: return true
            case .channel(let error): return HTTPTransport.isClosedBeforeAnswer(error)
            default: return false
            }
        }
    }

    /// A response that ended: its head, and the body of a non-2xx answer (bounded).
    struct Outcome: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var errorBody: [UInt8]
    }

    let target: Target
    private let connectTimeout: Duration
    private let idleTimeout: Duration
    private let maximumIdle: Int
    private let idle = Mutex<[DirectStreamConnection]>([])
    private let isClosed = Atomic<Bool>(false)

    init(target: Target, connectTimeout: Duration, idleTimeout: Duration, maximumIdle: Int) {
        self.target = target
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.maximumIdle = maximumIdle
    }

    /// Sends one POST and hands each piece of a 2xx body to `receive` on the event loop, with
    /// the instant it was read; `written` gets the instant just before the request is written
    /// to its open connection. Throws a ``Failure`` when the exchange ends without a whole
    /// response.
    func post(
        path: String, headers: HTTPHeaders, body: ByteBuffer, deadline: ContinuousClock.Instant, readTimeout: Duration,
        written: @escaping @Sendable (ContinuousClock.Instant) -> Void,
        receive: @escaping @Sendable (ByteBuffer, ContinuousClock.Instant) throws -> Void
    ) async throws -> Outcome {
        var (connection, reused) = try await acquire(fresh: false)
        while true {
            do {
                return try await exchange(
                    on: connection, path: path, headers: headers, body: body, deadline: deadline, readTimeout: readTimeout,
                    written: written, receive: receive)
            } catch let failure as Failure where reused && failure.closedBeforeAnswer {
                // The server had closed this kept-alive connection: the request reached no
                // server, so it goes out again at once, once, on a new connection.
                (connection, reused) = try await acquire(fresh: true)
            }
        }
    }

    /// One request and its response on `connection`.
    private func exchange(
        on connection: DirectStreamConnection, path: String, headers: HTTPHeaders, body: ByteBuffer,
        deadline: ContinuousClock.Instant, readTimeout: Duration,
        written: @escaping @Sendable (ContinuousClock.Instant) -> Void,
        receive: @escaping @Sendable (ByteBuffer, ContinuousClock.Instant) throws -> Void
    ) async throws -> Outcome {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target.basePath + "/" + path)
        head.headers.reserveCapacity(headers.count + 2)
        head.headers.add(name: "host", value: target.hostHeader)
        head.headers.add(contentsOf: headers)
        head.headers.add(name: "content-length", value: String(body.readableBytes))
        let exchange = DirectStreamExchange(
            head: head, body: body, deadline: deadline, readTimeout: readTimeout, written: written, receive: receive,
            promise: connection.channel.eventLoop.makePromise())
        let outcome = try await withTaskCancellationHandler {
            connection.start(exchange)
            return try await exchange.promise.futureResult.get()
        } onCancel: {
            connection.cancel(exchange)
        }
        release(connection)
        return outcome
    }

    /// An idle connection that is still open (`reused`), or a new one; always a new one when
    /// `fresh` is set.
    private func acquire(fresh: Bool) async throws -> (connection: DirectStreamConnection, reused: Bool) {
        let now = ContinuousClock.now
        while !fresh, let connection = idle.withLock({ $0.popLast() }) {
            if connection.channel.isActive, now - connection.idleSince < idleTimeout { return (connection, true) }
            connection.channel.close(promise: nil)
        }
        let handler = DirectStreamHandler()
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(connectTimeout.nanoseconds))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: target.host, port: target.port).get()
            return (DirectStreamConnection(channel: channel, handler: handler), false)
        } catch {
            throw Failure(kind: .channel(error))
        }
    }

    /// Keeps a connection whose response ended with keep-alive; closes any other.
    private func release(_ connection: DirectStreamConnection) {
        guard connection.reusable, !isClosed.load(ordering: .relaxed) else {
            connection.channel.close(promise: nil)
            return
        }
        connection.idleSince = .now
        let kept = idle.withLock { stack in
            guard stack.count < maximumIdle else { return false }
            stack.append(connection)
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    /// Closes the idle connections; connections in use close when their exchange ends.
    func shutdown() {
        isClosed.store(true, ordering: .relaxed)
        for connection in idle.withLock({ stack in defer { stack.removeAll() }; return stack }) {
            connection.channel.close(promise: nil)
        }
    }
}

/// One request and its response, owned by the connection's event loop once started.
final class DirectStreamExchange: @unchecked Sendable {
    // Safety: created on the caller's task and handed to the event loop in `start`; after
    // that only the event loop touches the mutable fields.
    let head: HTTPRequestHead
    let body: ByteBuffer
    let deadline: ContinuousClock.Instant
    let readTimeout: Duration
    let written: @Sendable (ContinuousClock.Instant) -> Void
    let receive: @Sendable (ByteBuffer, ContinuousClock.Instant) throws -> Void
    let promise: EventLoopPromise<DirectStreamConnections.Outcome>

    var status: HTTPResponseStatus?
    var headers = HTTPHeaders()
    var errorBody: [UInt8] = []
    var lastRead = ContinuousClock.now
    var keepAlive = true
    var receivedBody = false
    /// Cancelled before the event loop started it.
    var cancelled = false
    var idleTimer: Scheduled<Void>?
    var deadlineTimer: Scheduled<Void>?

    init(
        head: HTTPRequestHead, body: ByteBuffer, deadline: ContinuousClock.Instant, readTimeout: Duration,
        written: @escaping @Sendable (ContinuousClock.Instant) -> Void,
        receive: @escaping @Sendable (ByteBuffer, ContinuousClock.Instant) throws -> Void,
        promise: EventLoopPromise<DirectStreamConnections.Outcome>
    ) {
        self.head = head
        self.body = body
        self.deadline = deadline
        self.readTimeout = readTimeout
        self.written = written
        self.receive = receive
        self.promise = promise
    }
}

/// A pooled connection and its handler.
final class DirectStreamConnection: @unchecked Sendable {
    // Safety: `idleSince` is written by the task that holds the connection (a connection is
    // held by one task at a time, handed over through the pool's lock); the handler is only
    // touched on the channel's event loop.
    let channel: any Channel
    private let handler: DirectStreamHandler
    var idleSince = ContinuousClock.now

    init(channel: any Channel, handler: DirectStreamHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Whether the last exchange ended with a whole response on a connection kept alive.
    var reusable: Bool { channel.isActive && handler.reusable.load(ordering: .relaxed) }

    func start(_ exchange: DirectStreamExchange) {
        let handler = handler
        channel.eventLoop.execute { handler.start(exchange) }
    }

    func cancel(_ exchange: DirectStreamExchange) {
        let handler = handler
        channel.eventLoop.execute { handler.cancel(exchange) }
    }
}

/// Writes a request in one flush and reads its response, stamping each body piece as it is
/// read; enforces the idle-read timeout and the total deadline with two timers per request
/// (the idle timer re-arms only when it fires, not on every read).
final class DirectStreamHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // Safety: every method runs on the channel's event loop; `reusable` is atomic.
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private var context: ChannelHandlerContext?
    private var exchange: DirectStreamExchange?
    let reusable = Atomic<Bool>(false)

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func start(_ exchange: DirectStreamExchange) {
        reusable.store(false, ordering: .relaxed)
        // The connection is not handed back after a failed start, so it is closed here.
        guard !exchange.cancelled else {
            exchange.promise.fail(DirectStreamConnections.Failure(kind: .cancelled))
            context?.close(promise: nil)
            return
        }
        guard let context, context.channel.isActive, self.exchange == nil else {
            exchange.promise.fail(DirectStreamConnections.Failure(kind: .connectionClosed))
            context?.close(promise: nil)
            return
        }
        self.exchange = exchange
        let loop = context.eventLoop
        let now = ContinuousClock.now
        exchange.lastRead = now
        exchange.deadlineTimer = loop.scheduleTask(in: .nanoseconds(max(0, (exchange.deadline - now).nanoseconds))) {
            self.fail(exchange, .deadline)
        }
        armIdleTimer(exchange, after: exchange.readTimeout, on: loop)
        exchange.written(.now)
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func armIdleTimer(_ exchange: DirectStreamExchange, after delay: Duration, on loop: any EventLoop) {
        exchange.idleTimer = loop.scheduleTask(in: .nanoseconds(delay.nanoseconds)) {
            guard self.exchange === exchange else { return }
            let silent = ContinuousClock.now - exchange.lastRead
            if silent >= exchange.readTimeout {
                self.fail(exchange, .idleRead)
            } else {
                self.armIdleTimer(exchange, after: exchange.readTimeout - silent, on: loop)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = ContinuousClock.now
        guard let exchange else { return }
        exchange.lastRead = now
        switch unwrapInboundIn(data) {
        case .head(let head):
            exchange.status = head.status
            exchange.headers = head.headers
            exchange.keepAlive = head.isKeepAlive
        case .body(let buffer):
            guard let status = exchange.status, (200..<300).contains(status.code) else {
                exchange.errorBody.append(
                    contentsOf: buffer.readableBytesView.prefix(HTTPTransport.errorBodyLimit - exchange.errorBody.count))
                return
            }
            exchange.receivedBody = true
            do {
                try exchange.receive(buffer, now)
            } catch {
                fail(exchange, .receive(error))
            }
        case .end:
            guard let status = exchange.status else {
                fail(exchange, .connectionClosed)
                return
            }
            finish(
                exchange,
                with: .success(DirectStreamConnections.Outcome(status: status, headers: exchange.headers, errorBody: exchange.errorBody)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange { fail(exchange, .connectionClosed) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let exchange { fail(exchange, .channel(error)) }
        context.close(promise: nil)
    }

    /// Cancels the exchange, whether or not it has started.
    func cancel(_ exchange: DirectStreamExchange) {
        exchange.cancelled = true
        fail(exchange, .cancelled)
    }

    private func fail(_ exchange: DirectStreamExchange, _ kind: DirectStreamConnections.Failure.Kind) {
        finish(
            exchange,
            with: .failure(
                DirectStreamConnections.Failure(
                    kind: kind, receivedHead: exchange.status != nil, receivedBody: exchange.receivedBody)))
    }

    /// Ends the exchange once: stops its timers and completes its promise. A failure closes
    /// the connection, since the rest of that response may still arrive on it.
    private func finish(_ exchange: DirectStreamExchange, with result: Result<DirectStreamConnections.Outcome, any Error>) {
        guard self.exchange === exchange else { return }
        self.exchange = nil
        exchange.idleTimer?.cancel()
        exchange.deadlineTimer?.cancel()
        switch result {
        case .success(let outcome):
            reusable.store(exchange.keepAlive, ordering: .relaxed)
            exchange.promise.succeed(outcome)
            if !exchange.keepAlive { context?.close(promise: nil) }
        case .failure(let error):
            exchange.promise.fail(error)
            context?.close(promise: nil)
        }
    }
}

extension DirectStreamConnections.Target {
    /// The target of an `http://` base URL; `nil` for `https://` or a URL it cannot read.
    init?(baseURL: String) {
        guard baseURL.lowercased().hasPrefix("http://") else { return nil }
        let rest = baseURL.dropFirst("http://".count)
        let authority = rest.prefix(while: { $0 != "/" })
        basePath = String(rest.dropFirst(authority.count))
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        hostHeader = String(authority)
        let hostPart: Substring
        let portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            portPart = after.hasPrefix(":") ? after.dropFirst() : (after.isEmpty ? nil : after)
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
            portPart = nil
        }
        guard !hostPart.isEmpty else { return nil }
        host = String(hostPart)
        if let portPart {
            guard let port = Int(portPart), (1...65_535).contains(port) else { return nil }
            self.port = port
        } else {
            port = 80
        }
    }
}
