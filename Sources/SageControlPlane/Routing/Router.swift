import SageLLM
import SageSupport

/// Chooses an instance for a request. Owned by the scheduler and used under its lock; works
/// on positions in the instance table and an eligibility test (healthy, free slot, not
/// already failed by this request), so that no decision copies or scans the whole fleet
/// when it does not have to.
struct Router: Sendable {
    var strategy: RoutingStrategy
    private var roundRobin = 0
    private var random: SeededGenerator
    /// `locality`: which instance last served each prompt-prefix block (bounded).
    private var blockOwners: BoundedDictionary<UInt64, String>
    /// `topology_aware`: where each session went last.
    private var lastInstance: BoundedDictionary<String, String>

    /// Above this many instances `load_balanced` compares two random ones instead of all.
    static let powerOfTwoThreshold = 16
    /// `affinity`: a session's instance is skipped when its load exceeds the model's mean by this factor (bounded-load consistent hashing).
    static let affinityLoadFactor = 1.25
    /// `affinity`: ring points visited at most before falling back to the least loaded.
    static let maximumRingSteps = 256
    /// `locality`: matches count only from this many leading blocks of 64 characters.
    static let localityMinimumBlocks = 2
    /// `locality`: an instance busier than this share of its slots is passed over despite a match.
    static let localityMaximumLoad = 0.8

    /// Decode side: prefer instances near the one that computed the prompt, with these
    /// scores (nil routes by `strategy` alone).
    var pairing: TopologyScores?

    init(strategy: RoutingStrategy, pairing: TopologyScores? = nil, seed: UInt64 = 0x5A6E) {
        self.strategy = strategy
        self.pairing = pairing
        random = SeededGenerator(seed: seed)
        blockOwners = BoundedDictionary(capacity: 200_000)
        lastInstance = BoundedDictionary(capacity: 100_000)
    }

    /// The position to use, or nil when no instance of `positions` is eligible.
    mutating func choose(
        _ instances: [InstanceState], positions: [Int], index: FleetIndex, for request: QueuedRequest, eligible: (Int) -> Bool
    ) -> Int? {
        if request.phase == .decode, let anchor = request.topologyAnchor, let scores = pairing {
            return paired(instances, positions, index, request, anchor: anchor, scores: scores, eligible)
        }
        switch strategy {
        case .loadBalanced: return leastLoaded(instances, positions, eligible)
        case .roundRobin:
            for _ in 0..<positions.count {
                roundRobin &+= 1
                let position = positions[roundRobin % positions.count]
                if eligible(position) { return position }
            }
            return nil
        case .random:
            for _ in 0..<8 {
                let position = positions[Int(random.next() % UInt64(positions.count))]
                if eligible(position) { return position }
            }
            return leastLoaded(instances, positions, eligible)
        case .affinity: return sticky(instances, positions, index, request, eligible)
        case .locality: return bestPrefixMatch(instances, positions, index, request, eligible)
        case .topologyAware: return nearest(instances, positions, index, request, eligible)
        }
    }

    /// Records where a request went (prefix owners, the session's last instance).
    mutating func dispatched(_ request: QueuedRequest, to instance: String) {
        if strategy == .locality { for block in request.prefixBlocks { blockOwners[block] = instance } }
        if strategy == .topologyAware, let key = request.placement.sessionKey { lastInstance[key] = instance }
    }

    /// Least load; ties go round in turn; for large fleets, the better of two random eligible ones.
    mutating func leastLoaded(_ instances: [InstanceState], _ positions: [Int], _ eligible: (Int) -> Bool) -> Int? {
        if positions.count > Self.powerOfTwoThreshold {
            var first: Int?
            for _ in 0..<16 {
                let position = positions[Int(random.next() % UInt64(positions.count))]
                guard eligible(position) && first != position else { continue }
                guard let picked = first else {
                    first = position
                    continue
                }
                return instances[picked].load <= instances[position].load ? picked : position
            }
            if let first { return first }
        }
        guard !positions.isEmpty else { return nil }
        roundRobin &+= 1
        let start = roundRobin % positions.count
        var best: Int?
        for offset in 0..<positions.count {
            let position = positions[(start + offset) % positions.count]
            guard eligible(position) else { continue }
            if best == nil || instances[position].load < instances[best!].load { best = position }
        }
        return best
    }

    /// Consistent hashing on the session key, skipping instances loaded beyond the bound.
    mutating func sticky(
        _ instances: [InstanceState], _ positions: [Int], _ index: FleetIndex, _ request: QueuedRequest, _ eligible: (Int) -> Bool
    ) -> Int? {
        guard let key = request.placement.sessionKey, let pool = index.number(of: request.pool), case let ring = index.ringOfPool[pool], !ring.isEmpty else {
            return leastLoaded(instances, positions, eligible)
        }
        let bound = loadBound(index, request.pool)
        let target = FleetIndex.hash(key)
        var low = 0
        var high = ring.count
        while low < high {
            let middle = (low + high) / 2
            if ring[middle].hash < target { low = middle + 1 } else { high = middle }
        }
        // Walk on along the ring, but not around a whole large one: past `maximumRingSteps`
        // points every nearby instance is busy, and the least loaded is the better answer.
        for step in 0..<min(ring.count, Self.maximumRingSteps) {
            let position = ring[(low + step) % ring.count].position
            if eligible(position) && instances[position].load <= bound { return position }
        }
        return leastLoaded(instances, positions, eligible)
    }

    /// A load above which an instance is passed over despite a preference: the pool's mean
    /// load times ``affinityLoadFactor``, plus one request's share of an average instance.
    func loadBound(_ index: FleetIndex, _ pool: PoolKey) -> Double {
        guard let number = index.number(of: pool) else { return 1 }  // nothing runs: one request's share of one slot
        let capacity = Double(index.servingCapacityInPool[number])
        let instanceCount = index.positionsInPool[number].count
        let inFlight = index.inFlightInPool[number]
        let mean = Double(inFlight) / max(capacity, 1)
        return mean * Self.affinityLoadFactor + 1 / Double(max(1, capacity / Double(max(1, instanceCount))))
    }

    /// Decode side: the instance with the best topology score to `anchor` (where the KV cache
    /// is) times its free share, among its NVLink peers, its machine, its rack and the least
    /// loaded anywhere; instances above the load bound are passed over.
    mutating func paired(
        _ instances: [InstanceState], _ positions: [Int], _ index: FleetIndex, _ request: QueuedRequest,
        anchor: InstanceSpec, scores: TopologyScores, _ eligible: (Int) -> Bool
    ) -> Int? {
        let bound = loadBound(index, request.pool)
        var candidates = anchor.topology.nvlinkPeers.compactMap { index.positionOf[$0] }
        if let own = index.positionOf[anchor.id] { candidates.append(own) }
        if let machine = anchor.topology.machineID { candidates += index.byMachine[machine] ?? [] }
        if let rack = anchor.topology.rackID { candidates += index.byRack[rack] ?? [] }
        // The decode side's own strategy proposes the candidate from anywhere.
        let anywhere = choose(instances, positions: positions, index: index, for: request.unanchored, eligible: eligible)
        if let anywhere { candidates.append(anywhere) }
        var best: (position: Int, score: Double)?
        for position in candidates
        where eligible(position) && instances[position].serves(request.pool) && (position == anywhere || instances[position].load <= bound) {
            let score = anchor.affinity(to: instances[position].spec, scores: scores) * (1 - instances[position].load)
            if score > best?.score ?? -1 { best = (position, score) }
        }
        return best?.position
    }

    /// The instance that last served the longest leading run of this prompt's blocks, unless
    /// it is busier than ``localityMaximumLoad`` or than the pool's load bound (see
    /// ``loadBound(_:_:)``): a popular prefix must not pile its requests onto one instance
    /// while others idle, or the interference there costs more than the cache saves.
    mutating func bestPrefixMatch(
        _ instances: [InstanceState], _ positions: [Int], _ index: FleetIndex, _ request: QueuedRequest, _ eligible: (Int) -> Bool
    ) -> Int? {
        let bound = min(Self.localityMaximumLoad, loadBound(index, request.pool))
        var blocks = request.prefixBlocks.count
        while blocks >= Self.localityMinimumBlocks {
            if let owner = blockOwners[request.prefixBlocks[blocks - 1]], let position = index.positionOf[owner],
                eligible(position), instances[position].serves(request.pool),
                instances[position].load <= bound
            {
                return position
            }
            blocks -= 1
        }
        return leastLoaded(instances, positions, eligible)
    }

    /// Nearest to the preferred (or the session's previous) instance: its NVLink peers, then
    /// its machine, then its rack, each least loaded first; else the least loaded anywhere.
    mutating func nearest(
        _ instances: [InstanceState], _ positions: [Int], _ index: FleetIndex, _ request: QueuedRequest, _ eligible: (Int) -> Bool
    ) -> Int? {
        let reference = request.placement.preferredInstanceID ?? request.placement.sessionKey.flatMap { lastInstance[$0] }
        guard let reference, let anchorPosition = index.positionOf[reference] else {
            return leastLoaded(instances, positions, eligible)
        }
        let anchor = instances[anchorPosition].spec
        func servesModel(_ position: Int) -> Bool { instances[position].serves(request.pool) && eligible(position) }
        var groups: [[Int]] = [[anchorPosition], anchor.topology.nvlinkPeers.compactMap { index.positionOf[$0] }]
        if let machine = anchor.topology.machineID { groups.append(index.byMachine[machine] ?? []) }
        if let rack = anchor.topology.rackID { groups.append(index.byRack[rack] ?? []) }
        for group in groups {
            var best: Int?
            for position in group where servesModel(position) {
                if best == nil || instances[position].load < instances[best!].load { best = position }
            }
            if let best { return best }
        }
        return leastLoaded(instances, positions, eligible)
    }
}

/// Hashes of a prompt's leading 64-character blocks, each covering all the text before it.
package enum PrefixBlocks {
    static let blockSize = 64
    static let maximumBlocks = 32

    package static func of(_ text: String) -> [UInt64] {
        var blocks: [UInt64] = []
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var count = 0
        for byte in text.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
            count += 1
            if count % blockSize == 0 {
                blocks.append(hash)
                if blocks.count == maximumBlocks { break }
            }
        }
        return blocks
    }
}

/// A dictionary that forgets its oldest quarter when it grows beyond `capacity`.
struct BoundedDictionary<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private var entries: [Key: (value: Value, stamp: UInt64)] = [:]
    private var stamp: UInt64 = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    subscript(key: Key) -> Value? {
        get { entries[key]?.value }
        set {
            stamp += 1
            entries[key] = newValue.map { ($0, stamp) }
            if entries.count > capacity {
                let cut = stamp - UInt64(capacity * 3 / 4)
                entries = entries.filter { $0.value.stamp > cut }
            }
        }
    }
}
