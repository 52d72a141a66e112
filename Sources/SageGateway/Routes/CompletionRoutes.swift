import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SageControlPlane
import SageLLM
import SageSupport

/// `POST /v1/chat/completions` and `POST /v1/completions`, whole and streamed: the body goes
/// through the control plane's dispatch path to an instance as the caller sent it, and the
/// instance's bytes come back as they are, piece by piece as they arrive.
struct CompletionRoutes: Sendable {
    let controlPlane: ControlPlaneClient
    let configuration: GatewayConfiguration
    let state: GatewayState
    let metrics: GatewayMetrics
    let logger: Logger

    func register(on router: Router<GatewayRequestContext>) {
        router.post("v1/chat/completions") { request, context in await onTheConnectionsLoop(request, context, .chatCompletions) }
        router.post("v1/completions") { request, context in await onTheConnectionsLoop(request, context, .completions) }
    }

    /// Relays on the client connection's event loop: the request is read, sent on, and its
    /// answer written back from the thread that owns the socket, without a hop to the
    /// concurrency pool and back at each step.
    private func onTheConnectionsLoop(
        _ request: Request, _ context: GatewayRequestContext, _ endpoint: ForwardedRequest.Endpoint
    ) async -> Response {
        await withTaskExecutorPreference(EventLoopTaskExecutor(context.channel.eventLoop)) {
            await relay(request, context: context, to: endpoint)
        }
    }

    /// The key name requests are counted under until API keys exist.
    static let anonymousKey = "anonymous"

    private func relay(_ request: Request, context: GatewayRequestContext, to endpoint: ForwardedRequest.Endpoint) async -> Response {
        let started = ContinuousClock.now
        guard state.begin() else {
            let refusal = GatewayError(.unavailable, "the gateway is draining; send the request to another replica", status: 503, retryAfterSeconds: 1)
            metrics.finished(model: "unknown", status: refusal.status, key: Self.anonymousKey, duration: .now - started)
            return Self.response(for: refusal)
        }
        var model = "unknown"
        // Every way out ends the request here, except a stream that started: its body ends it.
        var streamOwnsTheEnd = false
        defer { if !streamOwnsTheEnd { state.end() } }
        do throws(GatewayError) {
            let forwarded = try await read(request, endpoint: endpoint, model: &model)
            if forwarded.stream {
                let response = try await stream(forwarded.request, context: context, started: started)
                streamOwnsTheEnd = true
                return response
            }
            let answer = try await whole(forwarded.request, context: context)
            metrics.finished(model: model, status: 200, key: Self.anonymousKey, duration: .now - started)
            var headers = Self.relayHeaders(requestID: forwarded.request.requestID, instanceID: answer.instanceID)
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: answer.body))
        } catch {
            metrics.finished(model: model, status: error.status, key: Self.anonymousKey, duration: .now - started)
            return Self.response(for: error)
        }
    }

    /// The caller's request, checked and ready to route.
    private func read(_ request: Request, endpoint: ForwardedRequest.Endpoint, model: inout String) async throws(GatewayError)
        -> (request: ForwardedRequest, stream: Bool)
    {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maximumBodyBytes)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw GatewayError(
                .bodyTooLarge, "the request body is over the gateway's limit of \(configuration.maximumBodyBytes) bytes (gateway.max_body_bytes)",
                status: 413)
        } catch {
            throw GatewayError(.invalidRequest, "the request body could not be read: \(error)", status: 400)
        }
        let fields: RequestRoutingFields
        do {
            fields = try RequestRoutingFields.read(body)
        } catch {
            throw GatewayError(.invalidRequest, error.message, status: 400, field: error.param)
        }
        var relayed = body
        if let asked = fields.model, let target = configuration.modelAliases[asked] {
            // The one change to the caller's body: an alias becomes the model it names.
            guard let rewritten = JSONObjectMembers.rewriting(body, setting: [("model", Self.jsonString(target))]) else {
                throw GatewayError(.invalidRequest, "the body could not be read to replace the model alias '\(asked)'", status: 400, field: "model")
            }
            relayed = rewritten
            model = try resolveModel(target)
        } else {
            model = try resolveModel(fields.model)
        }
        let placement = try Self.placement(request.headers, fields)
        let requestID = request.headers[HTTPField.Name.requestID].flatMap { $0.isEmpty || $0.count > 128 ? nil : $0 } ?? HTTPTransport.makeRequestID()
        let promptStart = fields.promptStart
        let forwarded = ForwardedRequest(
            endpoint: endpoint, body: relayed, model: model, maxTokens: fields.maxTokens, placement: placement, requestID: requestID,
            prompt: { promptStart ?? "" })
        return (forwarded, fields.stream)
    }

    /// The model asked for; with none asked, the fleet's only model.
    private func resolveModel(_ asked: String?) throws(GatewayError) -> String {
        let served = controlPlane.servedModels()
        guard let asked, !asked.isEmpty else {
            guard served.count == 1, let only = served.first else {
                throw GatewayError(
                    .invalidRequest, "'model' is required: this gateway serves \(served.map(\.model).joined(separator: ", "))", status: 400,
                    field: "model")
            }
            return only.model
        }
        guard served.contains(where: { $0.model == asked }) else {
            throw GatewayError(
                .notFound, "The model `\(asked)` does not exist. Served: \(served.map(\.model).joined(separator: ", "))", status: 404,
                field: "model")
        }
        return asked
    }

    /// Priority and deadline from `x-sagellm-priority` and `x-sagellm-slo-ms` (else vLLM's body
    /// field `priority`: below 0 is HIGH, above 0 LOW); the session from `x-session-id`, else
    /// the body's `user`.
    static func placement(_ headers: HTTPFields, _ fields: RequestRoutingFields) throws(GatewayError) -> RequestPlacement {
        var placement = RequestPlacement()
        if let name = headers[HTTPField.Name.priority] {
            guard let priority = RequestPriority(name: name.trimmingCharacters(in: .whitespaces)) else {
                throw GatewayError(
                    .invalidRequest, "x-sagellm-priority '\(name)' is not a priority; use CRITICAL, HIGH, NORMAL, LOW or BACKGROUND",
                    status: 400, field: "x-sagellm-priority")
            }
            placement.priority = priority
        } else if let priority = fields.priority {
            placement.priority = priority < 0 ? .high : priority > 0 ? .low : .normal
        }
        if let text = headers[HTTPField.Name.sloMilliseconds] {
            guard let milliseconds = Int(text.trimmingCharacters(in: .whitespaces)), (1...86_400_000).contains(milliseconds) else {
                throw GatewayError(
                    .invalidRequest, "x-sagellm-slo-ms '\(text)' must be a whole number of milliseconds, 1 to 86400000", status: 400,
                    field: "x-sagellm-slo-ms")
            }
            placement.sloDeadline = .milliseconds(milliseconds)
        }
        placement.sessionKey = headers[HTTPField.Name.sessionID] ?? fields.user
        return placement
    }

    private func whole(_ request: ForwardedRequest, context: GatewayRequestContext) async throws(GatewayError) -> ForwardedAnswer {
        let controlPlane = self.controlPlane
        do {
            return try await untilClientLeaves(context.channel) {
                do throws(ControlPlaneError) {
                    return try await controlPlane.forward(request)
                } catch {
                    throw GatewayError(error)
                }
            }
        } catch let error as GatewayError {
            throw error
        } catch {
            throw Self.clientWentAway
        }
    }

    /// The status recorded for a request whose client left (nginx's 499); nothing is sent.
    static let clientWentAway = GatewayError(.upstream, "the client closed the connection", status: 499)

    /// A streamed answer. Until its first piece, a failure is an HTTP error (and the control
    /// plane may fail over); after it, a failure ends the stream with an error event and
    /// `[DONE]`. The client leaving ends the engine's request at once.
    private func stream(_ request: ForwardedRequest, context: GatewayRequestContext, started: ContinuousClock.Instant) async throws(GatewayError)
        -> Response
    {
        let abort = RelayAbort()
        let pieces = PieceSource(controlPlane.forwardStream(request, abort: abort))
        let first: ForwardedPiece
        do {
            guard let piece = try await untilClientLeaves(context.channel, { try await pieces.next() }) else {
                throw GatewayError(.upstream, "the instance ended the stream before sending anything", status: 502)
            }
            first = piece
        } catch {
            if let error = error as? GatewayError { throw error }
            if let error = error as? ControlPlaneError { throw GatewayError(error) }
            throw Self.clientWentAway
        }
        let firstTokenAfter = ContinuousClock.now - started
        let model = request.model
        metrics.firstToken(model: model, after: firstTokenAfter)
        let (state, metrics, logger) = (self.state, self.metrics, self.logger)
        state.streamStarted(abort)
        // The connection closing ends the stream even if its body never runs.
        context.channel.closeFuture.whenComplete { _ in
            abort.abort()
            state.streamEnded(abort)
        }
        let body = ResponseBody { writer in
            defer { state.streamEnded(abort) }
            var status = 200
            defer { metrics.finished(model: model, status: status, key: Self.anonymousKey, duration: .now - started) }
            try await writer.write(first.bytes)
            var last = ContinuousClock.now
            do {
                while let piece = try await pieces.next() {
                    let now = ContinuousClock.now
                    metrics.interToken(model: model, gap: now - last)
                    last = now
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
                    : (error as? GatewayError) ?? (error as? ControlPlaneError).map(GatewayError.init)
                        ?? GatewayError(.upstream, "the stream failed: \(error)", status: 502)
                status = failure.status
                logger.info(
                    "stream ended with an error", metadata: ["sage.request.id": "\(request.requestID)", "sage.error": "\(failure.message)"])
                var ending = ByteBuffer(bytes: failure.event)
                ending.writeString("data: [DONE]\n\n")
                try? await writer.write(ending)
            }
            try await writer.finish(nil)
        }
        var headers = Self.relayHeaders(requestID: request.requestID, instanceID: first.instanceID)
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: body)
    }

    /// `text` as a JSON string.
    static func jsonString(_ text: String) -> String {
        (try? JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed])).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }

    static func relayHeaders(requestID: String, instanceID: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[HTTPField.Name.requestID] = requestID
        headers[HTTPField.Name.instance] = instanceID
        return headers
    }

    /// The OpenAI error response for `error`.
    static func response(for error: GatewayError) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let seconds = error.retryAfterSeconds { headers[.retryAfter] = String(seconds) }
        return Response(
            status: HTTPResponse.Status(code: error.status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: error.body)))
    }
}

/// The pieces of a relayed stream, read by one consumer at a time: the first read runs in a
/// child task (so that the client leaving cancels it), the rest in the response's writer.
final class PieceSource: @unchecked Sendable {
    // Safety: `next()` is never called concurrently; each call finishes before the next starts.
    private var iterator: AsyncThrowingStream<ForwardedPiece, any Error>.AsyncIterator

    init(_ stream: AsyncThrowingStream<ForwardedPiece, any Error>) { iterator = stream.makeAsyncIterator() }

    func next() async throws -> ForwardedPiece? { try await iterator.next() }
}

extension HTTPField.Name {
    static let requestID = Self("x-request-id")!
    static let instance = Self("x-sagellm-instance")!
    static let priority = Self("x-sagellm-priority")!
    static let sloMilliseconds = Self("x-sagellm-slo-ms")!
    static let sessionID = Self("x-session-id")!
}
