import NIOCore
import SageLLM
import Synchronization

/// A request relayed as its caller wrote it (the gateway): the body goes to the instance
/// unchanged; what routing needs is given beside it.
package struct ForwardedRequest: Sendable {
    /// The API path under `/v1`.
    package enum Endpoint: String, Sendable {
        case chatCompletions = "chat/completions"
        case completions
    }

    package var endpoint: Endpoint
    package var body: ByteBuffer
    package var model: String
    package var maxTokens: Int?
    /// The prompt's size, for the decision to split it between a prefill and a decode instance
    /// (by default the body's: an upper bound).
    package var promptBytes: Int
    /// The start of the prompt (for `locality` routing's prefix key); read only when needed.
    package var prompt: @Sendable () -> String
    package var placement: RequestPlacement
    /// Sent to the instance as `x-request-id`.
    package var requestID: String

    package init(
        endpoint: Endpoint, body: ByteBuffer, model: String, maxTokens: Int?, placement: RequestPlacement, requestID: String,
        prompt: @escaping @Sendable () -> String = { "" }
    ) {
        self.endpoint = endpoint
        self.body = body
        self.model = model
        self.maxTokens = maxTokens
        self.promptBytes = body.readableBytes
        self.placement = placement
        self.requestID = requestID
        self.prompt = prompt
    }
}

/// Ends a relayed stream from outside, from any thread: the exchange in progress ends at once
/// (its read fails as cancelled), and one opened later is ended as soon as it opens.
package final class RelayAbort: Sendable {
    private let state = Mutex<(aborted: Bool, current: (@Sendable () -> Void)?)>((false, nil))

    package init() {}

    package var isAborted: Bool { state.withLock { $0.aborted } }

    package func abort() {
        let cancel = state.withLock { state -> (@Sendable () -> Void)? in
            state.aborted = true
            defer { state.current = nil }
            return state.current
        }
        cancel?()
    }

    /// The exchange now in progress; it is ended at once when the relay was aborted already.
    func register(_ cancel: @escaping @Sendable () -> Void) {
        let aborted = state.withLock { state -> Bool in
            if !state.aborted { state.current = cancel }
            return state.aborted
        }
        if aborted { cancel() }
    }
}

/// An instance's whole answer to a relayed request, as it sent it.
package struct ForwardedAnswer: Sendable {
    package var body: ByteBuffer
    package var instanceID: String
    /// Instances tried (more than 1 after a failover).
    package var attempts: Int
    package var queueWait: Duration
}

/// A piece of an instance's streamed answer to a relayed request, as it sent it.
package struct ForwardedPiece: Sendable {
    package var bytes: ByteBuffer
    package var instanceID: String
}

extension ControlPlaneClient {
    /// Relays a whole (non-streamed) request through the dispatch path: queued by the policy,
    /// sent to the instance the routing picks, failed over on a retryable failure.
    package func forward(_ request: ForwardedRequest) async throws(ControlPlaneError) -> ForwardedAnswer {
        let prepared: PreparedRequest
        do {
            prepared = try await prepare(request)
        } catch {
            metricsTally.recordRefusedOnArrival(error.code)
            throw error
        }
        let sent = prepared.body ?? request.body
        let (body, lease, attempts) = try await dispatchWhole(prepared) { instance throws(SageLLMError) in
            let body = try await instance.client.forward(path: request.endpoint.rawValue, body: sent, requestID: request.requestID)
            return (body, UsageScan.completionTokens(in: body))
        }
        return ForwardedAnswer(body: body, instanceID: lease.instance.id, attempts: attempts, queueWait: prepared.queueWait(lease))
    }

    /// Relays a streamed request through the dispatch path; the pieces are the instance's bytes
    /// as they arrive. Nothing is queued until the stream is read; a failure before the first
    /// piece fails over; dropping the stream ends the instance's exchange and frees it.
    ///
    /// `abort` ends it from outside (the caller went away): the instance's exchange ends at
    /// once and the instance is given back, unjudged.
    package func forwardStream(_ request: ForwardedRequest, abort: RelayAbort = RelayAbort()) -> AsyncThrowingStream<ForwardedPiece, any Error> {
        let stream = DispatchedStream<ByteBuffer>(
            controlPlane: self,
            prepare: { () async throws(ControlPlaneError) -> PreparedRequest in try await self.prepare(request) },
            open: { instance, prepared in
                let reader = try await instance.client.forwardStream(
                    path: request.endpoint.rawValue, body: prepared.body ?? request.body, requestID: request.requestID)
                abort.register { reader.cancel() }
                return .init(next: { try await reader.next() }, cancel: { reader.cancel() })
            },
            inspect: { bytes in .init(carriesOutput: bytes.readableBytes > 0, completionTokens: UsageScan.completionTokens(in: bytes)) })
        return AsyncThrowingStream(unfolding: {
            guard let next = try await stream.next() else { return nil }
            return ForwardedPiece(bytes: next.piece, instanceID: next.instance.lease.instance.id)
        })
    }

    /// The relayed request ready for dispatch: whole, or split (its prefill run, its body for
    /// the decode half carrying the prefill's `kv_transfer_params`), as for a chat.
    private func prepare(_ request: ForwardedRequest) async throws(ControlPlaneError) -> PreparedRequest {
        let queued = queued(model: request.model, placement: request.placement, maxTokens: request.maxTokens, prompt: request.prompt)
        let direct = PreparedRequest(
            request: queued, options: ChatOptions(), body: request.body, path: .direct, prefill: nil, waitingSince: queued.arrival)
        guard shouldDisaggregate(promptBytes: request.promptBytes, maxTokens: request.maxTokens, model: request.model),
            let prefillBody = KVTransferProtocol.prefillBody(request.body)
        else { return direct }
        let outcome = try await runPrefill(
            queued,
            send: { instance throws(SageLLMError) in
                try await instance.client.forward(path: request.endpoint.rawValue, body: prefillBody, requestID: request.requestID)
            },
            parameters: { answer in KVTransferProtocol.transferParameters(ofRaw: answer).map { ($0.raw, $0.value) } },
            usage: { _ in nil })
        switch outcome {
        case .fallback(let reason):
            return PreparedRequest(
                request: try fallback(queued, reason), options: ChatOptions(), body: request.body, path: .fallback(reason: reason), prefill: nil,
                waitingSince: .now)
        case .split(let decode, let phase, let transfer, let finished):
            // The prefill body was rewritten from the same bytes, so this one can be too.
            guard let decodeBody = KVTransferProtocol.decodeBody(request.body, transferParameters: transfer) else { return direct }
            return PreparedRequest(
                request: decode, options: ChatOptions(), body: decodeBody, path: .disaggregated(prefillInstanceID: phase.instanceID),
                prefill: phase, waitingSince: finished)
        }
    }

    /// The models of the fleet, each with its instances and how many are healthy and not
    /// drained (a model whose instances are all drained is still the fleet's: unavailable,
    /// not unknown).
    package func servedModels() -> [(model: String, instances: Int, healthy: Int)] {
        var byModel: [String: (instances: Int, healthy: Int)] = [:]
        for state in scheduler.instanceStates {
            byModel[state.spec.model, default: (0, 0)].instances += 1
            if state.healthy && !state.draining { byModel[state.spec.model, default: (0, 0)].healthy += 1 }
        }
        return byModel.keys.sorted().map { ($0, byModel[$0]?.instances ?? 0, byModel[$0]?.healthy ?? 0) }
    }
}

/// Finds a token count a server reported (`"completion_tokens": N` or `"total_tokens": N` in
/// its usage) in an answer's bytes without decoding them: the last such field wins. A key
/// split across two pieces of a stream is missed; the figure is then simply not learnt from
/// that request.
package enum UsageScan {
    private static let completionKey = Array(#""completion_tokens""#.utf8)
    private static let totalKey = Array(#""total_tokens""#.utf8)

    package static func completionTokens(in buffer: ByteBuffer) -> Int? { lastCount(completionKey, in: buffer) }

    /// Prompt and output tokens together.
    package static func totalTokens(in buffer: ByteBuffer) -> Int? { lastCount(totalKey, in: buffer) }

    private static func lastCount(_ key: [UInt8], in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count >= key.count else { return nil }
            var index = bytes.count - key.count
            while index >= 0 {
                if bytes[index] == UInt8(ascii: "\""), matches(key, bytes, at: index) { return number(bytes, after: index + key.count) }
                index -= 1
            }
            return nil
        }
    }

    private static func matches(_ key: [UInt8], _ bytes: UnsafeRawBufferPointer, at index: Int) -> Bool {
        for offset in 0..<key.count where bytes[index + offset] != key[offset] { return false }
        return true
    }

    /// The non-negative integer after `: ` at `index`, if it fits an Int.
    private static func number(_ bytes: UnsafeRawBufferPointer, after index: Int) -> Int? {
        var position = index
        func skipSpaces() { while position < bytes.count, bytes[position] == UInt8(ascii: " ") { position += 1 } }
        skipSpaces()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { return nil }
        position += 1
        skipSpaces()
        var value = 0
        var digits = 0
        while position < bytes.count, let digit = Int(exactly: bytes[position]).map({ $0 - 48 }), (0...9).contains(digit) {
            let (shifted, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowedAgain) = shifted.addingReportingOverflow(digit)
            if overflowed || overflowedAgain { return nil }
            value = sum
            digits += 1
            position += 1
        }
        return digits > 0 ? value : nil
    }
}
