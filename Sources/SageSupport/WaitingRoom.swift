import Synchronization

/// Tasks that wait for their turn, under the same lock as the state that decides whose turn
/// it is. The client's concurrency limit (`FairSemaphore`) and the control plane's admission
/// queue (`Scheduler`) are both this: a state (slots and a queue of ids) and waiters parked
/// by id until a change of the state hands them a value.
///
/// - Waiting is cancellation-safe: a cancelled waiter is taken out of the owner's queue and
///   throws, even when it is cancelled before it was parked; a waiter whose value was already
///   handed over gets the value (the owner then holds what it was given, and gives it back).
/// - Handovers are resumed after the lock is released.
///
/// It is public and `@inlinable` so that the modules using it specialize it for their state
/// (a `package` method is not); `SageSupport` is not a product.
public final class WaitingRoom<State: Sendable, Value: Sendable>: Sendable {
    /// What a waiter does after its first look at the state.
    public enum Admission: Sendable {
        /// Go on at once with this value.
        case ready(Value)
        /// Fail at once.
        case failed(any Error)
        /// Wait: the owner queued the waiter's id and hands it a value later.
        case park
    }

    /// A value (or an error) for the waiter with `id`.
    public struct Handover: Sendable {
        public let id: UInt64
        public let result: Result<Value, any Error>

        @inlinable public init(_ id: UInt64, _ result: Result<Value, any Error>) {
            self.id = id
            self.result = result
        }
    }

    @usableFromInline
    struct Room: Sendable {
        @usableFromInline var state: State
        @usableFromInline var parked: [UInt64: CheckedContinuation<Value, any Error>] = [:]
        /// Waiters cancelled before they were parked.
        @usableFromInline var cancelledEarly = Set<UInt64>()
        @usableFromInline var nextID: UInt64 = 0

        @usableFromInline init(state: State) { self.state = state }
    }

    @usableFromInline let room: Mutex<Room>

    @inlinable public init(_ state: State) { room = Mutex(Room(state: state)) }

    /// A new waiter id, unique in this room.
    @inlinable public func makeID() -> UInt64 {
        room.withLock { room in
            room.nextID &+= 1
            return room.nextID
        }
    }

    /// Changes the state; the handovers `body` returns are resumed after the lock.
    @inlinable public func update(_ body: (inout State) -> [Handover]) {
        let resumes = room.withLock { room in Self.take(body(&room.state), &room) }
        for resume in resumes { resume() }
    }

    /// Changes the state unless `body` throws; the handovers it returns are resumed after the lock.
    @inlinable public func tryUpdate(_ body: (inout State) throws -> [Handover]) throws {
        let resumes = try room.withLock { room in Self.take(try body(&room.state), &room) }
        for resume in resumes { resume() }
    }

    /// Reads or changes the state without handing anything over.
    @inlinable public func withState<Output: Sendable>(_ body: (inout State) -> Output) -> Output {
        room.withLock { body(&$0.state) }
    }

    /// Waits for a value as waiter `id`. `admit` looks at the state once, under the lock: go on,
    /// fail, or park (after queueing `id` in the state). A parked waiter is resumed by a
    /// handover for `id` from ``update(_:)``. When the task is cancelled, `withdraw` takes `id`
    /// out of the owner's queue and the waiter throws `cancelled()`.
    public func wait(
        id: UInt64, admit: (inout State) -> (Admission, [Handover]), withdraw: @escaping @Sendable (inout State) -> Void,
        cancelled: @escaping @Sendable () -> any Error
    ) async throws -> Value {
        defer { room.withLock { _ = $0.cancelledEarly.remove(id) } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let resumes: [Resume] = room.withLock { room in
                    if room.cancelledEarly.remove(id) != nil { return [{ continuation.resume(throwing: cancelled()) }] }
                    let (admission, handovers) = admit(&room.state)
                    var resumes: [Resume] = []
                    switch admission {
                    case .ready(let value): resumes.append { continuation.resume(returning: value) }
                    case .failed(let error): resumes.append { continuation.resume(throwing: error) }
                    case .park: room.parked[id] = continuation
                    }
                    return resumes + Self.take(handovers, &room)
                }
                resumes.forEach { $0() }
            }
        } onCancel: {
            self.withdraw(id, error: cancelled(), using: withdraw, beforeParked: true)
        }
    }

    /// Takes waiter `id` out with `error` (a timeout), if it is still parked: `withdraw` takes
    /// it out of the owner's queue.
    public func withdraw(_ id: UInt64, error: any Error, using withdraw: (inout State) -> Void) {
        self.withdraw(id, error: error, using: withdraw, beforeParked: false)
    }

    private func withdraw(_ id: UInt64, error: any Error, using withdraw: (inout State) -> Void, beforeParked: Bool) {
        let continuation: CheckedContinuation<Value, any Error>? = room.withLock { room in
            guard let continuation = room.parked.removeValue(forKey: id) else {
                // Not parked yet (it will throw as it parks), or already handed its value.
                if beforeParked { room.cancelledEarly.insert(id) }
                return nil
            }
            withdraw(&room.state)
            return continuation
        }
        continuation?.resume(throwing: error)
    }

    @usableFromInline typealias Resume = @Sendable () -> Void

    /// The parked waiters' continuations for `handovers`, as closures to run after the lock.
    @inlinable static func take(_ handovers: [Handover], _ room: inout Room) -> [Resume] {
        handovers.compactMap { handover in
            guard let continuation = room.parked.removeValue(forKey: handover.id) else { return nil }
            let result = handover.result
            return { continuation.resume(with: result) }
        }
    }
}
