import ArgumentParser
import Foundation
import Logging
import SageBenchmarkCommands
import SageControlPlane
import SageGateway
import SageSimulator
import ServiceLifecycle
import UnixSignals

/// `sagellm serve`: the control plane as an OpenAI-compatible HTTP gateway, over the fleet of a
/// cluster file or over simulated engines started in-process.
struct ServeCommand: AsyncParsableCommand, HandlesItsOwnSignals {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a fleet through an OpenAI-compatible gateway (POST /v1/chat/completions, /v1/completions; GET /v1/models, /health, /ready, /metrics) until SIGTERM or Ctrl-C, which drain it.")

    @Option(name: .customLong("config"), help: "The cluster file (the format of `sagellm cluster`, plus an optional gateway: section).")
    var configFile: String?
    @Option(help: "Start N simulated engines of different speeds in-process and serve them (1-16; from 4 on, two are a PREFILL/DECODE pair).")
    var simulate: Int?
    @Option(help: "The model the simulated engines serve.") var model = "sagellm-sim"
    @Option(help: "Address to listen on (default 127.0.0.1, or the file's gateway.host).") var host: String?
    @Option(help: "Port to listen on (default 8080, or the file's gateway.port; 0 picks a free one).") var port: Int?
    @Option(name: .customLong("drain-timeout"), help: "Seconds requests in flight may take to finish after SIGTERM (default 30).")
    var drainTimeout: Double?
    @Option(name: .customLong("keys-file"), help: "API keys (YAML, reloaded when it changes; see Docs/GATEWAY.md). Without keys the gateway is open.")
    var keysFile: String?
    @Option(name: .customLong("admin-port"), help: "Serve the admin API on this port (on gateway.admin_host, default 127.0.0.1); needs an admin key.")
    var adminPort: Int?
    @Option(name: .customLong("keepalive"), help: "Seconds between SSE keepalive comments while a stream waits for its first token (default off).")
    var keepalive: Double?
    @Option(name: .customLong("replica-id"), help: "This gateway's name among replicas over one fleet: in every log line and in /metrics.")
    var replicaID: String?

    func validate() throws {
        if (configFile == nil) == (simulate == nil) {
            throw ValidationError("give either --config FILE (a cluster file) or --simulate N (simulated engines in-process)")
        }
        if let simulate, !(1...16).contains(simulate) { throw ValidationError("--simulate must be 1-16, got \(simulate)") }
        if let port, !(0...65_535).contains(port) { throw ValidationError("--port must be 0-65535, got \(port)") }
        if let adminPort, !(0...65_535).contains(adminPort) { throw ValidationError("--admin-port must be 0-65535, got \(adminPort)") }
        if model.isEmpty { throw ValidationError("--model must not be empty") }
    }

    func run() async throws {
        do {
            var gateway = GatewayConfiguration()
            if let configFile { gateway = try gateway.applying(clusterFile: configFile) }
            gateway = try gateway.applying(environment: ProcessInfo.processInfo.environment)
            if let host { gateway.host = host }
            if let port { gateway.port = port }
            if let drainTimeout { gateway.drainTimeout = try GatewayConfiguration.seconds(drainTimeout, field: "--drain-timeout") }
            if let keysFile { gateway.keysFile = keysFile }
            if let adminPort { gateway.adminPort = adminPort }
            if let replicaID { gateway.replicaID = replicaID }
            if let keepalive { gateway.keepaliveInterval = keepalive == 0 ? nil : try GatewayConfiguration.seconds(keepalive, field: "--keepalive") }
            try gateway.validate()
            gateway.replicaID = gateway.effectiveReplicaID  // the host name is looked up once
            let configured = gateway
            if let configFile {
                // The control plane's log lines name the replica too (discovery, health, reloads).
                var logger = Logger(label: "sagellm.control-plane")
                if let replica = configured.effectiveReplicaID { logger[metadataKey: "sage.replica"] = "\(replica)" }
                // Replicas share the engines: each counts what the engines run for the others.
                var scheduler = SchedulerConfiguration()
                scheduler.countsOtherClients = configured.replicaRegistry != nil
                try await serve(
                    ControlPlaneClient(clusterFile: configFile, scheduler: scheduler, logger: logger), gateway: configured,
                    fleet: "the fleet of \(configFile)")
            } else {
                let engines = Self.simulatedFleet(count: simulate ?? 4, model: model)
                try await withSimulatorServers(configurations: engines.map(\.engine)) { simulators in
                    let specs = zip(engines, simulators).map { engine, simulator in
                        InstanceSpec(id: engine.id, baseURL: simulator.baseURL, model: model, type: engine.type, maxConcurrentRequests: 64)
                    }
                    let fleet = zip(specs, engines).map { "\($0.id) (\($0.type), \($0.baseURL), TTFT \(Terminal.milliseconds($1.engine.ttft)), TBT \(Terminal.milliseconds($1.engine.tbt)))" }
                    try await serve(
                        ControlPlaneClient(instances: specs), gateway: configured,
                        fleet: "\(specs.count) simulated engines of '\(model)': " + fleet.joined(separator: ", "))
                }
            }
        } catch let error as GatewayError {
            Terminal.error("error: \(error)")
            throw ExitCode.failure
        } catch let error as ControlPlaneError {
            Terminal.error("error: \(error)")
            throw ExitCode.failure
        }
    }

    private func serve(_ controlPlane: ControlPlaneClient, gateway configuration: GatewayConfiguration, fleet: String) async throws {
        // Notices and above: an open gateway's warning, admin changes (with the key's name),
        // failed reloads. Requests are not logged one by one; /metrics counts them.
        var logger = Logger(label: "sagellm.gateway")
        logger.logLevel = .notice
        if let replica = configuration.effectiveReplicaID { logger[metadataKey: "sage.replica"] = "\(replica)" }
        let gateway = GatewayService(
            controlPlane: controlPlane, configuration: configuration, logger: logger,
            onListening: { port in
                Terminal.error("SageLLM gateway serving \(fleet)")
                Terminal.error("  OpenAI API at http://\(configuration.host):\(port)/v1 (try: curl http://\(configuration.host):\(port)/v1/models); SIGTERM or Ctrl-C drains and stops")
            },
            onAdminListening: { port in Terminal.error("  admin API at http://\(configuration.adminHost):\(port)/admin (admin key required)") })
        // Shut down in reverse order: the gateway drains first, then the control plane closes
        // the instances' connections.
        let group = ServiceGroup(
            configuration: .init(services: [controlPlane, gateway], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        Terminal.error("Gateway stopped.")
    }

    /// The engines of `--simulate N`: of different speeds; from 4 on, the last two are a
    /// PREFILL/DECODE pair.
    static func simulatedFleet(count: Int, model: String) -> [(id: String, type: InstanceType, engine: SimulatedEngineConfiguration)] {
        (0..<count).map { index in
            let split = count >= 4 && index >= count - 2
            let type: InstanceType = split ? (index == count - 2 ? .prefill : .decode) : .general
            var engine = SimulatedEngineConfiguration(
                model: model, ttft: .milliseconds(20 + 10 * index), tbt: .milliseconds(5 + 3 * index), prefillTokensPerSecond: 8_000,
                maxBatch: 64, seed: UInt64(index) + 1)
            if split { engine.role = type == .prefill ? .prefill : .decode }
            let id = split ? (type == .prefill ? "prefill-\(index)" : "decode-\(index)") : "engine-\(index)"
            return (id, type, engine)
        }
    }
}
