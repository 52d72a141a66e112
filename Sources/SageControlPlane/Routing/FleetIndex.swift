import SageLLM

/// Lookups over the instance table, rebuilt when instances come, go or change health (rare),
/// so that a routing decision does not scan the whole fleet.
struct FleetIndex: Sendable {
    /// Positions of the instances that answer whole requests, by model.
    var positionsByModel: [String: [Int]] = [:]
    /// Of those, how many are healthy and not drained, and their summed capacity.
    var servingCount: [String: Int] = [:]
    var servingCapacity: [String: Int] = [:]
    var positionOf: [String: Int] = [:]
    var byMachine: [String: [Int]] = [:]
    var byRack: [String: [Int]] = [:]
    /// `affinity`: per model, a consistent-hashing ring of (hash, position), 64 points per instance.
    var rings: [String: [(hash: UInt64, position: Int)]] = [:]

    static let pointsPerInstance = 64

    init() {}

    init(_ instances: [InstanceState]) {
        for (position, instance) in instances.enumerated() {
            positionOf[instance.spec.id] = position
            if let machine = instance.spec.topology.machineID { byMachine[machine, default: []].append(position) }
            if let rack = instance.spec.topology.rackID { byRack[rack, default: []].append(position) }
            guard instance.spec.type.servesWholeRequests else { continue }
            positionsByModel[instance.spec.model, default: []].append(position)
            if instance.healthy && !instance.draining {
                servingCount[instance.spec.model, default: 0] += 1
                servingCapacity[instance.spec.model, default: 0] += instance.spec.maxConcurrentRequests
            }
            for point in 0..<Self.pointsPerInstance {
                rings[instance.spec.model, default: []].append((Self.hash(instance.spec.id, UInt64(point)), position))
            }
        }
        for model in rings.keys { rings[model]?.sort { $0.hash < $1.hash } }
    }

    /// FNV-1a of `text` and `salt`, mixed.
    static func hash(_ text: String, _ salt: UInt64 = 0) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ salt
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        var mixer = SeededGenerator(seed: hash)
        return mixer.next()
    }
}
