import ArgumentParser
import SageLLM

/// The options that say where requests go. Without `--base-url` the endpoint is found by
/// `IntelligentLLMClient.createAuto` (configuration, environment, local engines, cloud).
struct EndpointOptions: ParsableArguments {
    @Option(name: .customLong("base-url"), help: "The API root, e.g. http://127.0.0.1:8000/v1 (default: detected).")
    var baseURL: String?

    @Option(help: "The model (default: configured, else the first the server lists).")
    var model: String?

    @Option(name: .customLong("api-key"), help: "Bearer key, if the server wants one (default: configured).")
    var apiKey: String?

    @Option(name: .customLong("config"), help: "A YAML configuration file (default: $SAGE_CONFIG, ./sagellm.yaml, ~/.config/sagellm/config.yaml).")
    var configFile: String?

    @Option(name: .customLong("probe-timeout"), help: "Seconds each local probe may take (default 1.5).")
    var probeTimeout: Double?

    func validate() throws {
        if let probeTimeout, !(probeTimeout > 0) {
            throw ValidationError("--probe-timeout must be a positive number of seconds, got \(probeTimeout)")
        }
    }

    /// The settings with these flags as explicit values on top of environment and file.
    func settings(_ extra: [String: String] = [:]) async throws(SageLLMError) -> SageSettings {
        var overrides = extra
        overrides[SettingKey.chatBaseURL.key] = baseURL
        overrides[SettingKey.chatModel.key] = model
        overrides[SettingKey.chatAPIKey.key] = apiKey
        if let probeTimeout { overrides[SettingKey.probeTimeout.key] = String(probeTimeout) }
        return try await SageSettings.load(overrides: overrides, configFile: configFile)
    }

    /// Runs `body` with a client for the configured or detected endpoint, then shuts it down.
    /// When `announce` is set and the endpoint was not given by a flag, a line on standard
    /// error says which endpoint was chosen; warnings are always shown.
    func withClient<Result>(
        settings: SageSettings, announce: Bool, _ body: (IntelligentLLMClient) async throws -> Result
    ) async throws -> Result {
        let client = try await IntelligentLLMClient.createAuto(settings: settings, logger: Terminal.quietLogger)
        if announce, let detection = client.detection {
            if detection.source != .explicit {
                Terminal.error(
                    "[\(detection.source.rawValue): \(detection.engine) at \(detection.baseURL), model \(detection.model ?? "<first listed>")]")
            }
            for warning in detection.warnings { Terminal.error("warning: \(warning)") }
        }
        return try await client.use(body)
    }
}
