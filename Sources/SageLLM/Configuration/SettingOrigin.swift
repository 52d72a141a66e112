/// Where a setting's value came from, for messages and for `sagellm detect`.
public struct SettingOrigin: Sendable, Hashable, CustomStringConvertible, Encodable {
    public enum Layer: String, Sendable, Hashable, Encodable {
        /// An argument of the call (or a command-line flag).
        case explicit
        case environment
        /// The YAML configuration file.
        case file
        case defaultValue = "default"
    }

    public let layer: Layer
    /// The variable, file key or argument that held the value: `SAGE_CHAT_BASE_URL`,
    /// `/etc/sagellm.yaml: llm.cloud_endpoint`, `chat.base_url`.
    public let name: String

    public init(layer: Layer, name: String) {
        self.layer = layer
        self.name = name
    }

    public var description: String {
        switch layer {
        case .explicit: "argument \(name)"
        case .environment: "environment variable \(name)"
        case .file: "configuration file \(name)"
        case .defaultValue: "default"
        }
    }
}
