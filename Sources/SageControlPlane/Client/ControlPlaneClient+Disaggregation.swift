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
        guard enablePDSeparation, scheduler.serves(model, .prefill, .decode) else { return false }
        let bytes = messages.reduce(0) { $0 + $1.text.utf8.count }
        return disaggregation.isPrefillHeavy(promptTokens: disaggregation.estimatedTokens(bytes: bytes), maxTokens: options.maxTokens)
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
        let lease: Lease
        do {
            lease = try await scheduler.acquire(prefillRequest)
        } catch let error as ControlPlaneError {
            if error.code == .cancelled || error.code == .shutDown || error.code == .deadlineUnreachable { throw error }
            return try fallback(request, options, "no prefill instance took it: \(error.message)")
        } catch {
            throw ControlPlaneError(.cancelled, "the request was cancelled while it waited")
        }
        guard let client = client(for: lease.instance.id) else {
            scheduler.release(lease, outcome: .cancelled)
            return try fallback(request, options, "prefill instance \(lease.instance.id) was removed")
        }
        let result: ChatResult
        do {
            result = try await client.chat(messages, options: KVTransferProtocol.prefillOptions(split))
        } catch {
            if error.code == .cancelled {
                scheduler.release(lease, outcome: .cancelled)
                throw ControlPlaneError(.cancelled, "the request was cancelled during its prefill", instanceID: lease.instance.id)
            }
            scheduler.release(lease, outcome: .instanceFailure)
            return try fallback(request, options, "prefill instance \(lease.instance.id) failed: \(error)")
        }
        let finished = ContinuousClock.now
        let own = finished - lease.dispatched
        scheduler.release(lease, outcome: .success(latency: own, timeToFirstToken: own, outputTokens: nil))
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

    private func fallback(_ request: QueuedRequest, _ options: ChatOptions, _ reason: String) throws(ControlPlaneError) -> PreparedRequest {
        guard disaggregation.fallbackToDirect else {
            throw ControlPlaneError(
                .instanceFailed, "the prefill phase failed and fallback to a direct request is off (DisaggregationConfiguration.fallbackToDirect): \(reason)")
        }
        logger.warning("prefill failed; serving the request whole", metadata: ["sage.reason": "\(reason)"])
        return PreparedRequest(request: request, options: options, path: .fallback(reason: reason), prefill: nil, waitingSince: .now)
    }
}
