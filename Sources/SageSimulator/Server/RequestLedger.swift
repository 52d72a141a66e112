import Synchronization

/// Counts the generation requests a simulator server answered, by HTTP status, so that tests
/// and `/metrics` can see retries and rejections from outside.
public final class RequestLedger: Sendable {
    private let counts = Mutex<[Int: Int]>([:])

    public init() {}

    func record(_ status: Int) {
        counts.withLock { $0[status, default: 0] += 1 }
    }

    /// Requests per status.
    public var byStatus: [Int: Int] { counts.withLock { $0 } }

    /// All generation requests received.
    public var total: Int { counts.withLock { $0.values.reduce(0, +) } }
}
