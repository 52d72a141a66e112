import Foundation
import HTTPTypes
import NIOCore
import SageControlPlane
import SageLLM
import SageSupport
import Synchronization

/// The gateway's API keys and what each has used: who a request is from (401 when nobody
/// known), and whether its key may start another one now (429 with `Retry-After` when not).
/// The keys of the keys file are replaced by ``reload()``; what a key has used is kept by its
/// name across reloads.
final class KeyRing: Sendable {
    /// What a key has used: two buckets refilled evenly over a minute, and its requests in flight.
    private struct Usage {
        var requests: Double
        var tokens: Double
        var refilled: ContinuousClock.Instant
        var inFlight = 0
    }

    private struct State {
        var keys: [GatewayKey]
        var usage: [String: Usage] = [:]
        /// Gateway replicas enforcing the keys' limits together; each enforces its share.
        var replicas = 1
    }

    private let state: Mutex<State>
    /// Keys from the environment or the code, kept through reloads of the file.
    private let fixedKeys: [GatewayKey]
    let file: String?
    /// The keys file's modification date before it was read at start (a change after that is
    /// reloaded).
    let loadedVersion: Date?

    /// - Parameters:
    ///   - keys: keys that do not come from a file.
    ///   - file: a keys file, read now and by ``reload()``.
    init(keys: [GatewayKey], file: String?) throws(GatewayError) {
        fixedKeys = keys
        self.file = file
        loadedVersion = file.flatMap(FileChangePoller.modificationDate)
        for (index, key) in keys.enumerated() { try key.validate(field: "apiKeys[\(index)]") }
        let all = keys + (try file.map(KeysFile.load) ?? [])
        try KeysFile.checkDistinct(all, source: "the gateway's keys")
        state = Mutex(State(keys: all))
    }

    /// No key is configured: everyone may use the gateway.
    var isOpen: Bool { state.withLock { $0.keys.isEmpty } }
    var hasAdminKey: Bool { state.withLock { $0.keys.contains(where: \.isAdmin) } }
    var count: Int { state.withLock { $0.keys.count } }

    /// Reads the keys file again; on an error the keys stay as they were. Returns how many
    /// keys there are now.
    @discardableResult
    func reload() throws(GatewayError) -> Int {
        guard let file else { return count }
        let all = fixedKeys + (try KeysFile.load(file))
        try KeysFile.checkDistinct(all, source: "the gateway's keys")
        return state.withLock { state in
            state.keys = all
            let names = Set(all.map(\.name))
            state.usage = state.usage.filter { names.contains($0.key) || $0.value.inFlight > 0 }
            return all.count
        }
    }

    /// The key a request carries (`Authorization: Bearer KEY`, or `x-api-key: KEY`); nil when
    /// the gateway is open. Every key is compared, in full, whichever matches.
    func authenticate(_ headers: HTTPFields) throws(GatewayError) -> GatewayKey? {
        let keys = state.withLock { $0.keys }
        guard !keys.isEmpty else { return nil }
        guard let presented = Self.presentedKey(headers) else {
            throw GatewayError(
                .unauthorized, "no API key: send it as `Authorization: Bearer KEY` (the OpenAI SDKs' api_key)", status: 401)
        }
        let digest = GatewayKey.digest(of: presented)
        var found: GatewayKey?
        for key in keys where key.matches(digest) { found = key }
        guard let found else { throw GatewayError(.unauthorized, "the API key is not known to this gateway", status: 401) }
        return found
    }

    static func presentedKey(_ headers: HTTPFields) -> String? {
        if let authorization = headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let key = parts[1].trimmingCharacters(in: .whitespaces)
                return key.isEmpty ? nil : key
            }
            return nil
        }
        return headers[.apiKey].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The number of live gateway replicas (at least 1): each key's limits are split evenly
    /// among them (a concurrency bound rounded up, so that every replica can serve a key).
    var replicas: Int {
        get { state.withLock { $0.replicas } }
        set { state.withLock { $0.replicas = max(1, newValue) } }
    }

    /// Counts a request of `key` in, or refuses it (429) when the key is at its concurrency
    /// bound or out of requests or tokens for now.
    ///
    /// - Parameter promptBytes: the body's size, for an estimate of the prompt's tokens when
    ///   the engine reports no usage.
    func admit(_ key: GatewayKey, promptBytes: Int, now: ContinuousClock.Instant = .now) throws(GatewayError) -> KeyPass {
        let refusal = state.withLock { state -> GatewayError? in
            let replicas = state.replicas
            var usage = Self.refilled(state.usage[key.name], for: key, replicas: replicas, now: now)
            defer { state.usage[key.name] = usage }
            let share = replicas > 1 ? " (this replica's share among \(replicas))" : ""
            if let bound = key.maxConcurrency.map({ Self.share(of: $0, among: replicas) }), usage.inFlight >= bound {
                return Self.limited("key '\(key.name)' has \(usage.inFlight) requests in flight, its limit\(share) (max_concurrency)", after: 1)
            }
            if let perMinute = key.requestsPerMinute, usage.requests < 1 {
                return Self.limited(
                    "key '\(key.name)' used its \(perMinute) requests per minute\(share) (requests_per_minute)",
                    after: Self.seconds(toRefill: 1 - usage.requests, perMinute: Double(perMinute) / Double(replicas)))
            }
            if let perMinute = key.tokensPerMinute, usage.tokens <= 0 {
                return Self.limited(
                    "key '\(key.name)' used its \(perMinute) tokens per minute\(share) (tokens_per_minute)",
                    after: Self.seconds(toRefill: 1 - usage.tokens, perMinute: Double(perMinute) / Double(replicas)))
            }
            if key.requestsPerMinute != nil { usage.requests -= 1 }
            usage.inFlight += 1
            return nil
        }
        if let refusal { throw refusal }
        return KeyPass(ring: self, name: key.name, metersTokens: key.tokensPerMinute != nil, promptTokens: promptBytes / 4)
    }

    /// A request of the key named `name` ended, having used `tokens`.
    fileprivate func release(_ name: String, tokens: Int) {
        state.withLock { state in
            guard var usage = state.usage[name] else { return }
            usage.inFlight -= 1
            usage.tokens -= Double(tokens)
            state.usage[name] = usage
        }
    }

    /// The requests in flight per key name (for the tests and the admin API).
    var inFlight: [String: Int] { state.withLock { $0.usage.mapValues(\.inFlight) } }

    /// The buckets of `usage` refilled until `now` at this replica's share of the key's rates;
    /// a bucket above its share (the replicas grew) is cut to it.
    private static func refilled(_ usage: Usage?, for key: GatewayKey, replicas: Int, now: ContinuousClock.Instant) -> Usage {
        let requestsRate = Double(key.requestsPerMinute ?? 0) / Double(replicas)
        // A share below one request a minute still holds one, or the key could never be served here.
        let requestsCapacity = key.requestsPerMinute == nil ? 0 : max(1, requestsRate)
        let tokensCapacity = Double(key.tokensPerMinute ?? 0) / Double(replicas)
        guard var usage else { return Usage(requests: requestsCapacity, tokens: tokensCapacity, refilled: now) }
        let elapsed = max(0, Double((now - usage.refilled).nanoseconds) / 1e9)
        usage.requests = min(requestsCapacity, usage.requests + elapsed * requestsRate / 60)
        usage.tokens = min(tokensCapacity, usage.tokens + elapsed * tokensCapacity / 60)
        usage.refilled = max(usage.refilled, now)
        return usage
    }

    /// A replica's share of a concurrency bound: rounded up, so that each may serve the key.
    static func share(of bound: Int, among replicas: Int) -> Int {
        replicas <= 1 ? bound : max(1, (bound + replicas - 1) / replicas)
    }

    /// Whole seconds until a bucket refilled at `perMinute` gains `missing`, at least 1.
    private static func seconds(toRefill missing: Double, perMinute: Double) -> Int {
        let seconds = (missing * 60 / perMinute).rounded(.up)
        return seconds.isFinite && seconds >= 1 ? Int(min(seconds, 3_600)) : 1
    }

    private static func limited(_ message: String, after seconds: Int) -> GatewayError {
        GatewayError(.rateLimited, message + "; try again in \(seconds) s", status: 429, retryAfterSeconds: seconds)
    }
}

/// A request counted in against its key; ``finish()`` counts it out once, however many ways
/// its end is seen, with the tokens it used: the engine's `total_tokens` when its answer says,
/// else an estimate (a token per 4 bytes of the body, plus one per streamed event).
final class KeyPass: Sendable {
    private let ring: KeyRing
    let name: String
    /// Whether the key has a tokens-per-minute limit (only then are answers read for usage).
    let metersTokens: Bool
    private let promptTokens: Int
    private let tally = Mutex<(done: Bool, reported: Int?, pieces: Int)>((false, nil, 0))

    fileprivate init(ring: KeyRing, name: String, metersTokens: Bool, promptTokens: Int) {
        self.ring = ring
        self.name = name
        self.metersTokens = metersTokens
        self.promptTokens = promptTokens
    }

    /// Reads a whole answer or a piece of a stream for the usage it reports.
    func observe(_ bytes: ByteBuffer) {
        guard metersTokens else { return }
        let reported = UsageScan.totalTokens(in: bytes)
        tally.withLock { tally in
            tally.pieces += 1
            if let reported { tally.reported = reported }
        }
    }

    func finish() {
        let tokens = tally.withLock { tally -> Int? in
            guard !tally.done else { return nil }
            tally.done = true
            return tally.reported ?? promptTokens + tally.pieces  // a body of at most 1 GiB; a count of pieces
        }
        guard let tokens else { return }
        ring.release(name, tokens: tokens)
    }
}

extension HTTPField.Name {
    static let apiKey = Self("x-api-key")!
}
