import Logging

/// Decides where requests go, in this order:
/// 1. a configured base URL (argument, environment, or file), used as it is, never replaced by
///    a local engine, and checked once only when asked;
/// 2. local engines, probed concurrently, the first answering one in priority order;
/// 3. the cloud fallback.
struct EndpointDetector: Sendable {
    let settings: SageSettings
    let model: String?
    let probeTimeout: Duration
    let options: DetectionOptions
    let logger: Logger

    /// The decision plus the key to use (kept apart: the detection itself never holds a key).
    struct Decision: Sendable {
        var detection: EndpointDetection
        var apiKey: APIKey?
        /// Set when requests cannot succeed without a key: the message to fail them with.
        var missingKeyMessage: String?
    }

    func decide() async throws(SageLLMError) -> Decision {
        let started = ContinuousClock.now
        var decision: Decision
        if let configured = settings.chatBaseURL {
            decision = try await useConfigured(configured)
        } else if settings.probeLocal, !options.candidates.isEmpty {
            let (local, reports) = await probeLocal()
            decision = local ?? cloudFallback(candidates: reports)
        } else {
            decision = cloudFallback(candidates: [])
        }
        decision.detection.elapsed = ContinuousClock.now - started
        return decision
    }

    init(settings: SageSettings, model: String?, probeTimeout: Duration?, options: DetectionOptions, logger: Logger) {
        self.settings = settings
        self.model = model
        self.probeTimeout = probeTimeout ?? settings.probeTimeout
        self.options = options
        self.logger = logger
    }

    // MARK: 1. A configured endpoint

    private func useConfigured(_ baseURL: String) async throws(SageLLMError) -> Decision {
        let origin = settings.origin(of: .chatBaseURL)
        let source: EndpointDetection.Source =
            switch origin.layer {
            case .explicit, .defaultValue: .explicit
            case .file: .configurationFile
            case .environment: .environment
            }
        let apiKey = settings.chatAPIKey ?? (Self.isLoopback(baseURL) ? settings.localAPIKey : nil)
        var detection = EndpointDetection(
            source: source, engine: .unknown, baseURL: baseURL, model: model ?? settings.chatModel,
            apiKeyConfigured: apiKey != nil,
            reason: "chat.base_url is set by \(origin); a configured endpoint is used as it is, without probing local engines",
            warnings: [], candidates: [], elapsed: .zero, fromCache: false)
        guard options.verifyConfiguredEndpoint else { return Decision(detection: detection, apiKey: apiKey) }

        let prober = EndpointProber(timeout: max(probeTimeout, settings.transport.connectTimeout), apiKey: apiKey, logger: logger)
        let requirement = EndpointProber.Requirement(
            requiredModel: nil, preferredModel: detection.model, acceptedEngines: nil)
        let outcome = await prober.withProbeClient { client in
            await prober.probe(baseURL, client: client, requirement: requirement)
        }
        switch outcome {
        case .answered(let answer):
            detection.engine = answer.engine
            if detection.model == nil { detection.model = answer.model }
            if let note = answer.note { detection.warnings.append(note) }
            detection.reason += "; verified with GET /models"
            return Decision(detection: detection, apiKey: apiKey)
        case .skipped(let reason, let detail):
            var error = SageLLMError(
                code: reason == .timeout ? .timeout : reason == .httpStatus ? .httpStatus : .connectionFailed,
                reason: "the configured endpoint (chat.base_url from \(origin)) failed its check: \(detail). "
                    + "It is not replaced by a local engine: fix it, or unset it to detect one")
            error.endpoint = baseURL + "/models"
            error.field = SettingKey.chatBaseURL.key
            throw error
        }
    }

    // MARK: 2. Local engines

    private func probeLocal() async -> (Decision?, [CandidateReport]) {
        let prober = EndpointProber(timeout: probeTimeout, apiKey: settings.localAPIKey, logger: logger)
        let requirement = EndpointProber.Requirement(
            requiredModel: model, preferredModel: settings.chatModel, acceptedEngines: options.acceptedEngines)
        let (winner, reports) = await prober.probeAll(options.candidates, requirement: requirement)
        for report in reports {
            logger.debug("probe", metadata: ["sage.candidate": "\(report.baseURL)", "sage.outcome": "\(report)"])
        }
        guard let winner else { return (nil, reports) }
        let candidate = options.candidates[winner.index]
        let detection = EndpointDetection(
            source: .localProbe, engine: winner.answer.engine, baseURL: candidate.baseURL, model: winner.answer.model,
            apiKeyConfigured: settings.localAPIKey != nil,
            reason: winner.index == 0
                ? "the first local candidate answered"
                : "the first local candidate in priority order that answered (\(winner.index) before it did not)",
            warnings: winner.answer.note.map { [$0] } ?? [], candidates: reports, elapsed: .zero, fromCache: false)
        return (Decision(detection: detection, apiKey: settings.localAPIKey), reports)
    }

    // MARK: 3. The cloud

    private func cloudFallback(candidates: [CandidateReport]) -> Decision {
        let apiKey = settings.chatAPIKey ?? settings.cloudAPIKey
        var detection = EndpointDetection(
            source: .cloud, engine: .unknown, baseURL: settings.cloudBaseURL,
            model: model ?? settings.chatModel ?? settings.cloudModel, apiKeyConfigured: apiKey != nil,
            reason: settings.probeLocal && !options.candidates.isEmpty
                ? "no endpoint is configured and no local engine answered; using the cloud fallback"
                : "no endpoint is configured and local probing is off; using the cloud fallback",
            warnings: [], candidates: candidates, elapsed: .zero, fromCache: false)
        var missingKeyMessage: String?
        if apiKey == nil {
            let message =
                "the cloud endpoint \(settings.cloudBaseURL) needs an API key: set SAGE_CHAT_API_KEY "
                + "(or DASHSCOPE_API_KEY, or chat.api_key in the configuration file), "
                + "or start a local engine, or set SAGE_CHAT_BASE_URL"
            detection.warnings.append(message)
            logger.warning("no API key for the cloud fallback", metadata: ["sage.endpoint": "\(settings.cloudBaseURL)"])
            missingKeyMessage = message
        }
        return Decision(detection: detection, apiKey: apiKey, missingKeyMessage: missingKeyMessage)
    }

    /// Whether `url` is on this machine: a Unix socket (`unix://`), or a host that is
    /// `localhost`, an IPv4 literal in 127.0.0.0/8, or `[::1]` (see ``BaseURL/isLoopback``).
    static func isLoopback(_ url: String) -> Bool { url.hasPrefix("unix:") || (BaseURL(url)?.isLoopback ?? false) }
}
