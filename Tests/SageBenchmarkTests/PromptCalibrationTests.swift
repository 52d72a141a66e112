import Foundation
import Hummingbird
import Logging
import NIOCore
import SageBenchmark
import SageLLM
import ServiceLifecycle
import Testing

/// A server that counts tokens as a real tokenizer would (one token per 3 characters, a chat
/// template of its own) and offers its tokenizer in one of the field's forms, or none; its
/// chat answers report `usage.prompt_tokens` by the same count.
struct FakeTokenizerServer {
    enum Form: String, CaseIterable, Sendable {
        case vllm, llamaCpp, lmdeploy, sglang, none
    }

    static func tokens(_ text: String) -> Int { (text.count + 2) / 3 }
    static func templated(_ content: String) -> String { "<|start|>user\n" + content + "<|end|>\n<|start|>assistant\n" }

    static func object(_ request: Request) async throws -> [String: Any] {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        return (try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]) ?? [:]
    }

    static func json(_ value: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func userContent(_ body: [String: Any]) -> String? {
        ((body["messages"] as? [[String: Any]])?.first?["content"] as? String)
    }

    static func with<Result: Sendable>(_ form: Form, _ body: @Sendable (_ baseURL: String) async throws -> Result) async throws -> Result {
        let router = Router()
        router.get("health") { _, _ in json([:]) }
        router.get("v1/models") { _, _ in json(["object": "list", "data": [["id": "fake", "object": "model"]]]) }
        switch form {
        case .vllm:
            router.post("tokenize") { request, _ in
                let body = try await object(request)
                if let content = userContent(body) { return json(["count": tokens(templated(content))]) }
                return json(["count": tokens(body["prompt"] as? String ?? "")])
            }
        case .llamaCpp:
            router.post("apply-template") { request, _ in json(["prompt": templated(userContent(try await object(request)) ?? "")]) }
            router.post("tokenize") { request, _ in
                let body = try await object(request)
                guard let content = body["content"] as? String else { return json(["error": "content is required"], status: .badRequest) }
                return json(["tokens": Array(0..<tokens(content))])
            }
        case .lmdeploy:
            router.post("v1/encode") { request, _ in
                let body = try await object(request)
                let input = body["input"] as? String ?? ""
                let count = tokens((body["do_preprocess"] as? Bool ?? false) ? templated(input) : input)
                return json(["input_ids": Array(0..<count), "length": count])
            }
        case .sglang:
            router.post("tokenize") { request, _ in
                let body = try await object(request)
                guard let prompt = body["prompt"] as? String else { return json(["detail": "prompt is required"], status: .unprocessableContent) }
                return json(["tokens": Array(0..<tokens(prompt)), "count": tokens(prompt), "max_model_len": 8192])
            }
        case .none:
            break
        }
        router.post("v1/chat/completions") { request, _ in
            let body = try await object(request)
            let prompt = tokens(templated(userContent(body) ?? ""))
            let usage: [String: Any] = ["prompt_tokens": prompt, "completion_tokens": 1, "total_tokens": prompt + 1]
            guard body["stream"] as? Bool == true else {
                return json([
                    "id": "c", "object": "chat.completion", "created": 1, "model": "fake",
                    "choices": [["index": 0, "message": ["role": "assistant", "content": "ok"], "finish_reason": "length"]], "usage": usage,
                ])
            }
            var events = ""
            for chunk: [String: Any] in [
                ["id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake",
                 "choices": [["index": 0, "delta": ["role": "assistant", "content": "ok"], "finish_reason": "length"]]],
                ["id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake", "choices": [], "usage": usage],
            ] {
                events += "data: " + String(decoding: try JSONSerialization.data(withJSONObject: chunk), as: UTF8.self) + "\n\n"
            }
            events += "data: [DONE]\n\n"
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: .init(byteBuffer: ByteBuffer(string: events)))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "fake-tokenizer")
        logger.logLevel = .warning
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = await iterator.next() ?? 0
            let outcome: Swift.Result<Result, any Error>
            do { outcome = .success(try await body("http://127.0.0.1:\(port)/v1")) } catch { outcome = .failure(error) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try outcome.get()
        }
    }
}

@Suite struct PromptCalibrationTests {
    /// Against every tokenizer form, and none: the prompts come within 5% of the length asked
    /// for, by the server's own count, and the report says how far off and how they were sized.
    @Test(arguments: FakeTokenizerServer.Form.allCases)
    func promptsHaveTheAskedLengthWhateverTheTokenizersForm(form: FakeTokenizerServer.Form) async throws {
        try await FakeTokenizerServer.with(form) { baseURL in
            let client = try OpenAIBackend(baseURL: baseURL, apiKey: nil, model: "fake")
            let report = try await BenchmarkSession(
                client: client, workloads: [Workload(name: "sized", inputTokens: 300, outputTokens: 1, numPrompts: 6, rangeRatio: 0.2)],
                contracts: []
            ).run()
            await client.shutdown()
            let run = try #require(report.runs.first)
            let meanError = try #require(run["prompt_length_error_mean"]?.doubleValue)
            let maxError = try #require(run["prompt_length_error_max"]?.doubleValue)
            #expect(meanError < 0.05 && maxError < 0.08, "\(form): mean \(meanError), max \(maxError)")
            let calibration = run["prompt_calibration"]?.stringValue ?? ""
            switch form {
            case .vllm: #expect(calibration.contains("(vLLM)"), "\(calibration)")
            case .llamaCpp: #expect(calibration.contains("(llama.cpp)"), "\(calibration)")
            case .lmdeploy: #expect(calibration.contains("(LMDeploy)"), "\(calibration)")
            case .sglang: #expect(calibration.contains("(SGLang)") && calibration.contains("warm-up"), "\(calibration)")
            case .none: #expect(calibration.hasPrefix("the warm-up's usage"), "\(calibration)")
            }
        }
    }

    @Test func uncalibratedPromptsAreSizedByTheServersUsage() throws {
        let factory = PromptFactory()
        // The server counts 1.5 tokens per word and 7 template tokens.
        let samples = [(asked: 107, reported: 157), (asked: 207, reported: 307)]
        let adjusted = try #require(factory.adjusted(by: samples))
        #expect(abs(adjusted.tokensPerWord - 1.5) < 0.01)
        #expect(factory.adjusted(by: []) == nil)
        #expect(factory.adjusted(by: [(asked: 100, reported: 0)]) == nil)
        // A figure from a hostile server cannot make a prompt of billions of words.
        var wild = factory
        wild.tokensPerWord = 1e-12
        #expect(wild.prompt(tokens: 100, index: 0, seed: 0).split(separator: " ").count <= 1_000)
    }
}

extension JSONValue {
    var doubleValue: Double? {
        switch self {
        case .double(let value): value
        case .int(let value): Double(value)
        default: nil
        }
    }
}
