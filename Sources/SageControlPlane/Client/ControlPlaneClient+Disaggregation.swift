import Logging
import SageLLM

/// The prefill phase of a disaggregated request.
public struct PrefillPhase: Sendable {
    public var instanceID: String
    /// From asking for a prefill instance to its answer, its queue wait included.
    public var latency: Duration
    /// Time waiting for a prefill instance.
    public var queueWait: Duration
    /// The prefill's own usage (its prompt, and the one token it generated and threw away).
    public var usage: Usage?
    /// What the prefill answered, and the decode request carried.
    public var kvTransferParameters: JSONValue
}

/// A request ready for its (last) instance: whole, or the decode half after its prefill.
struct PreparedRequest: Sendable {
    var request: QueuedRequest
    var options: ChatOptions
    var path: ExecutionPath
    var prefill: PrefillPhase?
    /// When the request started waiting for the instance that answers it.
    var waitingSince: ContinuousClock.Instant

    /// Time waiting for instances once `lease` (the answering instance's) was granted: the
    /// prefill's wait plus this one, not the prefill's own work.
    func queueWait(_ lease: Lease) -> Duration { (prefill?.queueWait ?? .zero) + (lease.dispatched - waitingSince) }
}

extension ControlPlaneClient {
    /// Whether `messages` should be split between a prefill and a decode instance now.
    func shouldDisaggregate(_ messages: [ChatMessage], _ options: ChatOptions, model: String) -> Bool {
        guard enablePDSeparation else { return false }
        // The request's own figures first: most requests are not prefill-heavy, and then the
        // fleet (behind the scheduler's lock) need not be asked.
        let bytes = messages.reduce(0) { $0 + $1.text.utf8.count }
        guard disaggregation.isPrefillHeavy(promptTokens: disaggregation.estimatedTokens(bytes: bytes), maxTokens: options.maxTokens) else {
            return false
        }
        return scheduler.serves(model, .prefill, .decode)
    }

    /// Runs the prefill phase when the request should be split, and says how to send the rest:
    /// to a decode instance with the KV cache's whereabouts, or whole (directly, or after a
    /// failed prefill when ``DisaggregationConfiguration/fallbackToDirect`` allows it).
    func prepare(_ messages: [ChatMessage], options: ChatOptions, request: QueuedRequest) async throws(ControlPlaneError)
        -> PreparedRequest
    {
        let direct = PreparedRequest(request: request, options: options, path: .direct, prefill: nil, waitingSince: request.arrival)
        guard shouldDisaggregate(messages, options, model: request.model) else { return direct }
        // One request id for both halves; a fallback is a new request with its own.
        var split = options
        split.requestID = options.requestID ?? HTTPTransport.makeRequestID()
        var prefillRequest = request
        prefillRequest.phase = .prefill
        // The prefill half goes through the same dispatch path; it does not fail over: a failed
        // prefill serves the request whole instead (when allowed).
        var machine = DispatchMachine(request: prefillRequest, maxFailovers: 0)
        let instance: Dispatched
        let result: ChatResult
        do throws(ControlPlaneError) {
            (instance, result) = try await runPrefill(&machine, messages, options: KVTransferProtocol.prefillOptions(split))
        } catch {
            if error.code == .cancelled || error.code == .shutDown || error.code == .deadlineUnreachable { throw error }
            let reason =
                if let underlying = error.underlying { "\(error.message): \(underlying)" } else { "no prefill instance took it: \(error.message)" }
            return try fallback(request, options, reason)
        }
        let lease = instance.lease
        let finished = ContinuousClock.now
        let own = finished - lease.dispatched
        settle(machine.succeeded(.success(latency: own, timeToFirstToken: own, outputTokens: nil)), prepared: nil, firstToken: nil)
        switch KVTransferProtocol.transferParameters(of: result.response) {
        case .failure(let missing):
            return try fallback(request, options, "prefill instance \(lease.instance.id): \(missing.reason)")
        case .success(let parameters):
            var decode = request
            decode.phase = .decode
            decode.topologyAnchor = lease.instance
            let phase = PrefillPhase(
                instanceID: lease.instance.id, latency: finished - request.arrival, queueWait: lease.dispatched - lease.arrival,
                usage: result.usage, kvTransferParameters: parameters)
            return PreparedRequest(
                request: decode, options: KVTransferProtocol.decodeOptions(split, transferParameters: parameters),
                path: .disaggregated(prefillInstanceID: lease.instance.id), prefill: phase, waitingSince: finished)
        }
    }

    /// Sends the prefill half: an instance from the machine, then its answer.
    private func runPrefill(_ machine: inout DispatchMachine, _ messages: [ChatMessage], options: ChatOptions)
        async throws(ControlPlaneError) -> (Dispatched, ChatResult)
    {
        let ended = ControlPlaneError(.cancelled, "the request had already ended")
        guard let instance = try await advance(&machine, machine.start(), prepared: nil) else { throw ended }
        do {
            return (instance, try await instance.client.chat(messages, options: options))
        } catch {
            _ = try await advance(&machine, machine.failed(error), prepared: nil)  // throws the failure
            throw ended
        }
    }

    private func fallback(_ request: QueuedRequest, _ options: ChatOptions, _ reason: String) throws(ControlPlaneError) -> PreparedRequest {
        guard disaggregation.fallbackToDirect else {
            throw ControlPlaneError(
                .instanceFailed, "the prefill phase failed and fallback to a direct request is off (DisaggregationConfiguration.fallbackToDirect): \(reason)")
        }
        logger.warning("prefill failed; serving the request whole", metadata: ["sage.reason": "\(reason)"])
        return PreparedRequest(request: request, options: options, path: .fallback(reason: reason), prefill: nil, waitingSince: .now)
    }
}
