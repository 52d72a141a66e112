import SageLLM
import SageSupport

/// Lookups over the instance table, rebuilt when instances come, go or change health (rare),
/// so that a routing decision does not scan the whole fleet.
struct FleetIndex: Sendable {
    /// Each pool (model and phase) by number: the per-pool tables below are arrays indexed by
    /// it, so that counting a dispatch or a release hashes nothing.
    private(set) var poolNumbers: [PoolKey: Int] = [:]
    private(set) var pools: [PoolKey] = []
    /// Per pool number: the positions of the instances that can take it.
    private(set) var positionsInPool: [[Int]] = []
    /// Per pool number: how many of those are healthy and not drained, and their summed capacity.
    private(set) var servingCountInPool: [Int] = []
    private(set) var servingCapacityInPool: [Int] = []
    /// Per pool number: slots taken on its instances (by this control plane and, when
    /// counted, by others), and free slots on those serving, kept up to date by
    /// ``occupy(position:capacity:occupied:serving:by:)`` so that a full pool is known without a scan.
    private(set) var inFlightInPool: [Int] = []
    private(set) var freeSlotsInPool: [Int] = []
    /// `affinity`: per pool number, a consistent-hashing ring of (hash, position), 64 points per instance.
    private(set) var ringOfPool: [[(hash: UInt64, position: Int)]] = []
    /// Slots of every healthy instance not drained (each counted once).
    private(set) var totalCapacity = 0
    private(set) var positionOf: [String: Int] = [:]
    private(set) var byMachine: [String: [Int]] = [:]
    private(set) var byRack: [String: [Int]] = [:]
    /// Per position, the numbers of the pools its instance takes.
    private var poolsOf: [[Int]] = []

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
                let pool = numberAdding(PoolKey(model: instance.spec.model, phase: phase))
                positionsInPool[pool].append(position)
                poolsOf[position].append(pool)
                inFlightInPool[pool] += instance.occupied
                if serving {
                    freeSlotsInPool[pool] += max(0, instance.spec.maxConcurrentRequests - instance.occupied)
                    servingCountInPool[pool] += 1
                    servingCapacityInPool[pool] += instance.spec.maxConcurrentRequests
                }
                ringOfPool[pool].append(contentsOf: points)
            }
        }
        for pool in ringOfPool.indices { ringOfPool[pool].sort { $0.hash < $1.hash } }
    }

    /// The number of `pool`, given one with empty tables when it is new.
    private mutating func numberAdding(_ pool: PoolKey) -> Int {
        if let number = poolNumbers[pool] { return number }
        let number = pools.count
        poolNumbers[pool] = number
        pools.append(pool)
        positionsInPool.append([])
        servingCountInPool.append(0)
        servingCapacityInPool.append(0)
        inFlightInPool.append(0)
        freeSlotsInPool.append(0)
        ringOfPool.append([])
        return number
    }

    /// The number of `pool`; nil when no instance takes it.
    func number(of pool: PoolKey) -> Int? { poolNumbers[pool] }

    /// Counts `change` more slots taken on the instance at `position` (with `capacity` slots,
    /// `occupied` of them taken before the change, serving or not), in every pool it takes.
    mutating func occupy(position: Int, capacity: Int, occupied: Int, serving: Bool, by change: Int) {
        let freed = max(0, capacity - occupied) - max(0, capacity - occupied - change)
        for pool in poolsOf[position] {
            inFlightInPool[pool] += change
            if serving { freeSlotsInPool[pool] -= freed }
        }
    }

    /// Whether some serving instance of the pool numbered `pool` has a free slot.
    func hasFreeSlot(inPool pool: Int) -> Bool { freeSlotsInPool[pool] > 0 }

    /// Whether some serving instance of `pool` has a free slot.
    func hasFreeSlot(in pool: PoolKey) -> Bool { number(of: pool).map(hasFreeSlot(inPool:)) ?? false }

    /// The positions of the instances that take `pool` (none when no instance does).
    func positions(in pool: PoolKey) -> [Int] { number(of: pool).map { positionsInPool[$0] } ?? [] }

    /// How many instances serve `pool` (healthy, not drained), and their summed capacity.
    func servingCount(of pool: PoolKey) -> Int { number(of: pool).map { servingCountInPool[$0] } ?? 0 }
    func servingCapacity(of pool: PoolKey) -> Int { number(of: pool).map { servingCapacityInPool[$0] } ?? 0 }

    /// Per pool, the slots taken and the free slots (for tests and reports).
    var inFlightByPool: [PoolKey: Int] { Dictionary(uniqueKeysWithValues: zip(pools, inFlightInPool)) }
    var freeSlotsByPool: [PoolKey: Int] { Dictionary(uniqueKeysWithValues: zip(pools, freeSlotsInPool)) }

    /// FNV-1a of `text` and `salt`, mixed.
    static func hash(_ text: String, _ salt: UInt64 = 0) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ salt
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        var mixer = SeededGenerator(seed: hash)
        return mixer.next()
    }
}
