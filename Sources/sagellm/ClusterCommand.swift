import ArgumentParser
import Logging
import SageControlPlane
import SageLLM
import ServiceLifecycle

/// `sagellm cluster status | chat | watch --config FILE` (or `sagellm cluster --config FILE
/// status | chat | watch`): the control plane over a cluster file; `sagellm cluster simulate`:
/// the control plane over a simulated fleet.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Run the control plane over the instances of a cluster file.",
        subcommands: [ClusterStatusCommand.self, ClusterChatCommand.self, ClusterWatchCommand.self, ClusterSimulateCommand.self])

    @Option(name: .customLong("config"), help: "The cluster file for status, chat and watch (also accepted after the subcommand).")
    var configFile: String?
}

/// `--config FILE`, after the subcommand or before it (`sagellm cluster --config FILE status`).
struct ClusterOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "The cluster file (YAML: scheduling_policy, routing_strategy, instances).")
    var configFile: String?

    /// The file named here, else before the subcommand.
    func path(_ parent: ClusterCommand) throws(ValidationError) -> String {
        guard let path = configFile ?? parent.configFile else {
            throw ValidationError("Missing expected argument '--config <config>' (the cluster file; see Docs/CONTROL_PLANE.md)")
        }
        return path
    }
}

/// Runs a command body; a control-plane or client error becomes one clear line and exit status
/// 1. When the command was interrupted (Ctrl-C), nothing is printed.
func reportingClusterErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ControlPlaneError {
        if Task.isCancelled { throw CancellationError() }
        Terminal.error("error: \(error)")
        throw ExitCode.failure
    }
}

enum ClusterTable {
    static func render(_ instances: [InstanceSnapshot], probes: [String: String?]? = nil) -> String {
        var rows = [["instance", "model", "type", "url", "healthy", "load", "active", "done", "failed", "avg ms"]]
        for instance in instances {
            var healthy = instance.isHealthy ? "yes" : "no (\(instance.healthReason))"
            if let probe = probes?[instance.instanceID] { healthy = probe.map { "no (\($0))" } ?? "yes" }
            if !instance.isAvailable { healthy += ", drained" }
            rows.append([
                instance.instanceID, instance.model, instance.type.rawValue, instance.baseURL, healthy,
                "\(Int((instance.currentLoad * 100).rounded()))%", "\(instance.activeRequests)/\(instance.maxConcurrentRequests)",
                "\(instance.completed)", "\(instance.failed)",
                instance.averageLatencyMilliseconds.map { String(format1: $0, digits: 1) } ?? "-",
            ])
        }
        return aligned(rows)
    }

    /// Rows as left-aligned columns two spaces apart.
    static func aligned(_ rows: [[String]]) -> String {
        let widths = (rows.first ?? []).indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - $1.count) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

struct ClusterStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Probe every instance once and show the table.")
    @ParentCommand var parent: ClusterCommand
    @OptionGroup var cluster: ClusterOptions
    @Flag(help: "Print JSON.") var json = false

    func validate() throws { _ = try cluster.path(parent) }

    func run() async throws {
        try await reportingClusterErrors {
            let controlPlane = try ControlPlaneClient(configuration: try ClusterConfiguration.load(file: try cluster.path(parent)))
            let probes = await HealthMonitor(controlPlane: controlPlane).probeAll()
            if json {
                struct Status: Encodable {
                    var schedulingPolicy: String
                    var routingStrategy: String
                    var instances: [InstanceSnapshot]
                    var probes: [String: String?]
                    enum CodingKeys: String, CodingKey {
                        case schedulingPolicy = "scheduling_policy", routingStrategy = "routing_strategy", instances, probes
                    }
                }
                print(try Terminal.json(Status(
                    schedulingPolicy: controlPlane.schedulingPolicy.rawValue, routingStrategy: controlPlane.routingStrategy.rawValue,
                    instances: controlPlane.instances(), probes: probes)))
            } else {
                print("policy \(controlPlane.schedulingPolicy.rawValue), routing \(controlPlane.routingStrategy.rawValue)")
                print(ClusterTable.render(controlPlane.instances(), probes: probes))
            }
            await controlPlane.shutdown()
            if probes.values.allSatisfy({ $0 != nil }) { throw ExitCode.failure }
        }
    }
}

struct ClusterChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "chat", abstract: "Send a prompt through the control plane.")
    @ParentCommand var parent: ClusterCommand
    @OptionGroup var cluster: ClusterOptions
    @Option(help: "Send it this many times.") var `repeat` = 1
    @Option(help: "Requests in flight at once.") var concurrency = 1
    @Option(help: "CRITICAL, HIGH, NORMAL, LOW or BACKGROUND.") var priority = "NORMAL"
    @Option(name: .customLong("slo-ms"), help: "Deadline per request, in milliseconds.") var sloMs: Double?
    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.") var maxTokens = 64
    @Option(help: "The model (default: the only one the cluster serves).") var model: String?
    @Flag(help: "Print JSON.") var json = false
    @Argument(help: "The prompt.") var prompt: String

    func validate() throws {
        _ = try cluster.path(parent)
        if `repeat` < 1 { throw ValidationError("--repeat must be at least 1, got \(`repeat`)") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1, got \(concurrency)") }
        if RequestPriority(name: priority) == nil { throw ValidationError("--priority must be CRITICAL, HIGH, NORMAL, LOW or BACKGROUND, got \(priority)") }
        if let sloMs, !(sloMs > 0) || sloMs > OutsideNumber.maximumSeconds * 1000 {
            throw ValidationError("--slo-ms must be above 0 and at most \(OutsideNumber.maximumWholeSeconds * 1000), got \(sloMs)")
        }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1, got \(maxTokens)") }
    }

    func run() async throws {
        try await reportingClusterErrors {
            let controlPlane = try ControlPlaneClient(configuration: try ClusterConfiguration.load(file: try cluster.path(parent)))
            await HealthMonitor(controlPlane: controlPlane).checkNow()  // instances that do not answer get no traffic
            let placement = RequestPlacement(priority: RequestPriority(name: priority) ?? .normal, sloDeadlineMs: sloMs)
            let options = ChatOptions(model: model, maxTokens: maxTokens)
            let prompt = self.prompt
            let outcomes = await withTaskGroup(of: (Int, Result<RoutedChatResult, ControlPlaneError>).self) { group in
                var next = 0
                var results: [(Int, Result<RoutedChatResult, ControlPlaneError>)] = []
                func start() {
                    let index = next
                    next += 1
                    group.addTask {
                        do throws(ControlPlaneError) {
                            return (index, .success(try await controlPlane.routedChat([.user(prompt)], options: options, placement: placement)))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                while next < min(concurrency, `repeat`) { start() }
                for await outcome in group {
                    results.append(outcome)
                    if next < `repeat` { start() }
                }
                return results.sorted { $0.0 < $1.0 }
            }
            if Task.isCancelled {  // interrupted: the requests were cancelled; nothing to report
                await controlPlane.shutdown()
                throw CancellationError()
            }
            let metrics = controlPlane.metrics()
            if json {
                struct Item: Encodable {
                    var index: Int
                    var ok: Bool
                    var instance: String?
                    var text: String?
                    var error: String?
                    var queueWaitMilliseconds: Double?
                    var path: String?
                    var prefillInstance: String?
                    enum CodingKeys: String, CodingKey {
                        case index, ok, instance, text, error, queueWaitMilliseconds = "queue_wait_ms", path, prefillInstance = "prefill_instance"
                    }
                }
                struct Output: Encodable { var results: [Item]; var metrics: ControlPlaneMetricsSnapshot }
                let items = outcomes.map { index, outcome in
                    switch outcome {
                    case .success(let routed):
                        Item(
                            index: index + 1, ok: true, instance: routed.instanceID, text: routed.text,
                            queueWaitMilliseconds: routed.queueWait.reportedMilliseconds, path: routed.path.name,
                            prefillInstance: routed.prefill?.instanceID)
                    case .failure(let error): Item(index: index + 1, ok: false, error: "\(error)")
                    }
                }
                print(try Terminal.json(Output(results: items, metrics: metrics)))
            } else {
                for (index, outcome) in outcomes {
                    switch outcome {
                    case .success(let routed):
                        let path = routed.path == .direct ? "" : ", \(routed.path)"
                        print("#\(index + 1) \(routed.instanceID) (\(routed.policy.rawValue), queued \(Terminal.milliseconds(routed.queueWait))\(path)): \(ServerText.forTerminal(routed.text))")
                    case .failure(let error): print("#\(index + 1) failed: \(error)")
                    }
                }
                print("completed \(metrics.completedRequests), failed \(metrics.failedRequests), p50 \(metrics.p50LatencyMilliseconds.map { String(format1: $0, digits: 1) } ?? "-") ms, p99 \(metrics.p99LatencyMilliseconds.map { String(format1: $0, digits: 1) } ?? "-") ms")
                print(ClusterTable.render(metrics.instances))
            }
            await controlPlane.shutdown()
            if outcomes.contains(where: { if case .failure = $0.1 { true } else { false } }) { throw ExitCode.failure }
        }
    }
}

struct ClusterWatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch", abstract: "Probe and scrape the instances, reload the file when it changes, and redraw the table every second until Ctrl-C.")
    @ParentCommand var parent: ClusterCommand
    @OptionGroup var cluster: ClusterOptions

    func validate() throws { _ = try cluster.path(parent) }

    func run() async throws {
        try await reportingClusterErrors {
            // The control plane as a Service runs its health monitor and reloads the file; Ctrl-C
            // cancels the group (the command line's signal handling), which shuts it down.
            let controlPlane = try ControlPlaneClient(clusterFile: try cluster.path(parent))
            let group = ServiceGroup(
                configuration: .init(services: [controlPlane, TablePrinter(controlPlane: controlPlane)], logger: Terminal.quietLogger))
            try await group.run()
        }
    }

    /// Redraws the instance table every second.
    struct TablePrinter: Service {
        let controlPlane: ControlPlaneClient
        func run() async throws {
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    Terminal.write("\u{1B}[H\u{1B}[2J" + ClusterTable.render(controlPlane.instances()) + "\n")
                    try? await Task.sleep(for: .seconds(1))  // cancelled: the loop ends
                }
            }
        }
    }
}
