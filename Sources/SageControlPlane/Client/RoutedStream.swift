import SageLLM

/// A streamed chat through the control plane: it waits for an instance on the first read,
/// fails over while nothing has reached the consumer, and gives the instance back exactly
/// once: at the end, at an error, or when the consumer drops the stream. The decisions are
/// the ``DispatchMachine``'s, as for a whole request.
final class RoutedStream: @unchecked Sendable {
    // Safety: an AsyncThrowingStream(unfolding:) calls `next()` from one consumer at a time;
    // `deinit` runs after the last call.
    private let controlPlane: ControlPlaneClient
    private let messages: [ChatMessage]
    private var options: ChatOptions
    private let placement: RequestPlacement
    private var prepared: PreparedRequest?
    private var machine: DispatchMachine?
    private var instance: Dispatched?
    private var iterator: AsyncThrowingStream<ChatCompletionChunk, any Error>.AsyncIterator?
    private var firstToken: Duration?
    private var usage: Usage?
    private var finished = false

    init(controlPlane: ControlPlaneClient, messages: [ChatMessage], options: ChatOptions?, placement: RequestPlacement) {
        self.controlPlane = controlPlane
        self.messages = messages
        self.options = options ?? ChatOptions()
        self.placement = placement
    }

    func next() async throws -> RoutedChunk? {
        if finished { return nil }
        if machine == nil { try await start() }
        while let current = instance {
            let chunk: ChatCompletionChunk?
            do {
                if iterator == nil { iterator = current.client.streamChat(messages, options: options).makeAsyncIterator() }
                chunk = try await iterator?.next()
            } catch {
                let failure = (error as? SageLLMError) ?? SageLLMError(code: .streamInterrupted, reason: "the stream failed: \(error)")
                iterator = nil
                try await proceed { $0.failed(failure) }  // fails over to another instance, or throws
                continue
            }
            guard let chunk else {
                let lease = current.lease
                let latency = ContinuousClock.now - lease.arrival
                // The instance is judged from its dispatch.
                let beforeDispatch = lease.dispatched - lease.arrival
                try await proceed {
                    $0.succeeded(.success(
                        latency: latency - beforeDispatch, timeToFirstToken: firstToken.map { $0 - beforeDispatch },
                        outputTokens: usage?.completionTokens))
                }
                return nil
            }
            if let reported = chunk.usage { usage = reported }
            if firstToken == nil, !chunk.contentDelta.isEmpty { firstToken = ContinuousClock.now - current.lease.arrival }
            machine?.outputDelivered()
            return RoutedChunk(chunk: chunk, instanceID: current.lease.instance.id, path: prepared?.path ?? .direct)
        }
        return nil
    }

    /// Prepares the request (its prefill, when split) and waits for the first instance.
    private func start() async throws {
        let model = try controlPlane.model(options)
        options.model = model
        let queued = controlPlane.queued(messages, options: options, model: model, placement: placement, excluded: [])
        let prepared: PreparedRequest
        do {
            prepared = try await controlPlane.prepare(messages, options: options, request: queued)
        } catch {
            finished = true
            controlPlane.metricsTally.recordRefusedOnArrival(error.code)
            throw error
        }
        controlPlane.metricsTally.recordPath(prepared.path)
        self.prepared = prepared
        options = prepared.options
        machine = DispatchMachine(request: prepared.request, maxFailovers: controlPlane.scheduler.configuration.maxFailovers)
        try await proceed { $0.start() }
    }

    /// Feeds an event to the machine and carries out what it decides: the next instance to
    /// stream from, the end of the stream, or an error (thrown).
    private func proceed(_ event: (inout DispatchMachine) -> DispatchMachine.Action) async throws(ControlPlaneError) {
        guard var current = machine else { return }
        let action = event(&current)
        instance = nil
        defer {
            machine = current
            if instance == nil { finished = true }
        }
        instance = try await controlPlane.advance(&current, action, prepared: prepared, firstToken: firstToken)
        if instance == nil { await controlPlane.closeRetiredClients() }
    }

    deinit {
        // The consumer stopped reading before the end: the instance is free again.
        guard !finished, var current = machine else { return }
        controlPlane.settle(current.cancelled(), prepared: prepared, firstToken: firstToken)
    }
}
