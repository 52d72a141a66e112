/// What a source that only knows addresses (DNS, Kubernetes endpoints) does not say about an
/// instance: its model, type, batch limit and price, and how to reach its API at an address.
public struct InstanceTemplate: Sendable, Hashable {
    public var model: String
    public var type: InstanceType
    public var maxConcurrentRequests: Int
    public var costPerGPUHour: Double
    public var gpuCount: Int
    /// `http` or `https`.
    public var scheme: String
    /// The API's path on the engine, `/v1`.
    public var path: String

    public init(
        model: String, type: InstanceType = .general, maxConcurrentRequests: Int = 64, costPerGPUHour: Double = 1, gpuCount: Int = 1,
        scheme: String = "http", path: String = "/v1"
    ) {
        self.model = model
        self.type = type
        self.maxConcurrentRequests = maxConcurrentRequests
        self.costPerGPUHour = costPerGPUHour
        self.gpuCount = gpuCount
        self.scheme = scheme
        self.path = path
    }

    /// The instance at `address` and `port`, named `id` (an IPv6 address is bracketed in the URL).
    func instance(id: String, address: String, port: Int, topology: Topology = Topology()) -> InstanceSpec {
        let host = address.contains(":") && !address.hasPrefix("[") ? "[\(address)]" : address
        return InstanceSpec(
            id: id, baseURL: "\(scheme)://\(host):\(port)\(path)", model: model, type: type, gpuCount: gpuCount,
            maxConcurrentRequests: maxConcurrentRequests, costPerGPUHour: costPerGPUHour, topology: topology)
    }
}
