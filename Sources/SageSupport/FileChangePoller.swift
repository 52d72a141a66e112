import Foundation

/// Watches a file by its modification date, checked every `interval`: the cluster file's and
/// the keys file's reloads both run on it.
public struct FileChangePoller: Sendable {
    public let path: String
    public let interval: Duration

    public init(path: String, interval: Duration) {
        self.path = path
        self.interval = interval
    }

    /// The file's modification date; nil for a missing or unreadable file (read as "no
    /// change" until it is back).
    public static func modificationDate(_ path: String) -> Date? {
        // A file that is gone or unreadable has no date; the reload that follows a change
        // reports why the file cannot be read, so this error is not needed here.
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }

    /// Calls `changed` each time the date differs from the last one seen (the first is
    /// `since`, taken before the file was first read), until the task is cancelled.
    public func run(since: Date?, _ changed: () async -> Void) async {
        var last = since
        while true {
            do { try await Task.sleep(for: interval) } catch { return }  // cancelled
            let current = Self.modificationDate(path)
            guard current != last else { continue }
            last = current
            await changed()
        }
    }
}
