import SageLLM
import SageSupport
import Synchronization

/// A failure the simulator decided to inject into one request.
public struct InjectedFailure: Sendable, Hashable {
    public var status: Int
    public var retryAfterSeconds: Int?
}

/// Decides, request by request, which generation requests fail: the first `failFirst`, then a
/// seeded `failRate` share. Replacing the faults starts the count again.
final class FaultPlan: Sendable {
    private struct State {
        var faults: FaultConfiguration
        var received = 0
        var random: SeededGenerator
    }
    private let state: Mutex<State>

    init(faults: FaultConfiguration, seed: UInt64) {
        state = Mutex(State(faults: faults, random: SeededGenerator(seed: SeededGenerator.mix(seed, 0xFA017))))
    }

    var faults: FaultConfiguration { state.withLock { $0.faults } }

    func replace(with faults: FaultConfiguration) {
        state.withLock {
            $0.faults = faults
            $0.received = 0
        }
    }

    /// Called once per generation request, in arrival order.
    func nextDecision() -> InjectedFailure? {
        state.withLock { state in
            state.received += 1
            let faults = state.faults
            let fails =
                state.received <= faults.failFirst || (faults.failRate > 0 && state.random.nextUnit() < faults.failRate)
            return fails ? InjectedFailure(status: faults.failStatus, retryAfterSeconds: faults.retryAfterSeconds) : nil
        }
    }
}
