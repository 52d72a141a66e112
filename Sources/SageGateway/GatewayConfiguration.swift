import Foundation
import Yams

/// The gateway's own settings: where it listens, the body limit and how long it drains. From
/// the `gateway:` section of the cluster file, then the environment (`SAGE_GATEWAY_*`), then
/// the command line, each overriding the one before.
public struct GatewayConfiguration: Sendable, Hashable {
    public var host: String
    /// 0 picks a free port.
    public var port: Int
    /// Request bodies over this are refused with 413.
    public var maximumBodyBytes: Int
    /// After SIGTERM, how long requests in flight may take to finish before they are ended.
    public var drainTimeout: Duration
    /// Model names clients may use for a model of the fleet (alias: served model); the
    /// request's `model` is rewritten before it goes on, and `/v1/models` lists the aliases.
    public var modelAliases: [String: String] = [:]

    public init(host: String = "127.0.0.1", port: Int = 8080, maximumBodyBytes: Int = 4 * 1024 * 1024, drainTimeout: Duration = .seconds(30)) {
        self.host = host
        self.port = port
        self.maximumBodyBytes = maximumBodyBytes
        self.drainTimeout = drainTimeout
    }

    static let maximumDrainSeconds = 3_600
    static let largestBody = 1 << 30

    public func validate() throws(GatewayError) {
        func fail(_ field: String, _ message: String) -> GatewayError { GatewayError(.invalidConfiguration, message, status: 500, field: field) }
        if host.isEmpty { throw fail("gateway.host", "the host is empty; use 127.0.0.1, 0.0.0.0 or a name") }
        if !(0...65_535).contains(port) { throw fail("gateway.port", "the port must be 0-65535, got \(port)") }
        if !(1...Self.largestBody).contains(maximumBodyBytes) {
            throw fail("gateway.max_body_bytes", "the body limit must be 1-\(Self.largestBody) bytes, got \(maximumBodyBytes)")
        }
        for (alias, model) in modelAliases where alias.isEmpty || model.isEmpty || alias == model {
            throw fail("gateway.model_aliases", "an alias and its model must be non-empty and different, got '\(alias)': '\(model)'")
        }
        if drainTimeout < .zero || drainTimeout > .seconds(Self.maximumDrainSeconds) {
            throw fail("gateway.drain_timeout_seconds", "the drain timeout must be 0-\(Self.maximumDrainSeconds) seconds, got \(drainTimeout)")
        }
    }

    /// The `gateway:` section of a cluster file over `self` (an absent section changes nothing).
    public func applying(clusterFile path: String) throws(GatewayError) -> GatewayConfiguration {
        struct File: Decodable {
            struct Section: Decodable {
                var host: String?
                var port: Int?
                var maxBodyBytes: Int?
                var drainTimeoutSeconds: Double?
                var modelAliases: [String: String]?
                enum CodingKeys: String, CodingKey {
                    case host, port
                    case maxBodyBytes = "max_body_bytes"
                    case drainTimeoutSeconds = "drain_timeout_seconds"
                    case modelAliases = "model_aliases"
                }
            }
            var gateway: Section?
        }
        let section: File.Section?
        do {
            // The control plane has read this file already, within its size limits.
            let text = try String(contentsOfFile: path, encoding: .utf8)
            section = try YAMLDecoder().decode(File.self, from: text).gateway
        } catch {
            throw GatewayError(.invalidConfiguration, "the gateway section of \(path) is wrong: \(error)", status: 500, field: "gateway")
        }
        guard let section else { return self }
        var configured = self
        if let host = section.host { configured.host = host }
        if let port = section.port { configured.port = port }
        if let bytes = section.maxBodyBytes { configured.maximumBodyBytes = bytes }
        if let aliases = section.modelAliases { configured.modelAliases = aliases }
        if let seconds = section.drainTimeoutSeconds {
            configured.drainTimeout = try Self.seconds(seconds, field: "gateway.drain_timeout_seconds")
        }
        try configured.validate()
        return configured
    }

    /// `SAGE_GATEWAY_HOST`, `SAGE_GATEWAY_PORT`, `SAGE_GATEWAY_MAX_BODY_BYTES` and
    /// `SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS` over `self`.
    public func applying(environment: [String: String]) throws(GatewayError) -> GatewayConfiguration {
        var configured = self
        func integer(_ name: String) throws(GatewayError) -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw GatewayError(.invalidConfiguration, "\(name)='\(text)' is not a whole number", status: 500, field: name)
            }
            return value
        }
        if let host = environment["SAGE_GATEWAY_HOST"] { configured.host = host }
        if let port = try integer("SAGE_GATEWAY_PORT") { configured.port = port }
        if let bytes = try integer("SAGE_GATEWAY_MAX_BODY_BYTES") { configured.maximumBodyBytes = bytes }
        if let text = environment["SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS"] {
            guard let seconds = Double(text.trimmingCharacters(in: .whitespaces)) else {
                throw GatewayError(
                    .invalidConfiguration, "SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS='\(text)' is not a number", status: 500,
                    field: "SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS")
            }
            configured.drainTimeout = try Self.seconds(seconds, field: "SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS")
        }
        try configured.validate()
        return configured
    }

    /// Seconds (of a drain timeout) as a duration, refused when not a number in 0...3,600;
    /// `field` names the setting in the error.
    public static func seconds(_ value: Double, field: String) throws(GatewayError) -> Duration {
        guard value.isFinite, (0...Double(maximumDrainSeconds)).contains(value), let milliseconds = Int(exactly: (value * 1000).rounded())
        else {
            throw GatewayError(.invalidConfiguration, "\(field) must be 0-\(maximumDrainSeconds) seconds, got \(value)", status: 500, field: field)
        }
        return .milliseconds(milliseconds)
    }
}
