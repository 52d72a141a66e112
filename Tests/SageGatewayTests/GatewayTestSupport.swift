import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SageControlPlane
import SageGateway
import SageSimulator
import SageTesting
import ServiceLifecycle

/// A gateway over simulated engines, running on a free loopback port.
struct RunningGateway: Sendable {
    let baseURL: String
    /// The admin API's root, when it is on.
    let adminURL: String?
    let controlPlane: ControlPlaneClient
    let simulators: [RunningSimulator]
    let group: ServiceGroup

    /// Sends a request and returns the status, the headers and the whole body.
    ///
    /// - Parameter root: where to send it (by default the gateway's API; ``adminURL`` for the admin API).
    func send(_ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)] = [], to root: String? = nil) async throws
        -> (status: Int, headers: HTTPHeaders, body: String)
    {
        var request = HTTPClientRequest(url: (root ?? baseURL) + path)
        request.method = method
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), response.headers, String(buffer: bytes))
    }

    /// The JSON object of a body.
    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// The `error` object of an OpenAI error body.
    static func error(_ text: String) -> [String: Any] { json(text)["error"] as? [String: Any] ?? [:] }
}

/// An engine answering in `tbt` per token, no jitter, instant prefill.
func engine(tbtMs: Int = 0, ttftMs: Int = 0, model: String = "m") -> SimulatedEngineConfiguration {
    SimulatedEngineConfiguration(model: model, ttft: .milliseconds(ttftMs), tbt: .milliseconds(tbtMs), prefillTokensPerSecond: 0, jitter: 0)
}

/// The instances of `simulators` (ids i0, i1, ...), at most 16 requests each.
func specs(_ simulators: [RunningSimulator], types: [InstanceType]? = nil) -> [InstanceSpec] {
    simulators.enumerated().map { index, simulator in
        InstanceSpec(
            id: "i\(index)", baseURL: simulator.baseURL, model: simulator.engine.configuration.model, type: types?[index] ?? .general,
            maxConcurrentRequests: 16)
    }
}

/// Starts simulated engines and a gateway over them (with the control plane's service, so the
/// health monitor runs), runs `body`, and stops everything.
///
/// - Parameters:
///   - controlPlane: makes the control plane over the engines (by default fifo and
///     load-balanced over all of them).
///   - logger: the gateway's (by default warnings and above).
func withGateway<Result: Sendable>(
    _ engines: [SimulatedEngineConfiguration], types: [InstanceType]? = nil,
    configuration: GatewayConfiguration = GatewayConfiguration(host: "127.0.0.1", port: 0),
    controlPlane makeControlPlane: (@Sendable ([RunningSimulator]) throws -> ControlPlaneClient)? = nil,
    logger: Logger? = nil,
    _ body: @Sendable (RunningGateway) async throws -> Result
) async throws -> Result {
    try await withSimulatorServers(configurations: engines) { simulators in
        let controlPlane =
            try makeControlPlane?(simulators)
            ?? ControlPlaneClient(instances: specs(simulators, types: types), schedulingPolicy: .fifo, routingStrategy: .loadBalanced)
        return try await withGatewayService(controlPlane: controlPlane, configuration: configuration, simulators: simulators, logger: logger, body)
    }
}

/// Runs a gateway (with the control plane's service) over `controlPlane` on a free loopback
/// port, runs `body`, and shuts both down gracefully.
func withGatewayService<Result: Sendable>(
    controlPlane: ControlPlaneClient, configuration: GatewayConfiguration = GatewayConfiguration(host: "127.0.0.1", port: 0),
    simulators: [RunningSimulator] = [], logger: Logger? = nil, _ body: @Sendable (RunningGateway) async throws -> Result
) async throws -> Result {
    let (ports, continuation) = AsyncStream.makeStream(of: (main: Bool, port: Int).self)
    let logger = logger ?? {
        var logger = Logger(label: "sagellm.gateway.test")
        logger.logLevel = .warning
        return logger
    }()
    let gateway = GatewayService(
        controlPlane: controlPlane, configuration: configuration, logger: logger,
        onListening: { port in continuation.yield((true, port)) }, onAdminListening: { port in continuation.yield((false, port)) })
    let group = ServiceGroup(configuration: .init(services: [controlPlane, gateway], gracefulShutdownSignals: [], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        var port: Int?
        var adminPort: Int?
        while port == nil || (configuration.adminPort != nil && adminPort == nil), let next = await iterator.next() {
            if next.main { port = next.port } else { adminPort = next.port }
        }
        guard let port else {
            try await tasks.waitForAll()
            throw TestingError("the gateway did not start")
        }
        let running = RunningGateway(
            baseURL: "http://127.0.0.1:\(port)", adminURL: adminPort.map { "http://127.0.0.1:\($0)" }, controlPlane: controlPlane,
            simulators: simulators, group: group)
        let outcome: Swift.Result<Result, any Error>
        do {
            outcome = .success(try await body(running))
        } catch {
            outcome = .failure(error)
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return try outcome.get()
    }
}
