/// Which instance gets a request, among the healthy ones that serve its model and have a free slot.
public enum RoutingStrategy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Least loaded (in flight relative to capacity); power of two choices for large fleets.
    case loadBalanced = "load_balanced"
    case roundRobin = "round_robin"
    case random
    /// Sticky per session or user (consistent hashing), bounded by load.
    case affinity
    /// Prefix-aware: the instance that recently served the longest matching prompt prefix.
    case locality
    /// Nearest (NVLink, machine, rack) to the preferred or previous instance.
    case topologyAware = "topology_aware"

    public init?(name: String) {
        self.init(rawValue: name.lowercased().replacing("-", with: "_"))
    }
}
