import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import SageControlPlane
import SageLLM
import SageSupport

extension CompletionRoutes {
    /// A streamed answer. Until its first piece, a failure is an HTTP error (and the control
    /// plane may fail over); after it, a failure ends the stream with an error event and
    /// `[DONE]`. The client leaving ends the engine's request at once.
    ///
    /// With SSE keepalives configured, a first piece that takes longer than the interval no
    /// longer waits for the response to begin: it begins with a keepalive comment, another
    /// follows every interval until the first piece, and a failure from then on is an error
    /// event.
    func stream(
        _ request: ForwardedRequest, context: GatewayRequestContext, started: ContinuousClock.Instant, keyName: String, pass: KeyPass?
    ) async throws(GatewayError) -> Response {
        let abort = RelayAbort()
        let pieces = PieceSource(controlPlane.forwardStream(request, abort: abort))
        let first: FirstPiece
        if let interval = configuration.keepaliveInterval {
            first = try await firstPiece(of: pieces, context: context, abort: abort, keepaliveAfter: interval)
        } else {
            do {
                first = .arrived(try await untilClientLeaves(context.channel, { try await pieces.next() }))
            } catch {
                throw Self.gatewayError(error)
            }
        }
        let firstPiece: ForwardedPiece?
        let waiting: (pending: PendingFirstPiece, reading: Task<Void, Never>, interval: Duration)?
        switch first {
        case .arrived(let piece):
            guard let piece else { throw GatewayError(.upstream, "the instance ended the stream before sending anything", status: 502) }
            metrics.firstToken(model: request.model, after: .now - started)
            (firstPiece, waiting) = (piece, nil)
        case .stillWaiting(let pending, let reading, let interval):
            (firstPiece, waiting) = (nil, (pending, reading, interval))
        }
        let (state, metrics, logger, model) = (self.state, self.metrics, self.logger, request.model)
        let reading = waiting?.reading
        let ended: @Sendable () -> Void = {
            state.streamEnded(abort)
            pass?.finish()
        }
        state.streamStarted(abort)
        // The connection closing ends the stream even if its body never runs.
        context.channel.closeFuture.whenComplete { _ in
            abort.abort()
            reading?.cancel()
            ended()
        }
        let body = ResponseBody { writer in
            defer { ended() }
            var status = 200
            defer { metrics.finished(model: model, status: status, key: keyName, duration: .now - started) }
            do {
                let piece: ForwardedPiece
                if let firstPiece {
                    piece = firstPiece
                } else if let waiting {
                    piece = try await Self.keepAlive(&writer, until: waiting.pending, every: waiting.interval, abort: abort, reading: waiting.reading)
                    metrics.firstToken(model: model, after: .now - started)
                } else {
                    throw GatewayError(.upstream, "the stream had no first piece", status: 502)
                }
                pass?.observe(piece.bytes)
                try await writer.write(piece.bytes)
                var last = ContinuousClock.now
                while let piece = try await pieces.next() {
                    let now = ContinuousClock.now
                    metrics.interToken(model: model, gap: now - last)
                    last = now
                    pass?.observe(piece.bytes)
                    try await writer.write(piece.bytes)
                }
            } catch {
                let shutDown = state.shouldEndStreams
                if abort.isAborted && !shutDown {
                    status = 499  // the client left: nothing to tell it
                    return
                }
                let failure =
                    shutDown
                    ? GatewayError(.unavailable, "the gateway shut down before the stream ended (drain timeout passed)", status: 503)
                    : Self.gatewayError(error)
                status = failure.status
                logger.info(
                    "stream ended with an error", metadata: ["sage.request.id": "\(request.requestID)", "sage.error": "\(failure.message)"])
                var ending = ByteBuffer(bytes: failure.event)
                ending.writeString("data: [DONE]\n\n")
                try? await writer.write(ending)
            }
            try await writer.finish(nil)
        }
        var headers = Self.relayHeaders(requestID: request.requestID, instanceID: firstPiece?.instanceID)
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: body)
    }

    /// The first piece, or (when it takes longer than `interval`) the read still going on.
    enum FirstPiece {
        case arrived(ForwardedPiece?)
        case stillWaiting(PendingFirstPiece, reading: Task<Void, Never>, interval: Duration)
    }

    /// Reads the first piece in a task of its own, and waits for it at most `interval`.
    private func firstPiece(
        of pieces: PieceSource, context: GatewayRequestContext, abort: RelayAbort, keepaliveAfter interval: Duration
    ) async throws(GatewayError) -> FirstPiece {
        let pending = PendingFirstPiece()
        // Not a child task: the read outlives this handler when the response begins before the
        // first piece. It is ended by the connection closing (see `stream`) or ends by itself.
        let reading = Task(executorPreference: EventLoopTaskExecutor(context.channel.eventLoop)) {
            do {
                pending.fulfil(.success(try await pieces.next()))
            } catch {
                pending.fulfil(.failure(error))
            }
        }
        let outcome: PendingFirstPiece.Outcome?
        do {
            outcome = try await untilClientLeaves(context.channel) { await Self.wait(for: pending, atMost: interval) }
        } catch {
            abort.abort()
            reading.cancel()
            throw Self.clientWentAway
        }
        guard let outcome else { return .stillWaiting(pending, reading: reading, interval: interval) }
        do {
            return .arrived(try outcome.get())
        } catch {
            throw Self.gatewayError(error)
        }
    }

    /// The read's outcome, or nil when `interval` passed first.
    private static func wait(for pending: PendingFirstPiece, atMost interval: Duration) async -> PendingFirstPiece.Outcome? {
        await withTaskGroup(of: PendingFirstPiece.Outcome?.self) { group in
            group.addTask { await pending.wait() }
            group.addTask {
                try? await Task.sleep(for: interval)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    static let keepaliveComment = ByteBuffer(string: ": keepalive\n\n")

    /// Writes a keepalive comment now and every `interval` until the first piece arrives, and
    /// returns it. A drain that ends the stream ends the read too.
    private static func keepAlive(
        _ writer: inout any ResponseBodyWriter, until pending: PendingFirstPiece, every interval: Duration, abort: RelayAbort,
        reading: Task<Void, Never>
    ) async throws -> ForwardedPiece {
        try await writer.write(keepaliveComment)
        while true {
            if let outcome = await wait(for: pending, atMost: interval) {
                guard let piece = try outcome.get() else {
                    throw GatewayError(.upstream, "the instance ended the stream before sending anything", status: 502)
                }
                return piece
            }
            if abort.isAborted { reading.cancel() }
            try await writer.write(keepaliveComment)
        }
    }

    /// What the caller is told of a failure of the relay.
    static func gatewayError(_ error: any Error) -> GatewayError {
        if let error = error as? GatewayError { return error }
        if let error = error as? ControlPlaneError { return GatewayError(error) }
        if error is ClientWentAway || error is CancellationError { return clientWentAway }
        return GatewayError(.upstream, "the stream failed: \(error)", status: 502)
    }
}

/// The pieces of a relayed stream, read by one consumer at a time: the first read runs in a
/// child task (so that the client leaving cancels it), or in a task of its own while
/// keepalives are sent; the rest in the response's writer.
final class PieceSource: @unchecked Sendable {
    // Safety: `next()` is never called concurrently; each call finishes before the next starts.
    private var iterator: AsyncThrowingStream<ForwardedPiece, any Error>.AsyncIterator

    init(_ stream: AsyncThrowingStream<ForwardedPiece, any Error>) { iterator = stream.makeAsyncIterator() }

    func next() async throws -> ForwardedPiece? { try await iterator.next() }
}
