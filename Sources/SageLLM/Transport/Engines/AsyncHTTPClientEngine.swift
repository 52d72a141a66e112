import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The engine for any URL (https, HTTP/2): AsyncHTTPClient's pool, driven through a response
/// delegate so that body pieces are stamped on the event loop where they are read.
package final class AsyncHTTPClientEngine: HTTPEngine {
    let client: HTTPClient
    /// The pooled connections that have carried a request (see ``ConnectionProbe``).
    private let usedConnections = UsedConnections()

    init(configuration: TransportConfiguration) {
        var http = HTTPClient.Configuration()
        http.timeout = .init(
            connect: .nanoseconds(configuration.connectTimeout.nanoseconds),
            read: .nanoseconds(configuration.readTimeout.nanoseconds))
        http.connectionPool = .init(
            idleTimeout: .nanoseconds(configuration.idleConnectionTimeout.nanoseconds),
            concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.maximumConnectionsPerHost)
        // A refused connection fails at once; retrying is the retry policy's decision, not the pool's.
        http.connectionPool.retryConnectionEstablishment = false
        http.decompression = .disabled
        client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: http)
    }

    package func open(_ request: EngineRequest, receiver: BodyReceiver?) async throws(TransportFailure) -> EngineResponse {
        let probe = ConnectionProbe(pool: usedConnections)
        let loop = client.eventLoopGroup.any()
        let delegate = AsyncHTTPClientExchange(receiver: receiver, probe: probe, headPromise: loop.makePromise())
        let clientRequest: HTTPClient.Request
        do {
            clientRequest = try HTTPClient.Request(
                url: request.url, method: request.method, headers: request.headers, body: request.body.map { .byteBuffer($0) })
        } catch {
            throw TransportFailure(.connectFailed, underlying: error, requestWritten: false)
        }
        // AsyncHTTPClient tells nothing when it writes; this is just before it picks a connection.
        request.onWritten?(.now)
        let task = client.execute(
            request: clientRequest, delegate: delegate, eventLoop: .delegate(on: loop),
            deadline: request.deadline.map { NIODeadline.now() + .nanoseconds(($0 - .now).nanoseconds) }, logger: probe.logger)
        task.futureResult.whenComplete { result in
            if case .failure(let error) = result { delegate.failed(error) }
        }
        if let headDeadline = request.headDeadline, headDeadline < (request.deadline ?? headDeadline + .seconds(1)) {
            // AsyncHTTPClient's deadline is for the whole exchange; the head's is kept here.
            let timer = loop.scheduleTask(in: .nanoseconds(max(0, (headDeadline - .now).nanoseconds))) {
                delegate.headDeadlinePassed(task)
            }
            delegate.headPromise.futureResult.whenComplete { _ in timer.cancel() }
        }
        do {
            return try await withTaskCancellationHandler {
                try await delegate.headPromise.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch let failure as TransportFailure {
            throw failure
        } catch {
            throw TransportFailure(.cancelled, underlying: error, requestWritten: true)
        }
    }

    package func shutdown() async {
        do {
            try await client.shutdown()
        } catch {
            // Already shut down: nothing left to close.
        }
    }
}

/// One exchange through AsyncHTTPClient: the head completes `headPromise`, 2xx body pieces go
/// to the receiver or the ``ResponseBody``, the end or a failure ends the body.
private final class AsyncHTTPClientExchange: HTTPClientResponseDelegate, @unchecked Sendable {
    // Safety: AsyncHTTPClient calls a delegate on one event loop, one call at a time; `failed`
    // comes from the task's future on that loop after the last delegate call.
    typealias Response = Void

    let receiver: BodyReceiver?
    let probe: ConnectionProbe
    let headPromise: EventLoopPromise<EngineResponse>
    private var body: ResponseBody?
    private var receiving = false
    private var receivedBody = false
    private var receiverFailure: (any Error)?
    private var headDeadlineMissed = false
    /// Completed when the consumer has read enough for the connection to be read again.
    private var resume: EventLoopPromise<Void>?

    init(receiver: BodyReceiver?, probe: ConnectionProbe, headPromise: EventLoopPromise<EngineResponse>) {
        self.receiver = receiver
        self.probe = probe
        self.headPromise = headPromise
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        receiving = receiver != nil && (200..<300).contains(head.status.code)
        let loop = task.eventLoop
        let body = ResponseBody(
            resumeReading: { loop.execute { self.resumeReading() } },
            cancel: { task.cancel() })
        self.body = body
        headPromise.succeed(EngineResponse(status: head.status, headers: head.headers, body: body))
        return loop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let piece = BodyPiece(bytes: buffer, received: .now)
        receivedBody = true
        if receiving, let receiver {
            guard receiverFailure == nil else { return task.eventLoop.makeSucceededVoidFuture() }
            do {
                try receiver(piece)
            } catch {
                receiverFailure = error
                task.fail(reason: error)
            }
            return task.eventLoop.makeSucceededVoidFuture()
        }
        guard body?.deliver(piece) == true else { return task.eventLoop.makeSucceededVoidFuture() }
        let resume = task.eventLoop.makePromise(of: Void.self)
        self.resume = resume
        return resume.futureResult
    }

    private func resumeReading() {
        resume?.succeed()
        resume = nil
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        body?.finish()
    }

    /// The head did not arrive in time: the exchange ends as a deadline.
    func headDeadlinePassed(_ task: HTTPClient.Task<Void>) {
        guard body == nil, !headDeadlineMissed else { return }
        headDeadlineMissed = true
        task.cancel()
    }

    /// The task failed (before or after the head).
    func failed(_ error: any Error) {
        resumeReading()
        var failure = Self.failure(error, answered: body != nil)
        if headDeadlineMissed { failure = TransportFailure(.deadline, requestWritten: true) }
        if let receiverFailure {
            failure = TransportFailure(.receiverFailed, underlying: receiverFailure, requestWritten: true)
        }
        failure.receivedHead = body != nil
        failure.receivedBody = receivedBody
        failure.reusedConnection = probe.reusedConnection
        if let body { body.fail(failure) } else { headPromise.fail(failure) }
    }

    /// AsyncHTTPClient's and SwiftNIO's errors in the engines' vocabulary.
    static func failure(_ error: any Error, answered: Bool) -> TransportFailure {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .tlsHandshakeTimeout, .socksHandshakeTimeout, .httpProxyHandshakeTimeout:
                return TransportFailure(.connectTimeout, requestWritten: false)
            case .readTimeout: return TransportFailure(.idleRead, requestWritten: true)
            case .deadlineExceeded: return TransportFailure(.deadline, requestWritten: true)
            case .cancelled: return TransportFailure(.cancelled, requestWritten: true)
            case .remoteConnectionClosed: return TransportFailure(.closed, requestWritten: true)
            default: break
            }
        }
        if error is CancellationError { return TransportFailure(.cancelled, requestWritten: true) }
        if let error = error as? ChannelError {
            switch error {
            case .ioOnClosedChannel, .outputClosed, .alreadyClosed:
                // The pooled connection was already closed when the request was to go out.
                return TransportFailure(.closed, underlying: error, requestWritten: answered)
            case .eof: return TransportFailure(.closed, underlying: error, requestWritten: true)
            default: break
            }
        }
        if let error = error as? IOError, error.errnoCode == ECONNRESET || error.errnoCode == EPIPE {
            return TransportFailure(.closed, underlying: error, requestWritten: true)
        }
        if let error = error as? HTTPParserError, error == .invalidEOFState {
            return TransportFailure(.closed, underlying: error, requestWritten: true)  // closed mid-message
        }
        if error is HTTPParserError || error is NIOHTTPDecoderError {
            return TransportFailure(.malformedResponse, underlying: error, requestWritten: true)
        }
        // Anything else before an answer is a connection that could not be made (refused, no
        // such host, TLS); after the head, a response that broke off.
        return answered
            ? TransportFailure(.malformedResponse, underlying: error, requestWritten: true)
            : TransportFailure(.connectFailed, underlying: error, requestWritten: false)
    }
}
