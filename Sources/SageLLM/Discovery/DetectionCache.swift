import Synchronization

/// Detection results per process, each kept for the settings' TTL. Keyed by everything that
/// can change the decision (the settings that matter, the model asked for, the probe timeout,
/// the candidates), so a changed environment is detected afresh.
final class DetectionCache: Sendable {
    struct Key: Hashable, Sendable {
        var baseURL: String?
        var baseURLOrigin: SettingOrigin.Layer
        var chatModel: String?
        var chatAPIKey: APIKey?
        var localAPIKey: APIKey?
        var cloudAPIKey: APIKey?
        var probeLocal: Bool
        var cloudBaseURL: String
        var cloudModel: String
        var connectTimeout: Duration
        var model: String?
        var probeTimeout: Duration
        var options: DetectionOptions

        init(settings: SageSettings, model: String?, probeTimeout: Duration, options: DetectionOptions) {
            baseURL = settings.chatBaseURL
            baseURLOrigin = settings.origin(of: .chatBaseURL).layer
            chatModel = settings.chatModel
            chatAPIKey = settings.chatAPIKey
            localAPIKey = settings.localAPIKey
            cloudAPIKey = settings.cloudAPIKey
            probeLocal = settings.probeLocal
            cloudBaseURL = settings.cloudBaseURL
            cloudModel = settings.cloudModel
            connectTimeout = settings.transport.connectTimeout
            self.model = model
            self.probeTimeout = probeTimeout
            self.options = options
        }
    }

    private struct Entry {
        var decision: EndpointDetector.Decision
        var expires: ContinuousClock.Instant
    }

    private let entries = Mutex<[Key: Entry]>([:])

    /// The cached decision for `key`, if it has not expired.
    func lookup(_ key: Key, now: ContinuousClock.Instant = .now) -> EndpointDetector.Decision? {
        entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard entry.expires > now else {
                entries[key] = nil
                return nil
            }
            return entry.decision
        }
    }

    func store(_ decision: EndpointDetector.Decision, for key: Key, ttl: Duration) {
        guard ttl > .zero else { return }
        entries.withLock { $0[key] = Entry(decision: decision, expires: .now + ttl) }
    }

    /// Drops every result; returns how many there were.
    @discardableResult
    func removeAll() -> Int {
        entries.withLock { entries in
            defer { entries.removeAll() }
            return entries.count
        }
    }
}

/// Clients shared by key (``IntelligentLLMClient/shared(key:model:settings:logger:)``).
final class ClientRegistry: Sendable {
    private let clients = Mutex<[String: IntelligentLLMClient]>([:])

    func client(for key: String) -> IntelligentLLMClient? { clients.withLock { $0[key] } }

    /// Stores `client` unless another was stored for `key` meanwhile; returns the one kept.
    func insert(_ client: IntelligentLLMClient, for key: String) -> IntelligentLLMClient {
        clients.withLock { clients in
            if let existing = clients[key] { return existing }
            clients[key] = client
            return client
        }
    }

    var keys: [String] { clients.withLock { $0.keys.sorted() } }

    /// Drops every client; returns how many there were. A dropped client stays usable by whoever
    /// still holds it and closes its connections when the last holder lets go.
    func removeAll() -> [IntelligentLLMClient] {
        clients.withLock { clients in
            defer { clients.removeAll() }
            return Array(clients.values)
        }
    }
}

/// The per-process state behind `createAuto` and `shared`.
enum AutoDetectionState {
    static let detections = DetectionCache()
    static let clients = ClientRegistry()
}
