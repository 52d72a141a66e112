import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SageLLM
import Testing

@testable import SageSimulator

/// Raw HTTP against the simulator: what a real OpenAI-compatible client would see.
@Suite("Simulator server")
struct SimulatorServerTests {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String
        var json: JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)) }
    }

    static func send(_ method: String, _ url: String, body: String? = nil, headers: [String: String] = [:]) async throws
        -> Reply
    {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
        var names: [String: String] = [:]
        for header in response.headers { names[header.name.lowercased()] = header.value }
        return Reply(status: Int(response.status.code), headers: names, body: String(buffer: bytes))
    }

    @Test func requestTimingsAreKeptOnlyWhenAsked() async throws {
        var configuration = SimulatedEngineConfiguration.instant(model: "m")
        configuration.ttft = .milliseconds(30)
        try await withSimulatorServer(configuration: configuration) { sim in
            let off = try await Self.send("GET", sim.rootURL + "/debug/request-timings")
            #expect(off.status == 404)
            #expect(off.body.contains("--record-timings"))
            sim.ledger.recordTimings()
            let body = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"stream":true}"#
            let streamed = try await Self.send("POST", sim.baseURL + "/chat/completions", body: body, headers: ["x-request-id": "timed-1"])
            #expect(streamed.status == 200)
            let timings = try await Self.send("GET", sim.rootURL + "/debug/request-timings")
            guard case .double(let milliseconds)? = timings.json?["time_to_first_chunk_ms"]?["timed-1"] else {
                Issue.record("no timing for timed-1: \(timings.body)")
                return
            }
            #expect(milliseconds >= 30, "the simulator's TTFT is 30 ms")
            #expect(sim.ledger.requestTimings["timed-1"]?.timeToFirstChunk != nil)
            // Taken at the socket: a whole answer is timed to its first bytes; other requests are not generation.
            let whole = body.replacingOccurrences(of: #""stream":true"#, with: #""stream":false"#)
            _ = try await Self.send("POST", sim.baseURL + "/chat/completions", body: whole, headers: ["x-request-id": "whole-1"])
            _ = try await Self.send("GET", sim.baseURL + "/models", headers: ["x-request-id": "models-1"])
            let timed = sim.ledger.requestTimings
            #expect((timed["whole-1"]?.timeToFirstChunk ?? .zero) >= .milliseconds(30))
            #expect(timed["models-1"] == nil)
        }
    }

    @Test func modelsHealthVersion() async throws {
        var configuration = SimulatedEngineConfiguration.instant(model: "qwen-sim")
        configuration.ownedBy = "sglang"
        try await withSimulatorServer(configuration: configuration) { sim in
            let models = try await Self.send("GET", sim.baseURL + "/models")
            #expect(models.status == 200)
            #expect(models.json?["data"]?[0]?["id"] == "qwen-sim")
            #expect(models.json?["data"]?[0]?["owned_by"] == "sglang")
            let reply1 = try await Self.send("GET", sim.rootURL + "/health")
            #expect(reply1.status == 200)
            let reply2 = try await Self.send("GET", sim.rootURL + "/version")
            #expect(reply2.json?["version"]?.stringValue != nil)
        }
    }

    @Test func badRequestsGetOpenAIErrors() async throws {
        try await withSimulatorServer(configuration: .instant(model: "m")) { sim in
            let url = sim.baseURL + "/chat/completions"
            let malformed = try await Self.send("POST", url, body: #"{"model":"m","messages":["#)
            #expect(malformed.status == 400)
            #expect(malformed.json?["error"]?["message"]?.stringValue?.hasPrefix("malformed JSON") == true)
            let missing = try await Self.send("POST", url, body: #"{"model":"m"}"#)
            #expect(missing.status == 400)
            #expect(missing.json?["error"]?["message"] == "'messages' is required")
            let wrongType = try await Self.send("POST", url, body: #"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}"#)
            #expect(wrongType.status == 400)
            #expect(wrongType.json?["error"]?["param"] == "max_tokens")
            let unknown = try await Self.send("POST", url, body: #"{"model":"other","messages":[{"role":"user","content":"x"}]}"#)
            #expect(unknown.status == 404)
            #expect(unknown.json?["error"]?["code"] == 404)
            let negative = try await Self.send("POST", url, body: #"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#)
            #expect(negative.status == 400)
            #expect(sim.ledger.byStatus[400] == 4)
            #expect(sim.ledger.byStatus[404] == 1)
        }
    }

    @Test func streamedBodyIsVLLMShaped() async throws {
        try await withSimulatorServer(configuration: .instant(model: "m")) { sim in
            let reply = try await Self.send(
                "POST", sim.baseURL + "/chat/completions",
                body: #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}"#)
            #expect(reply.status == 200)
            #expect(reply.headers["content-type"] == "text/event-stream")
            let events = reply.body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            // role, 3 tokens, usage, [DONE]
            #expect(events.count == 6)
            #expect(events.first?.contains(#""role":"assistant""#) == true)
            #expect(events[3].contains(#""finish_reason":"length""#))
            #expect(events[4].contains(#""choices":[],"usage":{"prompt_tokens":"#))
            #expect(events.last == "data: [DONE]")
        }
    }

    @Test func tokenizeAgreesWithUsage() async throws {
        try await withSimulatorServer(configuration: .instant(model: "m")) { sim in
            let text = "The quick brown fox jumps over the lazy dog, twice!\nAnd once more: 12345."
            let tokenized = try await Self.send("POST", sim.rootURL + "/tokenize", body: #"{"prompt":\#(JSONValue.string(text).jsonText)}"#)
            let count = try #require(tokenized.json?["count"]?.intValue)
            #expect(count == SimulatedTokenizer.count(text))
            let completion = try await Self.send(
                "POST", sim.baseURL + "/completions", body: #"{"model":"m","prompt":\#(JSONValue.string(text).jsonText),"max_tokens":2}"#)
            #expect(completion.json?["usage"]?["prompt_tokens"]?.intValue == count)
            let chatCount = try await Self.send(
                "POST", sim.rootURL + "/tokenize", body: #"{"messages":[{"role":"user","content":\#(JSONValue.string(text).jsonText)}]}"#)
            let chat = try await Self.send(
                "POST", sim.baseURL + "/chat/completions",
                body: #"{"messages":[{"role":"user","content":\#(JSONValue.string(text).jsonText)}],"max_tokens":2}"#)
            #expect(chat.json?["usage"]?["prompt_tokens"] == chatCount.json?["count"])
        }
    }

    @Test func metricsUseVLLMNamesAndCountStatuses() async throws {
        var configuration = SimulatedEngineConfiguration.instant(model: "m")
        configuration.faults = FaultConfiguration(failStatus: 503, failFirst: 2)
        try await withSimulatorServer(configuration: configuration) { sim in
            let body = #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#
            for _ in 0..<3 { _ = try await Self.send("POST", sim.baseURL + "/chat/completions", body: body) }
            let metrics = try await Self.send("GET", sim.rootURL + "/metrics").body
            for name in [
                "vllm:num_requests_running{model_name=\"m\"} 0", "vllm:num_requests_waiting{model_name=\"m\"} 0",
                "vllm:kv_cache_usage_perc", "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total",
                "sagellm_simulator_requests_total{status=\"503\"} 2", "sagellm_simulator_requests_total{status=\"200\"} 1",
                "sagellm_simulator_peak_running 1",
            ] {
                #expect(metrics.contains(name), "missing \(name)")
            }
        }
    }

    @Test func injectedFailureCarriesRetryAfter() async throws {
        var configuration = SimulatedEngineConfiguration.instant(model: "m")
        configuration.faults = FaultConfiguration(failStatus: 429, failFirst: 1, retryAfterSeconds: 2)
        try await withSimulatorServer(configuration: configuration) { sim in
            let body = #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#
            let first = try await Self.send("POST", sim.baseURL + "/chat/completions", body: body)
            #expect(first.status == 429)
            #expect(first.headers["retry-after"] == "2")
            let reply3 = try await Self.send("POST", sim.baseURL + "/chat/completions", body: body)
            #expect(reply3.status == 200)
        }
    }

    @Test func apiKeyGuardsOnlyTheAPI() async throws {
        var configuration = SimulatedEngineConfiguration.instant(model: "m")
        configuration.apiKey = "k1"
        try await withSimulatorServer(configuration: configuration) { sim in
            let reply4 = try await Self.send("GET", sim.baseURL + "/models")
            #expect(reply4.status == 401)
            let reply5 = try await Self.send("GET", sim.baseURL + "/models", headers: ["authorization": "Bearer k1"])
            #expect(reply5.status == 200)
            let reply6 = try await Self.send("GET", sim.rootURL + "/health")
            #expect(reply6.status == 200)
        }
    }

    @Test func slowStartReportsLoading() async throws {
        var configuration = SimulatedEngineConfiguration.instant(model: "m")
        configuration.faults.slowStart = .seconds(30)
        try await withSimulatorServer(configuration: configuration) { sim in
            let reply7 = try await Self.send("GET", sim.rootURL + "/health")
            #expect(reply7.status == 503)
        }
    }
}

extension JSONValue {
    var jsonText: String { String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self) }
}
