import NIOCore

/// A response whose body is read piece by piece.
package struct StreamingResponse: Sendable {
    package let transport: HTTPTransport
    package let body: ResponseBody
    package let endpoint: String
    package let requestID: String
    package let started: ContinuousClock.Instant
    package let limit: Duration
    /// Keeps the request counted in flight until the last copy of the response is gone.
    package let lease: HTTPTransport.InFlightLease
}

/// Reads a streamed body, with every failure as a ``SageLLMError``.
package final class StreamingBodyReader: Sendable {
    package let stream: StreamingResponse

    package init(_ stream: StreamingResponse) { self.stream = stream }

    package func next() async throws(SageLLMError) -> ByteBuffer? {
        do {
            guard let piece = try await stream.body.next() else { return nil }
            return piece.bytes
        } catch {
            throw stream.transport.mapError(
                error, endpoint: stream.endpoint, requestID: stream.requestID, started: stream.started, limit: stream.limit)
        }
    }

    /// Ends the exchange: the connection closes and the server sees the request go away.
    package func cancel() { stream.body.cancel() }

    /// After the stream's last event (`[DONE]`): reads the end of the body, so that the
    /// connection can carry another request, or ends the exchange if more keeps coming.
    package func finishAfterTheLastEvent() async {
        for _ in 0..<4 {
            guard let piece = try? await stream.body.next() else { return }  // the end, or an error: the exchange is over
            if piece.bytes.readableBytes > 0 { break }
        }
        cancel()
    }
}
