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
    let controlPlane: ControlPlaneClient
    let simulators: [RunningSimulator]
    let group: ServiceGroup

    /// Sends a request and returns the status, the headers and the whole body.
    func send(_ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)] = []) async throws
        -> (status: Int, headers: HTTPHeaders, body: String)
    {
        var request = HTTPClientRequest(url: baseURL + path)
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

/// Starts simulated engines and a gateway over them (with the control plane's service, so the
/// health monitor runs), runs `body`, and stops everything.
func withGateway<Result: Sendable>(
    _ engines: [SimulatedEngineConfiguration], types: [InstanceType]? = nil,
    configuration: GatewayConfiguration = GatewayConfiguration(host: "127.0.0.1", port: 0),
    _ body: @Sendable (RunningGateway) async throws -> Result
) async throws -> Result {
    try await withSimulatorServers(configurations: engines) { simulators in
        let specs = simulators.enumerated().map { index, simulator in
            InstanceSpec(
                id: "i\(index)", baseURL: simulator.baseURL, model: engines[index].model, type: types?[index] ?? .general, maxConcurrentRequests: 16)
        }
        let controlPlane = try ControlPlaneClient(instances: specs, schedulingPolicy: .fifo, routingStrategy: .loadBalanced)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "sagellm.gateway.test")
        logger.logLevel = .warning
        let gateway = GatewayService(controlPlane: controlPlane, configuration: configuration, logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [controlPlane, gateway], gracefulShutdownSignals: [], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { continuation.finish() }
                try await group.run()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                try await tasks.waitForAll()
                throw TestingError("the gateway did not start")
            }
            let running = RunningGateway(baseURL: "http://127.0.0.1:\(port)", controlPlane: controlPlane, simulators: simulators, group: group)
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
}
