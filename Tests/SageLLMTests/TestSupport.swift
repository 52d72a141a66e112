import Foundation
import SageLLM
import SageSimulator

/// Runs `body` with a simulator on 127.0.0.1 (free port) and a client pointed at it.
func withSimulatorAndClient<Result: Sendable>(
    _ engine: SimulatedEngineConfiguration = .instant(model: "test-model"),
    transport: TransportConfiguration = TransportConfiguration(),
    apiKey: String? = nil,
    _ body: @Sendable (RunningSimulator, IntelligentLLMClient) async throws -> Result
) async throws -> Result {
    try await withSimulatorServer(configuration: engine) { simulator in
        let configuration = LLMClientConfiguration(
            baseURL: simulator.baseURL, apiKey: apiKey.map { APIKey($0) }, transport: transport)
        return try await withIntelligentLLMClient(configuration: configuration) { client in
            try await body(simulator, client)
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes (for effects seen from outside, such as
/// a server noticing a closed connection). Returns whether it held.
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))  // polling interval; cancellation ends the wait early
    }
    return condition()
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
