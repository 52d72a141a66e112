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

/// Where a run is, as a progress display shows it.
public struct RunProgress: Sendable {
    /// The workload's name (set by ``BenchmarkSession``; empty from a bare ``LoadRunner``).
    public var workload = ""
    public var completed: Int
    public var failed: Int
    /// Requests planned (nil when the run goes by duration).
    public var total: Int?
    /// The run's duration when it goes by duration.
    public var duration: Duration?
    /// Since the first measured request was sent.
    public var elapsed: Duration
    /// Failures so far by kind ("timeout", "http 503", ...).
    public var errors: [String: Int]

    public init(
        workload: String = "", completed: Int, failed: Int, total: Int?, duration: Duration?, elapsed: Duration, errors: [String: Int]
    ) {
        self.workload = workload
        self.completed = completed
        self.failed = failed
        self.total = total
        self.duration = duration
        self.elapsed = elapsed
        self.errors = errors
    }

    public var finished: Int { completed + failed }

    /// Finished requests per second so far.
    public var rate: Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(finished) / seconds : 0
    }

    /// What is left, at the rate so far (or of the duration); nil before the first request ends.
    public var remaining: Duration? {
        if let duration { return max(.zero, duration - elapsed) }
        guard let total, finished > 0, rate > 0 else { return nil }
        let seconds = Double(max(0, total - finished)) / rate
        return seconds.isFinite && seconds < 1e9 ? .milliseconds(Int64((seconds * 1000).rounded())) : nil
    }
}

/// Counts finished requests and tells the progress callback.
final class ProgressTally: Sendable {
    private let state: Mutex<RunProgress>
    private let started = ContinuousClock.now
    private let report: (@Sendable (RunProgress) -> Void)?
    init(total: Int?, duration: Duration?, report: (@Sendable (RunProgress) -> Void)?) {
        state = Mutex(RunProgress(completed: 0, failed: 0, total: total, duration: duration, elapsed: .zero, errors: [:]))
        self.report = report
    }
    func add(_ result: BenchmarkResult) {
        guard let report else { return }
        let now = ContinuousClock.now
        let progress = state.withLock { progress in
            if result.success {
                progress.completed += 1
            } else {
                progress.failed += 1
                progress.errors[result.errorKind ?? "other", default: 0] += 1
            }
            progress.elapsed = now - started
            return progress
        }
        report(progress)
    }
}

