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

