import DequeModule
import SageSupport

/// At most `limit` holders at a time; the rest wait in arrival order (fair FIFO). Waiting is
/// cancellation-safe: a cancelled waiter leaves the queue at once. Used for the client's
/// `maxConcurrent` and the simulated engine's batch.
package final class FairSemaphore: Sendable {
    private struct Slots: Sendable {
        var running = 0
        var peakRunning = 0
        var waiting = Deque<UInt64>()

        /// Takes a slot if one is free and nobody waits.
        mutating func take(limit: Int) -> Bool {
            guard running < limit && waiting.isEmpty else { return false }
            running += 1
            peakRunning = max(peakRunning, running)
            return true
        }
    }

    private let room = WaitingRoom<Slots, Void>(Slots())
    package let limit: Int

    package init(limit: Int) { self.limit = limit }

    package var running: Int { room.withState { $0.running } }
    package var waiting: Int { room.withState { $0.waiting.count } }
    package var peakRunning: Int { room.withState { $0.peakRunning } }

    /// Takes a slot if one is free and nobody waits; never waits.
    package func tryAcquire() -> Bool {
        let limit = limit
        return room.withState { $0.take(limit: limit) }
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
        if tryAcquire() { return }  // a free slot and nobody waiting: no continuation
        let id = room.makeID()
        let limit = limit
        try await room.wait(
            id: id,
            admit: { slots in
                if slots.take(limit: limit) { return (.ready(()), []) }
                slots.waiting.append(id)
                return (.park, [])
            },
            withdraw: { slots in
                if let index = slots.waiting.firstIndex(of: id) { slots.waiting.remove(at: index) }
            },
            cancelled: { CancellationError() })
    }

    /// Frees a slot and hands it to the longest waiter.
    package func release() {
        room.update { slots in
            if let next = slots.waiting.popFirst() {
                return [.init(next, .success(()))]  // the slot passes on: running stays the same
            }
            slots.running -= 1
            return []
        }
    }
}
