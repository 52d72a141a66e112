import ArgumentParser
import Foundation
import Logging
import SageBenchmarkCommands
import SageControlPlane
import ServiceLifecycle
import UnixSignals

/// `sagellm register`: the sidecar that keeps an engine's key in etcd alive while the engine's
/// `/health` answers, so that gateways watching the prefix route to it; it deletes the key
/// when the engine fails and on exit.
struct RegisterCommand: AsyncParsableCommand, HandlesItsOwnSignals {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Keep an engine registered in etcd (a key under the prefix, on a lease) while its /health answers, until SIGTERM or Ctrl-C, which delete the key.")

    @Option(help: "etcd's client URLs, comma-separated (every member: http://10.0.0.1:2379,http://10.0.0.2:2379).")
    var etcd: String
    @Option(help: "The key prefix the gateways' etcd discovery watches.") var prefix = "/sagellm/instances/"
    @Option(name: .customLong("instance-id"), help: "The instance's id (the key is PREFIX + ID).") var instanceID: String
    @Option(name: .customLong("base-url"), help: "The engine's OpenAI API root as the gateways reach it: http://10.0.0.5:8000/v1.")
    var baseURL: String
    @Option(help: "The model the engine serves.") var model: String
    @Option(help: "GENERAL, PREFILL or DECODE.") var type = "GENERAL"
    @Option(name: .customLong("max-concurrent-requests"), help: "Requests the engine runs at once.") var maxConcurrentRequests = 64
    @Option(name: .customLong("machine-id"), help: "The machine it runs on (for locality routing).") var machineID: String?
    @Option(name: .customLong("rack-id"), help: "Its rack or zone (for topology-aware routing).") var rackID: String?
    @Option(help: "Seconds the key outlives the sidecar's last renewal (2-3600).") var ttl = 10

    func validate() throws {
        _ = try registration()
    }

    func registration(onChange: @escaping @Sendable (Bool) -> Void = { _ in }) throws -> EtcdRegistration {
        guard let instanceType = InstanceType(name: type) else { throw ValidationError("--type must be GENERAL, PREFILL or DECODE, got \(type)") }
        let endpoints = etcd.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if endpoints.isEmpty { throw ValidationError("--etcd needs at least one URL, http://127.0.0.1:2379") }
        if prefix.isEmpty { throw ValidationError("--prefix is empty") }
        if !(2...3_600).contains(ttl) { throw ValidationError("--ttl must be 2-3600 seconds, got \(ttl)") }
        if let problem = endpoints.first(where: { !$0.hasPrefix("http://") && !$0.hasPrefix("https://") }) {
            throw ValidationError("--etcd takes http(s) URLs, got '\(problem)'")
        }
        let instance = InstanceSpec(
            id: instanceID, baseURL: baseURL, model: model, type: instanceType, maxConcurrentRequests: maxConcurrentRequests,
            topology: Topology(machineID: machineID, rackID: rackID))
        do {
            return try EtcdRegistration(
                endpoints: endpoints, prefix: prefix, instance: instance, ttl: ttl, logger: Logger(label: "sagellm.register"), onChange: onChange)
        } catch {
            throw ValidationError(error.message)
        }
    }

    func run() async throws {
        var logger = Logger(label: "sagellm.register")
        logger.logLevel = .info
        let key = prefix + instanceID
        let registration = try registration { registered in
            Terminal.error(registered ? "registered \(key) (lease \(ttl) s)" : "deregistered \(key)")
        }
        Terminal.error("keeping \(key) in etcd while \(baseURL)'s /health answers (Ctrl-C to stop)")
        let group = ServiceGroup(
            configuration: .init(services: [registration], gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
        try await group.run()
    }
}
