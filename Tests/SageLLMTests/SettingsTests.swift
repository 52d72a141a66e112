import Foundation
import SageLLM
import SageTesting
import Testing

/// Settings: explicit values over environment over YAML file over defaults, every documented
/// environment name, the seed's `llm:` file, and a clear error for every bad file.
@Suite("Settings")
struct SettingsTests {
    /// Writes `text` to a fresh temporary file and returns its path.
    static func temporaryFile(_ text: String, name: String = "sagellm.yaml") throws -> String {
        let url = try TestFiles.directory("sagellm-settings").appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    static func load(
        _ environment: [String: String] = [:], file: String? = nil, overrides: [String: String] = [:]
    ) async throws -> SageSettings {
        try await SageSettings.load(
            overrides: overrides, environment: environment, configFile: file, defaultFileLocations: [])
    }

    static func loadError(
        _ environment: [String: String] = [:], file: String? = nil, overrides: [String: String] = [:],
        defaults: [String] = []
    ) async -> SageLLMError? {
        await sageError {
            _ = try await SageSettings.load(
                overrides: overrides, environment: environment, configFile: file, defaultFileLocations: defaults)
        }
    }

    @Test func defaultsWithNothingSet() async throws {
        let settings = try await Self.load()
        #expect(settings.chatBaseURL == nil)
        #expect(settings.chatModel == nil)
        #expect(settings.probeLocal)
        #expect(settings.probeTimeout == .milliseconds(1500))
        #expect(settings.cloudBaseURL == "https://dashscope.aliyuncs.com/compatible-mode/v1")
        #expect(settings.cloudModel == "qwen-max")
        #expect(settings.defaultOptions.temperature == 0.7)
        #expect(settings.defaultOptions.maxTokens == 1500)
        #expect(settings.retry == RetryPolicy())
        #expect(settings.requestsPerMinute == nil)
        #expect(settings.resilience(for: "http://127.0.0.1:8000/v1").requestsPerMinute == nil, "no limit for local engines")
        #expect(settings.resilience(for: "https://api.example.com/v1").requestsPerMinute == 60, "60 for a remote API")
        #expect(settings.origin(of: .chatBaseURL).layer == .defaultValue)
    }

    @Test func sageVariablesWinOverOpenAIVariables() async throws {
        let both = try await Self.load([
            "SAGE_CHAT_BASE_URL": "http://sage.example/v1", "OPENAI_BASE_URL": "http://openai.example/v1",
            "SAGE_CHAT_MODEL": "sage-model", "OPENAI_MODEL_NAME": "openai-model",
            "SAGE_CHAT_API_KEY": "sage-key", "OPENAI_API_KEY": "openai-key",
        ])
        #expect(both.chatBaseURL == "http://sage.example/v1")
        #expect(both.chatModel == "sage-model")
        #expect(both.chatAPIKey?.secret == "sage-key")
        #expect(both.origin(of: .chatBaseURL) == SettingOrigin(layer: .environment, name: "SAGE_CHAT_BASE_URL"))

        let openAI = try await Self.load([
            "OPENAI_BASE_URL": "http://openai.example/v1/", "OPENAI_MODEL_NAME": "openai-model", "OPENAI_API_KEY": "openai-key",
        ])
        #expect(openAI.chatBaseURL == "http://openai.example/v1", "a trailing slash is dropped")
        #expect(openAI.chatModel == "openai-model")
        #expect(openAI.chatAPIKey?.secret == "openai-key")

        let empty = try await Self.load(["SAGE_CHAT_BASE_URL": "", "OPENAI_BASE_URL": "http://openai.example/v1"])
        #expect(empty.chatBaseURL == "http://openai.example/v1", "an empty variable counts as unset")
    }

    /// Every environment name the documentation promises is honoured (the key-to-variable mapping
    /// of swift-configuration is lossy, so each name is tested, not assumed).
    @Test(arguments: SettingKey.all.flatMap { setting in setting.environment.map { (setting, $0) } })
    func everyDocumentedEnvironmentVariableIsRead(setting: SettingKey, variable: String) async throws {
        let value =
            if setting == .transportEngine { "swiftnio" } else {
            switch setting.kind {
            case .url: "http://variable.example/v1"
            case .string, .secret: "value-\(variable)"
            case .seconds: "7"
            case .integer: "7"
            case .number: "1.5"
            case .boolean: "false"
            }
            }
        let settings = try await Self.load([variable: value])
        #expect(settings.origin(of: setting) == SettingOrigin(layer: .environment, name: variable))
    }

    @Test func theSeedsLLMVariablesStillWork() async throws {
        let settings = try await Self.load([
            "LLM_CLOUD_ENDPOINT": "https://cloud.example/v1", "LLM_CLOUD_API_KEY": "k", "LLM_TIMEOUT": "30",
            "LLM_MAX_RETRIES": "5", "LLM_RATE_LIMIT": "120",
        ])
        #expect(settings.chatBaseURL == "https://cloud.example/v1")
        #expect(settings.chatAPIKey?.secret == "k")
        #expect(settings.transport.requestTimeout == .seconds(30))
        #expect(settings.retry.maxRetries == 5)
        #expect(settings.requestsPerMinute == 120)
        #expect(settings.localAPIKey == nil)
        #expect(try await Self.load(["VLLM_API_KEY": "v"]).localAPIKey?.secret == "v")
    }

    @Test func yamlFileUnderEnvironmentUnderExplicitValues() async throws {
        let path = try Self.temporaryFile(
            """
            chat:
              base_url: http://file.example/v1
              model: file-model
              temperature: 0.2
            http:
              timeout: 45
              connect_timeout: 500ms
            detection:
              probe_local: false
            """)
        let fileOnly = try await Self.load(file: path)
        #expect(fileOnly.chatBaseURL == "http://file.example/v1")
        #expect(fileOnly.chatModel == "file-model")
        #expect(fileOnly.defaultOptions.temperature == 0.2)
        #expect(fileOnly.transport.requestTimeout == .seconds(45))
        #expect(fileOnly.transport.connectTimeout == .milliseconds(500))
        #expect(!fileOnly.probeLocal)
        #expect(fileOnly.configurationFile == path)
        #expect(fileOnly.origin(of: .chatModel) == SettingOrigin(layer: .file, name: "\(path): chat.model"))

        let layered = try await Self.load(["SAGE_CHAT_MODEL": "env-model", "SAGE_CONFIG": path])
        #expect(layered.chatModel == "env-model", "the environment wins over the file")
        #expect(layered.chatBaseURL == "http://file.example/v1", "what the environment leaves unset comes from the file")

        let explicit = try await Self.load(
            ["SAGE_CHAT_MODEL": "env-model"], file: path, overrides: ["chat.model": "explicit-model"])
        #expect(explicit.chatModel == "explicit-model")
        #expect(explicit.origin(of: .chatModel).layer == .explicit)
    }

    @Test func theSeedsYAMLIsAccepted() async throws {
        let path = try Self.temporaryFile(
            """
            llm:
              cloud_endpoint: https://seed.example/compatible-mode/v1
              cloud_api_key: sk-seed-secret
              timeout: 30
              max_retries: 2
              rate_limit: 60
              pool_size: 20
              max_concurrent: 10
              eager_init: true
            """)
        let settings = try await Self.load(file: path)
        #expect(settings.chatBaseURL == "https://seed.example/compatible-mode/v1")
        #expect(settings.chatAPIKey?.secret == "sk-seed-secret")
        #expect(settings.transport.requestTimeout == .seconds(30))
        #expect(settings.retry.maxRetries == 2)
        #expect(settings.requestsPerMinute == 60)
        #expect(settings.transport.maximumConnectionsPerHost == 20)
        #expect(settings.maxConcurrent == 10)
        #expect(settings.eagerInit)
        let resilience = settings.resilience(for: "http://127.0.0.1:8000/v1")
        #expect(resilience.requestsPerMinute == 60, "a configured rate applies to local engines too")
        #expect(resilience.maxConcurrent == 10)
        #expect(resilience.retry.maxRetries == 2)
        #expect(!"\(settings)".contains("sk-seed-secret"))
        // The new key wins over the seed's alias in the same file.
        let both = try Self.temporaryFile("chat:\n  base_url: http://new.example/v1\nllm:\n  cloud_endpoint: http://old.example/v1\n")
        #expect(try await Self.load(file: both).chatBaseURL == "http://new.example/v1")
    }

    @Test func resilienceSettingsAndTheirLimits() async throws {
        let settings = try await Self.load([
            "SAGE_RATE_LIMIT": "0", "SAGE_TOKENS_PER_MINUTE": "90000", "SAGE_MAX_CONCURRENT": "4",
            "SAGE_RETRY_BASE_DELAY": "250ms", "SAGE_RETRY_MAX_DELAY": "10",
        ])
        let resilience = settings.resilience(for: "https://api.example.com/v1")
        #expect(resilience.requestsPerMinute == nil, "0 turns the limit off, even for a remote API")
        #expect(resilience.tokensPerMinute == 90000)
        #expect(resilience.maxConcurrent == 4)
        #expect(resilience.retry.baseDelay == .milliseconds(250))
        #expect(resilience.retry.maxDelay == .seconds(10))
        for (variable, value) in [("SAGE_MAX_CONCURRENT", "0"), ("SAGE_RATE_LIMIT", "-1"), ("SAGE_TOKENS_PER_MINUTE", "lots")] {
            let error = await sageError { _ = try await Self.load([variable: value]) }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.description.contains(variable) == true, "\(error.map { "\($0)" } ?? "no error")")
        }
        let inverted = await sageError { _ = try await Self.load(["SAGE_RETRY_BASE_DELAY": "5", "SAGE_RETRY_MAX_DELAY": "1"]) }
        #expect(inverted?.field == "retry.max_delay")
    }

    @Test func defaultFileLocationsAreUsedWhenPresent() async throws {
        let path = try Self.temporaryFile("chat:\n  model: from-default-location\n")
        let settings = try await SageSettings.load(environment: [:], defaultFileLocations: ["/nonexistent/sagellm.yaml", path])
        #expect(settings.chatModel == "from-default-location")
        #expect(settings.configurationFile == path)
        let home = try await SageSettings.load(environment: ["HOME": "/nonexistent-home"], defaultFileLocations: nil)
        #expect(home.configurationFile == nil || home.configurationFile == "sagellm.yaml")
    }

    // MARK: Bad configuration

    @Test func aNamedFileThatDoesNotExistIsAnError() async throws {
        let byFlag = await Self.loadError(file: "/nonexistent/dir/sagellm.yaml")
        #expect(byFlag?.code == .invalidConfiguration)
        #expect(byFlag?.file == "/nonexistent/dir/sagellm.yaml")
        #expect(byFlag?.reason.contains("does not exist") == true)
        #expect(byFlag?.reason.contains("--config") == true)
        let byVariable = await Self.loadError(["SAGE_CONFIG": "/nonexistent/other.yaml"])
        #expect(byVariable?.reason.contains("SAGE_CONFIG") == true)
    }

    @Test func aDirectoryIsNotAConfigurationFile() async throws {
        let directory = FileManager.default.temporaryDirectory.path
        let error = await Self.loadError(file: directory)
        #expect(error?.reason.contains("cannot be read") == true)
        #expect(error?.file == directory)
    }

    @Test(arguments: [
        ("chat: [unclosed\n  model: x", "not a valid YAML"),
        ("- just\n- a list\n", "not a valid YAML"),
        ("\"text\"", "not a valid YAML"),
    ])
    func textThatIsNotAYAMLMappingIsAnError(text: String, expected: String) async throws {
        let path = try Self.temporaryFile(text)
        let error = await Self.loadError(file: path)
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.file == path)
        #expect(error?.reason.contains(expected) == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        ("http:\n  timeout: -3\n", "http.timeout", "positive number of seconds", "'-3'"),
        ("http:\n  timeout: soon\n", "http.timeout", "positive number of seconds", "'soon'"),
        ("http:\n  timeout: [1, 2]\n", "http.timeout", "not a list or mapping", "http.timeout"),
        ("llm:\n  timeout: 0\n", "http.timeout", "positive number of seconds", "llm.timeout"),
        ("chat:\n  base_url: ftp://files.example/v1\n", "chat.base_url", "http:// or https://", "ftp://"),
        ("chat:\n  base_url: localhost:8000\n", "chat.base_url", "http:// or https://", "localhost:8000"),
        ("chat:\n  temperature: 3\n", "chat.temperature", "from 0.0 to 2.0", "'3'"),
        ("http:\n  pool_size: 0\n", "http.pool_size", "at least 1", "'0'"),
        ("retry:\n  max_retries: -1\n", "retry.max_retries", "at least 0", "'-1'"),
        ("detection:\n  probe_local: maybe\n", "detection.probe_local", "true or false", "'maybe'"),
    ])
    func aWrongValueNamesTheFileTheKeyAndWhatWasExpected(
        text: String, key: String, expected: String, shown: String
    ) async throws {
        let path = try Self.temporaryFile(text)
        let error = try #require(await Self.loadError(file: path))
        #expect(error.code == .invalidConfiguration)
        #expect(error.field == key)
        #expect(error.file == path)
        #expect(error.reason.contains(path))
        #expect(error.reason.contains(expected), "\(error)")
        #expect(error.reason.contains(shown), "\(error)")
    }

    @Test func aWrongEnvironmentValueNamesTheVariable() async throws {
        let error = try #require(await Self.loadError(["LLM_TIMEOUT": "-1"]))
        #expect(error.field == "http.timeout")
        #expect(error.reason.contains("environment variable LLM_TIMEOUT"))
        #expect(error.file == nil)
    }

    @Test func unknownExplicitKeysAreErrors() async throws {
        let error = try #require(await Self.loadError(overrides: ["chat.baseurl": "http://x/v1"]))
        #expect(error.field == "chat.baseurl")
        #expect(error.reason.contains("chat.base_url"), "the message lists the known keys")
    }

    @Test func secretsAreNeverShown() async throws {
        let path = try Self.temporaryFile("chat:\n  api_key: \"\"\n")
        let error = try #require(await Self.loadError(file: path))
        #expect(error.reason.contains("<redacted>"))
        let settings = try await Self.load(["SAGE_CHAT_API_KEY": "sk-never-shown", "VLLM_API_KEY": "sk-local-never"])
        #expect(!"\(settings)".contains("sk-never-shown"))
        #expect(!"\(settings)".contains("sk-local-never"))
    }

    /// `Docs/CONFIGURATION.md` lists every key and every environment name.
    @Test func theDocumentationListsEverySetting() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Docs/CONFIGURATION.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for setting in SettingKey.all {
            #expect(text.contains("`\(setting.key)`"), "Docs/CONFIGURATION.md does not document \(setting.key)")
            for name in setting.environment + setting.fileAliases {
                #expect(text.contains("`\(name)`"), "Docs/CONFIGURATION.md does not mention \(name)")
            }
        }
    }
}
