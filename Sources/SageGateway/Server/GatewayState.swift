import SageControlPlane
import Synchronization

/// Whether the gateway takes requests, and the requests it is serving: what draining reads.
final class GatewayState: Sendable {
    private struct State {
        var draining = false
        var inFlight = 0
        /// Set when the drain timeout passed: streams still running end with an error event.
        var endStreams = false
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        /// The streams running, to end them when the drain is over.
        var streams: [ObjectIdentifier: RelayAbort] = [:]
    }

    private let state = Mutex(State())

    var isDraining: Bool { state.withLock { $0.draining } }
    var shouldEndStreams: Bool { state.withLock { $0.endStreams } }
    var requestsInFlight: Int { state.withLock { $0.inFlight } }

    /// Counts a request in; false while draining (it is refused).
    func begin() -> Bool {
        state.withLock { state in
            guard !state.draining else { return false }
            state.inFlight += 1
            return true
        }
    }

    /// A request (not a stream: see ``streamEnded(_:)``) is done.
    func end() {
        let waiters = state.withLock { state in Self.finish(&state) }
        for waiter in waiters { waiter.resume() }
    }

    private static func finish(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        state.inFlight -= 1
        guard state.inFlight == 0 else { return [] }
        defer { state.idleWaiters.removeAll() }
        return state.idleWaiters
    }

    func startDraining() { state.withLock { $0.draining = true } }

    /// The drain is over: streams still running end (each with an error event), and
    /// ``waitUntilIdle()`` stops waiting.
    func endRemainingStreams() {
        let (waiters, streams) = state.withLock { state in
            state.endStreams = true
            defer { state.idleWaiters.removeAll() }
            return (state.idleWaiters, Array(state.streams.values))
        }
        for stream in streams { stream.abort() }
        for waiter in waiters { waiter.resume() }
    }

    /// A request counted in by ``begin()`` goes on as a stream: it ends with
    /// ``streamEnded(_:)``, and is ended at once when the drain is already over.
    func streamStarted(_ abort: RelayAbort) {
        let over = state.withLock { state in
            state.streams[ObjectIdentifier(abort)] = abort
            return state.endStreams
        }
        if over { abort.abort() }
    }

    /// The stream is done (its body finished, or its connection closed); the second call for
    /// the same stream does nothing, so both may say it.
    func streamEnded(_ abort: RelayAbort) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.streams.removeValue(forKey: ObjectIdentifier(abort)) != nil else { return [] }
            return Self.finish(&state)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when no request is in flight, or when the drain is over.
    func waitUntilIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state -> Bool in
                if state.inFlight == 0 || state.endStreams { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}
