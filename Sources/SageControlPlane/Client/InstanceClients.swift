import SageLLM
import Synchronization

/// An instance's client and the requests that hold it. The scheduler takes a hold when it
/// grants an instance (under its own lock, so a request costs no lock here) and the request
/// gives it back when it releases the instance. A client retires when its instance leaves or
/// is replaced; it keeps serving the requests that hold it, and whoever gives back the last
/// hold of a retired client has it shut down.
final class InstanceClient: Sendable {
    let client: IntelligentLLMClient
    /// Holds, plus ``retiredFlag`` once retired: one atomic, so that a hold and the retirement
    /// cannot both miss the moment the client becomes unused.
    private let holds = Atomic<Int>(0)
    private static let retiredFlag = 1 << 62

    init(_ client: IntelligentLLMClient) { self.client = client }

    /// Takes a hold for a request; false once the client is retired.
    func hold() -> Bool {
        var current = holds.load(ordering: .relaxed)
        while current & Self.retiredFlag == 0 {
            let (exchanged, original) = holds.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives a hold back; true when the client is retired and that was its last hold.
    func release() -> Bool {
        holds.subtract(1, ordering: .acquiringAndReleasing).newValue == Self.retiredFlag
    }

    /// Retires the client; true when no request holds it.
    func retire() -> Bool {
        holds.bitwiseOr(Self.retiredFlag, ordering: .acquiringAndReleasing).oldValue == 0
    }
}

/// The client of each instance, and the clients of instances that a reload removed or
/// replaced: a retired client keeps serving the requests it has, and is shut down (its
/// connections closed) once the last of them is done, or at the control plane's shutdown.
final class InstanceClients: Sendable {
    private struct State: Sendable {
        var current: [String: InstanceClient] = [:]
        /// Retired clients that requests still hold, by identity.
        var retired: [ObjectIdentifier: InstanceClient] = [:]
        /// Retired clients with no request left, not yet shut down.
        var idle: [IntelligentLLMClient] = []
    }

    private let state = Mutex(State())
    /// Whether retired clients wait to be shut down (read without the lock on every request).
    private let hasIdleRetired = Atomic<Bool>(false)

    /// Sets the client of `id`; a client it replaces retires.
    func set(_ client: InstanceClient, for id: String) {
        state.withLock { state in
            if let old = state.current.updateValue(client, forKey: id) { retire(old, &state) }
        }
    }

    /// Forgets the client of `id` (the instance left); it retires.
    func remove(_ id: String) {
        state.withLock { state in
            if let old = state.current.removeValue(forKey: id) { retire(old, &state) }
        }
    }

    /// A client that never served (its instance was refused); it is shut down with the retired.
    func discard(_ client: InstanceClient) {
        state.withLock { state in retire(client, &state) }
    }

    private func retire(_ client: InstanceClient, _ state: inout State) {
        if client.retire() {
            state.idle.append(client.client)
            hasIdleRetired.store(true, ordering: .relaxed)
        } else {
            state.retired[ObjectIdentifier(client)] = client
        }
    }

    /// The request of `lease` is done with its instance's client (no-op when it holds none).
    func checkIn(_ lease: Lease) {
        guard let held = lease.client, held.release() else { return }  // the usual case: no lock
        state.withLock { state in
            state.retired[ObjectIdentifier(held)] = nil
            state.idle.append(held.client)
        }
        hasIdleRetired.store(true, ordering: .relaxed)
    }

    /// The current client of `id`, if any (not held for a request).
    func current(_ id: String) -> IntelligentLLMClient? { state.withLock { $0.current[id]?.client } }

    /// Retired clients that no request uses any more; the caller shuts them down.
    func takeIdleRetired() -> [IntelligentLLMClient] {
        // The usual case: a plain load, no lock.
        guard hasIdleRetired.load(ordering: .relaxed), hasIdleRetired.exchange(false, ordering: .relaxed) else { return [] }
        return state.withLock { state in
            defer { state.idle.removeAll() }
            return state.idle
        }
    }

    /// Every client, current and retired; the caller shuts them down.
    func takeAll() -> [IntelligentLLMClient] {
        state.withLock { state in
            defer { state = State() }
            return state.current.values.map(\.client) + state.retired.values.map(\.client) + state.idle
        }
    }

    /// Clients retired and not yet shut down (for tests and metrics).
    var retiredCount: Int { state.withLock { $0.retired.count + $0.idle.count } }
}
