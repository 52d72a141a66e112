import Synchronization

/// Hands out request numbers 0, 1, 2, ... up to an optional limit, to closed-loop workers.
final class IndexCounter: Sendable {
    private let state = Mutex(0)
    private let limit: Int?
    init(limit: Int?) { self.limit = limit }
    func next() -> Int? {
        state.withLock { next in
            if let limit, next >= limit { return nil }
            defer { next += 1 }
            return next
        }
    }
}

/// Counts finished requests and tells the progress callback.
final class ProgressTally: Sendable {
    private let counts = Mutex((completed: 0, failed: 0))
    private let total: Int?
    private let report: (@Sendable (Int, Int, Int?) -> Void)?
    init(total: Int?, report: (@Sendable (Int, Int, Int?) -> Void)?) {
        self.total = total
        self.report = report
    }
    func add(_ result: BenchmarkResult) {
        let (completed, failed) = counts.withLock { counts in
            if result.success { counts.completed += 1 } else { counts.failed += 1 }
            return (counts.completed, counts.failed)
        }
        report?(completed, failed, total)
    }
}

