import Logging
import SageLLM

/// Follows every key under a prefix in etcd v3: lists it, then watches it from the next
/// revision, and hands over the whole set of keys and values after the list and after each
/// change. A watch that ends or fails is resumed from the last revision it delivered (on the
/// next member when its own is gone), so no change is missed across a reconnect; a revision
/// compacted away lists again. While etcd cannot be reached it says why, and retries with
/// backoff. The etcd discovery source and the gateway's replica count both follow a prefix.
package struct EtcdPrefixWatch: Sendable {
    package enum Update: Sendable, Equatable {
        /// Every key under the prefix and its value, now.
        case values([String: String])
        /// etcd could not be read; why. The last values stand.
        case unreachable(String)
    }

    package let endpoints: [String]
    package let prefix: String
    /// How long one watch stays open before it is renewed from the revision it reached.
    var renewAfter = Duration.seconds(60)
    /// The longest wait between retries after a failure.
    var maximumBackoff = Duration.seconds(10)

    package init(endpoints: [String], prefix: String) {
        self.endpoints = endpoints
        self.prefix = prefix
    }

    /// Follows the prefix until the task is cancelled.
    package func run(logger: Logger, _ update: @escaping @Sendable (Update) async -> Void) async {
        let client: EtcdClient
        do {
            client = try EtcdClient(endpoints: endpoints, logger: logger)
        } catch {
            await update(.unreachable(error.message))
            return
        }
        var values: [String: String] = [:]
        var revision: Int64?
        var backoff = Duration.milliseconds(200)
        while !Task.isCancelled {
            var compacted = false
            do throws(SageLLMError) {
                if revision == nil {
                    let (pairs, listedAt) = try await client.range(prefix: prefix)
                    values = [:]
                    for pair in pairs {
                        if let key = EtcdClient.text(base64: pair.key) { values[key] = EtcdClient.text(base64: pair.value) ?? "" }
                    }
                    revision = listedAt
                    await update(.values(values))
                }
                let start = (revision ?? 0) + 1
                try await client.watch(prefix: prefix, from: start, renewAfter: renewAfter) { response throws(SageLLMError) in
                    if let oldest = response.compactRevision?.value, oldest > 0 {
                        compacted = true
                        throw SageLLMError(code: .streamInterrupted, reason: "the watched revision was compacted (etcd keeps from \(oldest))")
                    }
                    if response.canceled == true {
                        throw SageLLMError(code: .streamInterrupted, reason: "etcd cancelled the watch: \(response.cancelReason ?? "no reason given")")
                    }
                    guard let events = response.events, !events.isEmpty else { return }
                    for event in events {
                        guard let pair = event.kv, let key = EtcdClient.text(base64: pair.key) else { continue }
                        values[key] = event.type == "DELETE" ? nil : EtcdClient.text(base64: pair.value) ?? ""
                        if let at = pair.modRevision?.value { revision = max(revision ?? 0, at) }
                    }
                    await update(.values(values))
                }
                backoff = .milliseconds(200)
            } catch {
                if compacted {
                    revision = nil  // too old to resume: list again at once
                    continue
                }
                if Task.isCancelled { break }
                await update(.unreachable("\(error.reason) (\(endpoints.joined(separator: ",")))"))
                guard await pauseBeforeRetry(&backoff, maximum: maximumBackoff) else { break }
            }
        }
        await client.shutdown()
    }
}
