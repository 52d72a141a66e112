import Foundation
import Yams

/// The gateway's own settings: where it listens, the body limit, how long it drains, its API
/// keys, SSE keepalives and the admin port. From
/// the `gateway:` section of the cluster file, then the environment (`SAGE_GATEWAY_*`), then
/// the command line, each overriding the one before.
public struct GatewayConfiguration: Sendable, Hashable {
    public var host: String
    /// 0 picks a free port.
    public var port: Int
    /// Request bodies over this are refused with 413.
    public var maximumBodyBytes: Int
    /// After SIGTERM, how long requests in flight may take to finish before they are ended.
    public var drainTimeout: Duration
    /// Model names clients may use for a model of the fleet (alias: served model); the
    /// request's `model` is rewritten before it goes on, and `/v1/models` lists the aliases.
    public var modelAliases: [String: String] = [:]
    /// A keys file (YAML, reloaded when it changes and by the admin API): see
    /// `Docs/GATEWAY.md`. With no keys at all the gateway is open to anyone who reaches it.
    public var keysFile: String?
    /// Keys given in code or the environment (`SAGE_GATEWAY_API_KEYS`, `SAGE_GATEWAY_ADMIN_KEY`),
    /// beside those of the keys file.
    public var apiKeys: [GatewayKey] = []
    /// While a stream waits for its first piece, an SSE comment is sent this often (for load
    /// balancers that close idle connections); nil: none. Once one is sent the response has
    /// begun, so a later failure is an error event rather than an HTTP status.
    public var keepaliveInterval: Duration?
    /// The admin API's address; off when ``adminPort`` is nil. It needs an admin key.
    public var adminHost = "127.0.0.1"
    public var adminPort: Int?
    /// This replica's name among several gateways over one fleet (`--replica-id`,
    /// `SAGE_GATEWAY_REPLICA_ID`): in every log line and as `sagellm_gateway_replica_info`.
    public var replicaID: String?
    /// Where replicas announce themselves, so that each enforces its share of every key's
    /// limits over the live replica count (nil: this gateway enforces them whole).
    public var replicaRegistry: ReplicaRegistry?

    /// An etcd prefix under which every replica keeps a key on a lease (`gateway.replicas`).
    public struct ReplicaRegistry: Sendable, Hashable {
        /// Every etcd member's client URL.
        public var etcdEndpoints: [String]
        /// The replicas' keys are PREFIX + replica id.
        public var prefix: String
        /// Seconds a replica's key outlives it: how soon the others take over its share.
        public var ttlSeconds: Int

        public init(etcdEndpoints: [String], prefix: String = "/sagellm/gateways/", ttlSeconds: Int = 10) {
            self.etcdEndpoints = etcdEndpoints
            self.prefix = prefix
            self.ttlSeconds = ttlSeconds
        }

        /// `http://a:2379,http://b:2379` as a list.
        static func endpoints(_ text: String) -> [String] {
            text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    /// This replica's id: the configured one, else the host name and process id.
    public var effectiveReplicaID: String? {
        replicaID ?? replicaRegistry.map { _ in "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)" }
    }

    public init(host: String = "127.0.0.1", port: Int = 8080, maximumBodyBytes: Int = 4 * 1024 * 1024, drainTimeout: Duration = .seconds(30)) {
        self.host = host
        self.port = port
        self.maximumBodyBytes = maximumBodyBytes
        self.drainTimeout = drainTimeout
    }

    static let maximumDrainSeconds = 3_600
    static let largestBody = 1 << 30

    public func validate() throws(GatewayError) {
        func fail(_ field: String, _ message: String) -> GatewayError { GatewayError(.invalidConfiguration, message, status: 500, field: field) }
        if host.isEmpty { throw fail("gateway.host", "the host is empty; use 127.0.0.1, 0.0.0.0 or a name") }
        if !(0...65_535).contains(port) { throw fail("gateway.port", "the port must be 0-65535, got \(port)") }
        if !(1...Self.largestBody).contains(maximumBodyBytes) {
            throw fail("gateway.max_body_bytes", "the body limit must be 1-\(Self.largestBody) bytes, got \(maximumBodyBytes)")
        }
        for (alias, model) in modelAliases where alias.isEmpty || model.isEmpty || alias == model {
            throw fail("gateway.model_aliases", "an alias and its model must be non-empty and different, got '\(alias)': '\(model)'")
        }
        if let adminPort, !(0...65_535).contains(adminPort) { throw fail("gateway.admin_port", "the admin port must be 0-65535, got \(adminPort)") }
        if adminHost.isEmpty { throw fail("gateway.admin_host", "the admin host is empty; use 127.0.0.1") }
        if let keepaliveInterval, keepaliveInterval <= .zero || keepaliveInterval > .seconds(Self.maximumDrainSeconds) {
            throw fail("gateway.keepalive_seconds", "the keepalive interval must be above 0 and at most \(Self.maximumDrainSeconds) seconds, got \(keepaliveInterval)")
        }
        if let keysFile, keysFile.isEmpty { throw fail("gateway.keys_file", "the keys file path is empty") }
        if let replicaID, replicaID.isEmpty || replicaID.count > 128 || replicaID.contains(where: { $0.isNewline || $0 == "\"" }) {
            throw fail("gateway.replica_id", "the replica id must be 1-128 characters, without quotes or line breaks")
        }
        if let replicaRegistry {
            if replicaRegistry.etcdEndpoints.isEmpty { throw fail("gateway.replicas.etcd", "the replica registry needs etcd's URLs") }
            if let bad = replicaRegistry.etcdEndpoints.first(where: { !$0.hasPrefix("http://") && !$0.hasPrefix("https://") }) {
                throw fail("gateway.replicas.etcd", "an etcd endpoint must be an http(s) URL, got '\(bad)'")
            }
            if replicaRegistry.prefix.isEmpty { throw fail("gateway.replicas.prefix", "the replicas' key prefix is empty") }
            if !(2...3_600).contains(replicaRegistry.ttlSeconds) {
                throw fail("gateway.replicas.ttl_seconds", "the lease TTL must be 2-3600 seconds, got \(replicaRegistry.ttlSeconds)")
            }
        }
        if drainTimeout < .zero || drainTimeout > .seconds(Self.maximumDrainSeconds) {
            throw fail("gateway.drain_timeout_seconds", "the drain timeout must be 0-\(Self.maximumDrainSeconds) seconds, got \(drainTimeout)")
        }
    }

    /// The `gateway:` section of a cluster file over `self` (an absent section changes nothing).
    public func applying(clusterFile path: String) throws(GatewayError) -> GatewayConfiguration {
        struct File: Decodable {
            struct Section: Decodable {
                var host: String?
                var port: Int?
                var maxBodyBytes: Int?
                var drainTimeoutSeconds: Double?
                var modelAliases: [String: String]?
                var keysFile: String?
                var keepaliveSeconds: Double?
                var adminHost: String?
                var adminPort: Int?
                var replicaID: String?
                var replicas: Replicas?
                struct Replicas: Decodable {
                    var etcd: String?
                    var prefix: String?
                    var ttlSeconds: Int?
                    enum CodingKeys: String, CodingKey { case etcd, prefix, ttlSeconds = "ttl_seconds" }
                }
                enum CodingKeys: String, CodingKey {
                    case replicaID = "replica_id", replicas
                    case host, port
                    case maxBodyBytes = "max_body_bytes"
                    case drainTimeoutSeconds = "drain_timeout_seconds"
                    case modelAliases = "model_aliases"
                    case keysFile = "keys_file"
                    case keepaliveSeconds = "keepalive_seconds"
                    case adminHost = "admin_host"
                    case adminPort = "admin_port"
                }
            }
            var gateway: Section?
        }
        let section: File.Section?
        do {
            // The control plane has read this file already, within its size limits.
            let text = try String(contentsOfFile: path, encoding: .utf8)
            section = try YAMLDecoder().decode(File.self, from: text).gateway
        } catch {
            throw GatewayError(.invalidConfiguration, "the gateway section of \(path) is wrong: \(error)", status: 500, field: "gateway")
        }
        guard let section else { return self }
        var configured = self
        if let host = section.host { configured.host = host }
        if let port = section.port { configured.port = port }
        if let bytes = section.maxBodyBytes { configured.maximumBodyBytes = bytes }
        if let aliases = section.modelAliases { configured.modelAliases = aliases }
        if let file = section.keysFile {
            // Relative to the cluster file, wherever the gateway was started from.
            configured.keysFile = file.hasPrefix("/") ? file : URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(file).path
        }
        if let seconds = section.keepaliveSeconds {
            configured.keepaliveInterval = seconds == 0 ? nil : try Self.seconds(seconds, field: "gateway.keepalive_seconds")
        }
        if let host = section.adminHost { configured.adminHost = host }
        if let port = section.adminPort { configured.adminPort = port }
        if let id = section.replicaID { configured.replicaID = id }
        if let replicas = section.replicas {
            guard let etcd = replicas.etcd else {
                throw GatewayError(.invalidConfiguration, "gateway.replicas needs etcd: the etcd members' URLs", status: 500, field: "gateway.replicas.etcd")
            }
            var registry = ReplicaRegistry(etcdEndpoints: ReplicaRegistry.endpoints(etcd))
            if let prefix = replicas.prefix { registry.prefix = prefix }
            if let ttl = replicas.ttlSeconds { registry.ttlSeconds = ttl }
            configured.replicaRegistry = registry
        }
        if let seconds = section.drainTimeoutSeconds {
            configured.drainTimeout = try Self.seconds(seconds, field: "gateway.drain_timeout_seconds")
        }
        try configured.validate()
        return configured
    }

    /// `SAGE_GATEWAY_HOST`, `SAGE_GATEWAY_PORT`, `SAGE_GATEWAY_MAX_BODY_BYTES`,
    /// `SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS`, `SAGE_GATEWAY_KEEPALIVE_SECONDS`,
    /// `SAGE_GATEWAY_KEYS_FILE`, `SAGE_GATEWAY_API_KEYS`, `SAGE_GATEWAY_ADMIN_KEY`,
    /// `SAGE_GATEWAY_ADMIN_HOST`, `SAGE_GATEWAY_ADMIN_PORT`, `SAGE_GATEWAY_REPLICA_ID` and
    /// `SAGE_GATEWAY_REPLICAS_ETCD` (`_PREFIX`, `_TTL_SECONDS`) over `self`.
    public func applying(environment: [String: String]) throws(GatewayError) -> GatewayConfiguration {
        var configured = self
        func integer(_ name: String) throws(GatewayError) -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw GatewayError(.invalidConfiguration, "\(name)='\(text)' is not a whole number", status: 500, field: name)
            }
            return value
        }
        if let host = environment["SAGE_GATEWAY_HOST"] { configured.host = host }
        if let port = try integer("SAGE_GATEWAY_PORT") { configured.port = port }
        if let bytes = try integer("SAGE_GATEWAY_MAX_BODY_BYTES") { configured.maximumBodyBytes = bytes }
        func seconds(_ name: String) throws(GatewayError) -> Double? {
            guard let text = environment[name] else { return nil }
            guard let seconds = Double(text.trimmingCharacters(in: .whitespaces)) else {
                throw GatewayError(.invalidConfiguration, "\(name)='\(text)' is not a number", status: 500, field: name)
            }
            return seconds
        }
        if let value = try seconds("SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS") {
            configured.drainTimeout = try Self.seconds(value, field: "SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS")
        }
        if let value = try seconds("SAGE_GATEWAY_KEEPALIVE_SECONDS") {
            configured.keepaliveInterval = value == 0 ? nil : try Self.seconds(value, field: "SAGE_GATEWAY_KEEPALIVE_SECONDS")
        }
        if let file = environment["SAGE_GATEWAY_KEYS_FILE"] { configured.keysFile = file }
        configured.apiKeys += try KeysFile.keys(fromEnvironment: environment)
        if let host = environment["SAGE_GATEWAY_ADMIN_HOST"] { configured.adminHost = host }
        if let port = try integer("SAGE_GATEWAY_ADMIN_PORT") { configured.adminPort = port }
        if let replica = environment["SAGE_GATEWAY_REPLICA_ID"] { configured.replicaID = replica }
        if let etcd = environment["SAGE_GATEWAY_REPLICAS_ETCD"] {
            configured.replicaRegistry = ReplicaRegistry(
                etcdEndpoints: ReplicaRegistry.endpoints(etcd), prefix: configured.replicaRegistry?.prefix ?? "/sagellm/gateways/",
                ttlSeconds: configured.replicaRegistry?.ttlSeconds ?? 10)
        }
        if let prefix = environment["SAGE_GATEWAY_REPLICAS_PREFIX"] { configured.replicaRegistry?.prefix = prefix }
        if let ttl = try integer("SAGE_GATEWAY_REPLICAS_TTL_SECONDS") { configured.replicaRegistry?.ttlSeconds = ttl }
        try configured.validate()
        return configured
    }

    /// Seconds (of a drain timeout or keepalive interval) as a duration, refused when not a number in 0...3,600;
    /// `field` names the setting in the error.
    public static func seconds(_ value: Double, field: String) throws(GatewayError) -> Duration {
        guard value.isFinite, (0...Double(maximumDrainSeconds)).contains(value), let milliseconds = Int(exactly: (value * 1000).rounded())
        else {
            throw GatewayError(.invalidConfiguration, "\(field) must be 0-\(maximumDrainSeconds) seconds, got \(value)", status: 500, field: field)
        }
        return .milliseconds(milliseconds)
    }
}
