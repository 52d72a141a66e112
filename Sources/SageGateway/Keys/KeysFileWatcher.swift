import SageSupport
import Logging
import ServiceLifecycle

/// Reloads the keys file when it changes (its modification date is checked every
/// `interval`). A file that no longer reads is logged, without any key, and the keys stay as
/// they were.
struct KeysFileWatcher: Service {
    let keys: KeyRing
    let interval: Duration
    let logger: Logger

    func run() async throws {
        guard let path = keys.file else { return }
        let (keys, logger) = (self.keys, self.logger)
        let poller = FileChangePoller(path: path, interval: interval)
        await cancelWhenGracefulShutdown {
            await poller.run(since: keys.loadedVersion) {
                do throws(GatewayError) {
                    let count = try keys.reload()
                    logger.info("keys file reloaded", metadata: ["sage.file": "\(path)", "sage.keys": "\(count)"])
                } catch {
                    logger.error("keys file not reloaded; the keys stay as they were", metadata: ["sage.error": "\(error.message)"])
                }
            }
        }
    }
}
