import Logging
import NIOCore
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
    /// A chat's options (for its decode half, with the prefill's answer).
    var options: ChatOptions
    /// A relayed request's body (for its decode half, with the prefill's answer); nil for a chat.
    var body: ByteBuffer? = nil
    var path: ExecutionPath
    var prefill: PrefillPhase?
    /// When the request started waiting for the instance that answers it.
    var waitingSince: ContinuousClock.Instant

    /// Time waiting for instances once `lease` (the answering instance's) was granted: the
    /// prefill's wait plus this one, not the prefill's own work.
    func queueWait(_ lease: Lease) -> Duration { (prefill?.queueWait ?? .zero) + (lease.dispatched - waitingSince) }
}

/// How the prefill half of a split went; `Transfer` is the prefill's answer as the decode half
/// carries it (a value for a chat, the raw JSON for a relayed body).
enum SplitOutcome<Transfer> {
    /// The prefill answered with `transfer`; `decode` is the request's decode half, anchored at
    /// the prefill instance.
    case split(decode: QueuedRequest, phase: PrefillPhase, transfer: Transfer, finished: ContinuousClock.Instant)
    /// The prefill failed: serve the request whole, for this reason (when allowed).
    case fallback(reason: String)
}

extension ControlPlaneClient {
    /// Whether a request of `promptBytes` and `maxTokens` should be split between a prefill and
    /// a decode instance now.
    func shouldDisaggregate(promptBytes: Int, maxTokens: Int?, model: String) -> Bool {
        guard enablePDSeparation else { return false }
        // The request's own figures first: most requests are not prefill-heavy, and then the
        // fleet (behind the scheduler's lock) need not be asked.
        guard disaggregation.isPrefillHeavy(promptTokens: disaggregation.estimatedTokens(bytes: promptBytes), maxTokens: maxTokens) else {
            return false
        }
        return scheduler.splits(model, disaggregation)
    }

    /// Runs the prefill phase when the request should be split, and says how to send the rest:
    /// to a decode instance with the KV cache's whereabouts, or whole (directly, or after a
    /// failed prefill when ``DisaggregationConfiguration/fallbackToDirect`` allows it).
    func prepare(_ messages: [ChatMessage], options: ChatOptions, request: QueuedRequest) async throws(ControlPlaneError)
        -> PreparedRequest
    {
        let direct = PreparedRequest(request: request, options: options, path: .direct, prefill: nil, waitingSince: request.arrival)
        let promptBytes = messages.reduce(0) { $0 + $1.text.utf8.count }
        guard shouldDisaggregate(promptBytes: promptBytes, maxTokens: options.maxTokens, model: request.model) else { return direct }
        // One request id for both halves; a fallback is a new request with its own.
        var split = options
        split.requestID = options.requestID ?? HTTPTransport.makeRequestID()
        let prefillOptions = KVTransferProtocol.prefillOptions(split)
        let outcome = try await runPrefill(
            request,
            send: { instance throws(SageLLMError) in try await instance.client.chat(messages, options: prefillOptions) },
            parameters: { answer in KVTransferProtocol.transferParameters(of: answer.response).map { ($0, $0) } }, usage: \.usage)
        switch outcome {
        case .fallback(let reason):
            return PreparedRequest(request: try fallback(request, reason), options: options, path: .fallback(reason: reason), prefill: nil, waitingSince: .now)
        case .split(let decode, let phase, let parameters, let finished):
            return PreparedRequest(
                request: decode, options: KVTransferProtocol.decodeOptions(split, transferParameters: parameters),
                path: .disaggregated(prefillInstanceID: phase.instanceID), prefill: phase, waitingSince: finished)
        }
    }

    /// Sends the prefill half through the dispatch path (it does not fail over: a failed
    /// prefill serves the request whole instead, when allowed), and makes the decode half.
    func runPrefill<Answer, Transfer>(
        _ request: QueuedRequest, send: (Dispatched) async throws(SageLLMError) -> Answer,
        parameters: (Answer) -> Result<(transfer: Transfer, value: JSONValue), KVTransferProtocol.MissingParameters>,
        usage: (Answer) -> Usage?
    ) async throws(ControlPlaneError) -> SplitOutcome<Transfer> {
        var prefillRequest = request
        prefillRequest.phase = .prefill
        var machine = DispatchMachine(request: prefillRequest, maxFailovers: 0)
        let instance: Dispatched
        let answer: Answer
        do throws(ControlPlaneError) {
            let ended = ControlPlaneError(.cancelled, "the request had already ended")
            guard let granted = try await advance(&machine, machine.start(), prepared: nil) else { throw ended }
            instance = granted
            do {
                answer = try await send(granted)
            } catch {
                _ = try await advance(&machine, machine.failed(error), prepared: nil)  // throws the failure
                throw ended
            }
        } catch {
            if error.code == .cancelled || error.code == .shutDown || error.code == .deadlineUnreachable { throw error }
            let reason =
                if let underlying = error.underlying { "\(error.message): \(underlying)" } else { "no prefill instance took it: \(error.message)" }
            return .fallback(reason: reason)
        }
        let lease = instance.lease
        let finished = ContinuousClock.now
        let own = finished - lease.dispatched
        settle(machine.succeeded(.success(latency: own, timeToFirstToken: own, outputTokens: nil)), prepared: nil, firstToken: nil)
        switch parameters(answer) {
        case .failure(let missing):
            return .fallback(reason: "prefill instance \(lease.instance.id): \(missing.reason)")
        case .success(let (transfer, value)):
            var decode = request
            decode.phase = .decode
            decode.firstTokenDeadline = nil  // the prompt is computed: the first token is moments away
            decode.topologyAnchor = lease.instance
            let phase = PrefillPhase(
                instanceID: lease.instance.id, latency: finished - request.arrival, queueWait: lease.dispatched - lease.arrival,
                usage: usage(answer), kvTransferParameters: value)
            return .split(decode: decode, phase: phase, transfer: transfer, finished: finished)
        }
    }

    /// The request to serve whole after a failed prefill, or the error when that is off.
    func fallback(_ request: QueuedRequest, _ reason: String) throws(ControlPlaneError) -> QueuedRequest {
        guard disaggregation.fallbackToDirect else {
            throw ControlPlaneError(
                .instanceFailed, "the prefill phase failed and fallback to a direct request is off (DisaggregationConfiguration.fallbackToDirect): \(reason)")
        }
        logger.warning("prefill failed; serving the request whole", metadata: ["sage.reason": "\(reason)"])
        return request
    }
}
