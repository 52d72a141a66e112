import Synchronization
import Foundation
import SageLLM
import SageSimulator
import Testing

/// Suites that must not run at the same time as each other: the keep-alive tests put
/// thousands of requests on the two cores, while the detection tests measure probe time
/// limits of a few hundred milliseconds and the hostile-server tests read timeouts of a second.
@Suite(.serialized) enum TimingSensitiveTests {}

/// Runs `body` with a simulator on 127.0.0.1 (free port) and a client pointed at it.
func withSimulatorAndClient<Result: Sendable>(
    _ engine: SimulatedEngineConfiguration = .instant(model: "test-model"),
    transport: TransportConfiguration = TransportConfiguration(),
    apiKey: String? = nil,
    // Most tests look at what one attempt does; the resilience tests pass their own policy.
    resilience: ResilienceConfiguration = ResilienceConfiguration(retry: .none),
    _ body: @Sendable (RunningSimulator, IntelligentLLMClient) async throws -> Result
) async throws -> Result {
    try await withSimulatorServer(configuration: engine) { simulator in
        let configuration = LLMClientConfiguration(
            baseURL: simulator.baseURL, apiKey: apiKey.map { APIKey($0) }, transport: transport, resilience: resilience)
        return try await withIntelligentLLMClient(configuration: configuration) { client in
            try await body(simulator, client)
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes (for effects seen from outside, such as
/// a server noticing a closed connection). Returns whether it held.
func eventually(timeout: Duration = .seconds(5), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))  // polling interval; cancellation ends the wait early
    }
    return await condition()
}

/// The recorded server responses in `Fixtures/`.
func fixture(_ name: String) throws -> Data {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
    return try Data(contentsOf: url)
}

/// Catches the SageLLMError a call throws.
func sageError(_ body: () async throws -> Void) async -> SageLLMError? {
    do {
        try await body()
        return nil
    } catch let error as SageLLMError {
        return error
    } catch {
        return nil
    }
}

/// A clock whose sleeps advance time at once, remembering each sleep.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (left: Instant, right: Instant) -> Bool { left.offset < right.offset }
    }

    let time = Mutex<Duration>(.zero)
    let sleeps = Mutex<[Duration]>([])
    var now: Instant { Instant(offset: time.withLock { $0 }) }
    var minimumResolution: Duration { .zero }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try Task.checkCancellation()
        let duration = time.withLock { time in
            defer { time = max(time, deadline.offset) }
            return deadline.offset - time
        }
        sleeps.withLock { $0.append(duration) }
    }
}
