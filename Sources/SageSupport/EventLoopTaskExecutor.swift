import NIOCore

/// Runs a task's jobs on a connection's event loop, so that a server's handler works on the
/// thread that owns the socket: no hop to the concurrency pool and back for each read and
/// write (the simulator generates and writes its tokens there; the gateway relays there).
/// Jobs must be short; waits are on the loop's own timers (``sleep(until:)``) or on I/O.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Waits until `due` on the event loop's own timer (no timer thread to wake), or throws
    /// `CancellationError` when the task is cancelled.
    @Sendable public func sleep(until due: ContinuousClock.Instant) async throws {
        let delay = due - ContinuousClock.now
        guard delay > .zero else { return }
        // Saturating: a due time centuries away waits "forever", it does not trap.
        let (scaled, overflowed) = delay.components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, overflowedAgain) = scaled.addingReportingOverflow(delay.components.attoseconds / 1_000_000_000)
        let nanoseconds = overflowed || overflowedAgain ? Int64.max : sum
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
