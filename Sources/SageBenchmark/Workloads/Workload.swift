/// What a run sends: how many requests, how long their prompts and answers are, and how
/// they arrive.
public struct Workload: Sendable, Hashable, Codable {
    /// The name of its metrics file (`short_input` -> `short_input_metrics.json`).
    public var name: String
    public var inputTokens: Int
    public var outputTokens: Int
    public var numPrompts: Int?
    /// Run for this long instead of a count (open or closed loop alike).
    public var durationSeconds: Double?
    public var arrival: Arrival
    /// Requests sent first and left out of every figure.
    public var warmupRequests: Int
    /// Tokens every prompt starts with (a shared system prefix, for prefix-cache runs).
    public var sharedPrefixTokens: Int
    /// Spread of prompt and output lengths: each is drawn uniformly from `len × (1 ± rangeRatio)`.
    public var rangeRatio: Double
    public var stream: Bool
    /// Prompts from a dataset, used in turn instead of synthetic ones (output length stays
    /// ``outputTokens``).
    public var prompts: [String]?

    public enum Arrival: Sendable, Hashable, Codable, CustomStringConvertible {
        /// At most `concurrency` in flight; the next starts when one ends (closed loop).
        case concurrency(Int)
        /// `rate` requests per second on an absolute schedule (open loop): Poisson for
        /// burstiness 1, gamma otherwise. `maxConcurrency` optionally caps requests in flight.
        case rate(Double, burstiness: Double, maxConcurrency: Int?)

        public var description: String {
            switch self {
            case .concurrency(let n): n == 1 ? "sequential" : "\(n) concurrent"
            case .rate(let rate, let k, let cap):
                "\(rate) req/s, " + (k == 1 ? "Poisson" : "gamma k=\(k)") + (cap.map { ", at most \($0) in flight" } ?? "")
            }
        }
    }

    public init(
        name: String, inputTokens: Int, outputTokens: Int, numPrompts: Int? = nil, durationSeconds: Double? = nil,
        arrival: Arrival = .concurrency(1), warmupRequests: Int = 0, sharedPrefixTokens: Int = 0, rangeRatio: Double = 0,
        stream: Bool = true
    ) {
        self.name = name
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.numPrompts = numPrompts
        self.durationSeconds = durationSeconds
        self.arrival = arrival
        self.warmupRequests = warmupRequests
        self.sharedPrefixTokens = sharedPrefixTokens
        self.rangeRatio = rangeRatio
        self.stream = stream
    }

    /// The seeds' year-1 set.
    public static let short = Workload(name: "short_input", inputTokens: 128, outputTokens: 128, numPrompts: 5)
    public static let long = Workload(name: "long_input", inputTokens: 200, outputTokens: 200, numPrompts: 3)
    public static let stress = Workload(
        name: "stress_test", inputTokens: 256, outputTokens: 256, numPrompts: 10, arrival: .concurrency(10))

    /// `short`, `long`, `stress`, or `year1` (all three).
    public static func named(_ name: String) throws(BenchmarkError) -> [Workload] {
        switch name.lowercased() {
        case "short": [.short]
        case "long": [.long]
        case "stress": [.stress]
        case "year1": [.short, .long, .stress]
        default:
            throw BenchmarkError(
                .invalidArgument, "unknown workload '\(name)'; use year1, short, long or stress (or --input-len/--output-len)",
                field: "workload")
        }
    }

    public func validate() throws(BenchmarkError) {
        func fail(_ field: String, _ message: String) -> BenchmarkError {
            BenchmarkError(.invalidArgument, message, field: field)
        }
        if inputTokens < 1 { throw fail("input-len", "the input length must be at least 1 token, got \(inputTokens)") }
        if outputTokens < 1 { throw fail("output-len", "the output length must be at least 1 token, got \(outputTokens)") }
        if let numPrompts, numPrompts < 1 { throw fail("num-prompts", "the number of prompts must be at least 1, got \(numPrompts)") }
        if let durationSeconds, !(durationSeconds > 0) { throw fail("duration", "the duration must be positive") }
        if numPrompts == nil && durationSeconds == nil { throw fail("num-prompts", "give a number of prompts or a duration") }
        if warmupRequests < 0 { throw fail("warmup", "warm-up requests must not be negative") }
        if sharedPrefixTokens < 0 || sharedPrefixTokens >= inputTokens {
            throw fail("shared-prefix", "the shared prefix must be shorter than the input, got \(sharedPrefixTokens)")
        }
        if !(0..<1).contains(rangeRatio) { throw fail("range-ratio", "the range ratio must be in [0, 1), got \(rangeRatio)") }
        switch arrival {
        case .concurrency(let n) where n < 1: throw fail("concurrency", "concurrency must be at least 1, got \(n)")
        case .rate(let rate, let k, let cap):
            if !(rate > 0) || !rate.isFinite { throw fail("request-rate", "the request rate must be positive, got \(rate)") }
            if !(k > 0) { throw fail("burstiness", "burstiness must be positive, got \(k)") }
            if let cap, cap < 1 { throw fail("max-concurrency", "max concurrency must be at least 1, got \(cap)") }
        default: break
        }
    }
}
