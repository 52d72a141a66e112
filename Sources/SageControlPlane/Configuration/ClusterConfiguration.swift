import Foundation
import Logging
import SageLLM
import Yams

/// A cluster as a YAML file, mirroring the originals' `create_with_control_plane` arguments:
///
/// ```yaml
/// scheduling_policy: adaptive        # fifo, priority, slo_aware, cost_optimized, adaptive
/// routing_strategy: load_balanced    # round_robin, random, affinity, locality, topology_aware
/// enable_pd_separation: true
/// pd:                                # optional; the defaults shown
///   conditional: true                # false: split every request while PREFILL and DECODE serve
///   min_prompt_tokens: 800           # prefill-heavy above this estimated prompt...
///   min_input_output_ratio: 4        # ...or above this prompt / max_tokens ratio
///   bytes_per_token: 4               # the prompt estimate: UTF-8 bytes / this
///   max_prefill_backlog_per_slot: 2  # optional: split only while at most this many wait per PREFILL slot
///   fallback_to_direct: true         # a failed prefill runs the request whole
///   prefill_routing: locality
///   decode_routing: load_balanced
///   topology_pairing: true           # prefer a decode instance near the prefill one
/// instances:
///   - instance_id: a100-0
///     host: 10.0.0.5                 # or base_url: http://10.0.0.5:8000/v1
///     port: 8000
///     model_name: Qwen/Qwen2.5-7B-Instruct
///     instance_type: GENERAL         # PREFILL (PREFILLING), DECODE (DECODING), HYBRID
///     gpu_count: 1
///     max_concurrent_requests: 64
///     cost_per_gpu_hour: 2.5
///     machine_id: node-1
///     rack_id: rack-a
///     numa_node: 0
///     nvlink_peers: [a100-1]
/// discovery:                         # optional: instances from DNS as well (or instead)
///   - dns: vllm-headless.default.svc.cluster.local
///     port: 8000
///     model_name: Qwen/Qwen2.5-7B-Instruct
/// ```
public struct ClusterConfiguration: Sendable, Hashable {
    public var schedulingPolicy: SchedulingPolicy
    public var routingStrategy: RoutingStrategy
    public var enablePDSeparation: Bool
    public var disaggregation: DisaggregationConfiguration
    public var instances: [InstanceSpec]
    /// Sources of instances beside the static list (see ``FleetSourceConfiguration``).
    public var discovery: [FleetSourceConfiguration] = []

    public init(
        schedulingPolicy: SchedulingPolicy = .adaptive, routingStrategy: RoutingStrategy = .loadBalanced,
        enablePDSeparation: Bool = true, disaggregation: DisaggregationConfiguration = DisaggregationConfiguration(),
        instances: [InstanceSpec]
    ) {
        self.schedulingPolicy = schedulingPolicy
        self.routingStrategy = routingStrategy
        self.enablePDSeparation = enablePDSeparation
        self.disaggregation = disaggregation
        self.instances = instances
    }

    /// Reads and checks a cluster file; every error names the file, the instance and the key.
    public static func load(file path: String) throws(ControlPlaneError) -> ClusterConfiguration {
        let text: String
        if let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size > maximumFileBytes {
            throw ControlPlaneError(
                .invalidConfiguration, "the cluster file is refused: it is \(size) bytes; at most \(maximumFileBytes) are read",
                file: path)
        }
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ControlPlaneError(.invalidConfiguration, "cannot read the cluster file: \(error.localizedDescription)", file: path)
        }
        return try parse(text, file: path)
    }

    /// The most a cluster file may hold: about 20,000 instances.
    static let maximumFileBytes = 4 * 1024 * 1024
    static let maximumFileLines = 200_000

    static func parse(_ text: String, file: String) throws(ControlPlaneError) -> ClusterConfiguration {
        if let problem = YAMLLimits.problem(in: text, maximumBytes: maximumFileBytes, maximumLines: maximumFileLines) {
            throw ControlPlaneError(.invalidConfiguration, "the cluster file is refused: \(problem)", file: file)
        }
        let document: ClusterFile
        do {
            document = try YAMLDecoder().decode(ClusterFile.self, from: text)
        } catch let error as DecodingError {
            throw ControlPlaneError(.invalidConfiguration, Self.describe(error), file: file)
        } catch {
            // The parser quotes the offending line; it is left out of the message.
            throw ControlPlaneError(
                .invalidConfiguration, "not valid YAML: \(YAMLLimits.describeWithoutSource(error, source: text))", file: file)
        }
        func fail(_ field: String, _ message: String, instance: String? = nil) -> ControlPlaneError {
            ControlPlaneError(.invalidConfiguration, message, instanceID: instance, field: field, file: file)
        }
        var configuration = ClusterConfiguration(instances: [])
        if let name = document.schedulingPolicy {
            guard let policy = SchedulingPolicy(name: name) else {
                throw fail("scheduling_policy", "unknown scheduling policy '\(name)'; use \(SchedulingPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            configuration.schedulingPolicy = policy
        }
        if let name = document.routingStrategy {
            guard let strategy = RoutingStrategy(name: name) else {
                throw fail("routing_strategy", "unknown routing strategy '\(name)'; use \(RoutingStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            configuration.routingStrategy = strategy
        }
        configuration.enablePDSeparation = document.enablePDSeparation ?? true
        if let pd = document.pd {
            var split = DisaggregationConfiguration()
            split.conditional = pd.conditional ?? split.conditional
            split.minimumPromptTokens = pd.minPromptTokens ?? split.minimumPromptTokens
            split.minimumInputOutputRatio = pd.minInputOutputRatio ?? split.minimumInputOutputRatio
            split.bytesPerToken = pd.bytesPerToken ?? split.bytesPerToken
            split.maxPrefillBacklogPerSlot = pd.maxPrefillBacklogPerSlot ?? split.maxPrefillBacklogPerSlot
            split.fallbackToDirect = pd.fallbackToDirect ?? split.fallbackToDirect
            split.topologyPairing = pd.topologyPairing ?? split.topologyPairing
            for (key, name, assign) in [
                ("pd.prefill_routing", pd.prefillRouting, { (value: RoutingStrategy) in split.prefillRouting = value }),
                ("pd.decode_routing", pd.decodeRouting, { (value: RoutingStrategy) in split.decodeRouting = value }),
            ] {
                guard let name else { continue }
                guard let strategy = RoutingStrategy(name: name) else {
                    throw fail(key, "unknown routing strategy '\(name)'; use \(RoutingStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                assign(strategy)
            }
            do {
                try split.validate()
            } catch {
                var located = error
                located.file = file
                throw located
            }
            configuration.disaggregation = split
        }
        for (index, entry) in (document.discovery ?? []).enumerated() {
            let source = try entry.source(index: index, file: file)
            do {
                try source.validate(at: index)
            } catch {
                var located = error
                located.file = file
                throw located
            }
            configuration.discovery.append(source)
        }
        let instances = document.instances ?? []
        if instances.isEmpty && configuration.discovery.isEmpty {
            throw fail("instances", "the file lists no instances and no discovery sources")
        }
        var seen = Set<String>()
        for (index, entry) in instances.enumerated() {
            let spec = try entry.spec(index: index, file: file)
            guard seen.insert(spec.id).inserted else { throw fail("instance_id", "the id '\(spec.id)' is used twice", instance: spec.id) }
            configuration.instances.append(spec)
        }
        return configuration
    }

    /// One instance written as a cluster file's `instances` entry, in JSON or YAML (the admin
    /// API's "add an instance"); `source` names where it came from in errors.
    public static func instance(from text: String, source: String) throws(ControlPlaneError) -> InstanceSpec {
        if let problem = YAMLLimits.problem(in: text, maximumBytes: 64 * 1024, maximumLines: 1_000) {
            throw ControlPlaneError(.invalidConfiguration, "the instance is refused: \(problem)", file: source)
        }
        let entry: ClusterFile.Entry
        do {
            entry = try YAMLDecoder().decode(ClusterFile.Entry.self, from: text)
        } catch let error as DecodingError {
            throw ControlPlaneError(.invalidConfiguration, Self.describe(error), file: source)
        } catch {
            throw ControlPlaneError(.invalidConfiguration, "not valid JSON or YAML: \(YAMLLimits.describeWithoutSource(error, source: text))", file: source)
        }
        return try entry.spec(index: 0, file: source)
    }

    /// `spec` as a cluster file's `instances:` entry in JSON (what `sagellm register` puts in etcd).
    package static func entryJSON(of spec: InstanceSpec) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Strings, numbers and arrays of strings always encode.
        return (try? encoder.encode(ClusterFile.Entry(spec))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// What is wrong, and where, in a file's words. `withDetails: false` leaves out the
    /// decoder's own description, which may quote a value (a file of secrets).
    package static func describe(_ error: DecodingError, withDetails: Bool = true) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingPrefix(".").description
        }
        func details(_ context: DecodingError.Context) -> String { withDetails ? ": \(context.debugDescription)" : "" }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context)) must be \(type)\(details(context))"
        case .valueNotFound(let type, let context): return "\(path(context)) needs a \(type) value"
        case .keyNotFound(let key, let context): return "\(path(context)) lacks \(key.stringValue)"
        case .dataCorrupted(let context): return "\(path(context).isEmpty ? "the file" : path(context)) is not valid\(details(context))"
        @unknown default: return withDetails ? "\(error)" : "it does not have the expected shape"
        }
    }
}

/// The file as written (snake_case, everything optional so that errors can say what is missing).
private struct ClusterFile: Decodable {
    var schedulingPolicy: String?
    var routingStrategy: String?
    var enablePDSeparation: Bool?
    var pd: Disaggregation?
    var instances: [Entry]?
    var discovery: [Source]?

    enum CodingKeys: String, CodingKey {
        case schedulingPolicy = "scheduling_policy", routingStrategy = "routing_strategy",
            enablePDSeparation = "enable_pd_separation", pd, instances, discovery
    }

    /// A `discovery:` entry: the source (`dns: NAME`) and what its instances are.
    struct Source: Decodable {
        var dns: String?
        var kubernetes: String?
        var kubernetesPods: String?
        var etcd: String?
        var prefix: String?
        var namespace: String?
        var portName: String?
        var apiServer: String?
        var tokenFile: String?
        var caFile: String?
        var kubeconfig: String?
        var context: String?
        var port: Int?
        var modelName: String?
        var instanceType: String?
        var maxConcurrentRequests: Int?
        var costPerGPUHour: Double?
        var gpuCount: Int?
        var scheme: String?
        var path: String?
        var refreshSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case dns, kubernetes, kubernetesPods = "kubernetes_pods", etcd, prefix, namespace, portName = "port_name", apiServer = "api_server",
                tokenFile = "token_file", caFile = "ca_file", kubeconfig, context, port, modelName = "model_name", instanceType = "instance_type", maxConcurrentRequests = "max_concurrent_requests",
                costPerGPUHour = "cost_per_gpu_hour", gpuCount = "gpu_count", scheme, path, refreshSeconds = "refresh_seconds"
        }

        func source(index: Int, file: String) throws(ControlPlaneError) -> FleetSourceConfiguration {
            func fail(_ key: String, _ message: String) -> ControlPlaneError {
                ControlPlaneError(.invalidConfiguration, message, field: "discovery[\(index)].\(key)", file: file)
            }
            let kinds = [
                dns.map { _ in "dns" }, kubernetes.map { _ in "kubernetes" }, kubernetesPods.map { _ in "kubernetes_pods" }, etcd.map { _ in "etcd" },
            ].compactMap { $0 }
            guard kinds.count == 1 else {
                throw fail(
                    kinds.first ?? "dns",
                    kinds.isEmpty
                        ? "a discovery source needs a kind: dns: NAME, kubernetes: SERVICE, kubernetes_pods: SELECTOR or etcd: URLS"
                        : "a discovery source has one kind, this one has \(kinds.joined(separator: " and "))")
            }
            if let etcd {
                // The keys' values say what each instance is; the template is not used.
                guard let prefix else { throw fail("prefix", "the etcd source needs the key prefix its instances are registered under") }
                let endpoints = etcd.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                return FleetSourceConfiguration(kind: .etcd(endpoints: endpoints, prefix: prefix), template: InstanceTemplate(model: modelName ?? "any"))
            }
            guard let modelName else { throw fail("model_name", "the source needs the model_name its engines serve") }
            let type = try InstanceType.parse(instanceType, field: "discovery[\(index)].instance_type", file: file)
            let kind: FleetSourceConfiguration.Kind
            if let dns {
                guard let port else { throw fail("port", "the DNS source \(dns) needs the engines' port") }
                kind = .dns(host: dns, port: port)
            } else {
                // An explicit API server, a named kubeconfig, the pod's service account, then the
                // default kubeconfig (KUBECONFIG, ~/.kube/config): the order kubectl users expect.
                let environment = ProcessInfo.processInfo.environment
                var access: KubernetesAccess
                var contextNamespace: String?
                if let apiServer {
                    access = KubernetesAccess(apiServer: apiServer, tokenFile: tokenFile, caFile: caFile)
                } else if let kubeconfig {
                    let path = kubeconfig.hasPrefix("/") ? kubeconfig : URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(kubeconfig).path
                    (access, contextNamespace) = try Kubeconfig.access(path: path, context: context)
                } else if let inCluster = KubernetesAccess.inCluster(environment: environment) {
                    access = inCluster
                } else if let path = Kubeconfig.defaultPath(environment: environment) {
                    (access, contextNamespace) = try Kubeconfig.access(path: path, context: context)
                } else {
                    throw fail(
                        "api_server",
                        "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is unset) and no kubeconfig found: set kubeconfig, or api_server (and token_file, ca_file)")
                }
                if apiServer == nil {
                    access.tokenFile = tokenFile ?? access.tokenFile
                    access.caFile = caFile ?? access.caFile
                }
                guard let namespace = namespace ?? contextNamespace ?? KubernetesAccess.podNamespace() else {
                    throw fail("namespace", "not running in a Kubernetes pod and the kubeconfig's context names none: set the namespace")
                }
                let selection: KubernetesSelection =
                    if let kubernetes { .endpointSlices(service: kubernetes, portName: portName) } else { .pods(labelSelector: kubernetesPods ?? "") }
                kind = .kubernetes(access: access, namespace: namespace, selection: selection, port: port)
            }
            let seconds = refreshSeconds ?? 5
            guard seconds.isFinite, (0.1...3_600).contains(seconds) else {
                throw fail("refresh_seconds", "must be within 0.1-3600 seconds, got \(seconds)")
            }
            let template = InstanceTemplate(
                model: modelName, type: type, maxConcurrentRequests: maxConcurrentRequests ?? 64, costPerGPUHour: costPerGPUHour ?? 1,
                gpuCount: gpuCount ?? 1, scheme: scheme ?? "http", path: path ?? "/v1")
            return FleetSourceConfiguration(
                kind: kind, template: template, refresh: .nanoseconds(Int64((seconds * 1e9).rounded())))
        }
    }

    struct Disaggregation: Decodable {
        var conditional: Bool?
        var minPromptTokens: Int?
        var minInputOutputRatio: Double?
        var bytesPerToken: Double?
        var maxPrefillBacklogPerSlot: Double?
        var fallbackToDirect: Bool?
        var prefillRouting: String?
        var decodeRouting: String?
        var topologyPairing: Bool?

        enum CodingKeys: String, CodingKey {
            case conditional, minPromptTokens = "min_prompt_tokens", minInputOutputRatio = "min_input_output_ratio",
                bytesPerToken = "bytes_per_token", maxPrefillBacklogPerSlot = "max_prefill_backlog_per_slot", fallbackToDirect = "fallback_to_direct", prefillRouting = "prefill_routing",
                decodeRouting = "decode_routing", topologyPairing = "topology_pairing"
        }
    }

    struct Entry: Codable {
        var instanceID: String?
        var host: String?
        var port: Int?
        var baseURL: String?
        var modelName: String?
        var instanceType: String?
        var gpuCount: Int?
        var maxConcurrentRequests: Int?
        var costPerGPUHour: Double?
        var machineID: String?
        var rackID: String?
        var numaNode: Int?
        var nvlinkPeers: [String]?

        enum CodingKeys: String, CodingKey {
            case instanceID = "instance_id", host, port, baseURL = "base_url", modelName = "model_name",
                instanceType = "instance_type", gpuCount = "gpu_count", maxConcurrentRequests = "max_concurrent_requests",
                costPerGPUHour = "cost_per_gpu_hour", machineID = "machine_id", rackID = "rack_id", numaNode = "numa_node",
                nvlinkPeers = "nvlink_peers"
        }

        init(_ spec: InstanceSpec) {
            instanceID = spec.id
            baseURL = spec.baseURL
            modelName = spec.model
            instanceType = spec.type.rawValue
            gpuCount = spec.gpuCount
            maxConcurrentRequests = spec.maxConcurrentRequests
            costPerGPUHour = spec.costPerGPUHour
            machineID = spec.topology.machineID
            rackID = spec.topology.rackID
            numaNode = spec.topology.numaNode
            nvlinkPeers = spec.topology.nvlinkPeers.isEmpty ? nil : spec.topology.nvlinkPeers
        }

        /// The instance this entry (the `index`th of `file`) describes, checked.
        func spec(index: Int, file: String) throws(ControlPlaneError) -> InstanceSpec {
            func fail(_ field: String, _ message: String, instance: String? = nil) -> ControlPlaneError {
                ControlPlaneError(.invalidConfiguration, message, instanceID: instance, field: field, file: file)
            }
            let id = instanceID ?? ""
            guard !id.isEmpty else { throw fail("instances[\(index)].instance_id", "instance \(index + 1) has no instance_id") }
            let url: String
            if let baseURL {
                url = baseURL
            } else if let host, let port {
                url = "http://\(host):\(port)/v1"
            } else {
                throw fail("base_url", "instance \(id) needs base_url, or host and port", instance: id)
            }
            guard let modelName else { throw fail("model_name", "instance \(id) has no model_name", instance: id) }
            let type = try InstanceType.parse(instanceType, field: "instance_type", instance: id, file: file)
            let spec = InstanceSpec(
                id: id, baseURL: url, model: modelName, type: type, gpuCount: gpuCount ?? 1,
                maxConcurrentRequests: maxConcurrentRequests ?? 64, costPerGPUHour: costPerGPUHour ?? 1,
                topology: Topology(machineID: machineID, rackID: rackID, numaNode: numaNode, nvlinkPeers: nvlinkPeers ?? []))
            do {
                try spec.validate()
            } catch {
                var located = error
                located.file = file
                throw located
            }
            return spec
        }
    }
}

extension ControlPlaneClient {
    /// A control plane over the instances of a cluster configuration.
    public convenience init(
        configuration: ClusterConfiguration, scheduler: SchedulerConfiguration = SchedulerConfiguration(),
        monitoring: HealthMonitorConfiguration = HealthMonitorConfiguration(), clusterFile: ClusterFileWatching? = nil,
        logger: Logger = Logger(label: "sagellm.control-plane")
    ) throws(ControlPlaneError) {
        try self.init(
            instances: configuration.instances, schedulingPolicy: configuration.schedulingPolicy,
            routingStrategy: configuration.routingStrategy, enablePDSeparation: configuration.enablePDSeparation,
            disaggregation: configuration.disaggregation, configuration: scheduler, monitoring: monitoring, clusterFile: clusterFile,
            discovery: configuration.discovery, logger: logger)
    }

    /// A control plane over the instances of the cluster file at `path`, which ``run()``
    /// reloads when it changes.
    public convenience init(
        clusterFile path: String, scheduler: SchedulerConfiguration = SchedulerConfiguration(),
        monitoring: HealthMonitorConfiguration = HealthMonitorConfiguration(), logger: Logger = Logger(label: "sagellm.control-plane")
    ) throws(ControlPlaneError) {
        let watching = ClusterFileWatching(path: path)  // before reading: a change while it is read is reloaded
        try self.init(
            configuration: try ClusterConfiguration.load(file: path), scheduler: scheduler, monitoring: monitoring, clusterFile: watching,
            logger: logger)
    }

    /// Brings the instances in line with `configuration`: new ones are added, missing ones
    /// removed (after their requests finish), changed ones replaced. Instances that discovery
    /// owns are left to it. Returns what changed; the first instance refused is thrown after
    /// the others are applied.
    @discardableResult
    public func apply(_ configuration: ClusterConfiguration) throws(ControlPlaneError) -> (added: [String], removed: [String], changed: [String]) {
        let discovered = discovery?.ownedIDs ?? []
        let current = Set(scheduler.instanceStates.filter { $0.healthReason != "removed" }.map(\.spec.id)).subtracting(discovered)
        let changes = bringInLine(configuration.instances.filter { !discovered.contains($0.id) }, among: current)
        if let refused = changes.refused.first { throw refused.error }
        return (changes.added, changes.removed, changes.changed)
    }

    /// Brings the instances whose ids are in `owned` in line with `wanted`: those of `wanted`
    /// not present are added, those of `owned` not wanted removed (after their requests
    /// finish), changed ones replaced. An instance that cannot be added is reported in
    /// `refused` and the others go on.
    func bringInLine(_ wanted: [InstanceSpec], among owned: Set<String>)
        -> (added: [String], removed: [String], changed: [String], refused: [(id: String, error: ControlPlaneError)])
    {
        let current = Dictionary(
            scheduler.instanceStates.filter { $0.healthReason != "removed" && owned.contains($0.spec.id) }.map { ($0.spec.id, $0.spec) },
            uniquingKeysWith: { first, _ in first })
        let wantedIDs = Set(wanted.map(\.id))
        var added: [String] = []
        var removed: [String] = []
        var changed: [String] = []
        var refused: [(id: String, error: ControlPlaneError)] = []
        for id in current.keys.sorted() where !wantedIDs.contains(id) {
            remove(id)
            removed.append(id)
        }
        for spec in wanted {
            do {
                if let old = current[spec.id] {
                    guard old != spec else { continue }
                    drain(spec.id)
                    try add(spec)
                    changed.append(spec.id)
                } else {
                    try add(spec)
                    added.append(spec.id)
                }
            } catch {
                refused.append((spec.id, error))
            }
        }
        return (added, removed, changed, refused)
    }
}

extension InstanceType {
    /// A file's `instance_type` (GENERAL when absent), or an error naming the key.
    static func parse(_ text: String?, field: String, instance: String? = nil, file: String) throws(ControlPlaneError) -> InstanceType {
        guard let text else { return .general }
        guard let type = InstanceType(name: text) else {
            throw ControlPlaneError(
                .invalidConfiguration, "unknown instance_type '\(text)'; use GENERAL, PREFILL, DECODE or HYBRID", instanceID: instance, field: field,
                file: file)
        }
        return type
    }
}
