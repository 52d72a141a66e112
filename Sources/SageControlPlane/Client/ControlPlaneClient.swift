import Logging
import SageLLM
import Synchronization

/// One logical LLM endpoint over many inference instances: requests wait in an admission
/// queue ordered by the scheduling policy, go to the instance the routing strategy picks,
/// and come back with that instance's real output (streamed when asked).
///
/// ```swift
/// let cluster = try IntelligentLLMClient.createWithControlPlane(instances: [
///     InstanceSpec(id: "a", host: "10.0.0.5", port: 8000, model: "qwen"),
///     InstanceSpec(id: "b", host: "10.0.0.6", port: 8000, model: "qwen"),
/// ])
/// let answer = try await cluster.chat([.user("Hi")], placement: RequestPlacement(priority: .high, sloDeadlineMs: 2000))
/// print(cluster.instances(), cluster.metrics())
/// ```
public final class ControlPlaneClient: Sendable {
    public let schedulingPolicy: SchedulingPolicy
    public let routingStrategy: RoutingStrategy
    /// Prefill/decode disaggregation: prefill-heavy requests are split between a PREFILL and a
    /// DECODE instance over vLLM's KV-transfer protocol while both kinds serve the model;
    /// others go whole to GENERAL, HYBRID or DECODE instances.
    public let enablePDSeparation: Bool
    /// When and how requests are split.
    public let disaggregation: DisaggregationConfiguration
    /// How ``run()`` probes and scrapes the instances.
    public let monitoring: HealthMonitorConfiguration
    /// The cluster file ``run()`` reloads when it changes (nil: none).
    public let clusterFile: ClusterFileWatching?
    /// The sources ``run()`` discovers instances from (nil: none).
    let discovery: FleetDiscovery?
    let scheduler: Scheduler
    let metricsTally: ControlPlaneMetrics
    let clients = InstanceClients()
    private let nextRequestID = Atomic<UInt64>(0)
    let logger: Logger

    public init(
        instances: [InstanceSpec], schedulingPolicy: SchedulingPolicy = .adaptive, routingStrategy: RoutingStrategy = .loadBalanced,
        enablePDSeparation: Bool = true, disaggregation: DisaggregationConfiguration = DisaggregationConfiguration(),
        configuration: SchedulerConfiguration = SchedulerConfiguration(), monitoring: HealthMonitorConfiguration = HealthMonitorConfiguration(),
        clusterFile: ClusterFileWatching? = nil, discovery: [FleetSourceConfiguration] = [],
        resolver: any HostResolving = SystemHostResolver(), logger: Logger = Logger(label: "sagellm.control-plane")
    ) throws(ControlPlaneError) {
        try disaggregation.validate()
        for (index, source) in discovery.enumerated() { try source.validate(at: index) }
        self.monitoring = monitoring
        self.clusterFile = clusterFile
        self.discovery = discovery.isEmpty ? nil : FleetDiscovery(sources: discovery.map { $0.source(resolver: resolver, logger: logger) }, logger: logger)
        self.schedulingPolicy = schedulingPolicy
        self.routingStrategy = routingStrategy
        self.enablePDSeparation = enablePDSeparation
        self.disaggregation = disaggregation
        self.logger = logger
        metricsTally = ControlPlaneMetrics()
        scheduler = Scheduler(
            policy: schedulingPolicy, routing: routingStrategy, configuration: configuration, metrics: metricsTally,
            disaggregation: disaggregation)
        for spec in instances { try add(spec) }
    }

    // MARK: Instances

    /// Adds an instance at run time.
    public func add(_ spec: InstanceSpec) throws(ControlPlaneError) {
        try spec.validate()
        let client: InstanceClient
        do {
            client = InstanceClient(
                try IntelligentLLMClient(
                    configuration: LLMClientConfiguration(
                        baseURL: spec.baseURL, model: spec.model,
                        transport: TransportConfiguration(maximumConnectionsPerHost: max(spec.maxConcurrentRequests, 8)),
                        // The control plane fails over to another instance itself.
                        resilience: ResilienceConfiguration(retry: .none)),
                    logger: logger))
        } catch {
            throw ControlPlaneError(.invalidConfiguration, "\(error)", instanceID: spec.id, field: "base_url")
        }
        do {
            try scheduler.add(spec, client: client)
        } catch {
            clients.discard(client)  // shut down with the retired ones
            throw error
        }
        // A replaced client keeps serving the requests it has, and is shut down after the
        // last of them (or at the control plane's shutdown).
        clients.set(client, for: spec.id)
    }

    /// Stops sending requests to `id`; those it runs finish. Returns false for an unknown id.
    @discardableResult
    public func drain(_ id: String) -> Bool { scheduler.drain(id, remove: false) }

    /// Drains `id` and forgets it once its requests have finished; its connections are closed
    /// after the last of them.
    @discardableResult
    public func remove(_ id: String) -> Bool {
        guard scheduler.drain(id, remove: true) else { return false }
        clients.remove(id)
        return true
    }

    /// Each discovery source: reachable or not (and why), and the instances it contributes.
    /// An unreachable source keeps its last known instances.
    public func discoveryStatus() -> [FleetSourceStatus] { discovery?.status ?? [] }

    /// Every instance: its spec, load, latency, health and the reason for it.
    public func instances() -> [InstanceSnapshot] { scheduler.instanceStates.map(InstanceSnapshot.init) }

    public func metrics() -> ControlPlaneMetricsSnapshot {
        let states = scheduler.instanceStates
        return metricsTally.snapshot(
            active: states.reduce(0) { $0 + $1.inFlight }, queued: scheduler.queueLength, instances: states,
            adaptive: schedulingPolicy == .adaptive ? scheduler.adaptiveSummary : nil)
    }

    /// Shuts down the clients of removed or replaced instances that no request uses any more.
    func closeRetiredClients() async {
        for client in clients.takeIdleRetired() { await close(client) }
    }

    private func close(_ client: IntelligentLLMClient) async {
        do {
            try await client.shutdown()
        } catch {
            logger.debug("closing an instance client failed", metadata: ["sage.error": "\(error)"])
        }
    }

    // MARK: Requests

    /// The model a request asks for: the options', else the only model served.
    func model(_ options: ChatOptions?) throws(ControlPlaneError) -> String {
        if let model = options?.model { return model }
        let models = Set(scheduler.instanceStates.map(\.spec.model))
        guard models.count == 1, let only = models.first else {
            throw ControlPlaneError(
                .invalidConfiguration,
                models.isEmpty ? "the control plane has no instances" : "several models are served (\(models.sorted().joined(separator: ", "))); set ChatOptions.model",
                field: "model")
        }
        return only
    }

    func queued(_ messages: [ChatMessage], options: ChatOptions, model: String, placement: RequestPlacement, excluded: Set<String>)
        -> QueuedRequest
    {
        queued(model: model, placement: placement, maxTokens: options.maxTokens, excluded: excluded, prompt: { messages.map(\.text).joined(separator: "\n") })
    }

    /// A request for the queue; `prompt` is read only when the routing keys on prompt prefixes.
    func queued(model: String, placement: RequestPlacement, maxTokens: Int?, excluded: Set<String> = [], prompt: () -> String)
        -> QueuedRequest
    {
        let arrival = ContinuousClock.now
        return QueuedRequest(
            id: nextRequestID.add(1, ordering: .relaxed).newValue, model: model, placement: placement, arrival: arrival,
            deadline: placement.sloDeadline.map { arrival + $0 }, prefixBlocks: PrefixBlocks.of(routingStrategy == .locality ? prompt() : ""),
            expectedOutputTokens: maxTokens, excluded: excluded, topologyAnchor: nil)
    }

    /// Sends a chat through the control plane and returns the chosen instance's answer, with
    /// where it ran and how long it waited.
    public func routedChat(_ messages: [ChatMessage], options: ChatOptions? = nil, placement: RequestPlacement = RequestPlacement())
        async throws(ControlPlaneError) -> RoutedChatResult
    {
        let model = try model(options)
        var options = options ?? ChatOptions()
        options.model = model
        let prepared: PreparedRequest
        do {
            prepared = try await prepare(messages, options: options, request: queued(messages, options: options, model: model, placement: placement, excluded: []))
        } catch {
            metricsTally.recordRefusedOnArrival(error.code)
            throw error
        }
        let (result, lease, attempts) = try await dispatchWhole(prepared) { instance throws(SageLLMError) in
            let result = try await instance.client.chat(messages, options: prepared.options)
            return (result, result.usage?.completionTokens)
        }
        var answered = result
        answered.latency = .now - lease.arrival
        return RoutedChatResult(
            result: answered, instanceID: lease.instance.id, queueWait: prepared.queueWait(lease), policy: lease.policy,
            attempts: attempts, path: prepared.path, prefill: prepared.prefill)
    }

    /// Sends a prepared request through the dispatch path and returns the answer of the
    /// instance that gave one, with its lease and the instances tried. `send` returns the
    /// answer and the output tokens it reports.
    func dispatchWhole<Answer>(
        _ prepared: PreparedRequest, send: (Dispatched) async throws(SageLLMError) -> (Answer, outputTokens: Int?)
    ) async throws(ControlPlaneError) -> (Answer, Lease, attempts: Int) {
        metricsTally.recordPath(prepared.path)
        var machine = DispatchMachine(request: prepared.request, maxFailovers: scheduler.configuration.maxFailovers)
        var action = machine.start()
        while let instance = try await advance(&machine, action, prepared: prepared) {
            let answer: Answer
            let outputTokens: Int?
            do {
                (answer, outputTokens) = try await send(instance)
            } catch {
                action = machine.failed(error)
                continue
            }
            let lease = instance.lease
            // The instance is judged on its own time; the caller's latency includes the queue (and the prefill).
            _ = try await advance(
                &machine, machine.succeeded(.success(latency: .now - lease.dispatched, timeToFirstToken: nil, outputTokens: outputTokens)),
                prepared: prepared)
            await closeRetiredClients()
            return (answer, lease, machine.attempts)
        }
        throw ControlPlaneError(.cancelled, "the request had already ended")  // the machine ends only through an answer or an error
    }

    /// Sends a chat; the answer is the chosen instance's.
    public func chat(_ messages: [ChatMessage], options: ChatOptions? = nil, placement: RequestPlacement = RequestPlacement())
        async throws(ControlPlaneError) -> ChatResult
    {
        try await routedChat(messages, options: options, placement: placement).result
    }

    public func chat(_ prompt: String, options: ChatOptions? = nil, placement: RequestPlacement = RequestPlacement())
        async throws(ControlPlaneError) -> ChatResult
    {
        try await chat([.user(prompt)], options: options, placement: placement)
    }

    /// One user message.
    public func generate(prompt: String, options: ChatOptions? = nil, placement: RequestPlacement = RequestPlacement())
        async throws(ControlPlaneError) -> ChatResult
    {
        try await chat([.user(prompt)], options: options, placement: placement)
    }

    /// Streams the chosen instance's answer (for a split request, the decode instance's).
    /// Nothing is queued until the stream is read; a failure before the first chunk fails over
    /// to another instance; stopping the stream frees the instance.
    public func streamChat(_ messages: [ChatMessage], options: ChatOptions? = nil, placement: RequestPlacement = RequestPlacement())
        -> AsyncThrowingStream<ChatCompletionChunk, any Error>
    {
        let stream = dispatchedChatStream(messages, options: options, placement: placement)
        return AsyncThrowingStream(unfolding: { try await stream.next()?.piece })
    }

    /// ``streamChat(_:options:placement:)`` with, on each chunk, the instance that produced it
    /// and the path the request took.
    public func routedStreamChat(
        _ messages: [ChatMessage], options: ChatOptions? = nil, placement: RequestPlacement = RequestPlacement()
    ) -> AsyncThrowingStream<RoutedChunk, any Error> {
        let stream = dispatchedChatStream(messages, options: options, placement: placement)
        return AsyncThrowingStream(unfolding: {
            guard let next = try await stream.next() else { return nil }
            return RoutedChunk(chunk: next.piece, instanceID: next.instance.lease.instance.id, path: next.path)
        })
    }

    public func streamChat(_ prompt: String, options: ChatOptions? = nil, placement: RequestPlacement = RequestPlacement())
        -> AsyncThrowingStream<ChatCompletionChunk, any Error>
    {
        streamChat([.user(prompt)], options: options, placement: placement)
    }

    /// A chat streamed through the dispatch path: prepared (split when prefill-heavy) on the
    /// first read, streamed from the instance granted as decoded chunks.
    private func dispatchedChatStream(_ messages: [ChatMessage], options: ChatOptions?, placement: RequestPlacement)
        -> DispatchedStream<ChatCompletionChunk>
    {
        DispatchedStream(
            controlPlane: self,
            prepare: { () async throws(ControlPlaneError) -> PreparedRequest in
                var options = options ?? ChatOptions()
                let model = try self.model(options)
                options.model = model
                return try await self.prepare(
                    messages, options: options, request: self.queued(messages, options: options, model: model, placement: placement, excluded: []))
            },
            open: { instance, prepared in
                var chunks = instance.client.streamChat(messages, options: prepared.options).makeAsyncIterator()
                return .init(next: { try await chunks.next() })
            },
            inspect: { chunk in .init(carriesOutput: !chunk.contentDelta.isEmpty, completionTokens: chunk.usage?.completionTokens) })
    }

    /// Refuses new requests, fails the waiting ones, and closes every instance's connections
    /// (of removed and replaced instances too). The one way to end a control plane; ``run()``
    /// calls it when it stops.
    public func shutdown() async {
        scheduler.shutdown()
        for client in clients.takeAll() { await close(client) }
    }
}

/// A chat answer with where it ran.
public struct RoutedChatResult: Sendable {
    public var result: ChatResult
    public var instanceID: String
    /// Time in the admission queue.
    public var queueWait: Duration
    /// The policy that dispatched it (for `adaptive`, the one chosen at that moment).
    public var policy: SchedulingPolicy
    /// Instances tried (more than 1 after a failover).
    public var attempts: Int
    /// Whole on one instance, split between prefill and decode, or whole after a failed prefill.
    public var path: ExecutionPath = .direct
    /// The prefill phase, when the request was split (``instanceID`` is then the decode instance).
    public var prefill: PrefillPhase?
    public var text: String { result.text }
}

/// A streamed chunk with where it came from.
public struct RoutedChunk: Sendable {
    public var chunk: ChatCompletionChunk
    public var instanceID: String
    public var path: ExecutionPath
}

extension IntelligentLLMClient {
    /// A client over many instances: defaults
    /// `adaptive` scheduling, `load_balanced` routing, PD separation on.
    public static func createWithControlPlane(
        instances: [InstanceSpec], schedulingPolicy: SchedulingPolicy = .adaptive, routingStrategy: RoutingStrategy = .loadBalanced,
        enablePDSeparation: Bool = true, disaggregation: DisaggregationConfiguration = DisaggregationConfiguration(),
        configuration: SchedulerConfiguration = SchedulerConfiguration(), logger: Logger = Logger(label: "sagellm.control-plane")
    ) throws(ControlPlaneError) -> ControlPlaneClient {
        try ControlPlaneClient(
            instances: instances, schedulingPolicy: schedulingPolicy, routingStrategy: routingStrategy,
            enablePDSeparation: enablePDSeparation, disaggregation: disaggregation, configuration: configuration, logger: logger)
    }
}

