import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import SageLLM

/// How instances are watched.
public struct HealthMonitorConfiguration: Sendable, Hashable {
    /// Time between `GET /health` probes of each instance.
    public var probeInterval: Duration
    public var probeTimeout: Duration
    /// Failed probes in a row that mark an instance unhealthy.
    public var unhealthyAfter: Int
    /// Successful probes in a row that mark it healthy again.
    public var healthyAfter: Int
    /// Time between scrapes of each engine's `/metrics`; nil turns scraping off.
    public var scrapeInterval: Duration?

    public init(
        probeInterval: Duration = .seconds(2), probeTimeout: Duration = .seconds(1), unhealthyAfter: Int = 3, healthyAfter: Int = 2,
        scrapeInterval: Duration? = .seconds(1)
    ) {
        self.probeInterval = probeInterval
        self.probeTimeout = probeTimeout
        self.unhealthyAfter = unhealthyAfter
        self.healthyAfter = healthyAfter
        self.scrapeInterval = scrapeInterval
    }
}

/// Probes every instance's `/health` and scrapes its `/metrics` (vLLM's current and older
/// names, SGLang's). ``ControlPlaneClient/run()`` does it on a schedule; ``probeAll()`` and
/// ``checkNow()`` do it once.
public struct HealthMonitor: Sendable {
    let controlPlane: ControlPlaneClient
    public let configuration: HealthMonitorConfiguration

    public init(controlPlane: ControlPlaneClient, configuration: HealthMonitorConfiguration = HealthMonitorConfiguration()) {
        self.controlPlane = controlPlane
        self.configuration = configuration
    }

    /// Probes and scrapes on the configured schedule until the task is cancelled.
    func runUntilCancelled() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await probeLoop() }
            if let interval = configuration.scrapeInterval {
                group.addTask { await scrapeLoop(every: interval) }
            }
        }
    }

    /// Probes every instance once now: nil for an answer, else why it failed. Does not change
    /// their health (that takes the configured number of probes in a row).
    public func probeAll() async -> [String: String?] {
        let states = controlPlane.scheduler.instanceStates
        let results = await withTaskGroup(of: (String, Bool, String).self) { group in
            for state in states { group.addTask { await probe(state.spec) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        return Dictionary(uniqueKeysWithValues: results.map { ($0.0, $0.1 ? nil : $0.2) })
    }

    /// Probes every instance once and takes the answers as they are: a failed probe marks its
    /// instance unhealthy at once (for a fresh start, before any traffic). Returns the probes.
    @discardableResult
    public func checkNow() async -> [String: String?] {
        let probes = await probeAll()
        for (id, failure) in probes {
            controlPlane.scheduler.setHealth(id, healthy: failure == nil, reason: failure.map { "probe failed: \($0)" } ?? "probe answered")
        }
        return probes
    }

    private func probeLoop() async {
        var streaks: [String: (ok: Int, failed: Int)] = [:]
        while !Task.isCancelled {
            let states = controlPlane.scheduler.instanceStates
            let results = await withTaskGroup(of: (String, Bool, String).self) { group in
                for state in states where !state.draining {
                    group.addTask { await probe(state.spec) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            for (id, ok, reason) in results {
                var streak = streaks[id] ?? (0, 0)
                streak = ok ? (streak.ok + 1, 0) : (0, streak.failed + 1)
                streaks[id] = streak
                let current = states.first { $0.spec.id == id }
                if ok, current?.healthy == false, streak.ok >= configuration.healthyAfter {
                    controlPlane.scheduler.setHealth(id, healthy: true, reason: "\(streak.ok) probes answered")
                } else if ok, current?.healthy == true, current?.healthReason == "not probed yet" {
                    controlPlane.scheduler.setHealth(id, healthy: true, reason: "probe answered")
                } else if !ok, current?.healthy == true, streak.failed >= configuration.unhealthyAfter {
                    controlPlane.scheduler.setHealth(id, healthy: false, reason: "\(streak.failed) probes failed: \(reason)")
                    controlPlane.logger.warning("instance unhealthy", metadata: ["sage.instance": "\(id)", "sage.reason": "\(reason)"])
                }
            }
            try? await Task.sleep(for: configuration.probeInterval)  // cancelled: the loop ends
        }
    }

    /// `GET /health` through the instance's own client (its transport and connections).
    private func probe(_ spec: InstanceSpec) async -> (String, Bool, String) {
        guard let client = controlPlane.clients.current(spec.id) else { return (spec.id, false, "the instance was removed") }
        do {
            _ = try await client.sendToServerRoot("health", timeout: configuration.probeTimeout)
            return (spec.id, true, "ok")
        } catch {
            return (spec.id, false, error.status.map { "/health answered \($0)" } ?? "\(error.code): \(error.reason)")
        }
    }

    private func scrapeLoop(every interval: Duration) async {
        while !Task.isCancelled {
            let states = controlPlane.scheduler.instanceStates
            await withTaskGroup(of: Void.self) { group in
                for state in states where state.healthy && !state.draining {
                    group.addTask { await scrape(state.spec, ownBefore: state.inFlight) }
                }
            }
            try? await Task.sleep(for: interval)  // cancelled: the loop ends
        }
    }

    /// Reads the engine's figures; `ownBefore`: this control plane's requests on it when the scrape began.
    private func scrape(_ spec: InstanceSpec, ownBefore: Int) async {
        guard let client = controlPlane.clients.current(spec.id) else { return }
        do {
            let body = try await client.sendToServerRoot("metrics", timeout: .seconds(2), maximumBytes: 16 << 20)
            let values = EngineMetrics.parse(String(buffer: body))
            controlPlane.scheduler.setEngineFigures(
                spec.id, running: values.running, waiting: values.waiting, kvCacheUsage: values.kvCacheUsage, ownBefore: ownBefore)
        } catch {
            // An engine without /metrics: the control plane's own counts route alone.
            controlPlane.scheduler.setEngineFigures(spec.id, running: nil, waiting: nil, kvCacheUsage: nil, ownBefore: ownBefore)
        }
    }
}

/// Load figures from an engine's Prometheus text: vLLM (current and older names) and SGLang.
enum EngineMetrics {
    static func parse(_ text: String) -> (running: Double?, waiting: Double?, kvCacheUsage: Double?) {
        var values: [Substring: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            var name = line[..<space]
            if let brace = name.firstIndex(of: "{") { name = name[..<brace] }
            values[name, default: 0] += value
        }
        return (
            values["vllm:num_requests_running"] ?? values["sglang:num_running_reqs"],
            values["vllm:num_requests_waiting"] ?? values["sglang:num_queue_reqs"],
            values["vllm:kv_cache_usage_perc"] ?? values["vllm:gpu_cache_usage_perc"] ?? values["sglang:token_usage"]
        )
    }
}
