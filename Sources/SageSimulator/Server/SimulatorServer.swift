import Hummingbird
public import Logging
import NIOCore
import SageLLM
import SageSupport
public import ServiceLifecycle
import Synchronization

/// A simulated engine served over HTTP with vLLM's OpenAI-compatible API. It is a
/// ServiceLifecycle `Service`: run it in a `ServiceGroup` for graceful shutdown on signals.
///
/// ```swift
/// let engine = try SimulatedEngine(configuration: .init(model: "demo"))
/// let server = SimulatorServer(engine: engine, host: "127.0.0.1", port: 8000)
/// try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigint, .sigterm], logger: logger).run()
/// ```
public struct SimulatorServer: Service {
    /// A logger that only reports problems (warnings and above).
    public static var quietLogger: Logger {
        var logger = Logger(label: "sagellm.simulator")
        logger.logLevel = .warning
        return logger
    }

    public let engine: SimulatedEngine
    public let host: String
    public let port: Int
    /// Generation requests answered, by status.
    public let ledger: RequestLedger
    /// How long a keep-alive connection may sit idle between requests, and a request's head
    /// or body may stall while it is being received, before the connection is closed.
    public let idleTimeout: Duration
    private let logger: Logger
    private let onListening: @Sendable (_ port: Int) async -> Void

    /// - Parameters:
    ///   - port: 0 picks a free port; `onListening` is told which.
    public init(
        engine: SimulatedEngine, host: String = "127.0.0.1", port: Int = 8000, ledger: RequestLedger = RequestLedger(),
        idleTimeout: Duration = .seconds(60), logger: Logger = Logger(label: "sagellm.simulator"),
        onListening: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) {
        self.engine = engine
        self.host = host
        self.port = port
        self.ledger = ledger
        self.idleTimeout = idleTimeout
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let router = Router(context: SimulatorRequestContext.self)
        SimulatorRoutes(engine: engine, ledger: ledger).register(on: router)
        let onListening = self.onListening
        let ledger = self.ledger
        let timeout = TimeAmount.nanoseconds(idleTimeout.nanoseconds)
        let app = Application(
            router: router,
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [WireTimingHandler(ledger: ledger), ClientConnectionGuard(readTimeout: timeout)],
                    idleTimeout: timeout)),
            configuration: .init(address: .hostname(host, port: port), serverName: "sagellm-simulator"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        try await app.run()
    }
}

/// A simulator server that is up, as ``withSimulatorServer(configuration:host:port:logger:_:)`` hands it out.
public struct RunningSimulator: Sendable {
    public let engine: SimulatedEngine
    public let ledger: RequestLedger
    public let host: String
    public let port: Int
    /// The OpenAI API root, e.g. `http://127.0.0.1:54321/v1`.
    public var baseURL: String { "http://\(host):\(port)/v1" }
    /// The server root (for `/health`, `/metrics`, `/tokenize`).
    public var rootURL: String { "http://\(host):\(port)" }
}

/// Starts one simulator server per configuration, each on a free port of `host`, runs `body`
/// with them (in the same order), and stops them all when it returns or throws.
public func withSimulatorServers<Result: Sendable>(
    configurations: [SimulatedEngineConfiguration], host: String = "127.0.0.1", logger: Logger = SimulatorServer.quietLogger,
    _ body: @Sendable ([RunningSimulator]) async throws -> Result
) async throws -> Result {
    guard let first = configurations.first else { return try await body([]) }
    return try await withSimulatorServer(configuration: first, host: host, logger: logger) { simulator in
        try await withSimulatorServers(configurations: Array(configurations.dropFirst()), host: host, logger: logger) { rest in
            try await body([simulator] + rest)
        }
    }
}

/// Starts a simulated engine server (by default on 127.0.0.1 and a free port), runs `body`
/// with it, and stops it when `body` returns or throws: gracefully (in-flight requests may
/// finish) for up to `shutdownGrace`, then by cancellation.
public func withSimulatorServer<Result: Sendable>(
    configuration: SimulatedEngineConfiguration = SimulatedEngineConfiguration(), host: String = "127.0.0.1",
    port: Int = 0, idleTimeout: Duration = .seconds(60), logger: Logger = SimulatorServer.quietLogger,
    shutdownGrace: Duration = .seconds(2),
    _ body: @Sendable (RunningSimulator) async throws -> Result
) async throws -> Result {
    let engine = try SimulatedEngine(configuration: configuration)
    let ledger = RequestLedger()
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let server = SimulatorServer(
        engine: engine, host: host, port: port, ledger: ledger, idleTimeout: idleTimeout, logger: logger,
        onListening: { port in
            portContinuation.yield(port)
            portContinuation.finish()
        })
    let serviceGroup = ServiceGroup(
        configuration: .init(services: [server], gracefulShutdownSignals: [], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { portContinuation.finish() }
            try await serviceGroup.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let boundPort = await iterator.next(), boundPort > 0 else {
            // The server task's own error (e.g. the port is taken) says why it did not start.
            try await group.waitForAll()
            throw SimulatorError(code: .serverFailed, message: "the simulator server did not start on \(host):\(port)")
        }
        let running = RunningSimulator(engine: engine, ledger: ledger, host: host, port: boundPort)
        let outcome: Swift.Result<Result, any Error>
        do {
            outcome = .success(try await body(running))
        } catch {
            outcome = .failure(error)
        }
        await serviceGroup.triggerGracefulShutdown()
        group.addTask {
            try await Task.sleep(for: shutdownGrace)
            throw CancellationError()  // graceful shutdown took too long: cancel the server
        }
        do {
            _ = try await group.next()  // the server has stopped, or the grace period ran out
        } catch {
            // Shutting down is best effort here; the body's outcome is what the caller asked for.
        }
        group.cancelAll()
        return try outcome.get()
    }
}
