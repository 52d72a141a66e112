import SageSupport
import Testing

@testable import SageControlPlane

/// The scheduler knows a full pool without scanning it: per pool it keeps the requests in
/// flight and the free slots of serving instances up to date on every dispatch and release.
/// Those counts must always equal what a fresh scan of the table gives, whatever happens.
@Suite("Pool occupancy")
struct PoolOccupancyTests {
    static func specs() -> [InstanceSpec] {
        [
            InstanceSpec(id: "g1", baseURL: "http://g1:8000/v1", model: "m", maxConcurrentRequests: 2),
            InstanceSpec(id: "g2", baseURL: "http://g2:8000/v1", model: "m", maxConcurrentRequests: 3),
            InstanceSpec(id: "p1", baseURL: "http://p1:8000/v1", model: "m", type: .prefill, maxConcurrentRequests: 2),
            InstanceSpec(id: "d1", baseURL: "http://d1:8000/v1", model: "m", type: .decode, maxConcurrentRequests: 2),
            InstanceSpec(id: "h1", baseURL: "http://h1:8000/v1", model: "m", type: .hybrid, maxConcurrentRequests: 1),
        ]
    }

    static func expectCountsMatchAScan(_ core: SchedulingCore, after step: String) {
        let scanned = FleetIndex(core.instances)
        #expect(core.index.freeSlotsByPool.filter { $0.value != 0 } == scanned.freeSlotsByPool.filter { $0.value != 0 }, "free slots after \(step)")
        #expect(core.index.inFlightByPool.filter { $0.value != 0 } == scanned.inFlightByPool.filter { $0.value != 0 }, "in flight after \(step)")
    }

    @Test func countsFollowEveryDispatchReleaseAndHealthChange() throws {
        let origin = ContinuousClock.now
        var core = SchedulingCore(
            policy: .fifo, routing: [.whole: .loadBalanced], configuration: SchedulerConfiguration(maxQueueLength: 10_000),
            origin: origin)
        _ = try core.add(Self.specs(), now: origin)
        var random = SeededGenerator(seed: 7)
        var leases: [Lease] = []
        var dispatched = 0
        func take(_ decisions: [QueueDecision]) {
            for case .dispatched(let lease) in decisions { leases.append(lease) }
        }
        for step in 0..<2_000 {
            let phase = [RequestPhase.whole, .prefill, .decode][Int(random.next() % 3)]
            switch random.next() % 10 {
            case 0..<5:
                let request = QueuedRequest(
                    id: UInt64(step), model: "m", placement: RequestPlacement(), arrival: origin, deadline: nil, prefixBlocks: [],
                    excluded: [], topologyAnchor: nil, phase: phase)
                switch core.admit(request, now: origin) {
                case .leased(let lease): leases.append(lease)
                case .mustWait: take(core.enqueue(request, now: origin))
                case .failed(let error):
                    // Every instance of its pool may be unhealthy now; nothing else may fail it.
                    #expect(error.code == .noInstance, "step \(step): \(error)")
                }
            case 5..<9 where !leases.isEmpty:
                let lease = leases.remove(at: Int(random.next() % UInt64(leases.count)))
                dispatched += 1
                take(core.release(lease, outcome: .success(latency: .seconds(1), timeToFirstToken: nil, outputTokens: nil), now: origin))
            default:
                let id = ["g1", "g2", "p1", "d1", "h1"][Int(random.next() % 5)]
                let healthy = random.next() % 4 != 0
                take(core.setHealth(id, healthy: healthy, reason: "test", now: origin))
            }
            Self.expectCountsMatchAScan(core, after: "step \(step)")
            // A pool with a free slot never has requests waiting for it.
            for pool in core.waiting.poolsWithWaiters {
                #expect(!core.index.hasFreeSlot(in: pool), "step \(step): \(pool) has a free slot and waiters")
            }
        }
        #expect(dispatched > 500, "the run released many requests")
    }

    @Test func aFullPoolIsSkippedAndServedAgainOnRelease() throws {
        let origin = ContinuousClock.now
        var core = SchedulingCore(policy: .fifo, routing: [.whole: .loadBalanced], configuration: SchedulerConfiguration(), origin: origin)
        _ = try core.add([InstanceSpec(id: "a", baseURL: "http://a:8000/v1", model: "m", maxConcurrentRequests: 1)], now: origin)
        func request(_ id: UInt64) -> QueuedRequest {
            QueuedRequest(
                id: id, model: "m", placement: RequestPlacement(), arrival: origin, deadline: nil, prefixBlocks: [], excluded: [],
                topologyAnchor: nil)
        }
        guard case .leased(let first) = core.admit(request(1), now: origin) else {
            Issue.record("the first request should go at once")
            return
        }
        #expect(!core.index.hasFreeSlot(in: PoolKey(model: "m", phase: .whole)))
        guard case .mustWait = core.admit(request(2), now: origin) else {
            Issue.record("the second request should wait")
            return
        }
        #expect(core.enqueue(request(2), now: origin).isEmpty)
        let decisions = core.release(first, outcome: .cancelled, now: origin)
        guard case .dispatched(let second)? = decisions.first else {
            Issue.record("the waiting request should go when the slot frees: \(decisions)")
            return
        }
        #expect(second.requestID == 2)
    }

    /// A lease remembers where its instance was; when the table changed under it (an earlier
    /// instance removed, its own instance replaced), the release still counts on the right one.
    @Test func releasesFindTheirInstanceAfterTheTableChanged() throws {
        let origin = ContinuousClock.now
        var core = SchedulingCore(policy: .fifo, routing: [.whole: .roundRobin], configuration: SchedulerConfiguration(), origin: origin)
        let specs = ["a", "b", "c"].map { InstanceSpec(id: $0, baseURL: "http://\($0):8000/v1", model: "m", maxConcurrentRequests: 4) }
        _ = try core.add(specs, now: origin)
        var leases: [Lease] = []
        for id in 0..<6 {
            let request = QueuedRequest(
                id: UInt64(id), model: "m", placement: RequestPlacement(), arrival: origin, deadline: nil, prefixBlocks: [], excluded: [],
                topologyAnchor: nil)
            guard case .leased(let lease) = core.admit(request, now: origin) else {
                Issue.record("request \(id) should go at once")
                return
            }
            leases.append(lease)
        }
        func inFlight(_ id: String) -> Int? { core.instances.first { $0.spec.id == id }?.inFlight }
        // "a" leaves: "b" and "c" move up one place, and the leases of "a" find nothing to count on.
        let removed = core.drain("a", remove: true)
        #expect(removed)
        for lease in leases where lease.instance.id == "a" { _ = core.release(lease, outcome: .cancelled, now: origin) }
        #expect(inFlight("a") == nil)
        #expect(core.instances.map(\.spec.id) == ["b", "c"])
        // "c" is replaced by a new spec at its place: its leases count on the new entry.
        var bigger = specs[2]
        bigger.maxConcurrentRequests = 8
        let drained = core.drain("c", remove: false)
        #expect(drained)
        _ = try core.add(bigger, now: origin)
        #expect(inFlight("c") == 2)
        for lease in leases where lease.instance.id != "a" {
            _ = core.release(lease, outcome: .success(latency: .milliseconds(5), timeToFirstToken: nil, outputTokens: 4), now: origin)
        }
        #expect(inFlight("b") == 0)
        #expect(inFlight("c") == 0)
        #expect(core.instances.first { $0.spec.id == "b" }?.completed == 2)
        Self.expectCountsMatchAScan(core, after: "the releases")
    }
}
