/// Which part of a request an instance is asked to do.
package enum RequestPhase: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The whole request, prompt and answer: GENERAL, HYBRID and DECODE instances (a decode
    /// instance computes the prompt itself when no KV cache is handed to it).
    case whole
    /// The prompt only, handing its KV cache on: PREFILL and HYBRID instances.
    case prefill
    /// The answer from a KV cache computed elsewhere: DECODE and HYBRID instances.
    case decode

    package var description: String {
        switch self {
        case .whole: "whole"
        case .prefill: "prefill"
        case .decode: "decode"
        }
    }
}

extension InstanceType {
    /// Whether this kind of instance takes `phase`.
    func takes(_ phase: RequestPhase) -> Bool {
        switch phase {
        case .whole: self != .prefill
        case .prefill: self == .prefill || self == .hybrid
        case .decode: self == .decode || self == .hybrid
        }
    }
}

/// The instances that can take a request: one model, one phase.
struct PoolKey: Hashable, Sendable, CustomStringConvertible {
    let model: String
    let phase: RequestPhase

    var description: String { phase == .whole ? "model '\(model)'" : "model '\(model)' (\(phase) phase)" }
}

/// A request waiting for, or holding, an instance.
package struct QueuedRequest: Sendable {
    /// The parts that never change, by reference: a waiting request is copied often (the
    /// first in line, every deadline sweep), and one reference costs less than each of them.
    private final class Fixed: Sendable {
        let model: String
        let placement: RequestPlacement
        let prefixBlocks: [UInt64]

        init(model: String, placement: RequestPlacement, prefixBlocks: [UInt64]) {
            self.model = model
            self.placement = placement
            self.prefixBlocks = prefixBlocks
        }
    }

    private let fixed: Fixed
    let id: UInt64
    var model: String { fixed.model }
    var placement: RequestPlacement { fixed.placement }
    let arrival: ContinuousClock.Instant
    var deadline: ContinuousClock.Instant?
    /// When the first token is due (arrival + ``RequestPlacement/firstTokenTarget``); nil once
    /// the prompt has been computed (a decode half).
    var firstTokenDeadline: ContinuousClock.Instant?
    var prefixBlocks: [UInt64] { fixed.prefixBlocks }
    /// The request's `max_tokens`, for latency predictions.
    var expectedOutputTokens: Int? = nil
    /// Instances this request already failed on (failover goes elsewhere).
    var excluded: Set<String>
    /// `decode`: the instance that computed the prompt; the KV cache travels from it, so a
    /// nearby decode instance is preferred. By reference, like ``Lease``'s instance.
    private var sharedAnchor: SharedInstanceSpec?
    var topologyAnchor: InstanceSpec? {
        get { sharedAnchor?.spec }
        set { sharedAnchor = newValue.map(SharedInstanceSpec.init) }
    }
    var phase: RequestPhase = .whole

    package init(
        id: UInt64, model: String, placement: RequestPlacement, arrival: ContinuousClock.Instant, deadline: ContinuousClock.Instant?,
        prefixBlocks: [UInt64], expectedOutputTokens: Int? = nil, excluded: Set<String>, topologyAnchor: InstanceSpec?,
        phase: RequestPhase = .whole
    ) {
        self.id = id
        fixed = Fixed(model: model, placement: placement, prefixBlocks: prefixBlocks)
        self.arrival = arrival
        self.deadline = deadline
        self.firstTokenDeadline = placement.firstTokenTarget.map { arrival + $0 }
        self.expectedOutputTokens = expectedOutputTokens
        self.excluded = excluded
        sharedAnchor = topologyAnchor.map(SharedInstanceSpec.init)
        self.phase = phase
    }

    /// Without a topology anchor (the decode side's own strategy, ignoring where the KV cache is).
    var unanchored: QueuedRequest {
        var copy = self
        copy.sharedAnchor = nil
        return copy
    }

    var pool: PoolKey { PoolKey(model: model, phase: phase) }

    /// It has an end-to-end or a first-token deadline.
    var hasDeadline: Bool { deadline != nil || firstTokenDeadline != nil }
}

/// An instance handed to a request; give it back with ``Scheduler/release(_:outcome:)`` exactly once.
package struct Lease: Sendable {
    let requestID: UInt64
    /// The instance's spec by reference: a lease is copied at every step of a request.
    let sharedInstance: SharedInstanceSpec
    var instance: InstanceSpec { sharedInstance.spec }
    /// Where the instance was in the scheduler's table when it was granted.
    let position: Int
    let arrival: ContinuousClock.Instant
    let dispatched: ContinuousClock.Instant
    let placement: RequestPlacement
    let policy: SchedulingPolicy
    var phase: RequestPhase = .whole
    /// The instance's client, held for this request until the lease is released (nil in a
    /// cluster simulation, or when the instance has no client).
    var client: InstanceClient? = nil

    init(
        requestID: UInt64, instance: SharedInstanceSpec, position: Int, arrival: ContinuousClock.Instant, dispatched: ContinuousClock.Instant,
        placement: RequestPlacement, policy: SchedulingPolicy, phase: RequestPhase = .whole, client: InstanceClient? = nil
    ) {
        self.requestID = requestID
        self.sharedInstance = instance
        self.position = position
        self.arrival = arrival
        self.dispatched = dispatched
        self.placement = placement
        self.policy = policy
        self.phase = phase
        self.client = client
    }
}

/// An instance's spec, allocated once per instance and shared by the leases of its requests.
final class SharedInstanceSpec: Sendable {
    let spec: InstanceSpec

    init(_ spec: InstanceSpec) { self.spec = spec }
}

/// How a dispatched request ended.
package enum LeaseOutcome: Sendable {
    case success(latency: Duration, timeToFirstToken: Duration?, outputTokens: Int?)
    /// The instance failed it (counts toward its circuit breaker).
    case instanceFailure
    /// The caller went away; says nothing about the instance.
    case cancelled
}

/// What the queue decided for a waiting request.
enum QueueDecision: Sendable {
    case dispatched(Lease)
    case rejected(requestID: UInt64, ControlPlaneError)
}
