import NIOCore

/// Runs a task's jobs on a connection's event loop, so that a streamed answer is generated
/// and written on the thread that owns the socket: no hop to the concurrency pool and back
/// for each token. Jobs must be short; the engine's only waits are on the loop's own timers
/// (``EventLoopTaskExecutor/sleep(until:)``).
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Waits until `due` on the event loop's own timer (no timer thread to wake), or throws
    /// `CancellationError` when the task is cancelled.
    @Sendable func sleep(until due: ContinuousClock.Instant) async throws {
        let delay = due - ContinuousClock.now
        guard delay > .zero else { return }
        let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
        let scheduled = eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {}
        try await withTaskCancellationHandler {
            do {
                try await scheduled.futureResult.get()
            } catch EventLoopError.cancelled {
                throw CancellationError()
            }
        } onCancel: {
            scheduled.cancel()
        }
    }
}
