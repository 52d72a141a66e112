import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SageLLM
import SageSimulator

extension SagePerformance {
    /// The cost of the resilience layer when nothing triggers it. Three ways to send the same
    /// non-streamed chat, in alternating rounds so machine noise hits all alike:
    /// - bare: the foundation client's path without the layer (encode, `HTTPTransport.send`, decode);
    /// - off: the client with retries and limits off (the layer still counts metrics);
    /// - on: every feature on (3 retries, request and token rate limits far above the load,
    ///   `maxConcurrent` above the concurrency, metrics).
    static func resilienceBenchmark(duration: Duration, rounds: Int = 5) async throws {
        print("Resilience layer, everything enabled but not triggered (non-streamed chat, 16 output tokens)")
        print("  (simulator TTFT = TBT = 0; \(rounds) alternating rounds; req/s are medians, ratios the median of per-round ratios)")
        print("  concurrency | bare req/s | off req/s | on req/s | on / bare | off / bare | worst on / bare")
        try await withSimulatorServer(configuration: .instant(model: "perf")) { simulator in
            let transport = TransportConfiguration(maximumConnectionsPerHost: 256)
            let off = try IntelligentLLMClient(
                configuration: LLMClientConfiguration(
                    baseURL: simulator.baseURL, model: "perf", transport: transport,
                    resilience: ResilienceConfiguration(retry: .none)))
            let on = try IntelligentLLMClient(
                configuration: LLMClientConfiguration(
                    baseURL: simulator.baseURL, model: "perf", transport: transport,
                    resilience: ResilienceConfiguration(
                        retry: RetryPolicy(maxRetries: 3), requestsPerMinute: 600_000_000, tokensPerMinute: 600_000_000_000,
                        maxConcurrent: 1024)))
            let bare = try HTTPTransport(
                baseURL: simulator.baseURL, apiKey: nil, configuration: transport, logger: Logger(label: "perf"))
            let prompt = "Benchmark prompt number one."
            let options = ChatOptions(maxTokens: 16)
            let variants: [@Sendable () async throws -> Void] = [
                {
                    let body = try JSONEncoder().encodeAsByteBuffer(
                        ChatCompletionRequest(
                            model: "perf", messages: [.user(prompt)], temperature: options.temperature,
                            maxTokens: options.maxTokens, stream: false),
                        allocator: ByteBufferAllocator())
                    let buffer = try await bare.send(
                        method: .POST, path: "chat/completions", body: body, requestID: HTTPTransport.makeRequestID())
                    _ = try JSONDecoder().decode(ChatCompletionResponse.self, from: buffer)
                },
                { _ = try await off.chat(prompt, options: options) },
                { _ = try await on.chat(prompt, options: options) },
            ]
            for concurrency in [1, 64] {
                for variant in variants { _ = try await closedLoop(concurrency: concurrency, duration: .milliseconds(300), variant) }
                var rates: [[Double]] = Array(repeating: [], count: variants.count)
                for round in 0..<rounds {
                    // Rotate which goes first, so none always runs on a warmer or cooler machine.
                    for step in 0..<variants.count {
                        let index = (round + step) % variants.count
                        rates[index].append(try await closedLoop(concurrency: concurrency, duration: duration, variants[index]))
                    }
                }
                let onRatios = zip(rates[2], rates[0]).map { $0 / $1 }
                let offRatios = zip(rates[1], rates[0]).map { $0 / $1 }
                let metrics = on.metrics()
                guard metrics.retries == 0, metrics.failedRequests == 0 else {
                    print("  the 'on' client retried or failed, so the measurement is void: \(metrics.failuresByCode)")
                    continue
                }
                print(
                    "  \(pad(concurrency, 11)) | \(pad(fmt(median(rates[0])), 10)) | \(pad(fmt(median(rates[1])), 9)) | \(pad(fmt(median(rates[2])), 8)) | \(pad(String(format: "%.3f", median(onRatios)), 9)) | \(pad(String(format: "%.3f", median(offRatios)), 10)) | \(String(format: "%.3f", onRatios.min() ?? 0))"
                )
            }
            try await bare.shutdown()
            try await off.shutdown()
            try await on.shutdown()
        }
        print("")
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count.isMultiple(of: 2)
            ? (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2 : sorted[sorted.count / 2]
    }
}
