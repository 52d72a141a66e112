import SageLLM

/// A streamed chat through the control plane: it waits for an instance on the first read,
/// fails over while nothing has reached the consumer, and gives the instance back exactly
/// once: at the end, at an error, or when the consumer drops the stream.
final class RoutedStream: @unchecked Sendable {
    // Safety: an AsyncThrowingStream(unfolding:) calls `next()` from one consumer at a time;
    // `deinit` runs after the last call.
    private let controlPlane: ControlPlaneClient
    private let messages: [ChatMessage]
    private var options: ChatOptions
    private let placement: RequestPlacement
    private var request: QueuedRequest?
    private var prepared: PreparedRequest?
    private var lease: Lease?
    private var iterator: AsyncThrowingStream<ChatCompletionChunk, any Error>.AsyncIterator?
    private var delivered = 0
    private var firstToken: Duration?
    private var usage: Usage?
    private var failovers = 0
    private var finished = false

    init(controlPlane: ControlPlaneClient, messages: [ChatMessage], options: ChatOptions?, placement: RequestPlacement) {
        self.controlPlane = controlPlane
        self.messages = messages
        self.options = options ?? ChatOptions()
        self.placement = placement
    }

    func next() async throws -> RoutedChunk? {
        if finished { return nil }
        while true {
            if iterator == nil { try await start() }
            do {
                guard let chunk = try await iterator?.next() else {
                    end(.success)
                    return nil
                }
                if let reported = chunk.usage { usage = reported }
                if firstToken == nil, !chunk.contentDelta.isEmpty, let lease { firstToken = ContinuousClock.now - lease.arrival }
                delivered += 1
                return RoutedChunk(chunk: chunk, instanceID: lease?.instance.id ?? "", path: prepared?.path ?? .direct)
            } catch let error as SageLLMError {
                if error.code == .cancelled {
                    end(.cancelled)
                    throw ControlPlaneError(.cancelled, "the request was cancelled", instanceID: lease?.instance.id)
                }
                let instance = lease?.instance.id
                end(.failure)
                if delivered == 0 && RetryPolicy.isRetryable(error) && failovers < controlPlane.scheduler.configuration.maxFailovers,
                    let instance
                {
                    failovers += 1
                    request?.excluded.insert(instance)
                    finished = false
                    iterator = nil
                    continue
                }
                var failure = ControlPlaneError(.instanceFailed, "instance \(instance ?? "?") failed the stream", instanceID: instance)
                failure.underlying = "\(error)"
                throw failure
            }
        }
    }

    private func start() async throws {
        if request == nil {
            let model = try controlPlane.model(options)
            options.model = model
            controlPlane.metricsTally.recordArrival()
            let queued = controlPlane.queued(messages, options: options, model: model, placement: placement, excluded: [])
            do {
                let prepared = try await controlPlane.prepare(messages, options: options, request: queued)
                controlPlane.metricsTally.recordPath(prepared.path)
                self.prepared = prepared
                options = prepared.options
                request = prepared.request
            } catch {
                finished = true
                controlPlane.metricsTally.recordRejected(error.code)
                throw error
            }
        }
        guard let request else { return }
        let lease: Lease
        do {
            lease = try await controlPlane.scheduler.acquire(request)
        } catch let error as ControlPlaneError {
            finished = true
            controlPlane.metricsTally.recordRejected(error.code)
            throw error
        }
        self.lease = lease
        guard let client = controlPlane.client(for: lease.instance.id) else {
            end(.failure)
            throw ControlPlaneError(.noInstance, "instance \(lease.instance.id) was removed", instanceID: lease.instance.id)
        }
        iterator = client.streamChat(messages, options: options).makeAsyncIterator()
    }

    private enum Ending { case success, failure, cancelled }

    private func end(_ ending: Ending) {
        guard let lease else { return }
        self.lease = nil
        finished = true
        let latency = ContinuousClock.now - lease.arrival
        // Waiting for instances (a split request's prefill wait too), not the prefill's work.
        let waited = prepared?.queueWait(lease) ?? (lease.dispatched - lease.arrival)
        switch ending {
        case .success:
            // The instance is judged from its dispatch.
            let beforeDispatch = lease.dispatched - lease.arrival
            controlPlane.scheduler.release(
                lease,
                outcome: .success(
                    latency: latency - beforeDispatch, timeToFirstToken: firstToken.map { $0 - beforeDispatch },
                    outputTokens: usage?.completionTokens))
            controlPlane.metricsTally.recordCompletion(lease, latency: latency, timeToFirstToken: firstToken, queueWait: waited, succeeded: true)
        case .failure:
            controlPlane.scheduler.release(lease, outcome: .instanceFailure)
            if delivered > 0 || failovers >= controlPlane.scheduler.configuration.maxFailovers {
                controlPlane.metricsTally.recordCompletion(lease, latency: latency, timeToFirstToken: firstToken, queueWait: waited, succeeded: false)
            }
        case .cancelled:
            controlPlane.scheduler.release(lease, outcome: .cancelled)
        }
    }

    deinit {
        // The consumer stopped reading: the instance is free again.
        end(.cancelled)
    }
}
