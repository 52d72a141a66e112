import Testing

@testable import SageControlPlane

/// `slo_aware` places a request with a TPOT target on an instance whose measured time per
/// output token meets it, even a busier one; without a target, or when none meets it, the
/// routing's own choice. On the scheduling core with set measurements: no clock, no sockets.
@Suite("TPOT-aware placement")
struct TPOTPlacementTests {
    static func core() throws -> SchedulingCore {
        let origin = ContinuousClock.now
        var core = SchedulingCore(
            policy: .sloAware, routing: [.whole: .loadBalanced], configuration: SchedulerConfiguration(), origin: origin)
        _ = try core.add(
            [
                InstanceSpec(id: "slow", baseURL: "http://slow:8000/v1", model: "m", maxConcurrentRequests: 4),
                InstanceSpec(id: "fast", baseURL: "http://fast:8000/v1", model: "m", maxConcurrentRequests: 4),
            ], now: origin)
        core.instances[0].tokensPerSecond = 50  // 20 ms per token
        core.instances[1].tokensPerSecond = 250  // 4 ms per token
        core.instances[1].inFlight = 2  // busier than the slow one
        return core
    }

    static func placed(_ core: inout SchedulingCore, target: Duration?, id: UInt64) -> String? {
        let request = QueuedRequest(
            id: id, model: "m", placement: RequestPlacement(timePerTokenTarget: target), arrival: .now, deadline: nil, prefixBlocks: [],
            excluded: [], topologyAnchor: nil)
        guard case .leased(let lease) = core.admit(request, now: .now) else { return nil }
        return lease.instance.id
    }

    @Test func aTightTargetGoesToAnInstanceFastEnough() throws {
        var core = try Self.core()
        #expect(Self.placed(&core, target: .milliseconds(5), id: 1) == "fast", "the busier instance that meets 5 ms")
        #expect(Self.placed(&core, target: nil, id: 2) == "slow", "no target: the least loaded")
        #expect(Self.placed(&core, target: .milliseconds(1), id: 3) == "slow", "none meets 1 ms: the least loaded")
        #expect(Self.placed(&core, target: .milliseconds(50), id: 4) == "slow", "both meet 50 ms: the least loaded")
    }

    @Test func otherPoliciesIgnoreTheTarget() throws {
        var core = try Self.core()
        core.policy = .fifo
        #expect(Self.placed(&core, target: .milliseconds(5), id: 1) == "slow")
    }
}
