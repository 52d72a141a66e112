import Logging
import Synchronization

/// Tells which pooled connection carried a request, so that a request whose reused
/// keep-alive connection the server had already closed can go out again at once.
///
/// AsyncHTTPClient names the connection only in its request logger's metadata
/// (`ahc-connection-id`, set when the request is scheduled on a connection and logged at
/// debug level). The probe is that request logger: it keeps the id and emits nothing. If a
/// later AsyncHTTPClient stops logging it, the id stays unknown and no request is ever sent
/// twice: an unknown connection counts as new.
final class ConnectionProbe: Sendable {
    private let pool: UsedConnections
    /// The connection's id and whether it had carried a request before, once known.
    private let seen = Mutex<(id: String, reused: Bool)?>(nil)

    /// A probe for one request on a connection of `pool`.
    init(pool: UsedConnections) { self.pool = pool }

    /// The logger to hand AsyncHTTPClient for one request.
    var logger: Logger {
        var logger = Logger(label: "sagellm.transport.connection") { _ in Handler(probe: self) }
        logger.logLevel = .debug
        return logger
    }

    /// Whether the request went out on a connection that had carried a request before. It is
    /// recorded when AsyncHTTPClient schedules the request on the connection, on its event
    /// loop, so a request that follows on the same connection always finds it recorded.
    var reusedConnection: Bool { seen.withLock { $0?.reused ?? false } }

    fileprivate func note(_ id: String) {
        seen.withLock { seen in
            guard seen == nil else { return }
            seen = (id, pool.wasUsed(id))
        }
    }

    private struct Handler: LogHandler {
        let probe: ConnectionProbe
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            if let id = event.metadata?["ahc-connection-id"] ?? metadata["ahc-connection-id"] { probe.note("\(id)") }
        }
    }
}

/// The connections of one pool that have carried a request (bounded: the oldest half is
/// forgotten past 4096, and a forgotten connection only counts as new).
final class UsedConnections: Sendable {
    private static let capacity = 4096
    private let state = Mutex<(ids: Set<String>, order: [String])>((ids: [], order: []))

    /// Records that `connection` carried a request; returns whether it had carried one before.
    /// An unknown (nil) connection is never "used before".
    @discardableResult
    func wasUsed(_ connection: String?) -> Bool {
        guard let connection else { return false }
        return state.withLock { state in
            if state.ids.contains(connection) { return true }
            if state.order.count >= Self.capacity {
                for old in state.order.prefix(Self.capacity / 2) { state.ids.remove(old) }
                state.order.removeFirst(Self.capacity / 2)
            }
            state.ids.insert(connection)
            state.order.append(connection)
            return false
        }
    }
}
