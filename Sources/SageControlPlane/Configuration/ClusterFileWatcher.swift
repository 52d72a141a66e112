import Foundation
import Logging
import SageSupport

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
        await FileChangePoller(path: path, interval: watching.interval).run(since: watching.loadedVersion) {
            do {
                try await controlPlane.reloadClusterFile()
            } catch {
                controlPlane.logger.error("cluster file not reloaded; the running instances stay", metadata: ["sage.error": "\(error)"])
            }
        }
    }
}

extension ControlPlaneClient {
    /// Reads the cluster file again and brings the instances in line with it (as the watcher
    /// does when the file changes): added instances join, removed ones drain and leave,
    /// changed ones are replaced. Returns what changed; on an error nothing changes.
    @discardableResult
    public func reloadClusterFile() async throws(ControlPlaneError) -> (added: [String], removed: [String], changed: [String]) {
        guard let path = clusterFile?.path else {
            throw ControlPlaneError(.invalidConfiguration, "this control plane was not made from a cluster file; there is nothing to reload")
        }
        let changes = try apply(try ClusterConfiguration.load(file: path))
        await closeRetiredClients()  // replaced clients that were idle already
        logger.info(
            "cluster file reloaded",
            metadata: [
                "sage.file": "\(path)", "sage.added": "\(changes.added)", "sage.removed": "\(changes.removed)",
                "sage.changed": "\(changes.changed)",
            ])
        return changes
    }
}
