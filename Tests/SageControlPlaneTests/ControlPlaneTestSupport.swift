import Logging
import SageControlPlane
import SageLLM
import SageSimulator
import SageTesting
import ServiceLifecycle
import Synchronization
import Testing

/// Runs `body` with one simulator per configuration, all on 127.0.0.1 free ports.
func withSimulators<Result: Sendable>(
    _ configurations: [SimulatedEngineConfiguration], _ body: @Sendable ([RunningSimulator]) async throws -> Result
) async throws -> Result {
    try await withSimulatorServers(configurations: configurations, body)
}

/// An engine answering in `tbt` per token, no jitter, instant prefill.
func engine(tbtMs: Int, ttftMs: Int = 0, model: String = "m") -> SimulatedEngineConfiguration {
    SimulatedEngineConfiguration(model: model, ttft: .milliseconds(ttftMs), tbt: .milliseconds(tbtMs), prefillTokensPerSecond: 0, jitter: 0)
}

func specs(_ simulators: [RunningSimulator], maxConcurrent: Int, model: String = "m") -> [InstanceSpec] {
    simulators.enumerated().map { index, simulator in
        InstanceSpec(id: "i\(index)", baseURL: simulator.baseURL, model: model, maxConcurrentRequests: maxConcurrent)
    }
}

func controlPlaneError(_ body: () async throws -> Void) async -> ControlPlaneError? {
    do {
        try await body()
        return nil
    } catch let error as ControlPlaneError {
        return error
    } catch {
        return nil
    }
}

/// Holds the slot of a one-slot cluster with a stream that has started, runs `body` (which
/// queues requests behind it), then drops the stream: the slot frees at a moment the test
/// chooses, not when a timed request happens to end.
func whileTheOnlySlotIsHeld(_ cluster: ControlPlaneClient, _ body: () async throws -> Void) async throws {
    var blocker: AsyncThrowingStream<ChatCompletionChunk, any Error>.AsyncIterator? =
        cluster.streamChat("blocker", options: ChatOptions(maxTokens: 2_000)).makeAsyncIterator()
    _ = try await blocker?.next()
    #expect(cluster.metrics().activeRequests == 1)
    try await body()
    blocker = nil
}

/// One service in a group of its own: ``run()`` in a task, ``stop()`` shuts it down gracefully
/// (as SIGTERM would) and waits until it has returned.
final class ServiceGroupRunner: Sendable {
    private let group: ServiceGroup
    private let finished = Mutex(false)

    init(_ service: some Service) {
        var logger = Logger(label: "sagellm.test.group")
        logger.logLevel = .critical
        group = ServiceGroup(configuration: .init(services: [service], logger: logger))
    }

    func run() async throws {
        defer { finished.withLock { $0 = true } }
        try await group.run()
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await eventually(timeout: .seconds(10)) { finished.withLock { $0 } }
    }
}
