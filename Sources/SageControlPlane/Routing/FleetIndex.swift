import SageLLM
import SageSupport

/// Lookups over the instance table, rebuilt when instances come, go or change health (rare),
/// so that a routing decision does not scan the whole fleet.
struct FleetIndex: Sendable {
    /// Positions of the instances that can take each pool (model and phase).
    var positionsByPool: [PoolKey: [Int]] = [:]
    /// Of those, how many are healthy and not drained, and their summed capacity.
    var servingCount: [PoolKey: Int] = [:]
    var servingCapacity: [PoolKey: Int] = [:]
    /// Slots of every healthy instance not drained (each counted once).
    var totalCapacity = 0
    var positionOf: [String: Int] = [:]
    var byMachine: [String: [Int]] = [:]
    var byRack: [String: [Int]] = [:]
    /// Per position, the pools its instance takes.
    var poolsOf: [[PoolKey]] = []
    /// Per pool, slots taken on its instances (by this control plane and, when counted, by
    /// others), and free slots on those serving, kept
    /// up to date by ``occupy(_:at:by:)`` so that a full pool is known without a scan.
    var inFlight: [PoolKey: Int] = [:]
    var freeSlots: [PoolKey: Int] = [:]
    /// `affinity`: per pool, a consistent-hashing ring of (hash, position), 64 points per instance.
    var rings: [PoolKey: [(hash: UInt64, position: Int)]] = [:]

    static let pointsPerInstance = 64

    init() {}

    init(_ instances: [InstanceState]) {
        for (position, instance) in instances.enumerated() {
            positionOf[instance.spec.id] = position
            if let machine = instance.spec.topology.machineID { byMachine[machine, default: []].append(position) }
            if let rack = instance.spec.topology.rackID { byRack[rack, default: []].append(position) }
            let serving = instance.healthy && !instance.draining
            if serving { totalCapacity += instance.spec.maxConcurrentRequests }
            poolsOf.append([])
            let points = (0..<Self.pointsPerInstance).map { (Self.hash(instance.spec.id, UInt64($0)), position) }
            for phase in RequestPhase.allCases where instance.spec.type.takes(phase) {
                let pool = PoolKey(model: instance.spec.model, phase: phase)
                positionsByPool[pool, default: []].append(position)
                poolsOf[position].append(pool)
                inFlight[pool, default: 0] += instance.occupied
                if serving {
                    freeSlots[pool, default: 0] += max(0, instance.spec.maxConcurrentRequests - instance.occupied)
                    servingCount[pool, default: 0] += 1
                    servingCapacity[pool, default: 0] += instance.spec.maxConcurrentRequests
                }
                rings[pool, default: []].append(contentsOf: points)
            }
        }
        for pool in rings.keys { rings[pool]?.sort { $0.hash < $1.hash } }
    }

    /// Counts `change` more slots taken on `instance` (as it was before the change), at
    /// `position`, in every pool it takes.
    mutating func occupy(_ instance: InstanceState, at position: Int, by change: Int) {
        let capacity = instance.spec.maxConcurrentRequests
        let freed = max(0, capacity - instance.occupied) - max(0, capacity - instance.occupied - change)
        let serving = instance.healthy && !instance.draining
        for pool in poolsOf[position] {
            inFlight[pool, default: 0] += change
            if serving { freeSlots[pool, default: 0] -= freed }
        }
    }

    /// Whether some serving instance of `pool` has a free slot.
    func hasFreeSlot(in pool: PoolKey) -> Bool { (freeSlots[pool] ?? 0) > 0 }

    /// FNV-1a of `text` and `salt`, mixed.
    static func hash(_ text: String, _ salt: UInt64 = 0) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ salt
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        var mixer = SeededGenerator(seed: hash)
        return mixer.next()
    }
}
