import SageLLM
import Synchronization

/// The client of each instance, and the clients of instances that a reload removed or
/// replaced: a retired client keeps serving the requests it has, and is shut down (its
/// connections closed) by whoever gives back its last one, or by the control plane's
/// shutdown.
final class InstanceClients: Sendable {
    private struct Entry: Sendable {
        let client: IntelligentLLMClient
        var users = 0
    }

    /// A request's hold on an instance's client.
    private struct Hold: Hashable, Sendable {
        let requestID: UInt64
        let instanceID: String
    }

    private struct State: Sendable {
        var current: [String: Entry] = [:]
        /// Which client each request in flight holds.
        var held: [Hold: IntelligentLLMClient] = [:]
        /// Replaced or removed clients that still serve requests, by identity.
        var retired: [ObjectIdentifier: Entry] = [:]
        /// Retired clients with no request left, not yet shut down.
        var idle: [IntelligentLLMClient] = []
    }

    private let state = Mutex(State())
    /// Whether retired clients wait to be shut down (read without the lock on every request).
    private let hasIdleRetired = Atomic<Bool>(false)

    /// Sets the client of `id`; a client it replaces retires.
    func set(_ client: IntelligentLLMClient, for id: String) {
        state.withLock { state in
            if let old = state.current.updateValue(Entry(client: client), forKey: id) { retire(old, &state) }
        }
    }

    /// Forgets the client of `id` (the instance left); it retires.
    func remove(_ id: String) {
        state.withLock { state in
            if let old = state.current.removeValue(forKey: id) { retire(old, &state) }
        }
    }

    private func retire(_ entry: Entry, _ state: inout State) {
        if entry.users == 0 {
            state.idle.append(entry.client)
            hasIdleRetired.store(true, ordering: .relaxed)
        } else {
            state.retired[ObjectIdentifier(entry.client)] = entry
        }
    }

    /// The client of the instance `lease` was granted, for its request; give it back with
    /// ``checkIn(_:)`` when the lease is released.
    func checkOut(_ lease: Lease) -> IntelligentLLMClient? {
        state.withLock { state in
            let id = lease.instance.id
            guard let client = state.current[id]?.client else { return nil }
            state.current[id]?.users += 1
            state.held[Hold(requestID: lease.requestID, instanceID: id)] = client
            return client
        }
    }

    /// The request of `lease` is done with its client (no-op when it held none).
    func checkIn(_ lease: Lease) {
        state.withLock { state in
            guard let client = state.held.removeValue(forKey: Hold(requestID: lease.requestID, instanceID: lease.instance.id)) else {
                return
            }
            if state.current[lease.instance.id]?.client === client {
                state.current[lease.instance.id]?.users -= 1
                return
            }
            let key = ObjectIdentifier(client)
            guard var entry = state.retired[key] else { return }
            entry.users -= 1
            if entry.users == 0 {
                state.retired[key] = nil
                state.idle.append(client)
                hasIdleRetired.store(true, ordering: .relaxed)
            } else {
                state.retired[key] = entry
            }
        }
    }

    /// The current client of `id`, if any (not held for a request).
    func current(_ id: String) -> IntelligentLLMClient? { state.withLock { $0.current[id]?.client } }

    /// Retired clients that no request uses any more; the caller shuts them down.
    func takeIdleRetired() -> [IntelligentLLMClient] {
        guard hasIdleRetired.exchange(false, ordering: .relaxed) else { return [] }  // the usual case: no lock
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
