import NIOCore

/// Runs `body`, cancelling it as soon as `channel` closes (the client went away), and then
/// throws `closed()`. A server's handler uses it so that work for a client that left (a
/// generation, a request waiting in a queue, an upstream exchange) ends at once.
public func untilConnectionCloses<Result: Sendable>(
    _ channel: any Channel, closed: @escaping @Sendable () -> any Error, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            // Ends when the connection closes, or when this task is cancelled (`body` ended).
            let (closedStream, continuation) = AsyncStream<Void>.makeStream()
            channel.closeFuture.whenComplete { _ in continuation.finish() }
            for await _ in closedStream {}
            if Task.isCancelled { return nil }
            throw closed()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else { throw closed() }
        return result
    }
}
