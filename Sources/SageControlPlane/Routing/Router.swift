/// Chooses an instance for a request. Owned by the scheduler and used under its lock.
struct Router: Sendable {
    var strategy: RoutingStrategy
    private var roundRobin = 0
    private var random: SplitMix
    /// `locality`: per instance, recent prompt-prefix block hashes (bounded).
    private var prefixIndex: [String: PrefixIndex] = [:]
    /// `affinity`/`topology_aware`: where each session went last.
    private var lastInstance: BoundedMap

    /// Above this many candidates `load_balanced` compares two random ones instead of all.
    static let powerOfTwoThreshold = 16
    /// `affinity`: a session's instance is skipped when its load exceeds the fleet's mean by this factor (bounded-load consistent hashing).
    static let affinityLoadFactor = 1.25
    /// `locality`: prefix matches count only from this many leading blocks of 64 characters.
    static let localityMinimumBlocks = 2
    /// `locality`: an instance busier than this share of its slots is passed over despite a match.
    static let localityMaximumLoad = 0.8

    init(strategy: RoutingStrategy, seed: UInt64 = 0x5A6E) {
        self.strategy = strategy
        random = SplitMix(seed: seed)
        lastInstance = BoundedMap(capacity: 100_000)
    }

    /// The index into `candidates` (each with a free slot, serving the model) to use.
    mutating func choose(_ candidates: [InstanceState], for request: QueuedRequest) -> Int {
        guard candidates.count > 1 else { return 0 }
        switch strategy {
        case .loadBalanced: return leastLoaded(candidates)
        case .roundRobin:
            roundRobin &+= 1
            return roundRobin % candidates.count
        case .random: return Int(random.next() % UInt64(candidates.count))
        case .affinity: return sticky(candidates, request)
        case .locality: return bestPrefixMatch(candidates, request)
        case .topologyAware: return nearest(candidates, request)
        }
    }

    /// Records where a request went (prefix index, the session's last instance).
    mutating func dispatched(_ request: QueuedRequest, to instance: String) {
        if strategy == .locality, !request.prefixBlocks.isEmpty {
            prefixIndex[instance, default: PrefixIndex(capacity: 4096)].insert(request.prefixBlocks)
        }
        if let key = request.placement.sessionKey { lastInstance[key] = instance }
    }

    mutating func forget(_ instance: String) { prefixIndex[instance] = nil }

    /// Least load; ties go round the candidates in turn; two random choices for large fleets.
    mutating func leastLoaded(_ candidates: [InstanceState]) -> Int {
        if candidates.count > Self.powerOfTwoThreshold {
            let a = Int(random.next() % UInt64(candidates.count))
            var b = Int(random.next() % UInt64(candidates.count - 1))
            if b >= a { b += 1 }
            return candidates[a].load <= candidates[b].load ? a : b
        }
        roundRobin &+= 1
        let start = roundRobin % candidates.count
        var best = start
        for offset in 1..<candidates.count {
            let index = (start + offset) % candidates.count
            if candidates[index].load < candidates[best].load { best = index }
        }
        return best
    }

    /// Consistent hashing on the session key, skipping instances loaded beyond the bound.
    mutating func sticky(_ candidates: [InstanceState], _ request: QueuedRequest) -> Int {
        guard let key = request.placement.sessionKey else { return leastLoaded(candidates) }
        let mean = candidates.reduce(0) { $0 + $1.load } / Double(candidates.count)
        let bound = mean * Self.affinityLoadFactor + 1 / Double(candidates.map(\.spec.maxConcurrentRequests).max() ?? 1)
        // Rendezvous hashing: each instance's score for the key; highest wins, and it is
        // stable when other instances come and go.
        let ranked = candidates.indices.sorted { stableHash(key, candidates[$0].spec.id) > stableHash(key, candidates[$1].spec.id) }
        return ranked.first { candidates[$0].load <= bound } ?? leastLoaded(candidates)
    }

    /// The instance whose recent prompts share the most leading blocks with this one.
    mutating func bestPrefixMatch(_ candidates: [InstanceState], _ request: QueuedRequest) -> Int {
        var best: (index: Int, blocks: Int)?
        for (index, candidate) in candidates.enumerated() where candidate.load < Self.localityMaximumLoad {
            let matched = prefixIndex[candidate.spec.id]?.longestMatch(request.prefixBlocks) ?? 0
            if matched >= Self.localityMinimumBlocks, matched > (best?.blocks ?? 0)
                || (matched == best?.blocks && candidate.load < candidates[best!.index].load)
            {
                best = (index, matched)
            }
        }
        return best?.index ?? leastLoaded(candidates)
    }

    /// Nearest to the preferred (or the session's previous) instance, then least loaded.
    mutating func nearest(_ candidates: [InstanceState], _ request: QueuedRequest) -> Int {
        let reference = request.placement.preferredInstanceID ?? request.placement.sessionKey.flatMap { lastInstance[$0] }
        guard let reference, let anchor = request.topologyAnchor ?? candidates.first(where: { $0.spec.id == reference })?.spec
        else { return leastLoaded(candidates) }
        var best = leastLoaded(candidates)
        var bestScore = -1.0
        for (index, candidate) in candidates.enumerated() {
            let score = anchor.affinity(to: candidate.spec) - candidate.load * 0.001
            if score > bestScore {
                bestScore = score
                best = index
            }
        }
        return best
    }

    func stableHash(_ key: String, _ instance: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        hash = (hash ^ 0xFF) &* 0x100_0000_01B3
        for byte in instance.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        var mixer = SplitMix(seed: hash)
        return mixer.next()
    }
}

/// Hashes of a prompt's leading 64-character blocks, each covering all the text before it.
enum PrefixBlocks {
    static let blockSize = 64
    static let maximumBlocks = 32

    static func of(_ text: String) -> [UInt64] {
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

/// A bounded set of prefix-block hashes with least-recently-inserted eviction.
struct PrefixIndex: Sendable {
    private var members: [UInt64: UInt64] = [:]  // hash -> insertion stamp
    private var stamp: UInt64 = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func insert(_ blocks: [UInt64]) {
        for block in blocks {
            stamp += 1
            members[block] = stamp
        }
        if members.count > capacity {
            // Drop the oldest quarter at once, so eviction costs O(1) per insert on average.
            let cut = members.values.sorted()[members.count - capacity * 3 / 4]
            members = members.filter { $0.value >= cut }
        }
    }

    /// How many leading blocks of `blocks` are present.
    func longestMatch(_ blocks: [UInt64]) -> Int {
        var count = 0
        for block in blocks {
            guard members[block] != nil else { break }
            count += 1
        }
        return count
    }
}

/// A map that forgets its oldest entries beyond `capacity`.
struct BoundedMap: Sendable {
    private var values: [String: String] = [:]
    private var order: [String] = []
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    subscript(key: String) -> String? {
        get { values[key] }
        set {
            if values[key] == nil { order.append(key) }
            values[key] = newValue
            if order.count > capacity {
                let drop = order.count - capacity
                for old in order.prefix(drop) { values[old] = nil }
                order.removeFirst(drop)
            }
        }
    }
}

/// SplitMix64: small, fast and seeded.
struct SplitMix: Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
