/// One setting of the client: its key in a YAML file (and in ``SageSettings/load(overrides:environment:configFile:defaultFileLocations:)``
/// overrides), the environment variables that set it, its type and its default.
///
/// This table is the single source of truth: loading, secrecy and `Docs/CONFIGURATION.md`
/// (checked by a test) all follow it.
public struct SettingKey: Sendable, Hashable, CustomStringConvertible {
    /// How a value is read.
    public enum Kind: String, Sendable {
        case string
        /// An `http://` or `https://` URL.
        case url
        /// A secret string (an API key): redacted wherever it is shown.
        case secret
        /// Seconds as a number (`1.5`), or with a unit (`500ms`, `2s`, `1m`).
        case seconds
        case integer
        case number
        /// `true`/`false` (also `yes`/`no`, `1`/`0`).
        case boolean
    }

    /// The YAML key, dot-separated (`chat.base_url`).
    public let key: String
    public let kind: Kind
    /// Environment variables that set it, first found wins.
    public let environment: [String]
    /// Older YAML keys still accepted (the seed's `llm:` section), after ``key``.
    public let fileAliases: [String]
    /// The default, as text for the documentation ("none" when unset).
    public let defaultText: String
    /// What it does, in one sentence.
    public let summary: String

    public var description: String { key }
}

extension SettingKey {
    public static let chatBaseURL = SettingKey(
        key: "chat.base_url", kind: .url, environment: ["SAGE_CHAT_BASE_URL", "OPENAI_BASE_URL", "LLM_CLOUD_ENDPOINT"],
        fileAliases: ["llm.cloud_endpoint"], defaultText: "none",
        summary: "The endpoint to use (including `/v1`). When set, it wins over every local engine.")
    public static let chatModel = SettingKey(
        key: "chat.model", kind: .string, environment: ["SAGE_CHAT_MODEL", "OPENAI_MODEL_NAME"],
        fileAliases: ["llm.model"], defaultText: "none",
        summary: "The model to ask for; without it the endpoint's first listed model is used.")
    public static let chatAPIKey = SettingKey(
        key: "chat.api_key", kind: .secret, environment: ["SAGE_CHAT_API_KEY", "OPENAI_API_KEY", "LLM_CLOUD_API_KEY"],
        fileAliases: ["llm.cloud_api_key"], defaultText: "none",
        summary: "The API key for the configured endpoint and the cloud fallback.")
    public static let chatTemperature = SettingKey(
        key: "chat.temperature", kind: .number, environment: ["SAGE_CHAT_TEMPERATURE"], fileAliases: [],
        defaultText: "0.7", summary: "Default sampling temperature.")
    public static let chatMaxTokens = SettingKey(
        key: "chat.max_tokens", kind: .integer, environment: ["SAGE_CHAT_MAX_TOKENS"], fileAliases: [],
        defaultText: "1500", summary: "Default limit on generated tokens.")
    public static let localAPIKey = SettingKey(
        key: "local.api_key", kind: .secret, environment: ["VLLM_API_KEY", "SAGE_LOCAL_API_KEY"], fileAliases: [],
        defaultText: "none", summary: "The API key sent to local engines found by probing (vLLM's `--api-key`).")
    public static let probeLocal = SettingKey(
        key: "detection.probe_local", kind: .boolean, environment: ["SAGE_PROBE_LOCAL"], fileAliases: [],
        defaultText: "true", summary: "Whether `createAuto` looks for local engines before the cloud fallback.")
    public static let probeTimeout = SettingKey(
        key: "detection.probe_timeout", kind: .seconds, environment: ["SAGE_PROBE_TIMEOUT"], fileAliases: [],
        defaultText: "1.5", summary: "Time limit for each local probe; probes run concurrently.")
    public static let detectionCacheTTL = SettingKey(
        key: "detection.cache_ttl", kind: .seconds, environment: ["SAGE_DETECTION_CACHE_TTL"], fileAliases: [],
        defaultText: "300", summary: "How long a detection result is reused; 0 turns the cache off.")
    public static let cloudBaseURL = SettingKey(
        key: "cloud.base_url", kind: .url, environment: ["SAGE_CLOUD_BASE_URL"], fileAliases: [],
        defaultText: "https://dashscope.aliyuncs.com/compatible-mode/v1",
        summary: "The fallback endpoint when nothing is configured and no local engine answers.")
    public static let cloudModel = SettingKey(
        key: "cloud.model", kind: .string, environment: ["SAGE_CLOUD_MODEL"], fileAliases: [], defaultText: "qwen-max",
        summary: "The fallback endpoint's model (unless `chat.model` is set).")
    public static let cloudAPIKey = SettingKey(
        key: "cloud.api_key", kind: .secret, environment: ["SAGE_CLOUD_API_KEY", "DASHSCOPE_API_KEY"], fileAliases: [],
        defaultText: "none", summary: "The fallback endpoint's key when `chat.api_key` is not set.")
    public static let connectTimeout = SettingKey(
        key: "http.connect_timeout", kind: .seconds, environment: ["SAGE_CONNECT_TIMEOUT"], fileAliases: [],
        defaultText: "5", summary: "Time to open a connection.")
    public static let readTimeout = SettingKey(
        key: "http.read_timeout", kind: .seconds, environment: ["SAGE_READ_TIMEOUT"], fileAliases: [],
        defaultText: "120", summary: "Longest silence while waiting for response bytes.")
    public static let requestTimeout = SettingKey(
        key: "http.timeout", kind: .seconds, environment: ["SAGE_TIMEOUT", "LLM_TIMEOUT"], fileAliases: ["llm.timeout"],
        defaultText: "600", summary: "Total time for one request, streamed body included.")
    public static let poolSize = SettingKey(
        key: "http.pool_size", kind: .integer, environment: ["SAGE_POOL_SIZE", "LLM_POOL_SIZE"],
        fileAliases: ["llm.pool_size"], defaultText: "64", summary: "Pooled connections per host.")
    public static let transportEngine = SettingKey(
        key: "http.transport", kind: .string, environment: ["SAGE_HTTP_TRANSPORT"], fileAliases: ["transport"],
        defaultText: "automatic",
        summary: "What moves the bytes: `automatic` (SwiftNIO's HTTP/1.1 for http://, AsyncHTTPClient for https://), `asynchttpclient`, `swiftnio`, or `curl` (libcurl: proxies from the environment, mTLS, HTTP/2, Unix sockets; needs a build with `--traits Curl`).")
    public static let caBundle = SettingKey(
        key: "http.ca_bundle", kind: .string, environment: ["SAGE_CA_BUNDLE"], fileAliases: [],
        defaultText: "the system's", summary: "A PEM file of the certificate authorities to trust for https (the `curl` transport).")
    public static let clientCertificate = SettingKey(
        key: "http.client_certificate", kind: .string, environment: ["SAGE_CLIENT_CERT"], fileAliases: [],
        defaultText: "none", summary: "A PEM client certificate for mutual TLS (the `curl` transport).")
    public static let clientKey = SettingKey(
        key: "http.client_key", kind: .string, environment: ["SAGE_CLIENT_KEY"], fileAliases: [],
        defaultText: "none", summary: "The client certificate's PEM private key (the `curl` transport).")
    public static let eagerInit = SettingKey(
        key: "http.eager_init", kind: .boolean, environment: ["SAGE_EAGER_INIT"], fileAliases: ["llm.eager_init"],
        defaultText: "false",
        summary: "Open the pool's connections when `createAuto` makes the client, instead of on demand.")
    public static let maxRetries = SettingKey(
        key: "retry.max_retries", kind: .integer, environment: ["SAGE_MAX_RETRIES", "LLM_MAX_RETRIES"],
        fileAliases: ["llm.max_retries"], defaultText: "3",
        summary: "Retries after the first attempt (0 turns retrying off). Only connection failures, timeouts before any response byte, 408, 429 and 5xx are retried.")
    public static let retryBaseDelay = SettingKey(
        key: "retry.base_delay", kind: .seconds, environment: ["SAGE_RETRY_BASE_DELAY"], fileAliases: [],
        defaultText: "1", summary: "The first backoff; each further one doubles, with 20% jitter. A `Retry-After` wins.")
    public static let retryMaxDelay = SettingKey(
        key: "retry.max_delay", kind: .seconds, environment: ["SAGE_RETRY_MAX_DELAY"], fileAliases: [],
        defaultText: "60", summary: "No backoff (nor `Retry-After` wait) is longer than this.")
    public static let rateLimit = SettingKey(
        key: "limits.requests_per_minute", kind: .integer, environment: ["SAGE_RATE_LIMIT", "LLM_RATE_LIMIT"],
        fileAliases: ["llm.rate_limit"], defaultText: "60 off this machine, none on it",
        summary: "Requests per minute, evenly spaced (a token bucket); 0 turns the limit off. Unset: 60 for endpoints that are not on this machine (cloud APIs), no limit for local engines.")
    public static let tokensPerMinute = SettingKey(
        key: "limits.tokens_per_minute", kind: .integer, environment: ["SAGE_TOKENS_PER_MINUTE"],
        fileAliases: ["llm.tokens_per_minute"], defaultText: "none",
        summary: "Prompt plus generated tokens per minute (estimated before, settled by the usage report after); unset means no limit.")
    public static let maxConcurrent = SettingKey(
        key: "limits.max_concurrent", kind: .integer, environment: ["SAGE_MAX_CONCURRENT", "LLM_MAX_CONCURRENT"],
        fileAliases: ["llm.max_concurrent"], defaultText: "none",
        summary: "Requests in flight at once; more wait in a fair FIFO queue. Unset means no bound beyond the pool.")

    /// Every setting, in documentation order.
    public static let all: [SettingKey] = [
        chatBaseURL, chatModel, chatAPIKey, chatTemperature, chatMaxTokens, localAPIKey,
        probeLocal, probeTimeout, detectionCacheTTL, cloudBaseURL, cloudModel, cloudAPIKey,
        connectTimeout, readTimeout, requestTimeout, poolSize, transportEngine, caBundle, clientCertificate, clientKey, eagerInit, maxRetries, retryBaseDelay, retryMaxDelay,
        rateLimit, tokensPerMinute, maxConcurrent,
    ]

    /// The setting with YAML key `key`, if there is one.
    public static func named(_ key: String) -> SettingKey? { all.first { $0.key == key } }
}
