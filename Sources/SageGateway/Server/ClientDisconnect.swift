import NIOCore
import SageSupport

/// The client's connection closed before its answer was complete.
struct ClientWentAway: Error {}

/// Runs `body`, cancelling it as soon as the client's connection closes: the engine's request
/// ends with it, or the request leaves the queue.
func untilClientLeaves<Result: Sendable>(
    _ channel: any Channel, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await untilConnectionCloses(channel, closed: { ClientWentAway() }, body)
}
