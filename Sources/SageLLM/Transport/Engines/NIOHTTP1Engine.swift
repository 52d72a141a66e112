import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The engine for plain `http://` base URLs: HTTP/1.1 keep-alive connections on SwiftNIO
/// alone.
///
/// When client and server share a machine (a local engine, a benchmark), the client's own CPU
/// per request lands in what is measured. AsyncHTTPClient's request bag, state machines and
/// pool bookkeeping cost more per request (`Docs/PERFORMANCE.md`) than one `ChannelHandler`
/// that writes the request in one flush and hands each body piece on where it is read. This is
/// that handler, and a pool: one connection per request in flight, at most
/// `maximumConnections` at once (further requests wait in arrival order, within their
/// deadline), idle ones kept for reuse. `https://` uses ``AsyncHTTPClientEngine``.
package final class NIOHTTP1Engine: HTTPEngine {
    /// Where requests go: host and port to connect to, and the `Host` header.
    struct Target: Sendable, Equatable {
        var host: String
        var port: Int
        var hostHeader: String
        /// The base URL's path, e.g. `/v1` (empty for the root).
        var basePath: String
    }

    let target: Target
    private let connectTimeout: Duration
    private let idleTimeout: Duration
    /// Connections in use at once (the pool's size).
    private let inUse: FairSemaphore
    private let idle = Mutex<[NIOHTTP1Connection]>([])
    private let isClosed = Atomic<Bool>(false)

    init(target: Target, connectTimeout: Duration, idleTimeout: Duration, maximumConnections: Int) {
        self.target = target
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.inUse = FairSemaphore(limit: maximumConnections)
    }

    package func open(_ request: EngineRequest, receiver: BodyReceiver?) async throws(TransportFailure) -> EngineResponse {
        try await takeSlot(until: request.headDeadline.map { min($0, request.deadline ?? $0) } ?? request.deadline)
        let connection: NIOHTTP1Connection
        let reused: Bool
        do {
            (connection, reused) = try await acquire(fresh: request.freshConnection)
        } catch {
            inUse.release()
            throw error
        }
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.path)
        head.headers.reserveCapacity(request.headers.count + 2)
        head.headers.add(name: "host", value: target.hostHeader)
        head.headers.add(contentsOf: request.headers)
        if let body = request.body { head.headers.add(name: "content-length", value: String(body.readableBytes)) }
        let exchange = NIOHTTP1Exchange(
            head: head, request: request, receiver: receiver, reusedConnection: reused,
            headPromise: connection.channel.eventLoop.makePromise()
        ) { [weak self] reusable in
            self?.release(connection, reusable: reusable)
        }
        do {
            return try await withTaskCancellationHandler {
                connection.start(exchange)
                return try await exchange.headPromise.futureResult.get()
            } onCancel: {
                connection.cancel(exchange)
            }
        } catch let failure as TransportFailure {
            throw failure
        } catch {
            throw TransportFailure(.cancelled, underlying: error, requestWritten: true)
        }
    }

    /// Waits for one of the pool's connections to be free, at most until `deadline`.
    private func takeSlot(until deadline: ContinuousClock.Instant?) async throws(TransportFailure) {
        if inUse.tryAcquire() { return }
        do {
            if let deadline {
                guard try await inUse.acquire(until: deadline) else { throw TransportFailure(.deadline, requestWritten: false) }
            } else {
                try await inUse.acquire()
            }
        } catch let failure as TransportFailure {
            throw failure
        } catch {
            throw TransportFailure(.cancelled, requestWritten: false)
        }
    }

    /// An idle connection that is still open (`reused`), or a new one; always a new one when
    /// `fresh` is set.
    ///
    /// Called from an event loop's thread (a server relaying on its connection's loop), it
    /// prefers a connection of that loop, and opens new ones there: the exchange then never
    /// changes thread.
    private func acquire(fresh: Bool) async throws(TransportFailure) -> (connection: NIOHTTP1Connection, reused: Bool) {
        let now = ContinuousClock.now
        let loop = MultiThreadedEventLoopGroup.currentEventLoop
        while !fresh, let connection = idle.withLock({ Self.take(from: &$0, preferring: loop) }) {
            if connection.channel.isActive, now - connection.idleSince < idleTimeout { return (connection, true) }
            connection.channel.close(promise: nil)
        }
        let handler = NIOHTTP1ExchangeHandler()
        do {
            let bootstrap = loop.flatMap { ClientBootstrap(validatingGroup: $0) } ?? ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            let channel = try await bootstrap
                .connectTimeout(.nanoseconds(connectTimeout.nanoseconds))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: target.host, port: target.port).get()
            return (NIOHTTP1Connection(channel: channel, handler: handler), false)
        } catch ChannelError.connectTimeout {
            throw TransportFailure(.connectTimeout, requestWritten: false)
        } catch {
            throw TransportFailure(.connectFailed, underlying: error, requestWritten: false)
        }
    }

    /// The most recently idle connection of `loop` among the last few, else the most recently
    /// idle one.
    private static func take(from idle: inout [NIOHTTP1Connection], preferring loop: (any EventLoop)?) -> NIOHTTP1Connection? {
        if let loop {
            for index in idle.indices.reversed().prefix(8) where idle[index].channel.eventLoop === loop {
                return idle.remove(at: index)
            }
        }
        return idle.popLast()
    }

    /// Keeps a connection whose response ended with keep-alive, closes any other, and frees its
    /// place in the pool.
    private func release(_ connection: NIOHTTP1Connection, reusable: Bool) {
        defer { inUse.release() }
        guard reusable, connection.channel.isActive, !isClosed.load(ordering: .relaxed) else {
            connection.channel.close(promise: nil)
            return
        }
        connection.idleSince = .now
        idle.withLock { $0.append(connection) }  // at most the pool's size: each was in use
    }

    /// Closes the idle connections; connections in use close when their exchange ends.
    package func shutdown() async {
        isClosed.store(true, ordering: .relaxed)
        for connection in idle.withLock({ stack in defer { stack.removeAll() }; return stack }) {
            connection.channel.close(promise: nil)
        }
    }
}

/// One request and its response, owned by the connection's event loop once started.
final class NIOHTTP1Exchange: @unchecked Sendable {
    // Safety: created on the caller's task and handed to the event loop in `start`; after
    // that only the event loop touches the mutable fields.
    let head: HTTPRequestHead
    let request: EngineRequest
    let receiver: BodyReceiver?
    let reusedConnection: Bool
    let headPromise: EventLoopPromise<EngineResponse>
    /// Gives the connection back (true: it may carry another request) once the exchange ended.
    let release: @Sendable (Bool) -> Void

    var written = false
    var status: HTTPResponseStatus?
    var body: ResponseBody?
    /// 2xx pieces go to the receiver.
    var receiving = false
    var lastRead = ContinuousClock.now
    var keepAlive = true
    var receivedBody = false
    /// The consumer has not read enough: the connection is not read from.
    var paused = false
    /// Cancelled before the event loop started it.
    var cancelled = false
    var idleTimer: Scheduled<Void>?
    var deadlineTimer: Scheduled<Void>?

    init(
        head: HTTPRequestHead, request: EngineRequest, receiver: BodyReceiver?, reusedConnection: Bool,
        headPromise: EventLoopPromise<EngineResponse>, release: @escaping @Sendable (Bool) -> Void
    ) {
        self.head = head
        self.request = request
        self.receiver = receiver
        self.reusedConnection = reusedConnection
        self.headPromise = headPromise
        self.release = release
    }

    /// The first deadline to watch: the head's or the total one, whichever comes first.
    var firstDeadline: ContinuousClock.Instant? {
        switch (request.headDeadline, request.deadline) {
        case (let head?, let total?): min(head, total)
        case (let head?, nil): head
        case (nil, let total): total
        }
    }

    func failure(_ kind: TransportFailure.Kind, _ underlying: (any Error)? = nil) -> TransportFailure {
        TransportFailure(
            kind, underlying: underlying, requestWritten: written, receivedHead: status != nil, receivedBody: receivedBody,
            reusedConnection: reusedConnection)
    }
}

/// A pooled connection and its handler.
final class NIOHTTP1Connection: @unchecked Sendable {
    // Safety: `idleSince` is written by whoever holds the connection (one holder at a time,
    // handed over through the pool's lock); the handler is only touched on the event loop.
    let channel: any Channel
    private let handler: NIOHTTP1ExchangeHandler
    var idleSince = ContinuousClock.now

    init(channel: any Channel, handler: NIOHTTP1ExchangeHandler) {
        self.channel = channel
        self.handler = handler
    }

    func start(_ exchange: NIOHTTP1Exchange) {
        let handler = handler
        channel.eventLoop.execute { handler.start(exchange) }
    }

    func cancel(_ exchange: NIOHTTP1Exchange) {
        let handler = handler
        channel.eventLoop.execute { handler.cancel(exchange) }
    }

    func resumeReading(_ exchange: NIOHTTP1Exchange) {
        let handler = handler
        channel.eventLoop.execute { handler.resumeReading(exchange) }
    }
}

/// Writes a request in one flush and reads its response, stamping each body piece as it is
/// read; enforces the idle-read timeout and the total deadline with two timers per request
/// (the idle timer re-arms only when it fires, not on every read).
final class NIOHTTP1ExchangeHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // Safety: every method runs on the channel's event loop.
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private var context: ChannelHandlerContext?
    private var exchange: NIOHTTP1Exchange?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func start(_ exchange: NIOHTTP1Exchange) {
        // A start that fails closes the connection and gives its place in the pool back.
        guard !exchange.cancelled else {
            exchange.headPromise.fail(exchange.failure(.cancelled))
            context?.close(promise: nil)
            exchange.release(false)
            return
        }
        guard let context, context.channel.isActive, self.exchange == nil else {
            exchange.headPromise.fail(exchange.failure(.closed))
            context?.close(promise: nil)
            exchange.release(false)
            return
        }
        self.exchange = exchange
        let loop = context.eventLoop
        let now = ContinuousClock.now
        exchange.lastRead = now
        if let deadline = exchange.firstDeadline {
            exchange.deadlineTimer = loop.scheduleTask(in: .nanoseconds(max(0, (deadline - now).nanoseconds))) {
                self.deadlinePassed(exchange, on: loop)
            }
        }
        armIdleTimer(exchange, after: exchange.request.readTimeout, on: loop)
        exchange.request.onWritten?(.now)
        exchange.written = true
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if let body = exchange.request.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// A deadline passed: the total one ends the exchange; the head's only while no head came
    /// (then the total deadline, if any, takes over).
    private func deadlinePassed(_ exchange: NIOHTTP1Exchange, on loop: any EventLoop) {
        guard self.exchange === exchange else { return }
        let now = ContinuousClock.now
        if exchange.status != nil, let total = exchange.request.deadline, total > now {
            exchange.deadlineTimer = loop.scheduleTask(in: .nanoseconds((total - now).nanoseconds)) {
                self.deadlinePassed(exchange, on: loop)
            }
            return
        }
        if exchange.status == nil || exchange.request.deadline != nil { fail(exchange, .deadline) }
    }

    private func armIdleTimer(_ exchange: NIOHTTP1Exchange, after delay: Duration, on loop: any EventLoop) {
        exchange.idleTimer = loop.scheduleTask(in: .nanoseconds(delay.nanoseconds)) {
            guard self.exchange === exchange else { return }
            let silent = ContinuousClock.now - exchange.lastRead
            // While the consumer holds the connection's reading back, the silence is not the server's.
            if silent >= exchange.request.readTimeout && !exchange.paused {
                self.fail(exchange, .idleRead)
            } else {
                self.armIdleTimer(exchange, after: max(exchange.request.readTimeout - silent, .milliseconds(10)), on: loop)
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
            exchange.keepAlive = head.isKeepAlive
            exchange.receiving = exchange.receiver != nil && (200..<300).contains(head.status.code)
            let connection = context.channel
            let body = ResponseBody(
                resumeReading: { [weak self] in connection.eventLoop.execute { self?.resumeReading(exchange) } },
                cancel: { [weak self] in connection.eventLoop.execute { self?.cancel(exchange) } })
            exchange.body = body
            exchange.headPromise.succeed(EngineResponse(status: head.status, headers: head.headers, body: body))
        case .body(let buffer):
            exchange.receivedBody = true
            let piece = BodyPiece(bytes: buffer, received: now)
            if exchange.receiving, let receiver = exchange.receiver {
                do {
                    try receiver(piece)
                } catch {
                    fail(exchange, .receiverFailed, error)
                }
            } else if exchange.body?.deliver(piece) == true, !exchange.paused {
                exchange.paused = true
                context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
            }
        case .end:
            finish(exchange, failure: nil)
        }
    }

    func resumeReading(_ exchange: NIOHTTP1Exchange) {
        guard self.exchange === exchange, exchange.paused, let context else { return }
        exchange.paused = false
        exchange.lastRead = .now
        context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange { fail(exchange, .closed) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let exchange {
            switch error {
            case HTTPParserError.invalidEOFState: fail(exchange, .closed, error)  // closed mid-message
            case is HTTPParserError, is NIOHTTPDecoderError: fail(exchange, .malformedResponse, error)
            default: fail(exchange, .closed, error)
            }
        }
        context.close(promise: nil)
    }

    /// Cancels the exchange, whether or not it has started.
    func cancel(_ exchange: NIOHTTP1Exchange) {
        exchange.cancelled = true
        fail(exchange, .cancelled)
    }

    private func fail(_ exchange: NIOHTTP1Exchange, _ kind: TransportFailure.Kind, _ underlying: (any Error)? = nil) {
        finish(exchange, failure: exchange.failure(kind, underlying))
    }

    /// Ends the exchange once: stops its timers, ends its head or body, and gives the
    /// connection back. A failure closes the connection, since the rest of that response may
    /// still arrive on it.
    private func finish(_ exchange: NIOHTTP1Exchange, failure: TransportFailure?) {
        guard self.exchange === exchange else { return }
        self.exchange = nil
        exchange.idleTimer?.cancel()
        exchange.deadlineTimer?.cancel()
        if let failure {
            if let body = exchange.body { body.fail(failure) } else { exchange.headPromise.fail(failure) }
            context?.close(promise: nil)
            exchange.release(false)
        } else {
            exchange.body?.finish()
            if !exchange.keepAlive { context?.close(promise: nil) }
            exchange.release(exchange.keepAlive)
        }
    }
}

extension NIOHTTP1Engine.Target {
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
