import NIOCore
import NIOHTTP1

extension HTTPTransport {
    /// Sends a request whose answer is a stream and hands each piece of the body to `receive`
    /// on the connection's event loop, with the instant it was read from the socket, without
    /// a hop to another thread (a consumer task woken for each piece would add its wait for a
    /// thread to every timestamp). `written` is told the instant the request is handed to its
    /// connection. Same engine, same errors and the same time limits as ``openStream(method:path:body:accept:requestID:timeout:deadline:)``.
    ///
    /// `receive` runs on an event loop, one piece at a time: it must be quick and must not
    /// block. An error it throws ends the request and is thrown here. Returns when the body
    /// has ended. The client's resilience layer (retries, limits) is not involved.
    package func receiveStream(
        path: String, body: ByteBuffer, requestID: String, timeout: Duration? = nil,
        written: @escaping @Sendable (ContinuousClock.Instant) -> Void = { _ in },
        receive: @escaping @Sendable (ByteBuffer, ContinuousClock.Instant) throws -> Void
    ) async throws(SageLLMError) {
        let started = ContinuousClock.now
        let limit = timeout ?? configuration.requestTimeout
        var request = EngineRequest(
            method: .POST, url: url(path), path: enginePath(path),
            headers: headers(requestID: requestID, accept: "text/event-stream", hasBody: true), body: body,
            deadline: started + limit, readTimeout: configuration.readTimeout)
        request.onWritten = written
        let lease = InFlightLease(self)
        defer { withExtendedLifetime(lease) {} }
        let response = try await exchange(
            request, receiver: { piece in try receive(piece.bytes, piece.received) }, requestID: requestID, started: started,
            limit: limit)
        do {
            // The pieces went to `receive`; this waits for the end.
            while try await response.body.next() != nil {}
        } catch {
            var mapped = mapError(error, endpoint: request.url, requestID: requestID, started: started, limit: limit)
            // The pieces went straight to `receive`: they were delivered.
            mapped.receivedPartialOutput = mapped.receivedPartialOutput || error.receivedBody
            throw mapped
        }
    }
}
