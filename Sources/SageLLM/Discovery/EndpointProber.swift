import AsyncHTTPClient
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import class Foundation.JSONDecoder
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix

/// Probes OpenAI-compatible endpoints: `GET {base}/models` within a time limit, then the
/// engine's fingerprints when `owned_by` does not name it.
struct EndpointProber: Sendable {
    let timeout: Duration
    let apiKey: APIKey?
    let logger: Logger

    /// What a probe found.
    struct Answer: Sendable {
        var engine: EngineKind
        var models: [String]
        /// The model chosen for the request, and a note when it is not the one asked for.
        var model: String
        var note: String?
    }

    /// What a candidate must offer to be chosen.
    struct Requirement: Sendable, Hashable {
        /// A model that must be listed (the caller asked for it).
        var requiredModel: String?
        /// A model to use when listed (from settings); otherwise the first listed.
        var preferredModel: String?
        var acceptedEngines: Set<EngineKind>?
    }

    enum Outcome: Sendable {
        case answered(Answer)
        case skipped(CandidateReport.SkipReason, String)
    }

    /// Runs `body` with an HTTP client made for probing: short connect timeout, no retries, no pool reuse beyond it.
    func withProbeClient<Result: Sendable>(_ body: (HTTPClient) async -> Result) async -> Result {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(
            connect: .nanoseconds(timeout.nanoseconds), read: .nanoseconds(timeout.nanoseconds))
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let result = await body(client)
        do {
            try await client.shutdown()
        } catch {
            logger.debug("probe client shutdown failed", metadata: ["sage.error": "\(error)"])
        }
        return result
    }

    /// Probes every candidate concurrently and picks the first one, in priority order, that
    /// answers and meets `requirement`. Candidates after the winner that are still running are
    /// cancelled and reported as not needed. Takes about one probe timeout when nothing answers.
    func probeAll(_ candidates: [ProbeCandidate], requirement: Requirement) async -> (
        winner: (index: Int, answer: Answer)?, reports: [CandidateReport]
    ) {
        guard !candidates.isEmpty else { return (nil, []) }
        return await withProbeClient { client in
            await withTaskGroup(of: (Int, Outcome, Duration).self) { group in
                for (index, candidate) in candidates.enumerated() {
                    group.addTask {
                        let started = ContinuousClock.now
                        let outcome = await probe(candidate.baseURL, client: client, requirement: requirement)
                        return (index, outcome, ContinuousClock.now - started)
                    }
                }
                var outcomes = [(Outcome, Duration)?](repeating: nil, count: candidates.count)
                var winner: (index: Int, answer: Answer)?
                while winner == nil, let (index, outcome, elapsed) = await group.next() {
                    outcomes[index] = (outcome, elapsed)
                    // The first candidate that has not failed decides: an answer wins, a pending probe waits.
                    var first = 0
                    while first < candidates.count, let (done, _) = outcomes[first], case .skipped = done { first += 1 }
                    if first == candidates.count { break }
                    if let (done, _) = outcomes[first], case .answered(let answer) = done { winner = (first, answer) }
                }
                group.cancelAll()
                while let (index, outcome, elapsed) = await group.next() {
                    outcomes[index] = (outcome, elapsed)
                }
                let reports = candidates.enumerated().map { index, candidate in
                    Self.report(candidate, outcomes[index], selected: winner?.index == index, afterWinner: winner.map { index > $0.index } ?? false)
                }
                return (winner, reports)
            }
        }
    }

    private static func report(_ candidate: ProbeCandidate, _ outcome: (Outcome, Duration)?, selected: Bool, afterWinner: Bool)
        -> CandidateReport
    {
        var report = CandidateReport(
            baseURL: candidate.baseURL, status: .notNeeded, reason: nil, detail: nil, engine: nil, models: [],
            elapsed: outcome?.1 ?? .zero)
        switch outcome?.0 {
        case .answered(let answer):
            report.engine = answer.engine
            report.models = answer.models
            report.status = selected ? .selected : .notNeeded
            report.detail = selected ? answer.note : "a candidate of higher priority was chosen"
        case .skipped(let reason, let detail) where !(afterWinner && reason == .failed && detail == Self.cancelledDetail):
            report.status = .skipped
            report.reason = reason
            report.detail = detail
        case .skipped, .none:
            report.detail = "not needed: a candidate of higher priority was chosen"
        }
        return report
    }

    private static let cancelledDetail = "the probe was cancelled"

    /// Probes one endpoint.
    func probe(_ baseURL: String, client: HTTPClient, requirement: Requirement) async -> Outcome {
        let base: String
        do {
            base = try HTTPTransport.normalize(baseURL: baseURL)
        } catch {
            return .skipped(.failed, error.reason)
        }
        let deadline = NIODeadline.now() + .nanoseconds(timeout.nanoseconds)
        // The key goes only to an endpoint that asks for one (401/403 without it), never to
        // every port that is probed.
        var withKey = false
        var fetched = await get(base + "/models", client: client, deadline: deadline, limit: 4 * 1024 * 1024, withKey: false)
        if case .success(let status, _) = fetched, status == 401 || status == 403, apiKey != nil {
            withKey = true
            fetched = await get(base + "/models", client: client, deadline: deadline, limit: 4 * 1024 * 1024, withKey: true)
        }
        let body: ByteBuffer
        switch fetched {
        case .failure(let reason, let detail):
            return .skipped(reason, detail)
        case .success(let status, let buffer) where !(200..<300).contains(status):
            var detail = "GET /models answered \(status)"
            if let message = ErrorBody.parse(buffer.readableBytesView)?.message { detail += ": \(message)" }
            if status == 401 || status == 403 {
                detail += apiKey == nil ? " (set VLLM_API_KEY to the engine's --api-key)" : " (check VLLM_API_KEY)"
            }
            return .skipped(.httpStatus, detail)
        case .success(_, let buffer):
            body = buffer
        }
        let list: ModelList
        do {
            list = try BoundedJSONDecoder().decode(ModelList.self, from: body)
        } catch {
            return .skipped(
                .invalidResponse,
                "GET /models answered 200 but not with an OpenAI model list: "
                    + SageLLMError.snippet(String(buffer: body)))
        }
        let models = list.data.map(\.id).filter { !$0.isEmpty }
        guard let firstModel = models.first else { return .skipped(.noModels, "GET /models lists no models") }
        let engine: EngineKind =
            if let named = list.data.lazy.compactMap({ $0.ownedBy.flatMap(EngineKind.fromOwnedBy) }).first { named }
            else { await fingerprint(root: Self.root(of: base), client: client, deadline: deadline, withKey: withKey) }
        if let accepted = requirement.acceptedEngines, !accepted.contains(engine) {
            return .skipped(
                .wrongKind,
                "it is \(engine), not \(accepted.map(\.name).sorted().joined(separator: " or "))")
        }
        if let required = requirement.requiredModel {
            guard models.contains(required) else {
                return .skipped(.modelNotServed, "it serves \(models.joined(separator: ", ")), not \(required)")
            }
            return .answered(Answer(engine: engine, models: models, model: required, note: nil))
        }
        if let preferred = requirement.preferredModel, !models.contains(preferred) {
            return .answered(
                Answer(
                    engine: engine, models: models, model: firstModel,
                    note: "the configured model \(preferred) is not listed; using \(firstModel)"))
        }
        return .answered(Answer(engine: engine, models: models, model: requirement.preferredModel ?? firstModel, note: nil))
    }

    /// `http://host:port/v1` -> `http://host:port`.
    static func root(of base: String) -> String {
        base.hasSuffix("/v1") ? String(base.dropLast(3)) : base
    }

    /// Identifies an engine whose `owned_by` does not name it, from the endpoints only it serves.
    func fingerprint(root: String, client: HTTPClient, deadline: NIODeadline, withKey: Bool) async -> EngineKind {
        let checks: [(path: String, engine: EngineKind, matches: @Sendable (Int, String) -> Bool)] = [
            ("/", .ollama, { _, body in body.contains("Ollama is running") }),
            ("/props", .llamaCpp, { status, body in status == 200 && body.contains("default_generation_settings") }),
            ("/get_server_info", .sglang, { status, _ in status == 200 }),
            ("/info", .tgi, { _, body in body.contains("text-generation-router") }),
            ("/version", .vllm, { status, body in status == 200 && body.contains("\"version\"") }),
        ]
        let found = await withTaskGroup(of: (Int, Bool).self) { group in
            for (index, check) in checks.enumerated() {
                group.addTask {
                    guard case .success(let status, let body) = await get(
                        root + check.path, client: client, deadline: deadline, limit: 64 * 1024, withKey: withKey)
                    else { return (index, false) }
                    return (index, check.matches(status, String(buffer: body)))
                }
            }
            var matched = Set<Int>()
            for await (index, matches) in group where matches { matched.insert(index) }
            return matched
        }
        return checks.indices.first(where: found.contains).map { checks[$0].engine } ?? .openAICompatible
    }

    enum Fetched: Sendable {
        case success(status: Int, body: ByteBuffer)
        case failure(CandidateReport.SkipReason, String)
    }

    /// `GET url`, with the probe's key when `withKey`; the body is read up to `limit` bytes.
    func get(_ url: String, client: HTTPClient, deadline: NIODeadline, limit: Int, withKey: Bool) async -> Fetched {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "accept", value: "application/json")
        if withKey, let apiKey, !apiKey.secret.isEmpty { request.headers.add(name: "authorization", value: "Bearer \(apiKey.secret)") }
        do {
            let response = try await client.execute(request, deadline: deadline)
            var body = ByteBuffer()
            for try await var part in response.body {
                guard body.readableBytes + part.readableBytes <= limit else { break }
                body.writeBuffer(&part)
            }
            return .success(status: Int(response.status.code), body: body)
        } catch {
            return Self.classify(error)
        }
    }

    static func classify(_ error: any Error) -> Fetched {
        if error is CancellationError { return .failure(.failed, cancelledDetail) }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .connectTimeout, .readTimeout: return .failure(.timeout, "no answer within the probe timeout")
            case .cancelled: return .failure(.failed, cancelledDetail)
            default: break
            }
        }
        if isRefused(error) { return .failure(.refused, "connection refused (nothing listens there)") }
        return .failure(.failed, "\(error)")
    }

    private static func isRefused(_ error: any Error) -> Bool {
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.contains { isRefused($0.error) }
        }
        if let error = error as? IOError { return error.errnoCode == ECONNREFUSED }
        return "\(error)".lowercased().contains("refused")
    }
}
