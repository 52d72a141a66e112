import Foundation
import SageSupport
import ServiceLifecycle

/// A cluster file to reload when it changes.
public struct ClusterFileWatching: Sendable, Hashable {
    public var path: String
    /// How often the file's modification date is checked.
    public var interval: Duration
    /// The file's modification date when this was made (read the file after making it): a
    /// later change is reloaded even when it comes before ``ControlPlaneClient/run()`` starts.
    let loadedVersion: Date?

    public init(path: String, interval: Duration = .seconds(2)) {
        self.path = path
        self.interval = interval
        loadedVersion = FileChangePoller.modificationDate(path)
    }
}

extension ControlPlaneClient: Service {
    /// Runs the control plane's background work, as a ServiceLifecycle `Service`: the health
    /// monitor (probes and metric scrapes, per ``monitoring``), the discovery sources (a
    /// cluster file's `discovery:` section) and, when the control plane was made from a
    /// cluster file, the watcher that reloads it. Returns on graceful shutdown or
    /// cancellation, after ``shutdown()``: waiting requests are failed and every instance's
    /// connections are closed.
    ///
    /// ```swift
    /// let cluster = try ControlPlaneClient(clusterFile: "cluster.yaml")
    /// let group = ServiceGroup(services: [cluster, gateway], gracefulShutdownSignals: [.sigterm], logger: logger)
    /// try await group.run()
    /// ```
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await HealthMonitor(controlPlane: self, configuration: self.monitoring).runUntilCancelled() }
                if let discovery = self.discovery {
                    group.addTask { await discovery.run(on: self) }
                }
                if let clusterFile = self.clusterFile {
                    group.addTask {
                        await ClusterFileWatcher(controlPlane: self, watching: clusterFile).runUntilCancelled()
                    }
                }
            }
        }
        await shutdown()
    }
}
