public import Logging

extension IntelligentLLMClient {
    /// Finds a working endpoint and returns a client for it.
    ///
    /// The order: a configured base URL (the `settings`' explicit values, `SAGE_CHAT_BASE_URL`
    /// or `OPENAI_BASE_URL`, or the YAML file) wins and is used without probing; otherwise local
    /// engines are probed concurrently (vLLM on 8001 and 8000 first, then SGLang, LMDeploy,
    /// Ollama, llama.cpp) and the first in priority order that answers is used; otherwise the
    /// cloud fallback. ``detection`` says what was decided and why.
    ///
    /// ```swift
    /// let client = try await IntelligentLLMClient.createAuto()
    /// print(client.detection!)              // source, engine, endpoint, model, candidates tried
    /// let answer = try await client.chat("Hello")
    /// ```
    ///
    /// - Parameters:
    ///   - model: a model that must be served; local engines that do not list it are skipped.
    ///   - probeTimeout: the time limit of each probe (default `detection.probe_timeout`, 1.5 s).
    ///   - settings: the settings to use; nil loads them (environment, YAML file, defaults).
    ///   - detection: the candidates, verification of a configured endpoint, accepted engines.
    ///   - refresh: detect again even when a cached result is fresh.
    /// - Throws: ``SageLLMError`` for bad settings, or a configured endpoint that fails verification.
    public static func createAuto(
        model: String? = nil, probeTimeout: Duration? = nil, settings: SageSettings? = nil,
        detection options: DetectionOptions = DetectionOptions(), refresh: Bool = false,
        logger: Logger = Logger(label: "sagellm.client")
    ) async throws(SageLLMError) -> IntelligentLLMClient {
        let settings = try await resolve(settings)
        let decision = try await decide(
            model: model, probeTimeout: probeTimeout, settings: settings, options: options, refresh: refresh, logger: logger)
        var configuration = LLMClientConfiguration(
            baseURL: decision.detection.baseURL, model: decision.detection.model, apiKey: decision.apiKey,
            transport: settings.transport, defaultOptions: settings.defaultOptions,
            resilience: settings.resilience(for: decision.detection.baseURL))
        configuration.missingAPIKeyMessage = decision.missingKeyMessage
        let client = try IntelligentLLMClient(configuration: configuration, detection: decision.detection, logger: logger)
        if settings.eagerInit, decision.missingKeyMessage == nil {
            do {
                try await client.warmUp()
            } catch {
                // The client still works once the endpoint answers; the first request will say what is wrong.
                logger.warning(
                    "eager connection pool warm-up failed", metadata: ["sage.endpoint": "\(client.baseURL)", "sage.error": "\(error)"])
            }
        }
        return client
    }

    /// What ``createAuto(model:probeTimeout:settings:detection:refresh:logger:)`` would decide, without making a client.
    public static func detectEndpoint(
        model: String? = nil, probeTimeout: Duration? = nil, settings: SageSettings? = nil,
        detection options: DetectionOptions = DetectionOptions(), refresh: Bool = false,
        logger: Logger = Logger(label: "sagellm.client")
    ) async throws(SageLLMError) -> EndpointDetection {
        let settings = try await resolve(settings)
        return try await decide(
            model: model, probeTimeout: probeTimeout, settings: settings, options: options, refresh: refresh,
            logger: logger
        ).detection
    }

    /// A client shared by `key` across the process, made by ``createAuto(model:probeTimeout:settings:detection:refresh:logger:)``
    /// the first time. The key defaults to the model, else `"default"`.
    public static func shared(
        key: String? = nil, model: String? = nil, settings: SageSettings? = nil,
        logger: Logger = Logger(label: "sagellm.client")
    ) async throws(SageLLMError) -> IntelligentLLMClient {
        let key = key ?? model ?? "default"
        if let client = AutoDetectionState.clients.client(for: key) { return client }
        let client = try await createAuto(model: model, settings: settings, logger: logger)
        return AutoDetectionState.clients.insert(client, for: key)
    }

    /// The keys of the shared clients.
    public static var sharedKeys: [String] { AutoDetectionState.clients.keys }

    /// Forgets the cached detections, and shuts down the shared clients (their connections
    /// close; a holder's next request fails as shut down). Returns how many clients it shut down.
    @discardableResult
    public static func clearCache() async -> Int {
        _ = AutoDetectionState.detections.removeAll()
        let clients = AutoDetectionState.clients.removeAll()
        for client in clients {
            do {
                try await client.shutdown()
            } catch {
                // Already shut down by its holder.
            }
        }
        return clients.count
    }

    /// Probes the local candidates (whatever is configured) and says what is available and what to do.
    public static func checkService(
        settings: SageSettings? = nil, candidates: [ProbeCandidate] = ProbeCandidate.defaultLocal,
        probeTimeout: Duration? = nil, logger: Logger = Logger(label: "sagellm.client")
    ) async throws(SageLLMError) -> ServiceCheck {
        let settings = try await resolve(settings)
        let prober = EndpointProber(
            timeout: probeTimeout ?? settings.probeTimeout, apiKey: settings.localAPIKey, logger: logger)
        let (winner, reports) = await prober.probeAll(candidates, requirement: .init())
        let cloudConfigured = settings.chatAPIKey != nil || settings.cloudAPIKey != nil
        var check = ServiceCheck(
            localAvailable: winner != nil, localEndpoint: winner.map { candidates[$0.index].baseURL },
            localModel: winner?.answer.model, localEngine: winner?.answer.engine, cloudConfigured: cloudConfigured,
            configuredEndpoint: settings.chatBaseURL, recommendedAction: "", candidates: reports)
        check.recommendedAction =
            if let configured = settings.chatBaseURL {
                "Use the configured endpoint \(configured) (set by \(settings.origin(of: .chatBaseURL))); createAuto will not probe."
            } else if let endpoint = check.localEndpoint {
                "Use the local \(check.localEngine ?? .unknown) engine at \(endpoint) (model \(check.localModel ?? "?")); createAuto will pick it."
            } else if cloudConfigured {
                "No local engine answered; createAuto will use the cloud endpoint \(settings.cloudBaseURL) with the configured key."
            } else {
                "No local engine answered and no cloud key is set: start an engine (for example `sagellm simulate --port 8001`, or vLLM on port 8001/8000), or set SAGE_CHAT_API_KEY for \(settings.cloudBaseURL), or set SAGE_CHAT_BASE_URL."
            }
        return check
    }

    private static func resolve(_ settings: SageSettings?) async throws(SageLLMError) -> SageSettings {
        if let settings { return settings }
        return try await SageSettings.load()
    }

    private static func decide(
        model: String?, probeTimeout: Duration?, settings: SageSettings, options: DetectionOptions, refresh: Bool,
        logger: Logger
    ) async throws(SageLLMError) -> EndpointDetector.Decision {
        if let probeTimeout, probeTimeout <= .zero {
            throw .invalidConfiguration(field: "probeTimeout", "the probe timeout must be positive, got \(probeTimeout)")
        }
        let detector = EndpointDetector(
            settings: settings, model: model, probeTimeout: probeTimeout, options: options, logger: logger)
        let key = DetectionCache.Key(
            settings: settings, model: model, probeTimeout: detector.probeTimeout, options: options)
        if !refresh, var cached = AutoDetectionState.detections.lookup(key) {
            cached.detection.fromCache = true
            return cached
        }
        let decision = try await detector.decide()
        AutoDetectionState.detections.store(decision, for: key, ttl: settings.detectionCacheTTL)
        logger.info(
            "endpoint detected",
            metadata: [
                "sage.endpoint": "\(decision.detection.baseURL)", "sage.source": "\(decision.detection.source.rawValue)",
                "sage.engine": "\(decision.detection.engine)",
            ])
        return decision
    }
}
