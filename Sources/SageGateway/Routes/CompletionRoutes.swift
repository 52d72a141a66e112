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
    let keys: KeyRing
    let logger: Logger

    func register(on router: Router<GatewayRequestContext>) {
        // Each runs on its connection's event loop (see `EventLoopHTTP1Channel`).
        router.post("v1/chat/completions") { request, context in await relay(request, context: context, to: .chatCompletions) }
        router.post("v1/completions") { request, context in await relay(request, context: context, to: .completions) }
    }

    /// The key name requests are counted under when the gateway has no keys.
    static let anonymousKey = "anonymous"
    /// The key name of requests refused before their key was known.
    static let unauthenticatedKey = "unauthenticated"

    private func relay(_ request: Request, context: GatewayRequestContext, to endpoint: ForwardedRequest.Endpoint) async -> Response {
        let started = ContinuousClock.now
        // Until its key is known (an open gateway never refuses one, so this is right for it too).
        var keyName = Self.unauthenticatedKey
        guard state.begin() else {
            keyName = keys.isOpen ? Self.anonymousKey : keyName
            let refusal = GatewayError(.unavailable, "the gateway is draining; send the request to another replica", status: 503, retryAfterSeconds: 1)
            metrics.finished(model: "unknown", status: refusal.status, key: keyName, duration: .now - started)
            return Self.response(for: refusal)
        }
        var model = "unknown"
        var pass: KeyPass?
        // Every way out ends the request here, except a stream that started: its body ends it.
        var streamOwnsTheEnd = false
        defer {
            if !streamOwnsTheEnd {
                state.end()
                pass?.finish()
            }
        }
        do throws(GatewayError) {
            let key = try keys.authenticate(request.headers)
            keyName = key?.name ?? Self.anonymousKey
            let forwarded = try await read(request, endpoint: endpoint, key: key, model: &model)
            if let key { pass = try keys.admit(key, promptBytes: forwarded.request.promptBytes) }
            if forwarded.stream {
                let response = try await stream(forwarded.request, context: context, started: started, keyName: keyName, pass: pass)
                streamOwnsTheEnd = true
                return response
            }
            let answer = try await whole(forwarded.request, context: context)
            pass?.observe(answer.body)
            metrics.finished(model: model, status: 200, key: keyName, duration: .now - started)
            var headers = Self.relayHeaders(requestID: forwarded.request.requestID, instanceID: answer.instanceID)
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: answer.body))
        } catch {
            metrics.finished(model: model, status: error.status, key: keyName, duration: .now - started)
            return Self.response(for: error)
        }
    }

    /// The caller's request, checked and ready to route.
    private func read(_ request: Request, endpoint: ForwardedRequest.Endpoint, key: GatewayKey?, model: inout String) async throws(GatewayError)
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
        if let key, !key.allows(fields.model ?? model, servedAs: model) {
            throw GatewayError(.forbidden, "key '\(key.name)' may not use the model `\(fields.model ?? model)`", status: 403, field: "model")
        }
        let placement = try Self.placement(request.headers, fields, key: key)
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
    /// field `priority`: below 0 is HIGH, above 0 LOW; else the key's default priority), the
    /// priority no more urgent than the key's highest; the session from `x-session-id`, else
    /// the body's `user`.
    static func placement(_ headers: HTTPFields, _ fields: RequestRoutingFields, key: GatewayKey? = nil) throws(GatewayError)
        -> RequestPlacement
    {
        var placement = RequestPlacement()
        var asked: RequestPriority?
        if let name = headers[HTTPField.Name.priority] {
            guard let priority = RequestPriority(name: name.trimmingCharacters(in: .whitespaces)) else {
                throw GatewayError(
                    .invalidRequest, "x-sagellm-priority '\(name)' is not a priority; use CRITICAL, HIGH, NORMAL, LOW or BACKGROUND",
                    status: 400, field: "x-sagellm-priority")
            }
            asked = priority
        } else if let priority = fields.priority {
            asked = priority < 0 ? .high : priority > 0 ? .low : .normal
        }
        placement.priority = key?.priority(asked: asked) ?? asked ?? .normal
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

    /// `text` as a JSON string.
    static func jsonString(_ text: String) -> String {
        (try? JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed])).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }

    static func relayHeaders(requestID: String, instanceID: String?) -> HTTPFields {
        var headers = HTTPFields()
        headers[HTTPField.Name.requestID] = requestID
        if let instanceID { headers[HTTPField.Name.instance] = instanceID }
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

extension HTTPField.Name {
    static let requestID = Self("x-request-id")!
    static let instance = Self("x-sagellm-instance")!
    static let priority = Self("x-sagellm-priority")!
    static let sloMilliseconds = Self("x-sagellm-slo-ms")!
    static let sessionID = Self("x-session-id")!
}
