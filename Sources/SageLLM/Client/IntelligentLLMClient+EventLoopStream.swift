import NIOCore

extension IntelligentLLMClient {
    /// Streams a chat and hands each chunk to `onChunk` on the connection's event loop, with
    /// the instant its bytes were read from the socket (see
    /// ``HTTPTransport/receiveStream(path:body:requestID:timeout:written:receive:)``). For the
    /// benchmark, whose timestamps must not include a consumer task's wait for a thread.
    ///
    /// Unlike ``streamChat(_:options:)`` this goes around the resilience layer: no retries,
    /// no rate or concurrency limit, no client metrics. `onChunk` must be quick and must not
    /// block. Returns when the stream has ended (`[DONE]` or the end of the body).
    /// `onWritten` gets the instant just before the request is written to its open connection,
    /// before any chunk, when the transport can tell it (direct connections to `http://`).
    package func streamChatOnEventLoop(
        _ messages: [ChatMessage], options: ChatOptions? = nil,
        onWritten: @escaping @Sendable (ContinuousClock.Instant) -> Void = { _ in },
        onChunk: @escaping @Sendable (ChatCompletionChunk, ContinuousClock.Instant) -> Void
    ) async throws(SageLLMError) {
        let options = options ?? configuration.defaultOptions
        let (_, body) = try await chatBody(messages, options: options, stream: true)
        let requestID = options.requestID ?? HTTPTransport.makeRequestID()
        let reader = EventLoopChunkReader<ChatCompletionChunk>(what: "a chat completion chunk", onChunk: onChunk)
        try await transport.receiveStream(
            path: "chat/completions", body: body, requestID: requestID, timeout: options.timeout, written: onWritten
        ) { buffer, received in
            try reader.read(buffer, received: received)
        }
        do {
            try reader.finish()
        } catch {
            var failure = error
            failure.endpoint = transport.url("chat/completions")
            failure.requestID = requestID
            throw failure
        }
    }
}

/// Parses a stream's events as its pieces arrive on an event loop and hands out the chunks.
private final class EventLoopChunkReader<Chunk: MeteredChunk>: @unchecked Sendable {
    // Safety: `read` is called on one event loop, one piece at a time; `finish` only after
    // the last `read` has returned and the request's future has completed.
    private var parser = ServerSentEventParser()
    private let what: String
    private let onChunk: @Sendable (Chunk, ContinuousClock.Instant) -> Void
    private var done = false
    /// Whether the server said the answer is complete: `[DONE]` or a finish reason.
    private var sawEnd = false
    private var lastReceived = ContinuousClock.now

    init(what: String, onChunk: @escaping @Sendable (Chunk, ContinuousClock.Instant) -> Void) {
        self.what = what
        self.onChunk = onChunk
    }

    func read(_ buffer: ByteBuffer, received: ContinuousClock.Instant) throws(SageLLMError) {
        lastReceived = received
        try parsing { try $0.parseViews(buffer) { event in try accept(event, received: received) } }
    }

    /// The body has ended: an event left without its blank line still counts.
    func finish() throws(SageLLMError) {
        try parsing { try $0.finishViews { event in try accept(event, received: lastReceived) } }
        if !sawEnd { throw SageLLMError.streamEndedEarly(endpoint: nil, requestID: nil) }
    }

    /// Runs the parser; what it throws is a ``SageLLMError`` already, else a decoding error.
    private func parsing(_ body: (inout ServerSentEventParser) throws -> Void) throws(SageLLMError) {
        do {
            try body(&parser)
        } catch {
            throw error as? SageLLMError ?? SageLLMError.decoding(what, snippet: "", endpoint: nil, requestID: nil, underlying: "\(error)")
        }
    }

    private func accept(_ event: ServerSentEventParser.EventView, received: ContinuousClock.Instant) throws(SageLLMError) {
        guard !done else { return }
        guard let chunk = try Chunk.decodeEvent(event, what: what) else {
            done = true
            sawEnd = true
            return
        }
        if chunk.carriesFinishReason { sawEnd = true }
        onChunk(chunk, received)
    }
}
