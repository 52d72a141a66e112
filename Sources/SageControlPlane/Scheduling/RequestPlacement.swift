import SageLLM
/// How urgent a request is. Lower raw values are served first.
public enum RequestPriority: Int, Sendable, Hashable, Comparable, CaseIterable, Codable, CustomStringConvertible {
    case critical = 0, high, normal, low, background

    public static func < (a: RequestPriority, b: RequestPriority) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .critical: "CRITICAL"
        case .high: "HIGH"
        case .normal: "NORMAL"
        case .low: "LOW"
        case .background: "BACKGROUND"
        }
    }

    /// Reads `CRITICAL`, `HIGH`, `NORMAL`, `LOW`, `BACKGROUND` (any case) or 0-4.
    public init?(name: String) {
        if let number = Int(name), let value = RequestPriority(rawValue: number) {
            self = value
            return
        }
        guard let value = Self.allCases.first(where: { $0.description == name.uppercased() }) else { return nil }
        self = value
    }
}

/// What the control plane needs to know about a request beyond its chat options.
public struct RequestPlacement: Sendable, Hashable {
    public var priority: RequestPriority
    /// The request should finish within this long after it arrives.
    public var sloDeadline: Duration?
    /// A session or user, for `affinity` routing (sticky per key).
    public var sessionKey: String?
    /// An instance to prefer, for `topology_aware` routing.
    public var preferredInstanceID: String?
    /// The first token should come within this long after the request arrives (its TTFT
    /// target). `slo_aware` sheds a waiting request that can no longer get its first token in
    /// time (given the fastest instance's measured TTFT) before it costs an instance anything:
    /// under overload the capacity goes to requests that can still be good. It still orders by
    /// the end-to-end deadline, or by this one when there is no other.
    public var firstTokenTarget: Duration?
    /// The time per output token after the first should stay within this (its TPOT target).
    /// `slo_aware` sends the request to an instance whose measured time per output token meets
    /// it when one has room, and to any other only when none does.
    public var timePerTokenTarget: Duration?

    public init(
        priority: RequestPriority = .normal, sloDeadline: Duration? = nil, sessionKey: String? = nil,
        preferredInstanceID: String? = nil, firstTokenTarget: Duration? = nil, timePerTokenTarget: Duration? = nil
    ) {
        self.priority = priority
        self.sloDeadline = sloDeadline
        self.sessionKey = sessionKey
        self.preferredInstanceID = preferredInstanceID
        self.firstTokenTarget = firstTokenTarget
        self.timePerTokenTarget = timePerTokenTarget
    }

    /// The SLO deadline in milliseconds.
    public init(priority: RequestPriority = .normal, sloDeadlineMs: Double?, sessionKey: String? = nil) {
        self.init(
            priority: priority, sloDeadline: sloDeadlineMs.map { OutsideNumber.clampedDuration(seconds: $0 / 1000) }, sessionKey: sessionKey)
    }
}
