import Foundation
import SageControlPlane
import SageLLM
import Yams

/// The gateway's API keys as written in a keys file (YAML) or the environment.
///
/// ```yaml
/// keys:
///   - name: team-a                 # what logs and metrics show
///     key: sk-team-a-1234          # or key_sha256: <64 hex digits>, so the file need not hold the key
///     models: [llama-3-8b]         # absent: every model
///     max_priority: HIGH           # the most urgent it may ask for (default CRITICAL)
///     default_priority: NORMAL     # for requests that ask for none (default NORMAL)
///     requests_per_minute: 600
///     tokens_per_minute: 200000
///     max_concurrency: 16
///     admin: false                 # may use the admin API
/// ```
enum KeysFile {
    static let maximumBytes = 1 << 20
    static let maximumLines = 100_000

    /// The keys of the file at `path`. Errors name the file and the entry, never a key.
    static func load(_ path: String) throws(GatewayError) -> [GatewayKey] {
        func fail(_ message: String, field: String = "keys") -> GatewayError {
            GatewayError(.invalidConfiguration, "the keys file \(path) is refused: \(message)", status: 500, field: field)
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw fail("it cannot be read (\((error as NSError).localizedDescription)); check gateway.keys_file or SAGE_GATEWAY_KEYS_FILE")
        }
        if let problem = YAMLLimits.problem(in: text, maximumBytes: maximumBytes, maximumLines: maximumLines) { throw fail(problem) }
        let file: File
        do {
            file = try YAMLDecoder().decode(File.self, from: text)
        } catch let error as DecodingError {
            throw fail(ClusterConfiguration.describe(error, withDetails: false))  // where and what kind, never the value (it may be a key)
        } catch {
            throw fail("not valid YAML: \(YAMLLimits.describeWithoutSource(error, source: text))")
        }
        guard let entries = file.keys else { throw fail("it has no `keys:` list") }
        var keys: [GatewayKey] = []
        var names = Set<String>()
        for (index, entry) in entries.enumerated() {
            let field = "keys[\(index)]"
            guard let name = entry.name, !name.isEmpty else { throw fail("entry \(index + 1) has no name", field: field) }
            guard names.insert(name).inserted else { throw fail("the name '\(name)' is used twice", field: field) }
            let digest: [UInt8]
            switch (entry.key, entry.keySHA256) {
            case (let key?, nil):
                guard key.count >= 8 else { throw fail("key '\(name)' is shorter than 8 characters", field: field + ".key") }
                digest = GatewayKey.digest(of: key)
            case (nil, let hex?):
                guard let parsed = GatewayKey.digest(hex: hex) else {
                    throw fail("key '\(name)': key_sha256 must be 64 hex digits (the SHA-256 of the key)", field: field + ".key_sha256")
                }
                digest = parsed
            default:
                throw fail("key '\(name)' needs exactly one of key and key_sha256", field: field)
            }
            func priority(_ text: String?, _ setting: String, default value: RequestPriority) throws(GatewayError) -> RequestPriority {
                guard let text else { return value }
                guard let priority = RequestPriority(name: text) else {
                    throw fail("key '\(name)': \(setting) '\(text)' is not CRITICAL, HIGH, NORMAL, LOW or BACKGROUND", field: "\(field).\(setting)")
                }
                return priority
            }
            let key = GatewayKey(
                name: name, digest: digest, models: entry.models.map(Set.init),
                maxPriority: try priority(entry.maxPriority, "max_priority", default: .critical),
                defaultPriority: try priority(entry.defaultPriority, "default_priority", default: .normal),
                requestsPerMinute: entry.requestsPerMinute, tokensPerMinute: entry.tokensPerMinute, maxConcurrency: entry.maxConcurrency,
                isAdmin: entry.admin ?? false)
            do {
                try key.validate(field: field)
            } catch {
                throw fail(error.message, field: field)
            }
            keys.append(key)
        }
        try checkDistinct(keys, source: "the keys file \(path)")
        return keys
    }

    /// `SAGE_GATEWAY_API_KEYS` (`name=key,name=key`: keys with every right but admin) and
    /// `SAGE_GATEWAY_ADMIN_KEY` (a key named `admin` that may also use the admin API).
    static func keys(fromEnvironment environment: [String: String]) throws(GatewayError) -> [GatewayKey] {
        var keys: [GatewayKey] = []
        if let list = environment["SAGE_GATEWAY_API_KEYS"] {
            for (index, item) in list.split(separator: ",").enumerated() {
                let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty, parts[1].count >= 8 else {
                    throw GatewayError(
                        .invalidConfiguration,
                        "SAGE_GATEWAY_API_KEYS item \(index + 1) is not name=key with a key of 8 characters or more", status: 500,
                        field: "SAGE_GATEWAY_API_KEYS")
                }
                keys.append(GatewayKey(name: parts[0], key: parts[1]))
            }
        }
        if let admin = environment["SAGE_GATEWAY_ADMIN_KEY"] {
            guard admin.count >= 8 else {
                throw GatewayError(
                    .invalidConfiguration, "SAGE_GATEWAY_ADMIN_KEY is shorter than 8 characters", status: 500, field: "SAGE_GATEWAY_ADMIN_KEY")
            }
            keys.append(GatewayKey(name: "admin", key: admin, isAdmin: true))
        }
        try checkDistinct(keys, source: "SAGE_GATEWAY_API_KEYS and SAGE_GATEWAY_ADMIN_KEY")
        return keys
    }

    /// Names and keys are each used once.
    static func checkDistinct(_ keys: [GatewayKey], source: String) throws(GatewayError) {
        var names = Set<String>()
        var digests = Set<[UInt8]>()
        for key in keys {
            guard names.insert(key.name).inserted else {
                throw GatewayError(.invalidConfiguration, "\(source): the key name '\(key.name)' is used twice", status: 500, field: "keys")
            }
            guard digests.insert(key.digest).inserted else {
                throw GatewayError(
                    .invalidConfiguration, "\(source): key '\(key.name)' is the same key as another one", status: 500, field: "keys")
            }
        }
    }

    private struct File: Decodable {
        var keys: [Entry]?
    }

    private struct Entry: Decodable {
        var name: String?
        var key: String?
        var keySHA256: String?
        var models: [String]?
        var maxPriority: String?
        var defaultPriority: String?
        var requestsPerMinute: Int?
        var tokensPerMinute: Int?
        var maxConcurrency: Int?
        var admin: Bool?

        enum CodingKeys: String, CodingKey {
            case name, key, models, admin
            case keySHA256 = "key_sha256", maxPriority = "max_priority", defaultPriority = "default_priority",
                requestsPerMinute = "requests_per_minute", tokensPerMinute = "tokens_per_minute", maxConcurrency = "max_concurrency"
        }
    }
}
