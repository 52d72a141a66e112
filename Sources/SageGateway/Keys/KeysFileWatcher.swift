import Foundation
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
        let loaded = keys.loadedVersion
        await cancelWhenGracefulShutdown {
            var last = loaded
            while true {
                do { try await Task.sleep(for: interval) } catch { return }
                let current = Self.modificationDate(path)
                guard current != last else { continue }
                last = current
                do throws(GatewayError) {
                    let count = try keys.reload()
                    logger.info("keys file reloaded", metadata: ["sage.file": "\(path)", "sage.keys": "\(count)"])
                } catch {
                    logger.error("keys file not reloaded; the keys stay as they were", metadata: ["sage.error": "\(error.message)"])
                }
            }
        }
    }

    static func modificationDate(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}
