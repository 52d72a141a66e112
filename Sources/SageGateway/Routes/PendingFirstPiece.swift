import SageControlPlane
import Synchronization

/// The first piece of a stream, read by a task of its own so that the gateway can send SSE
/// keepalives while it waits: ``wait()`` gives up when its waiter is cancelled (a keepalive is
/// due, or the client left) and may be called again; the read goes on.
final class PendingFirstPiece: Sendable {
    /// A piece, or nil when the stream ended before one; or the read's error.
    typealias Outcome = Result<ForwardedPiece?, any Error>

    private enum State {
        case waiting([Int: CheckedContinuation<Outcome?, Never>], next: Int)
        case done(Outcome)
    }

    private let state = Mutex(State.waiting([:], next: 0))

    func fulfil(_ outcome: Outcome) {
        let waiters = state.withLock { state -> [CheckedContinuation<Outcome?, Never>] in
            guard case .waiting(let waiters, _) = state else { return [] }
            state = .done(outcome)
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: outcome) }
    }

    /// The outcome of the read, or nil when the waiting task was cancelled first.
    func wait() async -> Outcome? {
        let id = state.withLock { state -> Int in
            guard case .waiting(let waiters, let next) = state else { return -1 }
            state = .waiting(waiters, next: next + 1)
            return next
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Outcome?, Never>) in
                let now = state.withLock { state -> Outcome?? in
                    switch state {
                    case .done(let outcome): return .some(outcome)
                    case .waiting(var waiters, let next):
                        if Task.isCancelled { return .some(nil) }
                        waiters[id] = continuation
                        state = .waiting(waiters, next: next)
                        return nil
                    }
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Outcome?, Never>? in
                guard case .waiting(var waiters, let next) = state else { return nil }
                defer { state = .waiting(waiters, next: next) }
                return waiters.removeValue(forKey: id)
            }
            waiter?.resume(returning: nil)
        }
    }
}
