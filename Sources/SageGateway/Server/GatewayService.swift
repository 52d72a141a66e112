import Foundation
import Synchronization
import Hummingbird
import Prometheus
public import Logging
public import SageControlPlane
public import ServiceLifecycle

/// `sagellm serve`: an OpenAI-compatible HTTP server over a control plane, so that any client
/// (curl, the OpenAI SDKs, `vllm bench serve`) can use the fleet. A ServiceLifecycle
/// `Service`: run it in a `ServiceGroup` beside the control plane (which probes and reloads
/// the fleet).
///
/// On graceful shutdown (SIGTERM) it drains: `/ready` turns false at once, new requests get
/// 503 with `Retry-After`, requests in flight may finish within
/// ``GatewayConfiguration/drainTimeout``; streams still running then end with an error event,
/// and the server stops.
public struct GatewayService: Service {
    public let controlPlane: ControlPlaneClient
    public let configuration: GatewayConfiguration
    private let logger: Logger
    private let onListening: @Sendable (_ port: Int) async -> Void
    private let onAdminListening: @Sendable (_ port: Int) async -> Void
    /// How often the keys file is checked for a change.
    var keysFileInterval: Duration = .seconds(2)

    /// - Parameters:
    ///   - onListening: told the port the server listens on (useful with port 0).
    ///   - onAdminListening: told the admin API's port, when it is on.
    public init(
        controlPlane: ControlPlaneClient, configuration: GatewayConfiguration = GatewayConfiguration(),
        logger: Logger = Logger(label: "sagellm.gateway"), onListening: @escaping @Sendable (_ port: Int) async -> Void = { _ in },
        onAdminListening: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) {
        self.controlPlane = controlPlane
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
        self.onAdminListening = onAdminListening
    }

    public func run() async throws {
        try configuration.validate()
        let keys = try KeyRing(keys: configuration.apiKeys, file: configuration.keysFile)
        if keys.isOpen {
            logger.warning("no API keys are configured: anyone who reaches the gateway may use it (gateway.keys_file or SAGE_GATEWAY_API_KEYS)")
        } else {
            logger.info("API keys required", metadata: ["sage.keys": "\(keys.count)"])
        }
        if configuration.adminPort != nil, !keys.hasAdminKey {
            throw GatewayError(
                .invalidConfiguration,
                "the admin API (gateway.admin_port) needs an admin key: add one with `admin: true` to the keys file, or set SAGE_GATEWAY_ADMIN_KEY",
                status: 500, field: "gateway.admin_port")
        }
        let state = GatewayState()
        let membership = configuration.replicaRegistry.map { registry in
            ReplicaMembership(registry: registry, replicaID: configuration.effectiveReplicaID ?? "gateway", keys: keys, logger: self.logger)
        }
        let metrics = GatewayMetrics(registry: .init(), replicaID: configuration.effectiveReplicaID)
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: OpenAIErrorMiddleware())  // before the routes: it wraps them all
        CompletionRoutes(controlPlane: controlPlane, configuration: configuration, state: state, metrics: metrics, keys: keys, logger: logger)
            .register(on: router)
        FleetRoutes(
            controlPlane: controlPlane, state: state, metrics: metrics, keys: keys, membership: membership,
            started: Int(exactly: Date().timeIntervalSince1970.rounded(.down)) ?? 0, aliases: configuration.modelAliases
        ).register(on: router)
        let (host, port, logger, onListening) = (configuration.host, configuration.port, self.logger, self.onListening)
        let listening = Atomic<Bool>(false)
        let server = Application(
            router: router, server: .http1OnEventLoops(readTimeout: .seconds(30)), configuration: .init(address: .hostname(host, port: port), serverName: "sagellm-gateway"),
            onServerRunning: { channel in
                listening.store(true, ordering: .relaxed)
                let bound = channel.localAddress?.port ?? port
                logger.info("gateway listening", metadata: ["sage.address": "http://\(host):\(bound)"])
                await onListening(bound)
            },
            logger: logger)
        // The server and the drain in a group of their own, which the outer group's graceful
        // shutdown reaches: it shuts its services down in reverse order, so the drain runs
        // first (not ready, refusing new requests, waiting for those in flight), and only then
        // does the server stop.
        var services: [any Service] = [server]
        if let adminPort = configuration.adminPort {
            services.append(adminServer(port: adminPort, keys: keys))
        }
        if keys.file != nil { services.append(KeysFileWatcher(keys: keys, interval: keysFileInterval, logger: logger)) }
        services.append(Drain(state: state, timeout: configuration.drainTimeout, logger: logger))
        // Last, so that it is shut down first: the replica leaves the registry before it drains.
        if let membership { services += try membership.services() }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [], logger: logger))
        do {
            try await group.run()
        } catch {
            if listening.load(ordering: .relaxed) { throw GatewayError(.serverFailed, "the gateway's server failed: \(error)", status: 500) }
            throw GatewayError(
                .serverFailed,
                "the gateway could not listen on \(host):\(port): \(error); choose another address or port (--host/--port, gateway.host/gateway.port, SAGE_GATEWAY_HOST/SAGE_GATEWAY_PORT)",
                status: 500, field: "gateway.port")
        }
    }

    /// The admin API's server (see ``AdminRoutes``).
    private func adminServer(port: Int, keys: KeyRing) -> some Service {
        let router = Router(context: GatewayRequestContext.self)
        AdminRoutes(controlPlane: controlPlane, keys: keys, logger: logger).register(on: router)
        let (host, logger, onAdminListening) = (configuration.adminHost, self.logger, self.onAdminListening)
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "sagellm-gateway-admin"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                logger.info("admin API listening", metadata: ["sage.address": "http://\(host):\(bound)"])
                await onAdminListening(bound)
            },
            logger: logger)
    }

    /// Waits for graceful shutdown, then drains the gateway: see ``GatewayService``.
    private struct Drain: Service {
        let state: GatewayState
        let timeout: Duration
        let logger: Logger

        func run() async throws {
            do {
                try await gracefulShutdown()
            } catch {
                return  // cancelled: everything stops at once
            }
            state.startDraining()
            logger.info("draining", metadata: ["sage.in_flight": "\(state.requestsInFlight)", "sage.drain_timeout": "\(timeout)"])
            if await !GatewayService.waitUntilIdle(state, within: timeout) {
                logger.warning("drain timeout passed; ending the streams still running", metadata: ["sage.in_flight": "\(state.requestsInFlight)"])
            }
        }
    }

    /// Whether the gateway became idle within `timeout`; if not, the streams still running are
    /// told to end.
    static func waitUntilIdle(_ state: GatewayState, within timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await state.waitUntilIdle()
                return true
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return true  // cancelled: the gateway became idle first
                }
                state.endRemainingStreams()  // also ends the wait above
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}
