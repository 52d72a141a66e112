/// Runs `operation`, failing with `onTimeout()` if it has not finished by `deadline`.
/// The operation is cancelled when the deadline wins.
package func withDeadline<Result: Sendable>(
    _ deadline: ContinuousClock.Instant,
    onTimeout: @escaping @Sendable () -> any Error,
    operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(until: deadline, clock: .continuous)
            throw onTimeout()
        }
        defer { group.cancelAll() }
        // The first child to finish decides; `next()` cannot be nil with two children.
        guard let result = try await group.next() else { throw onTimeout() }
        return result
    }
}
