import struct Foundation.Data
import NIOCore

/// Turns the body of an OpenAI-compatible streamed response into decoded chunks, read on
/// demand: nothing is read from the network until the consumer asks for the next chunk.
///
/// An event that is not valid JSON for `Chunk` is an error carrying the event's text; an
/// `{"error": ...}` event is the server's error. `[DONE]` ends the stream.
///
/// The request goes through the client's resilience layer (``StreamAdmission``): it is
/// retried while nothing of it has reached the consumer, never after.
final class EventStreamDecoder<Chunk: MeteredChunk>: @unchecked Sendable {
    // Safety: an AsyncThrowingStream(unfolding:) calls `next()` from one consumer at a time,
    // never concurrently, so the mutable state below is never shared.
    /// Sends the request with the given attempt's request id, within the stream's deadline.
    private let open: @Sendable (String, ContinuousClock.Instant) async throws(SageLLMError) -> StreamingResponse
    private let admission: StreamAdmission
    private var usage: Usage?
    private var failed = false
    private var reader: StreamingBodyReader?
    private var parser = ServerSentEventParser()
    private var pending: [Chunk] = []
    private var pendingIndex = 0
    private var finished = false
    /// Whether the server said the answer is complete: `[DONE]` or a finish reason.
    private var sawEnd = false
    private let what: String

    init(
        what: String, admission: StreamAdmission,
        open: @escaping @Sendable (String, ContinuousClock.Instant) async throws(SageLLMError) -> StreamingResponse
    ) {
        self.what = what
        self.admission = admission
        self.open = open
    }

    func next() async throws(SageLLMError) -> Chunk? {
        while true {
            if pendingIndex < pending.count {
                defer { pendingIndex += 1 }
                let chunk = pending[pendingIndex]
                if let reported = chunk.usage { usage = reported }
                admission.deliver(carriesText: chunk.carriesText)
                return chunk
            }
            if finished {
                if !failed { admission.succeed(usage: usage) }
                return nil
            }
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
            let reader: StreamingBodyReader
            if let existing = self.reader {
                reader = existing
            } else {
                do {
                    try Task.checkCancellation(orThrow: SageLLMError(code: .cancelled, reason: "the request was cancelled"))
                    let requestID = try await admission.beginAttempt()
                    reader = StreamingBodyReader(try await open(requestID, admission.deadline))
                } catch {
                    try await retryOrEnd(error)
                    continue
                }
                self.reader = reader
            }
            do {
                if let buffer = try await reader.next() {
                    try parser.parseViews(buffer) { event in try self.accept(event) }
                } else {
                    try parser.finishViews { event in try self.accept(event) }
                    if !sawEnd {
                        throw SageLLMError.streamEndedEarly(endpoint: reader.stream.endpoint, requestID: reader.stream.requestID)
                    }
                    finished = true
                }
            } catch {
                reader.cancel()  // the connection closes: the server stops generating
                self.reader = nil
                try await retryOrEnd(contextualize(error, reader: reader))
                continue
            }
            if finished {
                await reader.finishAfterTheLastEvent()
                self.reader = nil
            }
        }
    }

    deinit {
        // The consumer stopped reading before the end (Swift tells a pull-based sequence only
        // this way): the exchange ends and the server stops generating.
        reader?.cancel()
    }

    /// Starts over after a failed attempt when the retry policy allows it and nothing has
    /// reached the consumer; otherwise ends the stream with the error.
    private func retryOrEnd(_ error: SageLLMError) async throws(SageLLMError) {
        var error = error
        if await admission.retry(after: &error) {
            parser = ServerSentEventParser()
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
            finished = false
            return
        }
        finished = true
        failed = true
        throw error
    }

    private func accept(_ event: ServerSentEventParser.EventView) throws {
        if finished { return }
        guard let chunk = try Chunk.decodeEvent(event, what: what) else {
            finished = true
            sawEnd = true
            return
        }
        if chunk.carriesFinishReason { sawEnd = true }
        pending.append(chunk)
    }

    private func contextualize(_ error: any Error, reader: StreamingBodyReader) -> SageLLMError {
        let stream = reader.stream
        let failure = error as? SageLLMError ?? SageLLMError(code: .decoding, reason: "the stream could not be read: \(error)")
        return stream.transport.contextualize(
            failure, endpoint: stream.endpoint, requestID: stream.requestID, started: stream.started)
    }
}

/// A streamed chunk the resilience layer can measure: its usage report, and whether it
/// carries generated text (for the time to first token).
protocol MeteredChunk: FastJSONDecodable, Sendable {
    var usage: Usage? { get }
    var carriesText: Bool { get }
    /// Whether a choice says why generation stopped (the answer is complete).
    var carriesFinishReason: Bool { get }
}

extension FastJSONDecodable {
    /// The chunk one event carries, or nil for `[DONE]`. An event that is not valid JSON for
    /// the chunk is an error carrying the event's text; an `{"error": ...}` event is the
    /// server's error.
    package static func decodeEvent(_ event: ServerSentEventParser.EventView, what: String)
        throws(SageLLMError) -> Self?
    {
        if event.isDone { return nil }
        do {
            return try decode(event.data)
        } catch {
            let data = Data(event.data)
            let text = String(decoding: data, as: UTF8.self)
            if let value = try? BoundedJSONDecoder().decode(JSONValue.self, from: data), let body = ErrorBody(json: value) {  // not JSON: reported below
                var failure = SageLLMError(code: .httpStatus, reason: "the server reported an error mid-stream")
                failure.serverMessage = body.message
                failure.serverErrorType = body.type ?? body.code
                failure.status = body.code.flatMap { Int($0) }
                failure.snippet = SageLLMError.snippet(text)
                throw failure
            }
            throw SageLLMError.decoding(what, snippet: text, endpoint: nil, requestID: nil, underlying: "\(error)")
        }
    }
}

extension ChatCompletionChunk: MeteredChunk {
    var carriesText: Bool {
        choices.contains { !($0.delta.content ?? "").isEmpty || !($0.delta.reasoningContent ?? "").isEmpty }
    }
    var carriesFinishReason: Bool { choices.contains { $0.finishReason != nil } }
}

extension CompletionResponse: MeteredChunk {
    var carriesText: Bool { choices.contains { !$0.text.isEmpty } }
    var carriesFinishReason: Bool { choices.contains { $0.finishReason != nil } }
}

extension Task where Success == Never, Failure == Never {
    static func checkCancellation(orThrow error: SageLLMError) throws(SageLLMError) {
        if Task.isCancelled { throw error }
    }
}

extension SageLLMError {
    /// The body ended without `[DONE]` and without a finish reason: the answer may be cut
    /// short, so it is not reported as a success (and not retried: the server answered).
    static func streamEndedEarly(endpoint: String?, requestID: String?) -> SageLLMError {
        var error = SageLLMError(
            code: .streamInterrupted,
            reason: "the stream ended without [DONE] or a finish reason, so the answer may be incomplete")
        error.endpoint = endpoint
        error.requestID = requestID
        error.receivedResponseHead = true
        error.requestSent = true
        return error
    }
}
