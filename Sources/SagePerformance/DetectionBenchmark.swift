import Foundation
import Logging
import NIOCore
import NIOPosix
import SageLLM
import SageSimulator

/// Endpoint detection: with one engine listening among refused candidates, with every
/// candidate silent (accepting connections but never answering), and a cached `createAuto`.
extension SagePerformance {
    static func detectionBenchmark() async throws {
        print("Endpoint detection (createAuto), 8 candidates on loopback")
        let quiet = {
            var logger = Logger(label: "sagellm.perf")
            logger.logLevel = .error  // the cloud fallback's missing-key warning would repeat every round
            return logger
        }()
        // Ports that refuse: bound, then closed.
        var closedPorts: [String] = []
        for _ in 0..<7 {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: 0).get()
            closedPorts.append("http://127.0.0.1:\(channel.localAddress?.port ?? 0)/v1")
            try await channel.close()
        }
        let refused = closedPorts
        try await withSimulatorServer(configuration: .instant(model: "perf")) { simulator in
            // The engine is the third candidate, as vLLM on 8000 is behind the two 8001 candidates.
            let urls = Array(refused[0..<2]) + [simulator.baseURL] + Array(refused[2..<7])
            let options = DetectionOptions(candidates: urls.map { ProbeCandidate(baseURL: $0) })
            var samples: [Double] = []
            for round in 0..<60 {
                let started = ContinuousClock.now
                let detection = try await IntelligentLLMClient.detectEndpoint(
                    settings: SageSettings(), detection: options, refresh: true, logger: quiet)
                let elapsed = (ContinuousClock.now - started).milliseconds
                guard detection.baseURL == simulator.baseURL else {
                    print("  wrong endpoint chosen: \(detection.baseURL)")
                    return
                }
                if round >= 10 { samples.append(elapsed) }  // the first rounds warm up
            }
            print("  one engine listening (3rd of 8, others refused): \(summary(samples)) (target: under 50 ms)")

            let settings = SageSettings()
            _ = try await IntelligentLLMClient.detectEndpoint(settings: settings, detection: options, logger: quiet)
            let rounds = 20_000
            var clients: [IntelligentLLMClient] = []
            clients.reserveCapacity(rounds)
            let started = ContinuousClock.now
            for _ in 0..<rounds {
                clients.append(try await IntelligentLLMClient.createAuto(settings: settings, detection: options, logger: quiet))
            }
            let perCall = (ContinuousClock.now - started).seconds / Double(rounds) * 1e6
            for client in clients { try await client.shutdown() }
            clients.removeAll()
            print("  cached createAuto (settings given; new client each call): \(fmt(perCall)) µs per call (target: under 100 µs)")

            let loadStarted = ContinuousClock.now
            let loadRounds = 2_000
            for _ in 0..<loadRounds {
                let client = try await IntelligentLLMClient.createAuto(detection: options, logger: quiet)
                try await client.shutdown()
            }
            let withLoad = (ContinuousClock.now - loadStarted).seconds / Double(loadRounds) * 1e6
            print("  cached createAuto (settings loaded from environment and files each call, plus shutdown): \(fmt(withLoad)) µs per call")

            let sharedStarted = ContinuousClock.now
            for _ in 0..<rounds { _ = try await IntelligentLLMClient.shared(key: "perf", settings: settings, logger: quiet) }
            let shared = (ContinuousClock.now - sharedStarted).seconds / Double(rounds) * 1e6
            print("  shared(key:) after the first call: \(fmt(shared)) µs per call")
            await IntelligentLLMClient.clearCache()
        }

        // Silent candidates: they accept the connection and never answer, so every probe runs to its timeout.
        let probeTimeout = Duration.milliseconds(500)
        var silent: [any Channel] = []
        for _ in 0..<8 {
            silent.append(
                try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .childChannelOption(.autoRead, value: false)
                    .bind(host: "127.0.0.1", port: 0).get())
        }
        let options = DetectionOptions(
            candidates: silent.map { ProbeCandidate(baseURL: "http://127.0.0.1:\($0.localAddress?.port ?? 0)/v1") })
        var samples: [Double] = []
        for _ in 0..<5 {
            let started = ContinuousClock.now
            let detection = try await IntelligentLLMClient.detectEndpoint(
                probeTimeout: probeTimeout, settings: SageSettings(), detection: options, refresh: true, logger: quiet)
            samples.append((ContinuousClock.now - started).milliseconds)
            guard detection.source == .cloud else {
                print("  expected the cloud fallback, got \(detection.source)")
                return
            }
        }
        for channel in silent { try await channel.close() }
        print("  nothing answering (8 silent candidates, probe timeout 500 ms): \(summary(samples)) (target: 550 ms)")
        var refusedSamples: [Double] = []
        let refusedOptions = DetectionOptions(candidates: refused.map { ProbeCandidate(baseURL: $0) })
        for _ in 0..<50 {
            let started = ContinuousClock.now
            _ = try await IntelligentLLMClient.detectEndpoint(
                settings: SageSettings(), detection: refusedOptions, refresh: true, logger: quiet)
            refusedSamples.append((ContinuousClock.now - started).milliseconds)
        }
        print("  nothing listening (7 refused candidates): \(summary(refusedSamples))\n")
    }

    /// `median X ms, p95 Y ms, max Z ms`.
    static func summary(_ milliseconds: [Double]) -> String {
        let sorted = milliseconds.sorted()
        guard !sorted.isEmpty else { return "no samples" }
        func at(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q + 0.5))] }
        return "median \(fmt(at(0.5))) ms, p95 \(fmt(at(0.95))) ms, max \(fmt(sorted.last ?? 0)) ms"
    }
}
