import class Foundation.ProcessInfo

/// Every setting of the client, resolved from explicit arguments, environment variables, a
/// YAML file and defaults (in that order), through swift-configuration.
///
/// ```swift
/// let settings = try await SageSettings.load()                         // process environment + sagellm.yaml
/// let pinned = try await SageSettings.load(overrides: ["chat.base_url": "http://127.0.0.1:8000/v1"])
/// print(settings.origin(of: .chatBaseURL))                            // e.g. "environment variable SAGE_CHAT_BASE_URL"
/// ```
///
/// Keys, types, defaults and environment names are listed in ``SettingKey/all`` and
/// `Docs/CONFIGURATION.md`. Secrets are ``APIKey``s and never printed.
public struct SageSettings: Sendable, CustomStringConvertible {
    public static let defaultCloudBaseURL = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    public static let defaultCloudModel = "qwen-max"

    public var chatBaseURL: String?
    public var chatModel: String?
    public var chatAPIKey: APIKey?
    public var localAPIKey: APIKey?
    public var probeLocal = true
    public var probeTimeout: Duration = .milliseconds(1500)
    public var detectionCacheTTL: Duration = .seconds(300)
    public var cloudBaseURL = SageSettings.defaultCloudBaseURL
    public var cloudModel = SageSettings.defaultCloudModel
    public var cloudAPIKey: APIKey?
    /// Connect/read/total time limits and the pool size.
    public var transport = TransportConfiguration()
    /// Temperature and max tokens used when a call passes no options.
    public var defaultOptions = ChatOptions()
    /// Retries and backoff (`retry.*`).
    public var retry = RetryPolicy()
    /// Requests per minute as configured (`limits.requests_per_minute`): nil when unset
    /// (see ``resilience(for:)``), 0 for explicitly off.
    public var requestsPerMinute: Int?
    /// Tokens per minute, nil for no limit (`limits.tokens_per_minute`).
    public var tokensPerMinute: Int?
    /// Requests in flight at once, nil for no bound (`limits.max_concurrent`).
    public var maxConcurrent: Int?
    /// Open the pool's connections up front (`http.eager_init`).
    public var eagerInit = false
    /// The YAML file that was read, if any.
    public var configurationFile: String?
    /// Where each setting that is not at its default came from.
    public var origins: [SettingKey: SettingOrigin] = [:]

    /// All defaults; nothing read.
    public init() {}

    /// Where `setting` came from.
    public func origin(of setting: SettingKey) -> SettingOrigin {
        origins[setting] ?? SettingOrigin(layer: .defaultValue, name: setting.key)
    }

    /// Reads the settings.
    ///
    /// - Parameters:
    ///   - overrides: explicit values by YAML key (`"chat.base_url"`); they win over everything.
    ///   - environment: the variables to read; nil reads the process environment.
    ///   - configFile: a YAML file that must exist (a `--config` flag); nil looks at
    ///     `SAGE_CONFIG`, then `./sagellm.yaml`, then `~/.config/sagellm/config.yaml`.
    ///   - defaultFileLocations: replaces those two default locations (tests pass `[]`).
    /// - Throws: ``SageLLMError/Code/invalidConfiguration`` naming the file, the key or
    ///   variable, and what was expected.
    public static func load(
        overrides: [String: String] = [:], environment: [String: String]? = nil, configFile: String? = nil,
        defaultFileLocations: [String]? = nil
    ) async throws(SageLLMError) -> SageSettings {
        let layers = try await ConfigurationLayers.load(
            overrides: overrides, environment: environment ?? ProcessInfo.processInfo.environment,
            configFile: configFile, defaultFileLocations: defaultFileLocations)
        var settings = SageSettings()
        settings.configurationFile = layers.filePath
        var reader = SettingReader(layers: layers)
        settings.chatBaseURL = try reader.url(.chatBaseURL)
        settings.chatModel = try reader.string(.chatModel)
        settings.chatAPIKey = try reader.string(.chatAPIKey).map { APIKey($0) }
        if let temperature = try reader.number(.chatTemperature, range: 0...2) { settings.defaultOptions.temperature = temperature }
        if let maxTokens = try reader.integer(.chatMaxTokens, minimum: 1) { settings.defaultOptions.maxTokens = maxTokens }
        settings.localAPIKey = try reader.string(.localAPIKey).map { APIKey($0) }
        if let probe = try reader.boolean(.probeLocal) { settings.probeLocal = probe }
        if let timeout = try reader.seconds(.probeTimeout) { settings.probeTimeout = timeout }
        if let ttl = try reader.seconds(.detectionCacheTTL, allowZero: true) { settings.detectionCacheTTL = ttl }
        if let url = try reader.url(.cloudBaseURL) { settings.cloudBaseURL = url }
        if let model = try reader.string(.cloudModel) { settings.cloudModel = model }
        settings.cloudAPIKey = try reader.string(.cloudAPIKey).map { APIKey($0) }
        if let timeout = try reader.seconds(.connectTimeout) { settings.transport.connectTimeout = timeout }
        if let timeout = try reader.seconds(.readTimeout) { settings.transport.readTimeout = timeout }
        if let timeout = try reader.seconds(.requestTimeout) { settings.transport.requestTimeout = timeout }
        if let pool = try reader.integer(.poolSize, minimum: 1) { settings.transport.maximumConnectionsPerHost = pool }
        if let engine = try reader.string(.transportEngine) {
            guard let parsed = TransportConfiguration.Engine.named(engine) else {
                var error = SageLLMError.invalidConfiguration(
                    field: SettingKey.transportEngine.key,
                    "\(SettingKey.transportEngine.key) must be one of \(TransportConfiguration.Engine.allCases.map(\.settingName).joined(separator: ", ")), got '\(engine)'")
                error.file = layers.filePath
                throw error
            }
            settings.transport.engine = parsed
        }
        settings.transport.tls.caBundlePath = try reader.string(.caBundle)
        settings.transport.tls.clientCertificatePath = try reader.string(.clientCertificate)
        settings.transport.tls.clientKeyPath = try reader.string(.clientKey)
        if let eager = try reader.boolean(.eagerInit) { settings.eagerInit = eager }
        if let retries = try reader.integer(.maxRetries, minimum: 0) { settings.retry.maxRetries = retries }
        if let delay = try reader.seconds(.retryBaseDelay, allowZero: true) { settings.retry.baseDelay = delay }
        if let delay = try reader.seconds(.retryMaxDelay) { settings.retry.maxDelay = delay }
        if settings.retry.maxDelay < settings.retry.baseDelay {
            var error = SageLLMError.invalidConfiguration(
                field: SettingKey.retryMaxDelay.key,
                "retry.max_delay (\(SageLLMError.format(settings.retry.maxDelay))) must be at least retry.base_delay (\(SageLLMError.format(settings.retry.baseDelay)))")
            error.file = layers.filePath
            throw error
        }
        settings.requestsPerMinute = try reader.integer(.rateLimit, minimum: 0)
        settings.tokensPerMinute = try reader.integer(.tokensPerMinute, minimum: 1)
        settings.maxConcurrent = try reader.integer(.maxConcurrent, minimum: 1)
        settings.origins = reader.origins
        try settings.checkUnvettedFile(layers, home: (environment ?? ProcessInfo.processInfo.environment)["HOME"])
        return settings
    }

    /// A settings file found in the working directory without being named must not send a key
    /// from the environment (or a flag) to a host of its choosing: a checked-out project could
    /// carry one that points `chat.base_url` at a server that collects keys. Such a file may
    /// name a remote endpoint only when the key that would go there comes from the file too
    /// (or there is none); otherwise loading fails and says how to trust the file.
    private func checkUnvettedFile(_ layers: ConfigurationLayers, home: String?) throws(SageLLMError) {
        guard layers.fileIsUnvetted(home: home), let path = layers.filePath else { return }
        let routes: [(url: SettingKey, value: String?, keys: [SettingKey])] = [
            (.chatBaseURL, chatBaseURL, [.chatAPIKey]),
            (.cloudBaseURL, cloudBaseURL, [.chatAPIKey, .cloudAPIKey]),
        ]
        for route in routes {
            guard origin(of: route.url).layer == .file, let url = route.value, !EndpointDetector.isLoopback(url) else { continue }
            // The key that would go there: the first of `keys` that is set.
            guard let key = route.keys.first(where: { origins[$0] != nil }), origin(of: key).layer != .file else { continue }
            var error = SageLLMError.invalidConfiguration(
                field: route.url.key,
                "\(path) sets \(route.url.key) to \(BaseURL.redactingUserInfo(url)) but was found in the working directory, "
                    + "not named; the key from \(origin(of: key)) would be sent there. If you trust this file, name it "
                    + "(--config \(path) or SAGE_CONFIG=\(path))")
            error.file = path
            throw error
        }
    }

    /// The resilience settings for a client of `baseURL`: an unset request rate becomes
    /// ``ResilienceConfiguration/defaultRequestsPerMinute`` for endpoints off this machine and
    /// no limit for local engines; 0 is no limit.
    public func resilience(for baseURL: String) -> ResilienceConfiguration {
        let rate: Int? =
            switch requestsPerMinute {
            case nil: EndpointDetector.isLoopback(baseURL) ? nil : ResilienceConfiguration.defaultRequestsPerMinute
            case 0: nil
            case let value: value
            }
        return ResilienceConfiguration(
            retry: retry, requestsPerMinute: rate, tokensPerMinute: tokensPerMinute, maxConcurrent: maxConcurrent,
            eagerInit: eagerInit)
    }

    public var description: String {
        var parts = ["chatBaseURL: \(chatBaseURL ?? "none")", "chatModel: \(chatModel ?? "none")"]
        parts.append("chatAPIKey: \(chatAPIKey == nil ? "none" : "<redacted>")")
        parts.append("localAPIKey: \(localAPIKey == nil ? "none" : "<redacted>")")
        parts.append("probeLocal: \(probeLocal)")
        parts.append("probeTimeout: \(SageLLMError.format(probeTimeout))")
        parts.append("cloudBaseURL: \(cloudBaseURL)")
        parts.append("cloudModel: \(cloudModel)")
        parts.append("cloudAPIKey: \(cloudAPIKey == nil ? "none" : "<redacted>")")
        parts.append("configurationFile: \(configurationFile ?? "none")")
        return "SageSettings(" + parts.joined(separator: ", ") + ")"
    }
}

/// Reads typed values out of the layers, remembering origins and naming the place of a bad value.
private struct SettingReader {
    let layers: ConfigurationLayers
    var origins: [SettingKey: SettingOrigin] = [:]

    init(layers: ConfigurationLayers) { self.layers = layers }

    private mutating func text(_ setting: SettingKey) throws(SageLLMError) -> ConfigurationLayers.Found? {
        guard let found = try layers.value(for: setting) else { return nil }
        origins[setting] = found.origin
        return found
    }

    private func invalid(_ setting: SettingKey, _ found: ConfigurationLayers.Found, _ expected: String) -> SageLLMError {
        // A secret's value is never repeated back.
        let shown =
            switch setting.kind {
            case .secret: "<redacted>"
            case .url: "'\(BaseURL.redactingUserInfo(found.text))'"
            default: "'\(found.text)'"
            }
        var error = SageLLMError.invalidConfiguration(
            field: setting.key, "\(found.origin) (setting \(setting.key)) must be \(expected), got \(shown)")
        if found.origin.layer == .file { error.file = layers.filePath }
        return error
    }

    mutating func string(_ setting: SettingKey) throws(SageLLMError) -> String? {
        guard let found = try text(setting) else { return nil }
        guard !found.text.isEmpty else { throw invalid(setting, found, "a non-empty string") }
        return found.text
    }

    mutating func url(_ setting: SettingKey) throws(SageLLMError) -> String? {
        guard let found = try text(setting) else { return nil }
        do {
            // A unix:// socket passes here; the transport then asks for the curl engine.
            return try HTTPTransport.normalize(baseURL: found.text, unixSockets: true)
        } catch {
            throw invalid(
                setting, found,
                "an http:// or https:// URL with a host, a port of 1-65535 if any, and no user info, query or fragment (or a unix:///path.sock with the curl transport)")
        }
    }

    mutating func seconds(_ setting: SettingKey, allowZero: Bool = false) throws(SageLLMError) -> Duration? {
        guard let found = try text(setting) else { return nil }
        guard let value = Self.parseSeconds(found.text),
            let duration = OutsideNumber.duration(seconds: value, allowZero: allowZero)
        else {
            throw invalid(
                setting, found,
                (allowZero ? "zero or a positive" : "a positive")
                    + " number of seconds up to \(OutsideNumber.maximumWholeSeconds) (e.g. 1.5, 500ms, 2s, 1m)")
        }
        return duration
    }

    mutating func integer(_ setting: SettingKey, minimum: Int) throws(SageLLMError) -> Int? {
        guard let found = try text(setting) else { return nil }
        guard let value = Int(found.text), value >= minimum else {
            throw invalid(setting, found, "a whole number of at least \(minimum)")
        }
        return value
    }

    mutating func number(_ setting: SettingKey, range: ClosedRange<Double>) throws(SageLLMError) -> Double? {
        guard let found = try text(setting) else { return nil }
        guard let value = Double(found.text), range.contains(value) else {
            throw invalid(setting, found, "a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    mutating func boolean(_ setting: SettingKey) throws(SageLLMError) -> Bool? {
        guard let found = try text(setting) else { return nil }
        switch found.text.lowercased() {
        case "true", "yes", "1", "on": return true
        case "false", "no", "0", "off": return false
        default: throw invalid(setting, found, "true or false")
        }
    }

    /// `1.5`, `1.5s`, `500ms`, `2m` as seconds.
    static func parseSeconds(_ text: String) -> Double? {
        let lower = text.lowercased()
        for (suffix, scale) in [("ms", 0.001), ("s", 1.0), ("m", 60.0)] where lower.hasSuffix(suffix) {
            return Double(lower.dropLast(suffix.count).trimmingWhitespace()).map { $0 * scale }
        }
        return Double(lower)
    }
}
