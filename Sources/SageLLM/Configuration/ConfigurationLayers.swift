import Configuration
import struct Foundation.FileAttributeKey
import class Foundation.FileManager
import struct Foundation.ObjCBool
import SystemPackage

/// The swift-configuration providers behind ``SageSettings``, in precedence order:
/// explicit arguments, environment variables, the YAML file. Defaults come last, from
/// ``SettingKey``.
///
/// Each layer is asked under its own names for a setting (the YAML key and its aliases, or
/// each environment variable in turn), so the lossy key-to-variable mapping never decides a
/// name: ``SettingKey/environment`` lists them exactly.
struct ConfigurationLayers: Sendable {
    let arguments: InMemoryProvider
    let environment: EnvironmentVariablesProvider
    let file: FileProvider<YAMLSnapshot>?
    /// The file read, if any.
    let filePath: String?
    /// Whether the file was named (`--config`, `SAGE_CONFIG`) rather than found in a default place.
    let fileWasNamed: Bool

    /// Whether the file was found in the working directory (or another default place outside
    /// the user's own `~/.config`) without being named: such a file may have come with a
    /// checked-out project, so it is not trusted to say where the environment's keys go.
    func fileIsUnvetted(home: String?) -> Bool {
        guard let filePath, !fileWasNamed else { return false }
        if let home, filePath.hasPrefix(home + "/.config/") { return false }
        return true
    }

    /// A value as text and where it came from.
    struct Found {
        var text: String
        var origin: SettingOrigin
    }

    static func load(
        overrides: [String: String], environment: [String: String], configFile: String?,
        defaultFileLocations: [String]?
    ) async throws(SageLLMError) -> ConfigurationLayers {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, value) in overrides {
            guard let setting = SettingKey.named(key) else {
                throw .invalidConfiguration(
                    field: key,
                    "unknown setting '\(key)'; known settings: \(SettingKey.all.map(\.key).joined(separator: ", "))")
            }
            values[AbsoluteConfigKey(setting.key.split(separator: ".").map(String.init))] = ConfigValue(
                .string(value), isSecret: setting.kind == .secret)
        }
        let secretVariables = Set(SettingKey.all.filter { $0.kind == .secret }.flatMap(\.environment))
        let environmentProvider = EnvironmentVariablesProvider(
            environmentVariables: environment, secretsSpecifier: .specific(secretVariables))

        let located = try locateFile(configFile: configFile, environment: environment, defaults: defaultFileLocations)
        let path = located?.path
        var fileProvider: FileProvider<YAMLSnapshot>?
        if let path {
            let text = try readWithinLimits(path)
            let secretKeys = Set(SettingKey.all.filter { $0.kind == .secret }.flatMap { [$0.key] + $0.fileAliases })
            do {
                fileProvider = try await FileProvider<YAMLSnapshot>(
                    parsingOptions: .init(secretsSpecifier: .specific(secretKeys)),
                    filePath: FilePath(path))
            } catch {
                // The parser's message quotes the offending line, which may hold a key: it is
                // left out.
                var failure = SageLLMError.invalidConfiguration(
                    field: "file",
                    "the configuration file \(path) is not a valid YAML mapping of settings: "
                        + "\(YAMLLimits.describeWithoutSource(error, source: text).trimmingSuffix(".")). "
                        + "Fix the file, or point SAGE_CONFIG / --config at another one.")
                failure.file = path
                throw failure
            }
        }
        return ConfigurationLayers(
            arguments: InMemoryProvider(name: "arguments", values: values), environment: environmentProvider,
            file: fileProvider, filePath: path, fileWasNamed: located?.named ?? false)
    }

    /// The most a settings file may hold; a few dozen keys are all there are.
    static let maximumFileBytes = 256 * 1024
    static let maximumFileLines = 5_000

    /// The file's text, refused when it is too large or could expand without bound.
    private static func readWithinLimits(_ path: String) throws(SageLLMError) -> String {
        func refuse(_ reason: String) -> SageLLMError {
            var failure = SageLLMError.invalidConfiguration(
                field: "file", "the configuration file \(path) is refused: \(reason)")
            failure.file = path
            return failure
        }
        let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int  // unreadable: caught below
        if let size, size > maximumFileBytes { throw refuse("it is \(size) bytes; at most \(maximumFileBytes) are read") }
        guard let data = FileManager.default.contents(atPath: path) else { throw refuse("it cannot be read") }
        let text = String(decoding: data, as: UTF8.self)
        if let problem = YAMLLimits.problem(in: text, maximumBytes: maximumFileBytes, maximumLines: maximumFileLines) {
            throw refuse(problem)
        }
        return text
    }

    /// The YAML file to read: `configFile` (`--config`), else `SAGE_CONFIG`, else the first
    /// default location that exists (`./sagellm.yaml`, `~/.config/sagellm/config.yaml`).
    /// A named file must exist and be readable; a default one may be absent.
    static func locateFile(configFile: String?, environment: [String: String], defaults: [String]?)
        throws(SageLLMError) -> (path: String, named: Bool)?
    {
        let files = FileManager.default
        let named: (path: String, by: String)? =
            if let configFile, !configFile.isEmpty { (configFile, "--config") }
            else if let fromEnvironment = environment["SAGE_CONFIG"], !fromEnvironment.isEmpty {
                (fromEnvironment, "SAGE_CONFIG")
            } else { nil }
        if let named {
            var isDirectory: ObjCBool = false
            guard files.fileExists(atPath: named.path, isDirectory: &isDirectory) else {
                var error = SageLLMError.invalidConfiguration(
                    field: named.by, "the configuration file \(named.path) (named by \(named.by)) does not exist")
                error.file = named.path
                throw error
            }
            guard !isDirectory.boolValue, files.isReadableFile(atPath: named.path) else {
                var error = SageLLMError.invalidConfiguration(
                    field: named.by,
                    "the configuration file \(named.path) (named by \(named.by)) cannot be read: "
                        + (isDirectory.boolValue ? "it is a directory" : "permission denied"))
                error.file = named.path
                throw error
            }
            return (named.path, true)
        }
        let candidates =
            defaults ?? ["sagellm.yaml"] + (environment["HOME"].map { ["\($0)/.config/sagellm/config.yaml"] } ?? [])
        for candidate in candidates where files.fileExists(atPath: candidate) {
            guard files.isReadableFile(atPath: candidate) else {
                var error = SageLLMError.invalidConfiguration(
                    field: "file", "the configuration file \(candidate) exists but cannot be read")
                error.file = candidate
                throw error
            }
            return (candidate, false)
        }
        return nil
    }

    /// The first value for `setting`: argument, then each environment variable, then the
    /// YAML key and its aliases.
    func value(for setting: SettingKey) throws(SageLLMError) -> Found? {
        let isSecret = setting.kind == .secret
        if let text = try lookup(arguments, setting.key, isSecret: isSecret, setting: setting, where: "argument \(setting.key)") {
            return Found(text: text, origin: SettingOrigin(layer: .explicit, name: setting.key))
        }
        for variable in setting.environment {
            // Components joined by "_" and upper-cased give back exactly this name.
            let key = variable.lowercased().split(separator: "_").map(String.init).joined(separator: ".")
            if let text = try lookup(
                environment, key, isSecret: isSecret, setting: setting, where: "environment variable \(variable)"),
                !text.isEmpty
            {
                return Found(text: text, origin: SettingOrigin(layer: .environment, name: variable))
            }
        }
        if let file, let filePath {
            for key in [setting.key] + setting.fileAliases {
                if let text = try lookup(
                    file, key, isSecret: isSecret, setting: setting, where: "\(filePath): \(key)", file: filePath)
                {
                    return Found(text: text, origin: SettingOrigin(layer: .file, name: "\(filePath): \(key)"))
                }
            }
        }
        return nil
    }

    private func lookup(
        _ provider: some ConfigProvider, _ key: String, isSecret: Bool, setting: SettingKey, where place: String,
        file: String? = nil
    ) throws(SageLLMError) -> String? {
        let absolute = AbsoluteConfigKey(key.split(separator: ".").map(String.init))
        do {
            guard let value = try provider.value(forKey: absolute, type: .string).value else { return nil }
            guard case .string(let text) = value.content else { return nil }
            return text.trimmingWhitespace()
        } catch {
            var failure = SageLLMError.invalidConfiguration(
                field: setting.key,
                "\(place) must be a single \(setting.kind.expected), not a list or mapping")
            failure.file = file
            throw failure
        }
    }
}

extension SettingKey.Kind {
    /// What a value of this kind looks like, for messages.
    var expected: String {
        switch self {
        case .string: "string"
        case .url: "http:// or https:// URL"
        case .secret: "string (an API key)"
        case .seconds: "number of seconds (e.g. 1.5, 500ms, 2s)"
        case .integer: "whole number"
        case .number: "number"
        case .boolean: "true or false"
        }
    }
}
