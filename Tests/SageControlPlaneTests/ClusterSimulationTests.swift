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

    @Test func sloAwareServesMoreGoodRequestsThanFIFOWhenOverloaded() async throws {
        // About 1.5 times what ten instances serve well: under FIFO every request waits and most
        // miss their TTFT target; slo_aware sheds those that can no longer make it, early, and
        // serves the rest in time.
        var scenario = ClusterScenario(instances: 10, rate: 45, duration: 30, seed: 3)
        scenario.longPromptShare = 0.6
        let results = try await Self.simulate(scenario, [
            SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: false),
            SimulationVariant(policy: .sloAware, routing: .loadBalanced, disaggregated: false),
        ])
        let (fifo, sloAware) = (results[0], results[1])
        #expect(sloAware.sloGoodputRPS > 1.5 * fifo.sloGoodputRPS, "slo_aware \(sloAware.sloGoodputRPS)/s vs fifo \(fifo.sloGoodputRPS)/s")
        #expect(try #require(sloAware.ttftCompliance) > #require(fifo.ttftCompliance))
        #expect(fifo.shedShare == 0 && sloAware.shedShare > 0, "only slo_aware sheds")
        #expect(sloAware.rejected.keys.sorted() == ["deadline unreachable"], "\(sloAware.rejected)")
    }

    /// With a bound on the prefill backlog, prefill-heavy requests run whole once the PREFILL
    /// instances fall behind; without one, every prefill-heavy request is split.
    @Test func aPrefillBacklogBoundSendsRequestsWholeWhenThePrefillSideFallsBehind() async throws {
        var scenario = ClusterScenario(instances: 10, rate: 45, duration: 20, seed: 4)
        scenario.longPromptShare = 0.8
        let pd = SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: true)
        scenario.maxPrefillBacklogPerSlot = nil
        let unbounded = try await Self.simulate(scenario, [pd])[0]
        scenario.maxPrefillBacklogPerSlot = 0
        let bounded = try await Self.simulate(scenario, [pd])[0]
        #expect((bounded.paths["direct"] ?? 0) > (unbounded.paths["direct"] ?? 0) + 50, "\(bounded.paths) vs \(unbounded.paths)")
        #expect((bounded.paths["disaggregated"] ?? 0) > 0)
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

    /// DistServe's goodput: a request is good when it met its TTFT and its TPOT targets. On
    /// this hardware a token takes 15-40 ms (80 ms at most with a full batch), so a 1 s TPOT
    /// target is met by every request and a 10 ms one by none.
    @Test func goodputCountsTheRequestsThatMetTheirTTFTAndTPOTTargets() async throws {
        var scenario = ClusterScenario(instances: 8, rate: 4, duration: 20, seed: 2)
        scenario.sloSeconds = [0, 0, 0, 0, 0]
        scenario.ttftSLOSeconds = [60, 60, 60, 60, 60]
        scenario.tpotSLOSeconds = [1, 1, 1, 1, 1]
        let fifo = SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: false)
        let easy = try await Self.simulate(scenario, [fifo])[0]
        #expect(easy.ttftCompliance == 1 && easy.tpotCompliance == 1 && easy.shedShare == 0, "\(easy)")
        #expect(abs(easy.sloGoodputRPS - Double(easy.completed) / scenario.duration) < 1e-9, "every request was good, per second of arrivals")
        scenario.tpotSLOSeconds = [0.01, 0.01, 0.01, 0.01, 0.01]
        let tight = try await Self.simulate(scenario, [fifo])[0]
        #expect(tight.tpotCompliance == 0 && tight.ttftCompliance == 1 && tight.sloGoodputRPS == 0, "\(tight)")
        scenario.tpotSLOSeconds = [0, 0, 0, 0, 0]
        scenario.ttftSLOSeconds = [0.001, 0.001, 0.001, 0.001, 0.001]  // below any prefill
        let noFirstToken = try await Self.simulate(scenario, [fifo])[0]
        #expect(noFirstToken.ttftCompliance == 0 && noFirstToken.tpotCompliance == nil && noFirstToken.sloGoodputRPS == 0)
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
        scenario = ClusterScenario()
        scenario.tpotSLOSeconds = [0.05, .nan, 0, 0, 0]
        do {
            _ = try ClusterSimulation.compare(scenario, [])
            Issue.record("a NaN TPOT target was accepted")
        } catch {
            #expect(error.field == "tpot_slo")
        }
        for (field, change) in [
            ("shared_prefix_share", { (scenario: inout ClusterScenario) in scenario.sharedPrefixShare = 1.5 }),
            ("long_prompt_share", { (scenario: inout ClusterScenario) in scenario.longPromptShare = -0.1 }),
            ("priority_mix", { (scenario: inout ClusterScenario) in scenario.priorityMix = [0, 0, 0, 0, 0] }),
        ] {
            scenario = ClusterScenario()
            change(&scenario)
            do {
                _ = try ClusterSimulation.compare(scenario, [])
                Issue.record("a bad \(field) was accepted")
            } catch {
                #expect(error.field == field)
            }
        }
        do {
            _ = try ClusterSimulation.compare(ClusterScenario(), [SimulationVariant(policy: .fifo, routing: .roundRobin, disaggregated: true, prefillShare: 0.99)])
            Issue.record("a prefill share of 0.99 was accepted")
        } catch {
            #expect(error.field == "prefill_share")
        }
    }

    /// One comparison tries several prefill/decode splits: each PD row names its split and
    /// runs on a fleet of that split; rows without PD name none.
    @Test func eachPDRowRunsAndNamesItsOwnPrefillShare() async throws {
        var scenario = ClusterScenario(instances: 20, rate: 30, duration: 10, seed: 3)
        scenario.longPromptShare = 0.8
        let variants = SimulationVariant.matrix(policies: [.fifo], routings: [.loadBalanced], pd: [false, true], prefillShares: [0.1, 0.5])
        let results = try await Self.simulate(scenario, variants)
        #expect(results.map(\.prefillShare) == [nil, nil, 0.1, 0.1, 0.5, 0.5])
        let narrow = try #require(results.first { $0.prefillShare == 0.1 && $0.routing == "load_balanced" })
        let wide = try #require(results.first { $0.prefillShare == 0.5 && $0.routing == "load_balanced" })
        // Two PREFILL instances of 20 for mostly long prompts queue them far longer than ten.
        #expect(
            (narrow.p99LongPromptTimeToFirstTokenMilliseconds ?? 0) > (wide.p99LongPromptTimeToFirstTokenMilliseconds ?? .infinity),
            "narrow \(narrow.p99LongPromptTimeToFirstTokenMilliseconds ?? -1) ms, wide \(wide.p99LongPromptTimeToFirstTokenMilliseconds ?? -1) ms")
        let scenarioDefault = try await Self.simulate(scenario, [SimulationVariant(policy: .fifo, routing: .loadBalanced, disaggregated: true)])
        #expect(scenarioDefault.first?.prefillShare == scenario.prefillShare)
    }
}
