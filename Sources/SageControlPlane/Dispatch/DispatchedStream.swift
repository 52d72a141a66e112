import SageLLM

/// A stream through the control plane, whatever its pieces are (a chat's decoded chunks, or a
/// relayed request's raw bytes): it waits for an instance on the first read, fails over while
/// nothing has reached the consumer, and gives the instance back exactly once: at the end, at
/// an error, or when the consumer drops the stream. The decisions are the
/// ``DispatchMachine``'s, as for a whole request.
final class DispatchedStream<Piece>: @unchecked Sendable {
    // Safety: an AsyncThrowingStream(unfolding:) calls `next()` from one consumer at a time;
    // `deinit` runs after the last call.

    /// An instance's stream, once opened.
    struct Source {
        var next: () async throws -> Piece?
        /// Ends the exchange at once (the engine sees the request go away).
        var cancel: () -> Void = {}
    }

    /// What a piece says about the answer.
    struct Facts {
        /// It carries output (the first such piece is the first token).
        var carriesOutput: Bool
        /// Output tokens the server reported, if this piece says.
        var completionTokens: Int?
    }

    private let controlPlane: ControlPlaneClient
    private let prepare: () async throws(ControlPlaneError) -> PreparedRequest
    private let open: (Dispatched, PreparedRequest) async throws -> Source
    private let inspect: (Piece) -> Facts
    private var prepared: PreparedRequest?
    private var machine: DispatchMachine?
    private var instance: Dispatched?
    private var source: Source?
    private var firstToken: Duration?
    private var completionTokens: Int?
    private var finished = false

    /// - Parameters:
    ///   - prepare: makes the request ready for dispatch (for a chat, its prefill when split).
    ///   - open: opens the stream on the instance granted.
    ///   - inspect: reads what the control plane records from each piece.
    init(
        controlPlane: ControlPlaneClient, prepare: @escaping () async throws(ControlPlaneError) -> PreparedRequest,
        open: @escaping (Dispatched, PreparedRequest) async throws -> Source, inspect: @escaping (Piece) -> Facts
    ) {
        self.controlPlane = controlPlane
        self.prepare = prepare
        self.open = open
        self.inspect = inspect
    }

    /// The next piece and the instance it came from; nil at the end.
    func next() async throws -> (piece: Piece, instance: Dispatched, path: ExecutionPath)? {
        if finished { return nil }
        if machine == nil { try await start() }
        while let current = instance, let prepared {
            let piece: Piece?
            do {
                if source == nil { source = try await open(current, prepared) }
                piece = try await source?.next()
            } catch {
                let failure = (error as? SageLLMError) ?? SageLLMError(code: .streamInterrupted, reason: "the stream failed: \(error)")
                source?.cancel()
                source = nil
                try await proceed { $0.failed(failure) }  // fails over to another instance, or throws
                continue
            }
            guard let piece else {
                source = nil
                let lease = current.lease
                let latency = ContinuousClock.now - lease.arrival
                // The instance is judged from its dispatch.
                let beforeDispatch = lease.dispatched - lease.arrival
                try await proceed {
                    $0.succeeded(.success(
                        latency: latency - beforeDispatch, timeToFirstToken: firstToken.map { $0 - beforeDispatch },
                        outputTokens: completionTokens))
                }
                return nil
            }
            let facts = inspect(piece)
            if let reported = facts.completionTokens { completionTokens = reported }
            if firstToken == nil, facts.carriesOutput { firstToken = ContinuousClock.now - current.lease.arrival }
            machine?.outputDelivered()
            return (piece, current, prepared.path)
        }
        return nil
    }

    /// Prepares the request and waits for the first instance.
    private func start() async throws {
        let prepared: PreparedRequest
        do {
            prepared = try await prepare()
        } catch {
            finished = true
            controlPlane.metricsTally.recordRefusedOnArrival(error.code)
            throw error
        }
        controlPlane.metricsTally.recordPath(prepared.path)
        self.prepared = prepared
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
        // The consumer stopped reading before the end: the exchange ends and the instance is free again.
        source?.cancel()
        guard !finished, var current = machine else { return }
        controlPlane.settle(current.cancelled(), prepared: prepared, firstToken: firstToken)
    }
}
