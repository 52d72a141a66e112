import Logging
import NIOCore
import NIOHTTP1
import SageLLM
import ServiceLifecycle

/// Keeps one key in etcd alive while something is well: the sidecar of an engine
/// (`sagellm register`, the key an instance entry in JSON) and a gateway replica announcing
/// itself. The key is attached to a lease of ``ttl`` seconds, renewed every third of it;
/// when the check fails twice in a row the lease is revoked (the key goes at once) and it is
/// registered again once the check passes. A lease that expired while etcd could not be
/// reached is replaced. On graceful shutdown the lease is revoked, so the key goes at once
/// rather than after its TTL.
public struct EtcdRegistration: Service {
    let endpoints: [String]
    public let key: String
    let value: String
    /// Seconds the key outlives its last renewal.
    public let ttl: Int
    /// Whether what the key stands for is well now (nil: always).
    let check: (@Sendable () async -> String?)?
    let logger: Logger
    /// Called when the key is written (true) or taken away (false): for tests and status output.
    let onChange: @Sendable (Bool) -> Void

    /// Registers `value` under `key`. `check` returns nil while all is well, else why not.
    package init(
        endpoints: [String], key: String, value: String, ttl: Int, logger: Logger,
        check: (@Sendable () async -> String?)? = nil, onChange: @escaping @Sendable (Bool) -> Void = { _ in }
    ) throws(ControlPlaneError) {
        guard (2...3_600).contains(ttl) else {
            throw ControlPlaneError(.invalidConfiguration, "the lease TTL must be 2-3600 seconds, got \(ttl)", field: "ttl")
        }
        guard !key.isEmpty else { throw ControlPlaneError(.invalidConfiguration, "the etcd key is empty", field: "prefix") }
        for endpoint in endpoints where !endpoint.hasPrefix("http://") && !endpoint.hasPrefix("https://") {
            throw ControlPlaneError(.invalidConfiguration, "an etcd endpoint must be an http(s) URL, got '\(endpoint)'", field: "etcd")
        }
        self.endpoints = endpoints
        self.key = key
        self.value = value
        self.ttl = ttl
        self.check = check
        self.logger = logger
        self.onChange = onChange
    }

    /// The sidecar of an engine: `instance` as an entry under `prefix`, kept while the
    /// engine's `/health` answers.
    public init(
        endpoints: [String], prefix: String, instance: InstanceSpec, ttl: Int = 10, logger: Logger,
        onChange: @escaping @Sendable (Bool) -> Void = { _ in }
    ) throws(ControlPlaneError) {
        try instance.validate()
        let probe = try EngineHealthProbe(baseURL: instance.baseURL, logger: logger)
        try self.init(
            endpoints: endpoints, key: prefix + instance.id, value: ClusterConfiguration.entryJSON(of: instance), ttl: ttl, logger: logger,
            check: { await probe.failure() }, onChange: onChange)
    }

    /// Registers and renews until graceful shutdown (or cancellation), then revokes the lease.
    public func run() async throws {
        let client = try EtcdClient(endpoints: endpoints, logger: logger)
        // The loop ends when cancelled, with the lease it holds.
        let lease = await cancelWhenGracefulShutdown { await keepRegistered(client) }
        if let lease {
            do {
                try await client.revoke(lease: lease)
                logger.info("deregistered", metadata: ["sage.key": "\(key)"])
            } catch {
                logger.warning("the lease could not be revoked; the key goes when it expires", metadata: ["sage.key": "\(key)", "sage.reason": "\(error.reason)", "sage.ttl": "\(ttl)"])
            }
            onChange(false)
        }
        await client.shutdown()
    }

    private func keepRegistered(_ client: EtcdClient) async -> Int64? {
        var lease: Int64?
        let period = Duration.milliseconds(ttl * 1_000 / 3)
        var failedChecks = 0
        var lastProblem: String?
        while !Task.isCancelled {
            let problem = await check?()
            failedChecks = problem == nil ? 0 : failedChecks + 1
            do throws(SageLLMError) {
                if let current = lease, failedChecks >= 2 {
                    lease = nil
                    try await client.revoke(lease: current)
                    onChange(false)
                    logger.warning("deregistered: the check failed twice", metadata: ["sage.key": "\(key)", "sage.reason": "\(problem ?? "")"])
                } else if let current = lease {
                    if try await client.keepAlive(lease: current) == 0 {
                        lease = nil  // expired while etcd was out of reach: registered again below
                        logger.warning("the lease had expired; registering again", metadata: ["sage.key": "\(key)"])
                    }
                }
                if lease == nil, problem == nil {
                    let granted = try await client.grant(seconds: ttl)
                    // Held from here: a put cut short by shutdown may still have landed, and the
                    // lease revoked at the end takes the key with it.
                    lease = granted
                    do {
                        try await client.put(key: key, value: value, lease: granted)
                    } catch {
                        if error.code == .cancelled || Task.isCancelled { return lease }
                        lease = nil
                        try? await client.revoke(lease: granted)  // best effort: unused, it expires anyway
                        throw error
                    }
                    onChange(true)
                    logger.info("registered", metadata: ["sage.key": "\(key)", "sage.ttl": "\(ttl)"])
                }
                lastProblem = nil
            } catch {
                if error.code == .cancelled || Task.isCancelled { return lease }
                if lastProblem != error.reason {
                    logger.warning("etcd is out of reach; retrying", metadata: ["sage.key": "\(key)", "sage.reason": "\(error.reason)"])
                }
                lastProblem = error.reason
            }
            // Sooner while a check fails or nothing is registered, so that a recovery is quick.
            let wait = lease == nil ? min(period, .seconds(1)) : period
            do { try await Task.sleep(for: wait) } catch { return lease }
        }
        return lease
    }
}

/// `GET /health` of an engine, for the sidecar.
struct EngineHealthProbe: Sendable {
    let transport: HTTPTransport

    init(baseURL: String, logger: Logger) throws(ControlPlaneError) {
        do throws(SageLLMError) {
            transport = try HTTPTransport(
                baseURL: baseURL, apiKey: nil, configuration: TransportConfiguration(connectTimeout: .seconds(2), readTimeout: .seconds(2)),
                logger: logger)
        } catch {
            throw ControlPlaneError(.invalidConfiguration, "the engine's URL cannot be used: \(error.reason)", field: "base_url")
        }
    }

    /// Nil when `/health` answers 2xx, else why not.
    func failure() async -> String? {
        do {
            _ = try await transport.sendToServerRoot(method: .GET, "health", timeout: .seconds(2), maximumBytes: 64 * 1024)
            return nil
        } catch {
            return error.status.map { "/health answered \($0)" } ?? "\(error.code): \(error.reason)"
        }
    }
}
