import DequeModule
import Synchronization

/// At most `limit` holders at a time; the rest wait in arrival order (fair FIFO). Waiting is
/// cancellation-safe: a cancelled waiter leaves the queue at once. Used for the client's
/// `maxConcurrent` and the simulated engine's batch.
package final class FairSemaphore: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var running = 0
        var peakRunning = 0
        var nextID: UInt64 = 0
        var waiting = Deque<Waiter>()
        var cancelledBeforeEnqueue = Set<UInt64>()
    }
    private let state = Mutex(State())
    package let limit: Int

    package init(limit: Int) { self.limit = limit }

    package var running: Int { state.withLock { $0.running } }
    package var waiting: Int { state.withLock { $0.waiting.count } }
    package var peakRunning: Int { state.withLock { $0.peakRunning } }

    /// Takes a slot if one is free and nobody waits; never waits.
    package func tryAcquire() -> Bool {
        state.withLock { state in
            guard state.running < limit && state.waiting.isEmpty else { return false }
            state.running += 1
            state.peakRunning = max(state.peakRunning, state.running)
            return true
        }
    }

    /// Waits for a slot until `deadline`; returns false when the deadline came first (and then
    /// holds no slot: one handed over at that very moment is given back).
    package func acquire(until deadline: ContinuousClock.Instant) async throws -> Bool {
        if tryAcquire() { return true }
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await self.acquire()
                return true
            }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                return false
            }
            // The first child to finish decides; `next()` cannot be nil with two children.
            let acquired = try await group.next() ?? false
            group.cancelAll()
            if acquired { return true }
            // The deadline came first: the waiter is cancelled, unless the slot reached it just then.
            if (try? await group.next()) == true { release() }
            return false
        }
    }

    /// Waits for a slot. Throws CancellationError if the task is cancelled while waiting.
    package func acquire() async throws {
        let id: UInt64? = state.withLock { state in
            if state.running < limit && state.waiting.isEmpty {
                state.running += 1
                state.peakRunning = max(state.peakRunning, state.running)
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { state in
                    if state.cancelledBeforeEnqueue.remove(id) != nil { return true }
                    if state.running < limit && state.waiting.isEmpty {
                        state.running += 1
                        state.peakRunning = max(state.peakRunning, state.running)
                        continuation.resume()
                        return false
                    }
                    state.waiting.append(Waiter(id: id, continuation: continuation))
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let removed: Waiter? = state.withLock { state in
                if let index = state.waiting.firstIndex(where: { $0.id == id }) {
                    return state.waiting.remove(at: index)
                }
                state.cancelledBeforeEnqueue.insert(id)
                return nil
            }
            removed?.continuation.resume(throwing: CancellationError())
        }
        // A slot handed over after cancellation was already counted; nothing to undo here.
        state.withLock { _ = $0.cancelledBeforeEnqueue.remove(id) }
    }

    /// Frees a slot and hands it to the longest waiter.
    package func release() {
        let next: Waiter? = state.withLock { state in
            if let waiter = state.waiting.popFirst() {
                return waiter  // the slot passes on: running stays the same
            }
            state.running -= 1
            return nil
        }
        next?.continuation.resume()
    }
}
