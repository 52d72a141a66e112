import SageLLM

/// The decisions of one request's trip to an instance, without I/O: the same machine drives a
/// whole request, a stream, and each half of a split request. Events come in (a slot was
/// granted, the instance failed, the first bytes reached the caller, it finished, the caller
/// cancelled); actions come out (ask for an instance, send to it, give it back and fail over,
/// give it back and finish, or surface an error). ``ControlPlaneClient`` carries the actions
/// out.
///
/// The rules, in one place:
/// - An instance is given back exactly once, with what it did (success, failure, or nothing
///   to judge it by when the caller cancelled, the instance was removed, or it refused the
///   request with a 4xx answer).
/// - A failure fails over to another instance when it is retryable, nothing has reached the
///   caller yet, and failovers are left; the failed instance is not tried again.
/// - A request that ends is recorded once: as completed or failed when it reached an instance,
///   as rejected when no instance took it, not at all when the caller cancelled it. The
///   prefill half of a split request is never recorded: the request is, when it ends.
struct DispatchMachine: Sendable {
    enum State: Sendable {
        case idle
        case waitingForSlot
        case sending(Lease)
        case ended
    }

    /// What to carry out next.
    enum Action: Sendable {
        /// Ask the scheduler for an instance for ``DispatchMachine/request``.
        case acquire
        /// Send the request to the instance of `lease`.
        case send(Lease)
        /// Give `lease` back with `outcome`, then ask for another instance for
        /// ``DispatchMachine/request`` (which now excludes the instances it left).
        case retry(release: Lease, outcome: LeaseOutcome)
        /// Give `lease` back with `outcome`; the request is done.
        case finish(release: Lease, outcome: LeaseOutcome, record: Recording)
        /// End with `error`, giving back the instance first when one is held. Boxed: errors are
        /// rare and large, and an action is copied at every step of every request.
        indirect case surface(ControlPlaneError, release: Lease?, outcome: LeaseOutcome, record: Recording)
    }

    /// What the metrics get when the request ends.
    enum Recording: Sendable, Equatable {
        case nothing
        case rejected(ControlPlaneError.Code)
        case completed(succeeded: Bool)
    }

    private(set) var request: QueuedRequest
    private(set) var state: State = .idle
    /// Instances the request failed on and left.
    private(set) var failovers = 0
    /// Whether output reached the caller (a stream's first chunk): no failover after that.
    private(set) var delivered = false
    let maxFailovers: Int

    init(request: QueuedRequest, maxFailovers: Int) {
        self.request = request
        self.maxFailovers = maxFailovers
    }

    /// Instances tried so far.
    var attempts: Int { failovers + 1 }

    private var recordsOutcome: Bool { request.phase != .prefill }

    mutating func start() -> Action {
        state = .waitingForSlot
        return .acquire
    }

    /// The scheduler handed over `lease`; `instanceFound` says whether its instance is still
    /// known (it may have been removed since).
    mutating func slotGranted(_ lease: Lease, instanceFound: Bool) -> Action {
        guard instanceFound else {
            // Nothing to judge the instance by; try another.
            request.excluded.insert(lease.instance.id)
            state = .waitingForSlot
            return .retry(release: lease, outcome: .cancelled)
        }
        state = .sending(lease)
        return .send(lease)
    }

    /// No instance took the request (queue full, timed out, nothing serves it, shut down).
    mutating func slotRefused(_ error: ControlPlaneError) -> Action {
        state = .ended
        if error.code == .cancelled { return .surface(error, release: nil, outcome: .cancelled, record: .nothing) }
        return .surface(error, release: nil, outcome: .cancelled, record: recordsOutcome ? .rejected(error.code) : .nothing)
    }

    /// Output reached the caller.
    mutating func outputDelivered() {
        delivered = true
    }

    /// The instance answered in full (or the stream ended normally).
    mutating func succeeded(_ outcome: LeaseOutcome) -> Action {
        guard case .sending(let lease) = state else { return .surface(Self.ended, release: nil, outcome: .cancelled, record: .nothing) }
        state = .ended
        return .finish(release: lease, outcome: outcome, record: recordsOutcome ? .completed(succeeded: true) : .nothing)
    }

    /// The instance failed the request with `error`.
    mutating func failed(_ error: SageLLMError) -> Action {
        if error.code == .cancelled { return cancelled() }
        guard case .sending(let lease) = state else { return .surface(Self.ended, release: nil, outcome: .cancelled, record: .nothing) }
        if !delivered && failovers < maxFailovers && RetryPolicy.isRetryable(error) {
            failovers += 1
            request.excluded.insert(lease.instance.id)
            state = .waitingForSlot
            return .retry(release: lease, outcome: .instanceFailure)
        }
        state = .ended
        var failure = ControlPlaneError(
            .instanceFailed,
            request.phase == .prefill ? "prefill instance \(lease.instance.id) failed" : "instance \(lease.instance.id) failed the request",
            instanceID: lease.instance.id)
        failure.underlying = error
        // A 4xx answer says the request was wrong (too long, bad field), not the instance: it
        // is not held against it, so such requests cannot take a fleet's instances out.
        let refusedByClientError = error.status.map { (400..<500).contains($0) } ?? false
        return .surface(
            failure, release: lease, outcome: refusedByClientError ? .cancelled : .instanceFailure,
            record: recordsOutcome ? .completed(succeeded: false) : .nothing)
    }

    /// The caller cancelled the request (or went away).
    mutating func cancelled() -> Action {
        let held: Lease? = if case .sending(let lease) = state { lease } else { nil }
        state = .ended
        let error = ControlPlaneError(
            .cancelled, held == nil ? "the request was cancelled while it waited" : "the request was cancelled",
            instanceID: held?.instance.id)
        return .surface(error, release: held, outcome: .cancelled, record: .nothing)
    }

    private static let ended = ControlPlaneError(.cancelled, "the request had already ended")
}
