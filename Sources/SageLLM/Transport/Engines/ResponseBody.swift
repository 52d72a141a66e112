import DequeModule
import NIOCore
import Synchronization

/// A response body that an engine fills on its event loop and a consumer reads in order:
/// pieces, then the end or a failure. When more than ``pauseAbove`` bytes wait unread, the
/// engine is asked to stop reading from the connection, and to go on once the consumer has
/// read them down to ``resumeBelow`` (a consumer that stops reading does not fill memory).
///
/// The consumer ends an exchange it no longer wants with ``cancel()``: the engine closes the
/// connection, and the server sees the request go away.
package final class ResponseBody: Sendable {
    package static let pauseAbove = 1 << 20
    package static let resumeBelow = 256 << 10

    private struct State: Sendable {
        var pieces = Deque<BodyPiece>()
        var bufferedBytes = 0
        /// Set once: the body ended, or failed.
        var end: Result<Void, TransportFailure>?
        var waiter: CheckedContinuation<Void, Never>?
        var paused = false
        var cancelled = false
    }

    private let state = Mutex(State())
    private let resumeReading: @Sendable () -> Void
    private let cancelExchange: @Sendable () -> Void

    /// - Parameters:
    ///   - resumeReading: asks the engine to read again after ``deliver(_:)`` said to pause.
    ///   - cancel: ends the exchange (closes its connection) if it has not ended.
    package init(resumeReading: @escaping @Sendable () -> Void, cancel: @escaping @Sendable () -> Void) {
        self.resumeReading = resumeReading
        self.cancelExchange = cancel
    }

    /// A body that has already ended (a receiver got the pieces, or there were none).
    package static func ended() -> ResponseBody {
        let body = ResponseBody(resumeReading: {}, cancel: {})
        body.finish()
        return body
    }

    // MARK: The engine's side (its event loop)

    /// Adds a piece; returns true when the engine should stop reading until `resumeReading`.
    @discardableResult
    package func deliver(_ piece: BodyPiece) -> Bool {
        let (waiter, pause) = state.withLock { state -> (CheckedContinuation<Void, Never>?, Bool) in
            guard state.end == nil else { return (nil, false) }
            state.pieces.append(piece)
            state.bufferedBytes += piece.bytes.readableBytes
            if state.bufferedBytes > Self.pauseAbove { state.paused = true }
            defer { state.waiter = nil }
            return (state.waiter, state.paused)
        }
        waiter?.resume()
        return pause
    }

    /// The body ended normally.
    package func finish() { end(.success(())) }

    /// The exchange failed after the head.
    package func fail(_ failure: TransportFailure) { end(.failure(failure)) }

    private func end(_ result: Result<Void, TransportFailure>) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.end == nil else { return nil }
            state.end = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Whether the body has ended or failed.
    package var hasEnded: Bool { state.withLock { $0.end != nil } }

    // MARK: The consumer's side

    /// The next piece, or nil at the end. Cancelling the task cancels the exchange.
    package func next() async throws(TransportFailure) -> BodyPiece? {
        while true {
            enum Step { case piece(BodyPiece, resume: Bool), end(Result<Void, TransportFailure>), wait }
            let step = state.withLock { state -> Step in
                if let piece = state.pieces.popFirst() {
                    state.bufferedBytes -= piece.bytes.readableBytes
                    let resume = state.paused && state.bufferedBytes < Self.resumeBelow
                    if resume { state.paused = false }
                    return .piece(piece, resume: resume)
                }
                if let end = state.end { return .end(end) }
                return .wait
            }
            switch step {
            case .piece(let piece, let resume):
                if resume { resumeReading() }
                return piece
            case .end(let result):
                try result.get()
                return nil
            case .wait:
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let ready = state.withLock { state -> Bool in
                            if !state.pieces.isEmpty || state.end != nil || state.cancelled { return true }
                            state.waiter = continuation
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                } onCancel: {
                    cancel()
                }
            }
        }
    }

    /// Reads the rest of the body, at most `limit` bytes; nil when there is more.
    package func collect(upTo limit: Int) async throws(TransportFailure) -> ByteBuffer? {
        var collected = ByteBuffer()
        while var piece = try await next() {
            guard collected.readableBytes + piece.bytes.readableBytes <= limit else {
                cancel()
                return nil
            }
            collected.writeBuffer(&piece.bytes)
        }
        return collected
    }

    /// Ends the exchange if it has not ended: the engine closes the connection. Reading
    /// afterwards ends with `cancelled`.
    package func cancel() {
        let first = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.cancelled else { return (false, nil) }
            state.cancelled = true
            if state.end == nil { state.end = .failure(TransportFailure(.cancelled, requestWritten: true, receivedHead: true)) }
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        first.1?.resume()
        if first.0 { cancelExchange() }
    }
}
