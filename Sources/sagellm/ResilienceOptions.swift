import ArgumentParser
import SageLLM

/// The resilient client's settings as flags; each becomes an explicit value of its setting.
struct ResilienceOptions: ParsableArguments {
    @Option(help: "Seconds one request may take in all, streamed body included (http.timeout, default 600).")
    var timeout: Double?

    @Option(name: .customLong("max-retries"), help: "Retries after a failed attempt; 0 for none (retry.max_retries, default 3).")
    var maxRetries: Int?

    @Option(
        name: .customLong("rate-limit"),
        help: "Requests per minute; 0 for no limit (limits.requests_per_minute, default 60 for remote endpoints, none for local).")
    var rateLimit: Int?

    @Option(name: .customLong("max-concurrent"), help: "Requests in flight at once (limits.max_concurrent, default no bound).")
    var maxConcurrent: Int?

    func validate() throws {
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds, got \(timeout)") }
        if let maxRetries, maxRetries < 0 { throw ValidationError("--max-retries must not be negative, got \(maxRetries)") }
        if let rateLimit, rateLimit < 0 { throw ValidationError("--rate-limit must not be negative, got \(rateLimit)") }
        if let maxConcurrent, maxConcurrent < 1 {
            throw ValidationError("--max-concurrent must be at least 1, got \(maxConcurrent)")
        }
    }

    /// The flags given, as setting overrides.
    var overrides: [String: String] {
        var values: [String: String] = [:]
        values[SettingKey.requestTimeout.key] = timeout.map { String($0) }
        values[SettingKey.maxRetries.key] = maxRetries.map { String($0) }
        values[SettingKey.rateLimit.key] = rateLimit.map { String($0) }
        values[SettingKey.maxConcurrent.key] = maxConcurrent.map { String($0) }
        return values
    }
}
