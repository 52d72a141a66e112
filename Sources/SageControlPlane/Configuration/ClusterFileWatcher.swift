import Foundation
import Logging

/// Reloads a cluster file when it changes (checked every `interval`), for
/// ``ControlPlaneClient/run()``: added instances join, removed ones drain and leave, changed
/// ones are replaced. A file that no longer reads is logged and the running instances stay as
/// they are. The scheduling policy and routing strategy are fixed at start.
struct ClusterFileWatcher: Sendable {
    let controlPlane: ControlPlaneClient
    let watching: ClusterFileWatching
    var path: String { watching.path }

    init(controlPlane: ControlPlaneClient, watching: ClusterFileWatching) {
        self.controlPlane = controlPlane
        self.watching = watching
    }

    /// Checks the file until the task is cancelled.
    func runUntilCancelled() async {
        var last = watching.loadedVersion
        while true {
            do { try await Task.sleep(for: watching.interval) } catch { return }  // cancelled
            let current = Self.modificationDate(path)
            guard current != last else { continue }
            last = current
            do {
                let changes = try controlPlane.apply(try ClusterConfiguration.load(file: path))
                await controlPlane.closeRetiredClients()  // replaced clients that were idle already
                controlPlane.logger.info(
                    "cluster file reloaded",
                    metadata: [
                        "sage.file": "\(path)", "sage.added": "\(changes.added)", "sage.removed": "\(changes.removed)",
                        "sage.changed": "\(changes.changed)",
                    ])
            } catch {
                controlPlane.logger.error("cluster file not reloaded; the running instances stay", metadata: ["sage.error": "\(error)"])
            }
        }
    }

    static func modificationDate(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date  // a missing file reads as nil: no change
    }
}
