import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The rules for talking to one OpenAI-compatible base URL over an ``HTTPEngine``: headers,
/// the key, one timeout model, resending a request that met a stale keep-alive connection,
/// and one mapping of every transport failure to a ``SageLLMError``. The client, the control
/// plane and the benchmark all send through it.
///
/// Time limits: connecting is bounded by `connectTimeout`, every silence of the server by
/// `readTimeout`, and a whole response by its total deadline (`requestTimeout`, a request's
/// own `timeout`, or the caller's deadline over its attempts). A stream has a total deadline
/// only when a `timeout` is asked for; otherwise only its head is bounded by the caller's
/// deadline, and a healthy stream runs as long as the server sends.
package final class HTTPTransport: Sendable {
    /// The base URL without a trailing slash, e.g. `http://127.0.0.1:8000/v1`.
    package let baseURL: String
    package let configuration: TransportConfiguration
    private let apiKey: APIKey?
    /// What moves the bytes: SwiftNIO's HTTP/1.1 for `http://`, AsyncHTTPClient otherwise.
    package let engine: any HTTPEngine
    /// The base URL's path, e.g. `/v1`.
    private let basePath: String
    private let logger: Logger
    /// Requests fail at once with this (a required key is missing).
    private let missingKeyMessage: String?
    private let isShutDown = Atomic<Bool>(false)
    private let inFlight = Atomic<Int>(0)

    package init(
        baseURL: String, apiKey: APIKey?, configuration: TransportConfiguration, missingKeyMessage: String? = nil,
        logger: Logger
    ) throws(SageLLMError) {
        try configuration.validate()
        self.baseURL = try Self.normalize(baseURL: baseURL, unixSockets: configuration.engine == .curl)
        self.apiKey = apiKey
        self.missingKeyMessage = missingKeyMessage
        self.configuration = configuration
        self.logger = logger
        let plain = NIOHTTP1Engine.Target(baseURL: self.baseURL)
        basePath = plain?.basePath ?? ""  // AsyncHTTPClient takes the whole URL
        switch (configuration.engine == .automatic ? Self.automaticEngine : configuration.engine, plain) {
        case (.automatic, let target?), (.swiftNIO, let target?):
            engine = NIOHTTP1Engine(
                target: target, connectTimeout: configuration.connectTimeout, idleTimeout: configuration.idleConnectionTimeout,
                maximumConnections: configuration.maximumConnectionsPerHost)
        case (.swiftNIO, nil):
            throw .invalidConfiguration(
                field: "transport.engine", "the SwiftNIO engine speaks plain http:// only; '\(self.baseURL)' needs the automatic or AsyncHTTPClient engine")
        case (.curl, _):
            guard let make = HTTPEngineMakers.maker(for: .curl) else {
                throw .invalidConfiguration(
                    field: "http.transport",
                    "the curl transport is not in this build: build with the package trait Curl (swift build --traits Curl, which needs libcurl4-openssl-dev) and, in your own code, call CurlTransport.install() from SageCurl before making a client")
            }
            engine = try make(self.baseURL, configuration)
        default:
            engine = AsyncHTTPClientEngine(configuration: configuration)
        }
    }

    /// What `.automatic` means for transports made in this task: tests and the benchmark's
    /// same-run baselines run the same requests on each engine with it.
    @TaskLocal package static var automaticEngine = TransportConfiguration.Engine.automatic

    /// Checks that `baseURL` is an http(s) URL with a host and, if written, a port of
    /// 1-65535, without user info, query or fragment; drops a trailing slash. Messages never
    /// repeat user info.
    package static func normalize(baseURL: String, unixSockets: Bool = false) throws(SageLLMError) -> String {
        var url = baseURL.trimmingWhitespace()
        while url.hasSuffix("/") { url.removeLast() }
        if url.hasPrefix("unix:") {
            // `unix:///path/engine.sock`, or with the API's path on it: `unix:///path/engine.sock:/v1`.
            guard unixSockets else {
                throw .invalidConfiguration(
                    field: "baseURL", "a unix:// endpoint needs the curl transport (http.transport: curl, SAGE_HTTP_TRANSPORT=curl), got '\(url)'")
            }
            let rest = url.dropFirst("unix:".count)
            guard rest.hasPrefix("///"), rest.count > 3 else {
                throw .invalidConfiguration(field: "baseURL", "write a Unix socket as unix:///absolute/path.sock[:/v1], got '\(url)'")
            }
            return rest.dropFirst(3).contains(":") ? url : url + ":/v1"
        }
        let shown = BaseURL.redactingUserInfo(baseURL)
        guard let parts = BaseURL(url) else {
            throw .invalidConfiguration(
                field: "baseURL", "the base URL must start with http:// or https://, got '\(shown)'")
        }
        guard parts.userInfo == nil else {
            throw .invalidConfiguration(
                field: "baseURL",
                "the base URL must not hold user info (user:password@), got '\(shown)'; pass a key as apiKey (SAGE_CHAT_API_KEY) instead")
        }
        guard !parts.hasQuery, !parts.hasFragment else {
            throw .invalidConfiguration(
                field: "baseURL", "the base URL must not have a query (?) or fragment (#), got '\(shown)'")
        }
        guard !parts.host.isEmpty else {
            throw .invalidConfiguration(field: "baseURL", "the base URL has no host: '\(shown)'")
        }
        do {
            _ = try parts.port()
        } catch {
            throw .invalidConfiguration(field: "baseURL", "\(error.reason) in '\(shown)'")
        }
        return url
    }

    package func url(_ path: String) -> String { baseURL + "/" + path }

    /// The path of `path` on the server, with the base URL's.
    func enginePath(_ path: String) -> String { basePath + "/" + path }

    /// Requests sent and not yet finished (for HTTP/1.1, the pooled connections in use).
    package var requestsInFlight: Int { inFlight.load(ordering: .relaxed) }

    /// Counts a request in flight for as long as it lives.
    package final class InFlightLease: Sendable {
        private let transport: HTTPTransport
        init(_ transport: HTTPTransport) {
            self.transport = transport
            transport.inFlight.add(1, ordering: .relaxed)
        }
        deinit { transport.inFlight.subtract(1, ordering: .relaxed) }
    }

    /// A fresh request id: `sage-` and 16 hex digits.
    package static func makeRequestID() -> String {
        let hex = String(UInt64.random(in: .min ... .max), radix: 16)
        return "sage-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The headers of every request: the configured extras, the request id, what is accepted,
    /// the key, and the body's type.
    func headers(requestID: String, accept: String, hasBody: Bool) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(6 + configuration.extraHeaders.count)
        for (name, value) in configuration.extraHeaders { headers.add(name: name, value: value) }
        headers.replaceOrAdd(name: "x-request-id", value: requestID)
        headers.replaceOrAdd(name: "accept", value: accept)
        if let apiKey, !apiKey.secret.isEmpty {
            headers.replaceOrAdd(name: "authorization", value: "Bearer \(apiKey.secret)")
        }
        if hasBody { headers.replaceOrAdd(name: "content-type", value: "application/json") }
        return headers
    }

    /// Sends a request and returns the whole response body; a non-2xx status is thrown.
    /// `timeout` bounds this request (default: the request timeout); `deadline`, when given, is
    /// the caller's end for all of its attempts, and bounds it too.
    package func send(
        method: HTTPMethod, path: String, body: ByteBuffer?, requestID: String, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) async throws(SageLLMError) -> ByteBuffer {
        let started = ContinuousClock.now
        let limit = timeout ?? configuration.requestTimeout
        let end = min(started + limit, deadline ?? started + limit)
        let request = engineRequest(method: method, path: path, body: body, requestID: requestID, accept: "application/json", deadline: end)
        return try await whole(request, requestID: requestID, started: started, limit: limit, maximumBytes: configuration.maximumResponseBytes)
    }

    /// A request to a path at the server's root, beside the API root (`/health`, `/metrics`,
    /// `/tokenize` of `http://host:8000` for the base URL `http://host:8000/v1`); the whole
    /// body, at most `maximumBytes`.
    package func sendToServerRoot(
        method: HTTPMethod, _ path: String, body: ByteBuffer? = nil, timeout: Duration, maximumBytes: Int
    ) async throws(SageLLMError) -> ByteBuffer {
        let started = ContinuousClock.now
        let requestID = Self.makeRequestID()
        let root = baseURL.hasSuffix("/v1") ? String(baseURL.dropLast(3)) : baseURL
        let rootPath = basePath.hasSuffix("/v1") ? String(basePath.dropLast(3)) : basePath
        let request = EngineRequest(
            method: method, url: root + "/" + path, path: rootPath + "/" + path,
            headers: headers(requestID: requestID, accept: "*/*", hasBody: body != nil), body: body, deadline: started + timeout,
            readTimeout: min(configuration.readTimeout, timeout))
        return try await whole(request, requestID: requestID, started: started, limit: timeout, maximumBytes: maximumBytes)
    }

    /// Sends `request` and reads its whole body, at most `maximumBytes`.
    private func whole(
        _ request: EngineRequest, requestID: String, started: ContinuousClock.Instant, limit: Duration, maximumBytes: Int
    ) async throws(SageLLMError) -> ByteBuffer {
        let lease = InFlightLease(self)
        defer { withExtendedLifetime(lease) {} }
        let response = try await exchange(request, requestID: requestID, started: started, limit: limit)
        do {
            guard let collected = try await response.body.collect(upTo: maximumBytes) else {
                var error = SageLLMError(
                    code: .decoding,
                    reason: "the response is larger than \(maximumBytes == configuration.maximumResponseBytes ? "maximumResponseBytes (\(maximumBytes))" : "\(maximumBytes) bytes")")
                error.endpoint = request.url
                error.requestID = requestID
                error.requestSent = true
                error.receivedResponseHead = true
                throw error
            }
            return collected
        } catch let failure as TransportFailure {
            throw mapError(failure, endpoint: request.url, requestID: requestID, started: started, limit: limit)
        } catch {
            throw error as? SageLLMError ?? SageLLMError(code: .streamInterrupted, reason: "\(error)")
        }
    }

    /// Sends a request whose answer is a stream; a non-2xx status is thrown before any byte
    /// is handed out. The stream has a total deadline only when `timeout` is given (then the
    /// caller's `deadline` over its attempts bounds it too); otherwise `deadline` bounds only
    /// the wait for the response head.
    /// `method`, `body` and `accept` default to an SSE completion's; a watch (Kubernetes,
    /// etcd) is a GET of a stream of JSON lines.
    package func openStream(
        method: HTTPMethod = .POST, path: String, body: ByteBuffer?, accept: String = "text/event-stream", requestID: String,
        timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) async throws(SageLLMError) -> StreamingResponse {
        let started = ContinuousClock.now
        var request = engineRequest(
            method: method, path: path, body: body, requestID: requestID, accept: accept,
            deadline: timeout.map { min(started + $0, deadline ?? started + $0) })
        request.headDeadline = deadline
        let limit = timeout ?? deadline.map { $0 - started } ?? configuration.requestTimeout
        let lease = InFlightLease(self)
        let response = try await exchange(request, requestID: requestID, started: started, limit: limit)
        return StreamingResponse(
            transport: self, body: response.body, endpoint: request.url, requestID: requestID, started: started, limit: limit,
            lease: lease)
    }

    /// The request for the engine, with this transport's headers.
    private func engineRequest(
        method: HTTPMethod, path: String, body: ByteBuffer?, requestID: String, accept: String, deadline: ContinuousClock.Instant?
    ) -> EngineRequest {
        EngineRequest(
            method: method, url: url(path), path: enginePath(path),
            headers: headers(requestID: requestID, accept: accept, hasBody: body != nil), body: body, deadline: deadline,
            readTimeout: configuration.readTimeout)
    }

    /// How many times in a row a request is sent again at once because the reused keep-alive
    /// connection it went out on had been closed by the server. Each such try reached no
    /// server; the pool's idle connections may all be stale, so a few are allowed.
    static let maximumStaleConnectionResends = 8

    /// Sends `request` until its response head arrives, and throws a non-2xx status as the
    /// server's error. A request that met a stale keep-alive connection (it reached no
    /// server) goes out again at once, on a new connection, uncounted by the retry policy.
    func exchange(
        _ request: EngineRequest, receiver: BodyReceiver? = nil, requestID: String, started: ContinuousClock.Instant,
        limit: Duration
    ) async throws(SageLLMError) -> EngineResponse {
        try checkKey(endpoint: request.url, requestID: requestID)
        guard !isShutDown.load(ordering: .relaxed) else {
            var error = SageLLMError(code: .invalidConfiguration, reason: "the client was shut down; make a new one to send more requests")
            error.endpoint = request.url
            error.requestID = requestID
            throw error
        }
        var request = request
        var staleResends = 0
        while true {
            let response: EngineResponse
            do {
                response = try await engine.open(request, receiver: receiver)
            } catch {
                let moreTime = request.deadline.map { ContinuousClock.now < $0 } ?? true
                if error.isStaleConnection, staleResends < Self.maximumStaleConnectionResends, moreTime {
                    staleResends += 1
                    request.freshConnection = true
                    logger.debug(
                        "stale keep-alive connection, sending again",
                        metadata: ["sage.request.id": "\(requestID)", "sage.resend": "\(staleResends)"])
                    continue
                }
                throw mapError(error, endpoint: request.url, requestID: requestID, started: started, limit: limit)
            }
            guard (200..<300).contains(response.status.code) else {
                throw await statusError(response, endpoint: request.url, requestID: requestID)
            }
            return response
        }
    }

    /// Fails at once when a required key is missing.
    func checkKey(endpoint: String, requestID: String) throws(SageLLMError) {
        guard let missingKeyMessage else { return }
        var error = SageLLMError.invalidConfiguration(field: "apiKey", missingKeyMessage)
        error.endpoint = endpoint
        error.requestID = requestID
        throw error
    }

    /// The most of an error response's body that is read for the error.
    static let errorBodyLimit = 65_536

    /// Reads (a bounded part of) an error response and makes the error from it.
    private func statusError(_ response: EngineResponse, endpoint: String, requestID: String) async -> SageLLMError {
        var bytes: [UInt8] = []
        do {
            while let piece = try await response.body.next() {
                bytes.append(contentsOf: piece.bytes.readableBytesView.prefix(Self.errorBodyLimit - bytes.count))
                if bytes.count >= Self.errorBodyLimit { break }
            }
        } catch {
            // The status is what matters here: a body cut short still leaves it, and what was read.
            logger.debug("error body unreadable", metadata: ["sage.error": "\(error.kind)"])
        }
        response.body.cancel()  // what is left of it is not wanted
        return statusError(response.status, headers: response.headers, body: bytes, endpoint: endpoint, requestID: requestID)
    }

    /// The error for a non-2xx answer: its status, the server's message and type from the
    /// body, a snippet, and when to retry.
    func statusError(_ status: HTTPResponseStatus, headers: HTTPHeaders, body bytes: [UInt8], endpoint: String, requestID: String)
        -> SageLLMError
    {
        let body = ErrorBody.parse(bytes)
        let code = Int(status.code)
        var error = SageLLMError(code: .httpStatus, reason: "the server answered \(code) \(status.reasonPhrase)")
        error.status = code
        error.endpoint = endpoint
        error.requestID = requestID
        error.serverMessage = body?.message
        error.serverErrorType = body?.type ?? body?.code
        if !bytes.isEmpty {
            let text = String(decoding: bytes, as: UTF8.self)
            error.snippet = SageLLMError.snippet(text)
            error.responseBody = text
        }
        if let value = headers.first(name: "retry-after") {
            error.retryAfter = RetryAfter.parse(value)
        }
        return cleaned(error)
    }

    /// `error` with its server text safe to print: this client's key redacted, control
    /// characters removed, lengths capped.
    package func cleaned(_ error: SageLLMError) -> SageLLMError {
        error.cleaningServerText(secrets: apiKey.map { [$0.secret] } ?? [])
    }

    static func totalTimeout(_ limit: Duration) -> SageLLMError {
        var error = SageLLMError(code: .timeout, reason: "the request did not complete in time")
        error.timeoutKind = .total
        error.timeoutLimit = limit
        return error
    }

    /// Turns a transport failure into a ``SageLLMError`` with context: the one place where
    /// what happened on the wire becomes what the caller is told.
    ///
    /// Whether the request may have reached the server (``SageLLMError/requestSent``) follows
    /// from how far the exchange got: a failure to connect did not send it; anything later may have.
    package func mapError(
        _ failure: TransportFailure, endpoint: String, requestID: String, started: ContinuousClock.Instant, limit: Duration
    ) -> SageLLMError {
        var mapped: SageLLMError
        let answered = failure.receivedHead || failure.receivedBody
        var sent = failure.requestWritten
        switch failure.kind {
        case .connectTimeout:
            mapped = SageLLMError(code: .timeout, reason: "could not connect in time")
            mapped.timeoutKind = .connect
            mapped.timeoutLimit = configuration.connectTimeout
        case .connectFailed:
            mapped = SageLLMError(code: .connectionFailed, reason: "could not reach the server")
        case .idleRead:
            mapped = SageLLMError(
                code: .timeout,
                reason: answered ? "the server stopped sending mid-response" : "the server sent nothing for too long")
            mapped.timeoutKind = .idleRead
            mapped.timeoutLimit = configuration.readTimeout
            sent = true
        case .deadline:
            mapped = Self.totalTimeout(limit)
            sent = true
        case .cancelled:
            mapped = SageLLMError(code: .cancelled, reason: "the request was cancelled")
            sent = true
        case .closed where answered:
            mapped = SageLLMError(
                code: .streamInterrupted,
                reason: failure.receivedBody ? "the server closed the connection mid-response" : "the server closed the connection after the response head")
        case .closed where !failure.requestWritten:
            mapped = SageLLMError(code: .connectionFailed, reason: "the connection was closed before the request went out")
        case .closed:
            mapped = SageLLMError(code: .connectionFailed, reason: "the server closed the connection before answering")
        case .malformedResponse:
            mapped =
                answered
                ? SageLLMError(code: .streamInterrupted, reason: "the response broke off: what followed its head is not valid HTTP")
                : SageLLMError(code: .connectionFailed, reason: "the server's answer is not a valid HTTP response")
        case .receiverFailed:
            mapped = failure.underlying as? SageLLMError ?? SageLLMError(code: .decoding, reason: "the stream could not be read")
            if failure.underlying is SageLLMError { break }
        }
        if let underlying = failure.underlying, failure.kind != .receiverFailed { mapped.underlying = "\(underlying)" }
        if answered || failure.kind == .receiverFailed {
            mapped.receivedResponseHead = true
            sent = true
        }
        // Output counts as delivered only when the body went to a receiver; a reader's
        // consumer says itself what reached it.
        if failure.kind == .receiverFailed { mapped.receivedPartialOutput = true }
        mapped.requestSent = mapped.requestSent || sent
        mapped.endpoint = mapped.endpoint ?? endpoint
        mapped.requestID = mapped.requestID ?? requestID
        mapped.elapsed = mapped.elapsed ?? (ContinuousClock.now - started)
        return cleaned(mapped)
    }

    /// A failure met while reading a response (a parser's, a decoder's) with the request's context.
    package func contextualize(
        _ error: SageLLMError, endpoint: String, requestID: String, started: ContinuousClock.Instant
    ) -> SageLLMError {
        var mapped = error
        mapped.receivedResponseHead = true
        mapped.requestSent = true
        mapped.endpoint = mapped.endpoint ?? endpoint
        mapped.requestID = mapped.requestID ?? requestID
        mapped.elapsed = mapped.elapsed ?? (ContinuousClock.now - started)
        return cleaned(mapped)
    }

    /// Closes the engine's pooled connections. Requests afterwards fail.
    package func shutdown() async throws {
        guard !isShutDown.exchange(true, ordering: .relaxed) else { return }
        await engine.shutdown()
    }
}
