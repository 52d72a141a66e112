import Foundation
import SageControlPlane
import Testing

/// The cluster simulation: the real scheduling core on a virtual clock over a modelled fleet.
/// Simulations are CPU-bound and synchronous: they run one at a time on a thread of their own,
/// so that they never hold the two threads the other tests' tasks share.
@Suite("Cluster simulation", .serialized)
struct ClusterSimulationTests {
    static func simulate(_ scenario: ClusterScenario, _ variants: [SimulationVariant]) async throws -> [SimulationResult] {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try ClusterSimulation.compare(scenario, variants) }) }.start()
        }
    }

    /// Ignores how long the simulation itself took.
    static func comparable(_ results: [SimulationResult]) -> [SimulationResult] {
        results.map {
            var result = $0
            result.wallSeconds = 0
            return result
        }
    }

    @Test func theSameSeedGivesTheSameResults() async throws {
        let variants = SimulationVariant.matrix(policies: [.sloAware, .adaptive], routings: [.locality], pd: [false, true])
        var scenario = ClusterScenario(instances: 12, rate: 12, duration: 20, seed: 7)
        scenario.failures = 1
        scenario.generalShare = 0.25  // a mixed fleet: GENERAL beside PREFILL and DECODE
        let first = try await Self.simulate(scenario, variants)
        let second = try await Self.simulate(scenario, variants)
        #expect(Self.comparable(first) == Self.comparable(second))
        scenario.seed = 8
        let other = try await Self.simulate(scenario, variants)
        #expect(Self.comparable(other) != Self.comparable(first))
        for result in first + other {
            #expect(result.completed + result.failed == result.requests, "every request is accounted for: \(result)")
            #expect(result.requests > 150)
        }
    }

    @Test func sloAwareMeetsMoreDeadlinesThanFIFOWhenOverloaded() async throws {
        // Well beyond what the fleet serves (FIFO meets about two thirds of the SLOs): queues
        // grow, and the order decides who meets their SLO.
        let scenario = ClusterScenario(instances: 10, rate: 40, duration: 30, seed: 3)
        let results = try await Self.simulate(scenario, [
            SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: false),
            SimulationVariant(policy: .sloAware, routing: .loadBalanced, disaggregated: false),
        ])
        let fifo = try #require(results[0].sloCompliance)
        let sloAware = try #require(results[1].sloCompliance)
        #expect(sloAware > fifo, "slo_aware \(sloAware) vs fifo \(fifo)")
        #expect(results[1].goodputRPS > results[0].goodputRPS)
    }

    @Test func disaggregationCutsTimeToFirstTokenForLongPrompts() async throws {
        var scenario = ClusterScenario(instances: 20, rate: 18, duration: 30, seed: 5)
        scenario.longPromptShare = 0.5
        let results = try await Self.simulate(scenario, [
            SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: false),
            SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: true),
        ])
        let whole = try #require(results[0].p99LongPromptTimeToFirstTokenMilliseconds)
        let split = try #require(results[1].p99LongPromptTimeToFirstTokenMilliseconds)
        #expect(split < whole, "PD \(split) ms vs no PD \(whole) ms")
        #expect((results[1].paths["disaggregated"] ?? 0) > 0)
        #expect((results[1].paths["direct"] ?? 0) > 0, "short prompts skip the prefill instances")
        #expect(results[0].paths["disaggregated"] == nil)
    }

    @Test func badScenariosAreRejectedNamingTheField() {
        var scenario = ClusterScenario(instances: 1)
        #expect(throws: ControlPlaneError.self) { try ClusterSimulation.compare(scenario, []) }
        scenario = ClusterScenario(rate: 0)
        do {
            _ = try ClusterSimulation.compare(scenario, [])
            Issue.record("a zero rate was accepted")
        } catch {
            #expect(error.field == "rate")
        }
    }
}
