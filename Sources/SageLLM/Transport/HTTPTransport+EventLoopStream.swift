import AsyncHTTPClient
import NIOCore
import NIOHTTP1

extension HTTPTransport {
    /// Sends a request whose answer is a stream and hands each piece of the body to `receive`
    /// on the connection's event loop, with the instant it was read from the socket, without
    /// a hop to another thread. For measuring: a consumer task that is woken for each piece
    /// adds its own wait for a thread to every timestamp, and under load that wait is
    /// milliseconds. On a direct connection `written` is told, on the event loop, the instant
    /// just before the request's bytes are written to the open connection. AsyncHTTPClient
    /// tells it nothing: its only hook runs after the head went out, and may first hop to
    /// another thread, so it would stamp late; callers keep their own earlier instant.
    ///
    /// `receive` runs on an event loop, one piece at a time: it must be quick and must not
    /// block. An error it throws ends the request and is thrown here. Returns when the body
    /// has ended. A non-2xx status, a failed connection, the deadline and cancellation are
    /// thrown as ``openStream(path:body:requestID:timeout:)`` throws them. The client's
    /// resilience layer (retries, limits) is not involved.
    package func receiveStream(
        path: String, body: ByteBuffer, requestID: String, timeout: Duration? = nil,
        written: @escaping @Sendable (ContinuousClock.Instant) -> Void = { _ in },
        receive: @escaping @Sendable (ByteBuffer, ContinuousClock.Instant) throws -> Void
    ) async throws(SageLLMError) {
        let started = ContinuousClock.now
        let limit = timeout ?? configuration.requestTimeout
        let endpoint = url(path)
        let lease = InFlightLease(self)
        defer { withExtendedLifetime(lease) {} }
        try checkKey(endpoint: endpoint, requestID: requestID)
        let headers = headers(requestID: requestID, accept: "text/event-stream", hasBody: true)
        if let directStreams, !Self.streamsThroughAsyncHTTPClient {
            let outcome: DirectStreamConnections.Outcome
            do {
                outcome = try await directStreams.post(
                    path: path, headers: headers, body: body, deadline: started + limit,
                    readTimeout: configuration.readTimeout, written: written, receive: receive)
            } catch {
                throw directStreamError(error, endpoint: endpoint, requestID: requestID, started: started, limit: limit)
            }
            if !(200..<300).contains(outcome.status.code) {
                throw statusError(
                    outcome.status, headers: outcome.headers, body: outcome.errorBody, endpoint: endpoint, requestID: requestID)
            }
            return
        }
        let delegate = EventLoopStreamDelegate(receive: receive)
        do {
            let request = try HTTPClient.Request(url: endpoint, method: .POST, headers: headers, body: .byteBuffer(body))
            let task = client.execute(
                request: request, delegate: delegate, deadline: NIODeadline.now() + .nanoseconds(limit.nanoseconds))
            try await withTaskCancellationHandler {
                try await task.get()
            } onCancel: {
                task.cancel()
            }
        } catch {
            if let failure = delegate.receiveFailure {
                throw receiveError(failure, endpoint: endpoint, requestID: requestID)
            }
            var mapped = mapError(
                error, endpoint: endpoint, requestID: requestID, started: started, limit: limit,
                receivedHead: delegate.status != nil, partialOutput: delegate.receivedBytes)
            // Body pieces went straight to the caller's `receive`: they were delivered.
            mapped.receivedPartialOutput = delegate.receivedBytes
            throw mapped
        }
        if let status = delegate.status, !(200..<300).contains(status.code) {
            throw statusError(status, headers: delegate.headers, body: delegate.errorBody, endpoint: endpoint, requestID: requestID)
        }
    }

    /// Sends streams through AsyncHTTPClient even to `http://` URLs, for tests and for the
    /// benchmark program's same-run baseline.
    @TaskLocal package static var streamsThroughAsyncHTTPClient = false

    /// What the `receive` callback threw, which ended the request after part of the stream.
    private func receiveError(_ failure: any Error, endpoint: String, requestID: String) -> SageLLMError {
        var mapped = failure as? SageLLMError ?? SageLLMError(code: .decoding, reason: "the stream could not be read")
        if !(failure is SageLLMError) { mapped.underlying = "\(failure)" }
        mapped.endpoint = mapped.endpoint ?? endpoint
        mapped.requestID = mapped.requestID ?? requestID
        mapped.receivedResponseHead = true
        mapped.requestSent = true
        mapped.receivedPartialOutput = true  // `receive` had been handed part of the body
        return mapped
    }

    /// A direct connection's failure as the same error AsyncHTTPClient's would have given.
    private func directStreamError(
        _ error: any Error, endpoint: String, requestID: String, started: ContinuousClock.Instant, limit: Duration
    ) -> SageLLMError {
        guard let failure = error as? DirectStreamConnections.Failure else {
            return mapError(error, endpoint: endpoint, requestID: requestID, started: started, limit: limit)
        }
        let equivalent: any Error
        switch failure.kind {
        case .receive(let thrown): return receiveError(thrown, endpoint: endpoint, requestID: requestID)
        case .connectionClosed: equivalent = HTTPClientError.remoteConnectionClosed
        case .idleRead: equivalent = HTTPClientError.readTimeout
        case .deadline: equivalent = HTTPClientError.deadlineExceeded
        case .cancelled: equivalent = HTTPClientError.cancelled
        case .channel(ChannelError.connectTimeout): equivalent = HTTPClientError.connectTimeout
        case .channel(let underlying): equivalent = underlying
        }
        var mapped = mapError(
            equivalent, endpoint: endpoint, requestID: requestID, started: started, limit: limit,
            receivedHead: failure.receivedHead, partialOutput: failure.receivedBody)
        if equivalent is HTTPClientError { mapped.underlying = nil }
        mapped.receivedPartialOutput = failure.receivedBody
        return mapped
    }
}

/// Receives a streamed response on its event loop: a 2xx body goes to `receive` piece by
/// piece, stamped; any other status keeps (a bounded part of) its body for the error.
private final class EventLoopStreamDelegate: HTTPClientResponseDelegate, @unchecked Sendable {
    // Safety: AsyncHTTPClient calls a delegate on one event loop, one call at a time; the
    // fields are read by the caller only after the task's future has completed.
    typealias Response = Void

    private let receive: @Sendable (ByteBuffer, ContinuousClock.Instant) throws -> Void
    private(set) var status: HTTPResponseStatus?
    private(set) var headers = HTTPHeaders()
    private(set) var errorBody: [UInt8] = []
    private(set) var receivedBytes = false
    /// What `receive` threw, which ended the request.
    private(set) var receiveFailure: (any Error)?

    init(receive: @escaping @Sendable (ByteBuffer, ContinuousClock.Instant) throws -> Void) {
        self.receive = receive
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        status = head.status
        headers = head.headers
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let now = ContinuousClock.now
        guard let status, (200..<300).contains(status.code) else {
            errorBody.append(contentsOf: buffer.readableBytesView.prefix(HTTPTransport.errorBodyLimit - errorBody.count))
            return task.eventLoop.makeSucceededVoidFuture()
        }
        guard receiveFailure == nil else { return task.eventLoop.makeSucceededVoidFuture() }
        receivedBytes = true
        do {
            try receive(buffer, now)
        } catch {
            receiveFailure = error
            task.fail(reason: error)
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {}
}
