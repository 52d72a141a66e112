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

    func end() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.inFlight -= 1
            guard state.inFlight == 0 else { return [] }
            defer { state.idleWaiters.removeAll() }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func startDraining() { state.withLock { $0.draining = true } }

    /// The drain is over: streams still running end (each with an error event), and
    /// ``waitUntilIdle()`` stops waiting.
    func endRemainingStreams() {
        let (waiters, streams) = state.withLock { state in
            state.endStreams = true
            defer {
                state.idleWaiters.removeAll()
                state.streams.removeAll()
            }
            return (state.idleWaiters, Array(state.streams.values))
        }
        for stream in streams { stream.abort() }
        for waiter in waiters { waiter.resume() }
    }

    /// A stream started writing its answer; it is ended at once if the drain is over.
    func streamStarted(_ abort: RelayAbort) {
        let over = state.withLock { state in
            if !state.endStreams { state.streams[ObjectIdentifier(abort)] = abort }
            return state.endStreams
        }
        if over { abort.abort() }
    }

    func streamEnded(_ abort: RelayAbort) { state.withLock { _ = $0.streams.removeValue(forKey: ObjectIdentifier(abort)) } }

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
