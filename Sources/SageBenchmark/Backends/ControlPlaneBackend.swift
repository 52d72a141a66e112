import SageControlPlane
import SageLLM

/// Benchmarks a fleet through the control plane (`--backend control-plane --cluster FILE`):
/// the same measurements as any client, with the control plane's queueing and routing inside
/// them. The instances' model must be the same; the first one's is used.
public final class ControlPlaneBackend: BenchmarkBackend {
    public let controlPlane: ControlPlaneClient
    public var backendName: String { "control-plane" }
    public let modelName: String?

    public init(controlPlane: ControlPlaneClient) {
        self.controlPlane = controlPlane
        modelName = controlPlane.instances().first?.model
    }

    /// A control plane over the instances of a cluster file, with a startup health check.
    public static func load(clusterFile: String) async throws(BenchmarkError) -> ControlPlaneBackend {
        do {
            let controlPlane = try ControlPlaneClient(configuration: try ClusterConfiguration.load(file: clusterFile))
            await HealthMonitor(controlPlane: controlPlane).checkNow()
            return ControlPlaneBackend(controlPlane: controlPlane)
        } catch {
            throw BenchmarkError(.invalidArgument, "\(error)", field: "cluster", file: clusterFile)
        }
    }

    public func generate(_ request: BenchmarkRequest, runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant?)
        async -> BenchmarkResult
    {
        var options = ChatOptions(model: request.model ?? modelName, temperature: request.temperature, maxTokens: request.maxTokens)
        options.topP = request.topP
        options.requestID = request.requestID
        if request.ignoreEOS {
            options.extraBody["ignore_eos"] = true
            options.extraBody["min_tokens"] = .int(request.maxTokens)
        }
        var timer = StreamTimer(runStart: runStart, scheduled: scheduled)
        do {
            var usage: Usage?
            for try await chunk in controlPlane.streamChat([.user(request.prompt)], options: options) {
                if let reported = chunk.usage { usage = reported }
                let text = chunk.choices.reduce(into: "") { $0 += ($1.delta.reasoningContent ?? "") + ($1.delta.content ?? "") }
                timer.event(hasChoices: !chunk.choices.isEmpty, text: text)
            }
            return timer.success(requestID: request.requestID, completionTokens: usage?.completionTokens, promptTokens: usage?.promptTokens)
        } catch let error as ControlPlaneError {
            return timer.failure(requestID: request.requestID, error: "\(error)", kind: error.code.description)
        } catch {
            return timer.failure(requestID: request.requestID, error: "\(error)", kind: "other")
        }
    }

    public func healthCheck() async -> Bool { controlPlane.instances().contains { $0.isHealthy && $0.isAvailable } }

    public func shutdown() async { await controlPlane.shutdown() }
}
