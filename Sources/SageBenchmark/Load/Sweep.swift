import SageLLM

/// A run at several loads in one command (`--sweep concurrency=1,4,16,64` or
/// `--sweep rate=1,2,4`), like guidellm's sweep and vLLM's multi-rate runs: every workload is
/// run at each point in turn, and the summary shows throughput against latency per point and
/// names the knee, the last point before latency climbs faster than throughput.
public struct Sweep: Sendable, Hashable {
    public enum Axis: String, Sendable, Hashable {
        case concurrency, rate
    }

    public var axis: Axis
    public var values: [Double]

    public init(axis: Axis, values: [Double]) {
        self.axis = axis
        self.values = values
    }

    /// `concurrency=1,4,16,64` or `rate=0.5,1,2` (at most 32 points, each a positive number;
    /// concurrencies whole, up to 100,000; rates up to 1,000,000 per second).
    public static func parse(_ text: String) throws(BenchmarkError) -> Sweep {
        func fail(_ message: String) -> BenchmarkError { BenchmarkError(.invalidArgument, "--sweep \(text): \(message)", field: "sweep") }
        let parts = text.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
        guard parts.count == 2, let axis = Axis(rawValue: parts[0].lowercased()) else {
            throw fail("write concurrency=1,4,16 or rate=1,2,4")
        }
        var values: [Double] = []
        for item in parts[1].split(separator: ",") {
            let word = item.trimmingWhitespace()
            guard let value = Double(word), value.isFinite, value > 0 else { throw fail("'\(word)' is not a positive number") }
            switch axis {
            case .concurrency:
                guard value == value.rounded(), value <= 100_000 else { throw fail("a concurrency is a whole number from 1 to 100000, got \(word)") }
            case .rate:
                guard value >= 0.001, value <= 1_000_000 else { throw fail("a rate is from 0.001 to 1000000 per second, got \(word)") }
            }
            values.append(value)
        }
        guard (2...32).contains(values.count) else { throw fail("give 2 to 32 points, got \(values.count)") }
        guard values == values.sorted(), Set(values).count == values.count else { throw fail("give the points in increasing order, each once") }
        return Sweep(axis: axis, values: values)
    }

    /// Each workload at each point, named `<workload>@c<N>` or `<workload>@r<R>`, point by
    /// point (every workload at the first point, then at the second, ...). Rate points arrive
    /// with `burstiness` (1: Poisson), at most `maxConcurrency` in flight.
    public func workloads(_ base: [Workload], burstiness: Double = 1, maxConcurrency: Int? = nil) -> [Workload] {
        values.flatMap { value in
            base.map { workload in
                var point = workload
                switch axis {
                case .concurrency:
                    let concurrency = Int(value)  // checked whole and at most 100,000 by parse
                    point.arrival = .concurrency(concurrency)
                    point.name = "\(workload.name)@c\(concurrency)"
                case .rate:
                    point.arrival = .rate(value, burstiness: burstiness, maxConcurrency: maxConcurrency)
                    point.name = "\(workload.name)@r\(Self.text(value))"
                }
                return point
            }
        }
    }

    /// One point's figures, read from its run's metrics.
    public struct Point: Sendable {
        public var workload: String
        public var load: Double
        public var requestThroughput: Double?
        public var outputThroughput: Double?
        public var ttft: (p50: Double?, p99: Double?)
        public var itl: (p50: Double?, p99: Double?)
        public var e2el: (p50: Double?, p99: Double?)
    }

    /// The points of `runs` (a session's metrics in run order), by workload.
    public func points(_ runs: [[String: JSONValue]]) -> [String: [Point]] {
        var byWorkload: [String: [Point]] = [:]
        for run in runs {
            guard let name = run["workload"]?.stringValue, let at = name.lastIndex(of: "@") else { continue }
            let number: (String) -> Double? = { key in
                switch run[key] {
                case .double(let value)?: value
                case .int(let value)?: Double(value)
                default: nil
                }
            }
            let base = String(name[..<at])
            let pointIndex = byWorkload[base]?.count ?? 0
            guard pointIndex < values.count else { continue }
            byWorkload[base, default: []].append(
                Point(
                    workload: base, load: values[pointIndex], requestThroughput: number("request_throughput"),
                    outputThroughput: number("output_throughput"), ttft: (number("p50_ttft_ms"), number("p99_ttft_ms")),
                    itl: (number("p50_itl_ms"), number("p99_itl_ms")), e2el: (number("p50_e2el_ms"), number("p99_e2el_ms"))))
        }
        return byWorkload
    }

    /// The knee: the last point before the one where the median end-to-end latency grows by a
    /// larger factor than the request throughput (more load buys more waiting than work).
    /// Nil when latency never outgrows throughput over the points (the server was not
    /// saturated), or a figure is missing.
    public static func knee(_ points: [Point]) -> Point? {
        guard points.count >= 2 else { return nil }
        for index in 1..<points.count {
            guard let throughput = points[index].requestThroughput, let previousThroughput = points[index - 1].requestThroughput,
                let latency = points[index].e2el.p50, let previousLatency = points[index - 1].e2el.p50, previousThroughput > 0,
                previousLatency > 0
            else { return nil }
            let throughputGrowth = throughput / previousThroughput
            let latencyGrowth = latency / previousLatency
            // 10% of slack: noise at an unsaturated point is not a knee.
            if latencyGrowth > throughputGrowth * 1.1 { return points[index - 1] }
        }
        return nil
    }

    /// The summary table of every workload's points, and its knee.
    public func summary(_ runs: [[String: JSONValue]]) -> String {
        var out: [String] = []
        for (workload, points) in points(runs).sorted(by: { $0.key < $1.key }) {
            var rows: [[String]] = [[axis == .concurrency ? "concurrency" : "rate (req/s)", "req/s", "out tok/s", "TTFT p50/p99 ms", "ITL p50/p99 ms", "E2EL p50/p99 ms"]]
            for point in points {
                func pair(_ values: (p50: Double?, p99: Double?)) -> String { "\(Self.text(values.p50))/\(Self.text(values.p99))" }
                rows.append([
                    Self.text(point.load), Self.text(point.requestThroughput), Self.text(point.outputThroughput), pair(point.ttft), pair(point.itl),
                    pair(point.e2el),
                ])
            }
            out.append("sweep of \(workload) over \(axis.rawValue):")
            out.append(ReportFormat.layout(rows))
            if let knee = Self.knee(points) {
                out.append("knee: \(axis == .concurrency ? "concurrency" : "rate") \(Self.text(knee.load)) (beyond it, median latency grows faster than throughput)")
            } else {
                out.append("no knee within these points: latency did not outgrow throughput")
            }
        }
        return out.joined(separator: "\n")
    }

    /// The knee of each workload (nil where there is none), for the report.
    public func knees(_ runs: [[String: JSONValue]]) -> JSONValue {
        .object(points(runs).mapValues { points in Self.knee(points).map { .double($0.load) } ?? .null })
    }

    static func text(_ value: Double?) -> String {
        guard let value else { return "n/a" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return String((value * 10).rounded() / 10)
    }
}
