import Logging
import Synchronization

/// Keeps every log line, message and metadata, as text.
public final class LogCapture: Sendable {
    public init() {}

    private let lines = Mutex<[String]>([])
    public var text: String { lines.withLock { $0.joined(separator: "\n") } }

    public var handler: any LogHandler { Handler(capture: self) }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.lines.withLock { $0.append("\(event.message) \(all)") }
        }
    }
}
