import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SageLLM
import SageSimulator

/// Benchmarks of the base client against the simulated engine (TTFT = TBT = 0), client and
/// server in this one process on loopback. Run in release mode: `Scripts/perf.sh`.
@main
struct SagePerformance {
    /// The sections `--only` takes.
    static let sections = [
        "parser", "chat", "chat-client", "stream", "detect", "resilience", "bench", "control-plane", "control-plane-latency",
        "control-plane-decision", "cluster-sim", "gateway", "gateway-idle-streams", "engines", "discovery", "sim-to-real",
    ]

    static func main() async {
        let usage = "usage: sagellm-perf [--seconds S] [--only \(sections.joined(separator: "|"))]"
        var seconds = 3.0
        var only: String?
        var iterator = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--seconds":
                let text = iterator.next() ?? ""
                // A flag's number: checked before it becomes a duration (Int64(Double) traps on NaN or a huge value).
                guard let value = Double(text), value.isFinite, value > 0, value <= 3_600 else {
                    fail("--seconds takes a number of seconds above 0 and at most 3600, not '\(text)'", usage)
                }
                seconds = value
            case "--only":
                let text = iterator.next() ?? ""
                guard sections.contains(text) else { fail("--only takes one of \(sections.joined(separator: ", ")), not '\(text)'", usage) }
                only = text
            case "--help", "-h":
                print(usage)
                return
            default:
                fail("unknown argument '\(argument)'", usage)
            }
        }
        do {
            try await run(only: only, seconds: seconds)
        } catch {
            FileHandle.standardError.write(Data("sagellm-perf: \(error)\n".utf8))
            exit(1)
        }
    }

    private static func fail(_ message: String, _ usage: String) -> Never {
        FileHandle.standardError.write(Data("sagellm-perf: \(message)\n\(usage)\n".utf8))
        exit(2)
    }

    static func run(only: String?, seconds: Double) async throws {
        let duration = Duration.milliseconds(Int64(seconds * 1000))  // checked: 0 < seconds <= 3600
        print("sagellm-perf: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(seconds) s per measurement\n")
        if only == nil || only == "parser" { parserBenchmark() }
        if only == nil || only == "chat" { try await chatBenchmark(duration: duration) }
        if only == "chat-client" { try await clientOnlyChat(duration: duration) }
        if only == nil || only == "stream" { try await streamBenchmark(duration: duration) }
        if only == nil || only == "detect" { try await detectionBenchmark() }
        if only == nil || only == "resilience" { try await resilienceBenchmark(duration: duration) }
        if only == nil || only == "bench" { try await benchmarkToolBenchmark() }
        if only == nil || only == "control-plane" { try await controlPlaneBenchmark() }
        if only == "control-plane-latency" { try await addedLatency() }  // alone, to profile it
        if only == "control-plane-decision" { try await decisionAlone() }  // alone, to profile it
        if only == nil || only == "cluster-sim" { try clusterSimulationBenchmark() }
        if only == nil || only == "gateway" { try await gatewayBenchmark(duration: duration) }
        if only == nil || only == "gateway-idle-streams" { try await gatewayIdleStreamsBenchmark() }
        if only == nil || only == "engines" { try await engineComparisonBenchmark(duration: duration) }
        if only == nil || only == "discovery" {
            try await discoveryBenchmark()
            try await etcdDiscoveryBenchmark()
        }
        if only == "sim-to-real" { try await simToRealBenchmark() }  // minutes of real time: alone
    }

    // MARK: SSE parser alone

    static func parserBenchmark() {
        let event =
            #"data: {"id":"chatcmpl-0123456789abcdef","object":"chat.completion.chunk","created":1795290066,"model":"sagellm-sim","choices":[{"index":0,"delta":{"content":" data"},"logprobs":null,"finish_reason":null}]}"#
            + "\n\n"
        let eventsPerBuffer = 64 * 1024 / event.utf8.count
        let buffer = ByteBuffer(string: String(repeating: event, count: eventsPerBuffer))
        var parsed = 0
        var parser = ServerSentEventParser()
        let rounds = 2_000
        let started = ContinuousClock.now
        for _ in 0..<rounds {
            // Re-chunked at an odd boundary, as network reads are.
            let split = 4_093
            do {
                try parser.parse(buffer.getSlice(at: 0, length: split)!) { _ in parsed += 1 }
                try parser.parse(buffer.getSlice(at: split, length: buffer.readableBytes - split)!) { _ in parsed += 1 }
            } catch {
                print("parser failed: \(error)")
                return
            }
        }
        let elapsed = (ContinuousClock.now - started).seconds
        let megabytes = Double(buffer.readableBytes * rounds) / 1_048_576
        print("SSE parser alone (64 KiB buffers, \(event.utf8.count)-byte vLLM chunk events)")
        print("  \(fmt(Double(parsed) / elapsed)) events/s, \(fmt(megabytes / elapsed)) MB/s (\(parsed) events)\n")
    }

    // MARK: Non-streamed chat

    static func chatBenchmark(duration: Duration) async throws {
        print("Non-streamed chat, 16 output tokens, simulator with TTFT = TBT = 0")
        print("  concurrency | SageLLM req/s | bare AsyncHTTPClient req/s | SageLLM / bare")
        try await withSimulatorServer(configuration: .instant(model: "perf")) { simulator in
            let client = try IntelligentLLMClient(
                configuration: LLMClientConfiguration(
                    baseURL: simulator.baseURL, model: "perf",
                    transport: TransportConfiguration(maximumConnectionsPerHost: 256)))
            var http = HTTPClient.Configuration()
            http.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
            let bare = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: http)
            let body = try JSONEncoder().encode(
                ChatCompletionRequest(
                    model: "perf", messages: [.user("Benchmark prompt number one.")], temperature: 0.7, maxTokens: 16,
                    stream: false))
            let options = ChatOptions(maxTokens: 16)
            for concurrency in [1, 64, 256] {
                // Warm both paths (connections, caches) before measuring.
                _ = try await closedLoop(concurrency: concurrency, duration: .milliseconds(300)) {
                    _ = try await client.chat("Benchmark prompt number one.", options: options)
                }
                let sage = try await closedLoop(concurrency: concurrency, duration: duration) {
                    _ = try await client.chat("Benchmark prompt number one.", options: options)
                }
                _ = try await closedLoop(concurrency: concurrency, duration: .milliseconds(300)) {
                    try await bareRequest(bare, url: simulator.baseURL + "/chat/completions", body: body)
                }
                let raw = try await closedLoop(concurrency: concurrency, duration: duration) {
                    try await bareRequest(bare, url: simulator.baseURL + "/chat/completions", body: body)
                }
                print("  \(pad(concurrency, 11)) | \(pad(fmt(sage), 13)) | \(pad(fmt(raw), 26)) | \(String(format: "%.3f", sage / raw))")
            }
            try await client.shutdown()
            try await bare.shutdown()
        }
        print("")
    }

    /// The client's side of the chat benchmark alone, at concurrency 64, to profile it
    /// (`perf record -g .build/release/sagellm-perf --only chat-client`).
    static func clientOnlyChat(duration: Duration) async throws {
        try await withSimulatorServer(configuration: .instant(model: "perf")) { simulator in
            let client = try IntelligentLLMClient(
                configuration: LLMClientConfiguration(
                    baseURL: simulator.baseURL, model: "perf", transport: TransportConfiguration(maximumConnectionsPerHost: 256)))
            let options = ChatOptions(maxTokens: 16)
            let rate = try await closedLoop(concurrency: 64, duration: duration) {
                _ = try await client.chat("Benchmark prompt number one.", options: options)
            }
            print("client alone, concurrency 64: \(fmt(rate)) req/s")
            try await client.shutdown()
        }
    }

    static func bareRequest(_ client: HTTPClient, url: String, body: Data) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        for try await _ in response.body {}
    }

    // MARK: Streamed chat

    static func streamBenchmark(duration: Duration) async throws {
        print("Streamed chat, 1000 tokens per request: chunk events/s through transport, SSE parser and decoder")
        print("  concurrency | SageLLM events/s | requests/s | bare AsyncHTTPClient (bytes only) requests/s | SageLLM / bare")
        try await withSimulatorServer(configuration: .instant(model: "perf")) { simulator in
            let client = try IntelligentLLMClient(
                configuration: LLMClientConfiguration(
                    baseURL: simulator.baseURL, model: "perf",
                    transport: TransportConfiguration(maximumConnectionsPerHost: 256)))
            let options = ChatOptions(maxTokens: 1000)
            var http = HTTPClient.Configuration()
            http.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
            let bare = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: http)
            let body = try JSONEncoder().encode(
                ChatCompletionRequest(
                    model: "perf", messages: [.user("Stream please.")], temperature: 0.7, maxTokens: 1000, stream: true,
                    streamOptions: StreamOptions(includeUsage: true)))
            let url = simulator.baseURL + "/chat/completions"
            for concurrency in [1, 8, 64] {
                let counter = Counter()
                _ = try await closedLoop(concurrency: concurrency, duration: .milliseconds(300)) {
                    for try await _ in client.streamChat("Stream please.", options: options) {}
                }
                let requests = try await closedLoop(concurrency: concurrency, duration: duration) {
                    var events = 0
                    for try await _ in client.streamChat("Stream please.", options: options) { events += 1 }
                    counter.add(events)
                }
                let raw = try await closedLoop(concurrency: concurrency, duration: duration) {
                    try await bareRequest(bare, url: url, body: body)
                }
                print("  \(pad(concurrency, 11)) | \(pad(fmt(Double(counter.value) / duration.seconds), 16)) | \(pad(fmt(requests), 10)) | \(pad(fmt(raw), 43)) | \(String(format: "%.3f", requests / raw))")
            }
            try await client.shutdown()
            try await bare.shutdown()
        }
        print("")
    }

    // MARK: Helpers

    /// Runs `operation` in `concurrency` loops until `duration` has passed; returns completions per second.
    static func closedLoop(concurrency: Int, duration: Duration, _ operation: @escaping @Sendable () async throws -> Void)
        async throws -> Double
    {
        let started = ContinuousClock.now
        let deadline = started + duration
        let completed = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var count = 0
                    while ContinuousClock.now < deadline {
                        try await operation()
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(completed) / (ContinuousClock.now - started).seconds
    }

    static func fmt(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : String(format: "%.1f", value)
    }

    static func pad(_ value: some CustomStringConvertible, _ width: Int) -> String {
        let text = value.description
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0
    func add(_ value: Int) { lock.withLock { total += value } }
    var value: Int { lock.withLock { total } }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
