/// What an inference instance does in a prefill/decode split.
public enum InstanceType: String, Sendable, Hashable, Codable, CaseIterable {
    case general = "GENERAL"
    case prefill = "PREFILL"
    case decode = "DECODE"
    case hybrid = "HYBRID"

    /// Reads `GENERAL`, `PREFILL`/`PREFILLING`, `DECODE`/`DECODING`, `HYBRID`, any case.
    public init?(name: String) {
        switch name.uppercased() {
        case "GENERAL": self = .general
        case "PREFILL", "PREFILLING": self = .prefill
        case "DECODE", "DECODING": self = .decode
        case "HYBRID": self = .hybrid
        default: return nil
        }
    }

    /// Whether it answers whole requests on its own (not only one phase).
    public var servesWholeRequests: Bool { self == .general || self == .hybrid }
}

/// Where an instance sits, for topology-aware routing.
public struct Topology: Sendable, Hashable, Codable {
    public var machineID: String?
    public var rackID: String?
    public var numaNode: Int?
    /// Ids of instances reachable over NVLink.
    public var nvlinkPeers: [String]

    public init(machineID: String? = nil, rackID: String? = nil, numaNode: Int? = nil, nvlinkPeers: [String] = []) {
        self.machineID = machineID
        self.rackID = rackID
        self.numaNode = numaNode
        self.nvlinkPeers = nvlinkPeers
    }
}

/// One inference instance behind the control plane.
public struct InstanceSpec: Sendable, Hashable {
    public var id: String
    /// The API root, e.g. `http://10.0.0.5:8000/v1`.
    public var baseURL: String
    public var model: String
    public var type: InstanceType
    public var gpuCount: Int
    /// Requests it may run at once; more wait in the control plane's queue.
    public var maxConcurrentRequests: Int
    public var costPerGPUHour: Double
    public var topology: Topology

    public init(
        id: String, baseURL: String, model: String, type: InstanceType = .general, gpuCount: Int = 1,
        maxConcurrentRequests: Int = 64, costPerGPUHour: Double = 1, topology: Topology = Topology()
    ) {
        self.id = id
        self.baseURL = baseURL
        self.model = model
        self.type = type
        self.gpuCount = gpuCount
        self.maxConcurrentRequests = maxConcurrentRequests
        self.costPerGPUHour = costPerGPUHour
        self.topology = topology
    }

    /// `http://HOST:PORT/v1`.
    public init(
        id: String, host: String, port: Int, model: String, type: InstanceType = .general, gpuCount: Int = 1,
        maxConcurrentRequests: Int = 64, costPerGPUHour: Double = 1, topology: Topology = Topology()
    ) {
        self.init(
            id: id, baseURL: "http://\(host):\(port)/v1", model: model, type: type, gpuCount: gpuCount,
            maxConcurrentRequests: maxConcurrentRequests, costPerGPUHour: costPerGPUHour, topology: topology)
    }

    public func validate() throws(ControlPlaneError) {
        func fail(_ field: String, _ message: String) -> ControlPlaneError {
            ControlPlaneError(.invalidConfiguration, message, instanceID: id.isEmpty ? nil : id, field: field)
        }
        if id.isEmpty { throw fail("instance_id", "an instance needs an id") }
        if model.isEmpty { throw fail("model_name", "instance \(id) needs a model name") }
        if gpuCount < 1 { throw fail("gpu_count", "gpu_count must be at least 1, got \(gpuCount)") }
        if maxConcurrentRequests < 1 {
            throw fail("max_concurrent_requests", "max_concurrent_requests must be at least 1, got \(maxConcurrentRequests)")
        }
        if !(costPerGPUHour >= 0) { throw fail("cost_per_gpu_hour", "cost_per_gpu_hour must not be negative") }
        let lower = baseURL.lowercased()
        if !(lower.hasPrefix("http://") || lower.hasPrefix("https://")) {
            throw fail("base_url", "the base URL must start with http:// or https://, got '\(baseURL)'")
        }
    }

    /// The originals' affinity between two instances: same machine and NVLink peers 1.0,
    /// same machine 0.5, same rack 0.1, else 0.01.
    public func affinity(to other: InstanceSpec) -> Double {
        if id == other.id { return 1 }
        let sameMachine = topology.machineID != nil && topology.machineID == other.topology.machineID
        if sameMachine && (topology.nvlinkPeers.contains(other.id) || other.topology.nvlinkPeers.contains(id)) { return 1 }
        if sameMachine { return 0.5 }
        if topology.rackID != nil && topology.rackID == other.topology.rackID { return 0.1 }
        return 0.01
    }
}
