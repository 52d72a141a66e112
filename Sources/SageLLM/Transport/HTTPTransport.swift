import AsyncHTTPClient
import Dispatch
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SageSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One pooled AsyncHTTPClient and the rules for talking to one OpenAI-compatible base URL:
/// headers, time limits, and turning every failure into a ``SageLLMError``.
package final class HTTPTransport: Sendable {
    /// The base URL without a trailing slash, e.g. `http://127.0.0.1:8000/v1`.
    package let baseURL: String
    package let configuration: TransportConfiguration
    private let apiKey: APIKey?
    let client: HTTPClient
    /// Streams to an `http://` base URL go over these (see ``DirectStreamConnections``).
    let directStreams: DirectStreamConnections?
    private let logger: Logger
    /// Requests fail at once with this (a required key is missing).
    private let missingKeyMessage: String?
    private let isShutDown = Atomic<Bool>(false)
    private let inFlight = Atomic<Int>(0)
    /// The pooled connections that have carried a request (see ``ConnectionProbe``).
    private let usedConnections = UsedConnections()

    package init(
        baseURL: String, apiKey: APIKey?, configuration: TransportConfiguration, missingKeyMessage: String? = nil,
        logger: Logger
    ) throws(SageLLMError) {
        try configuration.validate()
        self.baseURL = try Self.normalize(baseURL: baseURL)
        self.apiKey = apiKey
        self.missingKeyMessage = missingKeyMessage
        self.configuration = configuration
        self.logger = logger
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
        self.client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: http)
        self.directStreams = DirectStreamConnections.Target(baseURL: self.baseURL).map {
            DirectStreamConnections(
                target: $0, connectTimeout: configuration.connectTimeout,
                idleTimeout: configuration.idleConnectionTimeout, maximumIdle: configuration.maximumConnectionsPerHost)
        }
    }

    /// Checks that `baseURL` is an http(s) URL with a host and, if written, a port of
    /// 1-65535, without user info, query or fragment; drops a trailing slash. Messages never
    /// repeat user info.
    package static func normalize(baseURL: String) throws(SageLLMError) -> String {
        var url = baseURL.trimmingWhitespace()
        while url.hasSuffix("/") { url.removeLast() }
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

    private func makeRequest(method: HTTPMethod, path: String, body: ByteBuffer?, requestID: String, accept: String)
        -> HTTPClientRequest
    {
        var request = HTTPClientRequest(url: url(path))
        request.method = method
        request.headers = headers(requestID: requestID, accept: accept, hasBody: body != nil)
        if let body { request.body = .bytes(body) }
        return request
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
        let request = makeRequest(method: method, path: path, body: body, requestID: requestID, accept: "application/json")
        let response = try await open(request, path: path, requestID: requestID, timeout: timeout, deadline: deadline)
        let reader = StreamingBodyReader(response)
        var collected = ByteBuffer()
        while var buffer = try await reader.next() {
            guard collected.readableBytes + buffer.readableBytes <= configuration.maximumResponseBytes else {
                var error = SageLLMError(
                    code: .decoding,
                    reason: "the response is larger than maximumResponseBytes (\(configuration.maximumResponseBytes))")
                error.endpoint = response.endpoint
                error.requestID = requestID
                throw error
            }
            collected.writeBuffer(&buffer)
        }
        return collected
    }

    /// Sends a request whose answer is a stream; a non-2xx status is thrown before any byte
    /// is handed out.
    package func openStream(
        path: String, body: ByteBuffer, requestID: String, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) async throws(SageLLMError) -> StreamingResponse {
        let request = makeRequest(
            method: .POST, path: path, body: body, requestID: requestID, accept: "text/event-stream")
        return try await open(request, path: path, requestID: requestID, timeout: timeout, deadline: deadline)
    }

    /// How many times in a row a request is sent again at once because the reused keep-alive
    /// connection it went out on had been closed by the server. Each such try reached no
    /// server; the pool's idle connections may all be stale, so a few are allowed.
    static let maximumStaleConnectionResends = 8

    /// Sends `request` and waits for the response head (AsyncHTTPClient's deadline bounds this
    /// part); the body is left to a ``StreamingBodyReader``, which keeps to the same deadline.
    private func open(
        _ request: HTTPClientRequest, path: String, requestID: String, timeout: Duration?,
        deadline callerDeadline: ContinuousClock.Instant?
    ) async throws(SageLLMError) -> StreamingResponse {
        let started = ContinuousClock.now
        let limit = timeout ?? configuration.requestTimeout
        let deadline = min(started + limit, callerDeadline ?? started + limit)
        let endpoint = url(path)
        let lease = InFlightLease(self)
        try checkKey(endpoint: endpoint, requestID: requestID)
        var staleResends = 0
        while true {
            let probe = ConnectionProbe(pool: usedConnections)
            do {
                let remaining = deadline - ContinuousClock.now
                let response = try await client.execute(
                    request, deadline: NIODeadline.now() + .nanoseconds(remaining.nanoseconds), logger: probe.logger)
                guard (200..<300).contains(response.status.code) else {
                    throw await statusError(response, endpoint: endpoint, requestID: requestID)
                }
                return StreamingResponse(
                    transport: self, response: response, endpoint: endpoint, requestID: requestID, started: started,
                    deadline: deadline, limit: limit, lease: lease)
            } catch {
                // A reused keep-alive connection that the server had closed: the request reached
                // no server, so it goes out again at once (on another connection), uncounted.
                if Self.neverWritten(error) || (probe.reusedConnection && Self.isClosedBeforeAnswer(error)),
                    staleResends < Self.maximumStaleConnectionResends, ContinuousClock.now < deadline
                {
                    staleResends += 1
                    logger.debug(
                        "stale keep-alive connection, sending again",
                        metadata: ["sage.request.id": "\(requestID)", "sage.resend": "\(staleResends)"])
                    continue
                }
                throw mapError(error, endpoint: endpoint, requestID: requestID, started: started, limit: limit)
            }
        }
    }

    /// Whether `error` is a connection that closed (or was reset) before any answer.
    static func isClosedBeforeAnswer(_ error: any Error) -> Bool {
        switch error {
        case let error as HTTPClientError: return error == .remoteConnectionClosed
        case let error as IOError: return error.errnoCode == ECONNRESET || error.errnoCode == EPIPE
        case ChannelError.eof: return true
        default: return neverWritten(error)
        }
    }

    /// Whether `error` says the request could not be written at all: the pooled connection
    /// was already closed when it was to go out. No server saw such a request.
    static func neverWritten(_ error: any Error) -> Bool {
        switch error {
        case ChannelError.ioOnClosedChannel, ChannelError.outputClosed, ChannelError.alreadyClosed: return true
        default: return false
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
    private func statusError(_ response: HTTPClientResponse, endpoint: String, requestID: String) async -> SageLLMError {
        var bytes: [UInt8] = []
        do {
            for try await buffer in response.body {
                bytes.append(contentsOf: buffer.readableBytesView.prefix(Self.errorBodyLimit - bytes.count))
                if bytes.count >= Self.errorBodyLimit { break }
            }
        } catch {
            // The status is what matters here: a body cut short still leaves it, and what was read.
            logger.debug("error body unreadable", metadata: ["sage.error": "\(error)"])
        }
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

    /// Turns any error met while talking to the server into a ``SageLLMError`` with context.
    ///
    /// `receivedHead` and `partialOutput` say how far the exchange got: the response head, and
    /// body bytes. Whether the request may have reached the server (``SageLLMError/requestSent``)
    /// follows from the error: a failure to connect did not send it; anything later may have.
    package func mapError(
        _ error: any Error, endpoint: String, requestID: String, started: ContinuousClock.Instant, limit: Duration,
        receivedHead: Bool = false, partialOutput: Bool = false
    ) -> SageLLMError {
        var mapped: SageLLMError
        let answered = receivedHead || partialOutput
        if let error = error as? SageLLMError {
            mapped = error
        } else if error is CancellationError {
            mapped = SageLLMError(code: .cancelled, reason: "the request was cancelled")
            mapped.requestSent = true
        } else if let error = error as? HTTPClientError {
            mapped = mapClientError(error, limit: limit, answered: answered, partialOutput: partialOutput)
            mapped.underlying = "\(error)"
        } else if answered {
            mapped = SageLLMError(
                code: .streamInterrupted,
                reason: partialOutput ? "the response broke off after part of its body" : "the response broke off after its head")
            mapped.underlying = "\(error)"
        } else if Self.neverWritten(error) {
            mapped = SageLLMError(code: .connectionFailed, reason: "the connection was closed before the request went out")
            mapped.underlying = "\(error)"
        } else if Self.isClosedBeforeAnswer(error) {
            mapped = SageLLMError(code: .connectionFailed, reason: "the server closed the connection before answering")
            mapped.requestSent = true
            mapped.underlying = "\(error)"
        } else {
            mapped = SageLLMError(code: .connectionFailed, reason: "could not reach the server")
            mapped.underlying = "\(error)"
        }
        if answered {
            mapped.receivedResponseHead = true
            mapped.requestSent = true
        }
        mapped.endpoint = mapped.endpoint ?? endpoint
        mapped.requestID = mapped.requestID ?? requestID
        mapped.elapsed = mapped.elapsed ?? (ContinuousClock.now - started)
        return cleaned(mapped)
    }

    /// An AsyncHTTPClient error as a ``SageLLMError``; see ``mapError(_:endpoint:requestID:started:limit:receivedHead:partialOutput:)``.
    private func mapClientError(_ error: HTTPClientError, limit: Duration, answered: Bool, partialOutput: Bool)
        -> SageLLMError
    {
        var mapped: SageLLMError
        switch error {
        case .connectTimeout, .tlsHandshakeTimeout, .socksHandshakeTimeout, .httpProxyHandshakeTimeout:
            mapped = SageLLMError(code: .timeout, reason: "could not connect in time")
            mapped.timeoutKind = .connect
            mapped.timeoutLimit = configuration.connectTimeout
            return mapped
        case .readTimeout:
            mapped = SageLLMError(
                code: .timeout,
                reason: answered ? "the server stopped sending mid-response" : "the server sent nothing for too long")
            mapped.timeoutKind = .idleRead
            mapped.timeoutLimit = configuration.readTimeout
        case .deadlineExceeded:
            mapped = Self.totalTimeout(limit)
        case .cancelled:
            mapped = SageLLMError(code: .cancelled, reason: "the request was cancelled")
        case .remoteConnectionClosed where answered:
            mapped = SageLLMError(
                code: .streamInterrupted,
                reason: partialOutput ? "the server closed the connection mid-response" : "the server closed the connection after the response head")
        case .remoteConnectionClosed:
            mapped = SageLLMError(code: .connectionFailed, reason: "the server closed the connection before answering")
        case _ where answered:
            mapped = SageLLMError(code: .streamInterrupted, reason: "the response broke off")
        default:
            mapped = SageLLMError(code: .connectionFailed, reason: "the HTTP request failed")
            return mapped
        }
        mapped.requestSent = true
        return mapped
    }

    package func shutdown() async throws {
        guard !isShutDown.exchange(true, ordering: .relaxed) else { return }
        directStreams?.shutdown()
        try await client.shutdown()
    }

    deinit {
        // A client dropped without shutdown() (a shared client cleared from the cache) still
        // closes its connections; the HTTP client keeps itself alive until that is done.
        if !isShutDown.load(ordering: .relaxed) {
            directStreams?.shutdown()
            client.shutdown(queue: .global()) { _ in }
        }
    }
}

/// A response whose body is read piece by piece, within the request's total deadline.
package struct StreamingResponse: Sendable {
    package let transport: HTTPTransport
    package let response: HTTPClientResponse
    package let endpoint: String
    package let requestID: String
    package let started: ContinuousClock.Instant
    package let deadline: ContinuousClock.Instant
    package let limit: Duration
    /// Keeps the request counted in flight until the last copy of the response is gone.
    package let lease: HTTPTransport.InFlightLease
}

/// Reads a streamed body with the total deadline enforced even while the server is silent:
/// when less time is left than the idle read timeout, each read races the deadline.
package final class StreamingBodyReader: @unchecked Sendable {
    // Safety: used by one consumer at a time (a stream's `next()` calls never overlap),
    // and the racing child task is awaited before `next(...)` returns.
    private var iterator: HTTPClientResponse.Body.AsyncIterator
    package let stream: StreamingResponse
    /// Whether any body bytes have been read.
    package private(set) var receivedBytes = false

    package init(_ stream: StreamingResponse) {
        self.stream = stream
        self.iterator = stream.response.body.makeAsyncIterator()
    }

    package func next() async throws(SageLLMError) -> ByteBuffer? {
        let remaining = stream.deadline - ContinuousClock.now
        do {
            let buffer: ByteBuffer?
            if remaining > stream.transport.configuration.readTimeout {
                buffer = try await iterator.next()
            } else {
                let limit = stream.limit
                buffer = try await withDeadline(stream.deadline, onTimeout: { HTTPTransport.totalTimeout(limit) }) {
                    try await self.iterator.next()
                }
            }
            if buffer != nil { receivedBytes = true }
            return buffer
        } catch {
            throw stream.transport.mapError(
                error, endpoint: stream.endpoint, requestID: stream.requestID, started: stream.started,
                limit: stream.limit, receivedHead: true, partialOutput: receivedBytes)
        }
    }
}

/// Reads a `Retry-After` header: delay seconds or an HTTP date.
package enum RetryAfter {
    package static func parse(_ value: String, now: Double? = nil) -> Duration? {
        let trimmed = value.trimmingWhitespace()
        // A server's number: NaN, infinite or negative is ignored; beyond the maximum is capped
        // there (the retry policy's own deadline decides whether such a wait fits).
        if let seconds = Double(trimmed) {
            guard seconds.isFinite, seconds >= 0 else { return nil }
            return OutsideNumber.duration(seconds: min(seconds, OutsideNumber.maximumSeconds), allowZero: true)
        }
        guard let date = HTTPDate.parse(trimmed) else { return nil }
        let current = now ?? HTTPDate.nowSecondsSince1970()
        let wait = date - current
        guard wait.isFinite else { return nil }
        return OutsideNumber.duration(seconds: min(max(0, wait), OutsideNumber.maximumSeconds), allowZero: true)
    }
}
