import SageLLM

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

    /// Whether it answers whole requests on its own: every type but PREFILL (a DECODE
    /// instance computes the prompt itself when no KV cache is handed to it).
    public var servesWholeRequests: Bool { self != .prefill }
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
        if !(costPerGPUHour >= 0) || !costPerGPUHour.isFinite {
            throw fail("cost_per_gpu_hour", "cost_per_gpu_hour must be a finite number, not negative")
        }
        // The client's own check: scheme, host, a port of 1-65535, no user info, query or fragment.
        do {
            _ = try HTTPTransport.normalize(baseURL: baseURL)
        } catch {
            throw fail("base_url", "instance \(id): \(error.reason)")
        }
    }

    /// How cheap moving a KV cache from this instance to `other` is, by distance: itself or
    /// an NVLink peer on its machine, the same machine, the same rack, or anywhere else.
    public func affinity(to other: InstanceSpec, scores: TopologyScores = TopologyScores()) -> Double {
        scores.score(distance(to: other))
    }

    /// How far `other` is from this instance.
    public func distance(to other: InstanceSpec) -> TopologyDistance {
        if id == other.id { return .nvlink }
        let sameMachine = topology.machineID != nil && topology.machineID == other.topology.machineID
        if topology.nvlinkPeers.contains(other.id) || other.topology.nvlinkPeers.contains(id) { return .nvlink }
        if sameMachine { return .machine }
        if topology.rackID != nil && topology.rackID == other.topology.rackID { return .rack }
        return .remote
    }
}

/// How far apart two instances are, nearest first.
public enum TopologyDistance: String, Sendable, Hashable, CaseIterable, Codable {
    /// The same instance, or NVLink peers.
    case nvlink
    case machine
    case rack
    case remote
}

/// Scores for pairing a decode instance with the prefill instance that holds the KV cache
/// (the originals' affinity: 1.0 / 0.5 / 0.1 / 0.01).
public struct TopologyScores: Sendable, Hashable {
    public var nvlink: Double
    public var machine: Double
    public var rack: Double
    public var remote: Double

    public init(nvlink: Double = 1.0, machine: Double = 0.5, rack: Double = 0.1, remote: Double = 0.01) {
        self.nvlink = nvlink
        self.machine = machine
        self.rack = rack
        self.remote = remote
    }

    public func score(_ distance: TopologyDistance) -> Double {
        switch distance {
        case .nvlink: nvlink
        case .machine: machine
        case .rack: rack
        case .remote: remote
        }
    }
}
