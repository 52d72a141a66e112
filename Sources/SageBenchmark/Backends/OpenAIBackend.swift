import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SageLLM
import Synchronization

/// Any OpenAI-compatible server, measured per request from its SSE events (or, without
/// streaming, the whole answer). Retries and client-side limits are off: a benchmark must
/// see every failure once.
public final class OpenAIBackend: BenchmarkBackend {
    public let baseURL: String
    public let backendName: String
    public var modelName: String? { model }
    private let model: String?
    private let client: IntelligentLLMClient
    /// Whether requests carry vLLM's sampling extensions (`ignore_eos`, `min_tokens`).
    private let sendsVLLMExtensions: Bool

    /// - Parameters:
    ///   - vllmExtensions: send `ignore_eos` and `min_tokens` so that exactly `max_tokens`
    ///     are generated (vLLM, SGLang, LMDeploy and the simulator accept them; OpenAI's
    ///     own API rejects unknown fields, so the default is off).
    public init(
        baseURL: String, apiKey: String? = nil, model: String? = nil, backendName: String = "openai",
        vllmExtensions: Bool = false
    ) throws(BenchmarkError) {
        var configuration = LLMClientConfiguration(
            baseURL: baseURL, model: model, apiKey: apiKey.map { APIKey($0) },
            transport: TransportConfiguration(readTimeout: .seconds(600), requestTimeout: .seconds(3600), maximumConnectionsPerHost: 4096),
            resilience: ResilienceConfiguration(retry: .none))
        configuration.defaultOptions = ChatOptions()
        do {
            client = try IntelligentLLMClient(configuration: configuration, logger: BenchmarkLogging.quiet)
        } catch {
            throw BenchmarkError(.invalidArgument, "\(error)", field: "baseURL")
        }
        self.baseURL = client.baseURL
        self.model = model
        self.backendName = backendName
        sendsVLLMExtensions = vllmExtensions
    }

    func options(for request: BenchmarkRequest) -> ChatOptions {
        var options = ChatOptions(model: request.model ?? model, temperature: request.temperature, maxTokens: request.maxTokens)
        options.topP = request.topP
        options.requestID = request.requestID
        options.includeUsage = true
        if request.ignoreEOS && sendsVLLMExtensions {
            options.extraBody["ignore_eos"] = true
            options.extraBody["min_tokens"] = .int(request.maxTokens)
        }
        return options
    }

    public func generate(_ request: BenchmarkRequest, runStart: ContinuousClock.Instant, scheduled: ContinuousClock.Instant?)
        async -> BenchmarkResult
    {
        let options = options(for: request)
        let messages: [ChatMessage] = [.user(request.prompt)]
        let timer = StreamTimer(runStart: runStart, scheduled: scheduled)
        do {
            if request.stream {
                // The request is timed from where it is written and each chunk where its bytes
                // are read, on the connection's event loop: the client's wait for a thread is
                // not part of the server's latency.
                let measured = Mutex((timer: timer, usage: Usage?.none))
                try await client.streamChatOnEventLoop(
                    messages, options: options, onWritten: { written in measured.withLock { $0.timer.requestWritten(at: written) } }
                ) { chunk, received in
                    let text = chunk.choices.reduce(into: "") { text, choice in
                        text += (choice.delta.reasoningContent ?? "") + (choice.delta.content ?? "")
                    }
                    measured.withLock {
                        if let reported = chunk.usage { $0.usage = reported }
                        $0.timer.event(at: received, hasChoices: !chunk.choices.isEmpty, text: text)
                    }
                }
                let (streamed, usage) = measured.withLock { ($0.timer, $0.usage) }
                // Without usage, the server's tokenizer counts the text (exact); only without one are chunks counted.
                var completionTokens = usage?.completionTokens
                if completionTokens == nil { completionTokens = await tokenCount(streamed.outputText) }
                return streamed.success(
                    requestID: request.requestID, completionTokens: completionTokens, promptTokens: usage?.promptTokens)
            }
            let answer = try await client.chat(messages, options: options)
            var whole = timer
            whole.wholeAnswer(text: answer.text)
            return whole.success(
                requestID: request.requestID, completionTokens: answer.usage?.completionTokens,
                promptTokens: answer.usage?.promptTokens)
        } catch {
            return timer.failure(requestID: request.requestID, error: "\(error)", kind: Self.kind(of: error))
        }
    }

    /// A short class for grouping errors: "http 503", "timeout", "connection failed", ...
    static func kind(of error: SageLLMError) -> String {
        if error.code == .httpStatus, let status = error.status { return "http \(status)" }
        return error.code.description
    }

    public func healthCheck() async -> Bool { await client.healthCheck(probeTimeout: .seconds(5)).healthy }

    /// The model the server lists first, when none was given.
    public func resolvedModel() async throws(BenchmarkError) -> String {
        if let model { return model }
        let listed: [ModelInfo]
        do {
            listed = try await client.models(timeout: .seconds(10))
        } catch {
            throw BenchmarkError(.backendUnavailable, "could not list the models of \(baseURL): \(error)")
        }
        guard let first = listed.first?.id else {
            throw BenchmarkError(.backendUnavailable, "\(baseURL) lists no models; pass --model")
        }
        return first
    }

    /// `POST /tokenize` of `text` (no template): the server's count, or nil without the endpoint.
    func tokenCount(_ text: String) async -> Int? {
        var body: [String: JSONValue] = ["prompt": .string(text), "add_special_tokens": false]
        if let model { body["model"] = .string(model) }
        return await tokenize(body)
    }

    private func tokenize(_ body: [String: JSONValue]) async -> Int? {
        ServerTokenizer.tokenCount(await postToServerRoot("tokenize", .object(body)))
    }

    /// `POST` of a JSON body to a path of the server's root (beside `/v1`): its JSON answer, or
    /// nil when the server has no such endpoint or answers something else.
    @Sendable private func postToServerRoot(_ path: String, _ body: JSONValue) async -> JSONValue? {
        do {
            let request = ByteBuffer(bytes: try JSONEncoder().encode(body))
            let data = try await client.sendToServerRoot(method: .POST, path, body: request, timeout: .seconds(5), maximumBytes: 16 * 1024 * 1024)
            return try BoundedJSONDecoder().decode(JSONValue.self, from: Data(data.readableBytesView))
        } catch {
            return nil  // no such endpoint here
        }
    }

    /// Measures the server's tokens per word and chat-template tokens with its own tokenizer,
    /// in whichever form it has one (vLLM, llama.cpp, LMDeploy, SGLang, the simulator: see
    /// `ServerTokenizer`); nil when it has none.
    public var countsPromptTokens: Bool { true }

    public func calibratedPrompts() async -> PromptFactory? {
        guard let tokenizer = await ServerTokenizer.find(model: model, send: postToServerRoot) else { return nil }
        return await tokenizer.calibrate()
    }

    /// `GET /metrics` (the server's root, beside `/v1`) in Prometheus text, or nil.
    func prometheusText() async -> String? {
        do {
            return String(buffer: try await client.sendToServerRoot("metrics", timeout: .seconds(5), maximumBytes: 16 * 1024 * 1024))
        } catch {
            return nil  // a server without /metrics: its figures are reported as missing
        }
    }

    public func shutdown() async {
        do {
            try await client.shutdown()
        } catch {
            BenchmarkLogging.quiet.debug("closing the benchmark client failed", metadata: ["error": "\(error)"])
        }
    }
}
