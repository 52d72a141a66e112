import struct Foundation.Data
import class Foundation.JSONDecoder
import class Foundation.JSONEncoder
public import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

/// A client for any OpenAI-compatible LLM server (vLLM, SGLang, LMDeploy, llama.cpp, Ollama,
/// OpenAI, DashScope).
///
/// ```swift
/// try await withIntelligentLLMClient(configuration: .init(baseURL: "http://127.0.0.1:8000/v1")) { client in
///     let answer = try await client.chat("Name three prime numbers.")
///     print(answer.text, answer.usage?.completionTokens ?? 0)
///     for try await chunk in client.streamChat([.user("Count to five.")]) {
///         print(chunk.contentDelta, terminator: "")
///     }
/// }
/// ```
///
/// One client holds one pooled HTTP client: create it once and share it; call ``shutdown()``
/// when done (or use ``withIntelligentLLMClient(configuration:logger:_:)``).
public final class IntelligentLLMClient: Sendable {
    public let configuration: LLMClientConfiguration
    /// How ``createAuto(model:probeTimeout:settings:detection:refresh:logger:)`` chose the
    /// endpoint; nil for a client made with an explicit configuration.
    public let detection: EndpointDetection?
    let transport: HTTPTransport
    /// Retries, limits, metrics and the health record around every request.
    let executor: ResilientExecutor
    let logger: Logger
    private let discoveredModel = Mutex<String?>(nil)

    /// Creates a client; a bad base URL or setting is an error naming the field.
    public convenience init(configuration: LLMClientConfiguration, logger: Logger = Logger(label: "sagellm.client"))
        throws(SageLLMError)
    {
        try self.init(configuration: configuration, detection: nil, logger: logger)
    }

    init(configuration: LLMClientConfiguration, detection: EndpointDetection?, logger: Logger) throws(SageLLMError) {
        try configuration.defaultOptions.validate()
        self.configuration = configuration
        self.detection = detection
        self.logger = logger
        self.transport = try HTTPTransport(
            baseURL: configuration.baseURL, apiKey: configuration.apiKey, configuration: configuration.transport,
            missingKeyMessage: configuration.apiKey == nil ? configuration.missingAPIKeyMessage : nil, logger: logger)
        self.executor = try ResilientExecutor(
            configuration: configuration.resilience, endpoint: transport.baseURL, logger: logger)
    }

    /// Creates a client for `baseURL`.
    public convenience init(
        baseURL: String, model: String? = nil, apiKey: String? = nil, logger: Logger = Logger(label: "sagellm.client")
    ) throws(SageLLMError) {
        try self.init(
            configuration: LLMClientConfiguration(baseURL: baseURL, model: model, apiKey: apiKey.map { APIKey($0) }),
            logger: logger)
    }

    /// The normalized base URL requests go to.
    public var baseURL: String { transport.baseURL }

    // MARK: Chat

    /// Sends a chat and waits for the whole answer.
    public func chat(_ messages: [ChatMessage], options: ChatOptions? = nil) async throws(SageLLMError) -> ChatResult {
        let options = options ?? configuration.defaultOptions
        let (model, body) = try await chatBody(messages, options: options, stream: false)
        let answer: WholeAnswer<ChatCompletionResponse> = try await whole(
            "chat/completions", body: body, options: options, estimatedTokens: estimatedTokens(messages, options),
            what: "the chat completion")
        let response = answer.response
        return ChatResult(
            text: response.text, response: response, usage: response.usage, finishReason: response.finishReason,
            latency: answer.latency, requestID: answer.requestID, model: response.model.isEmpty ? model : response.model,
            attempts: answer.attempts)
    }

    /// Sends one user message and waits for the whole answer.
    public func chat(_ prompt: String, options: ChatOptions? = nil) async throws(SageLLMError) -> ChatResult {
        try await chat([.user(prompt)], options: options)
    }

    /// Sends a chat and streams the answer as it is generated.
    ///
    /// Nothing is sent until the stream is iterated. Stopping the iteration (or cancelling the
    /// task iterating it) cancels the HTTP request, so the server stops generating.
    public func streamChat(_ messages: [ChatMessage], options: ChatOptions? = nil)
        -> AsyncThrowingStream<ChatCompletionChunk, any Error>
    {
        let options = options ?? configuration.defaultOptions
        let requestID = options.requestID ?? HTTPTransport.makeRequestID()
        let admission = StreamAdmission(
            executor: executor, requestID: requestID, estimatedTokens: estimatedTokens(messages, options),
            timeout: requestTimeout(options))
        let decoder = EventStreamDecoder<ChatCompletionChunk>(
            what: "a chat completion chunk", admission: admission
        ) { (attemptID, deadline) async throws(SageLLMError) -> StreamingResponse in
            let (_, body) = try await self.chatBody(messages, options: options, stream: true)
            return try await self.transport.openStream(
                path: "chat/completions", body: body, requestID: attemptID, timeout: options.timeout, deadline: deadline)
        }
        return AsyncThrowingStream(unfolding: { try await decoder.next() })
    }

    /// Streams the answer to one user message.
    public func streamChat(_ prompt: String, options: ChatOptions? = nil)
        -> AsyncThrowingStream<ChatCompletionChunk, any Error>
    {
        streamChat([.user(prompt)], options: options)
    }

    /// Generates text for a prompt: a chat with one user message.
    public func generate(prompt: String, options: ChatOptions? = nil) async throws(SageLLMError) -> ChatResult {
        try await chat([.user(prompt)], options: options)
    }

    // MARK: Text completions

    /// Plain text completion (`POST /v1/completions`), without a chat template.
    public func complete(_ prompt: String, options: ChatOptions? = nil) async throws(SageLLMError) -> CompletionResult {
        let options = options ?? configuration.defaultOptions
        try options.validate()
        let model = try await resolveModel(options)
        let body = try encode(options.completionRequest(model: model, prompt: prompt, stream: false))
        let answer: WholeAnswer<CompletionResponse> = try await whole(
            "completions", body: body, options: options,
            estimatedTokens: Self.estimatedTokens(promptBytes: prompt.utf8.count, options), what: "the completion")
        let response = answer.response
        return CompletionResult(
            text: response.text, response: response, usage: response.usage, finishReason: response.finishReason,
            latency: answer.latency, requestID: answer.requestID, model: response.model.isEmpty ? model : response.model,
            attempts: answer.attempts)
    }

    /// A decoded whole answer and how it was got.
    struct WholeAnswer<Response: Sendable>: Sendable {
        var response: Response
        var requestID: String
        var attempts: Int
        /// From the call to the answer: waits, every attempt and backoff.
        var latency: Duration
    }

    /// Sends a whole (non-streamed) request through the resilience layer (limits, retries, one
    /// deadline) and decodes the answer.
    private func whole<Response: FinishedResponse>(
        _ path: String, body: ByteBuffer, options: ChatOptions, estimatedTokens: Int, what: String
    ) async throws(SageLLMError) -> WholeAnswer<Response> {
        let started = ContinuousClock.now
        return try await executor.run(
            requestID: options.requestID ?? HTTPTransport.makeRequestID(), estimatedTokens: estimatedTokens,
            timeout: requestTimeout(options), tokensUsed: { $0.response.usage?.totalTokens }
        ) { (attempt) async throws(SageLLMError) -> WholeAnswer<Response> in
            let buffer = try await transport.send(
                method: .POST, path: path, body: body, requestID: attempt.requestID, timeout: options.timeout,
                deadline: attempt.deadline)
            let response = try decode(Response.self, buffer, what: what, path: path, requestID: attempt.requestID)
            return WholeAnswer(
                response: response, requestID: attempt.requestID, attempts: attempt.number, latency: ContinuousClock.now - started)
        }
    }

    /// Streams a plain text completion.
    public func streamComplete(_ prompt: String, options: ChatOptions? = nil)
        -> AsyncThrowingStream<CompletionResponse, any Error>
    {
        let options = options ?? configuration.defaultOptions
        let requestID = options.requestID ?? HTTPTransport.makeRequestID()
        let admission = StreamAdmission(
            executor: executor, requestID: requestID,
            estimatedTokens: Self.estimatedTokens(promptBytes: prompt.utf8.count, options), timeout: requestTimeout(options))
        let decoder = EventStreamDecoder<CompletionResponse>(
            what: "a completion chunk", admission: admission
        ) { (attemptID, deadline) async throws(SageLLMError) -> StreamingResponse in
            try options.validate()
            let model = try await self.resolveModel(options)
            let body = try self.encode(options.completionRequest(model: model, prompt: prompt, stream: true))
            return try await self.transport.openStream(
                path: "completions", body: body, requestID: attemptID, timeout: options.timeout, deadline: deadline)
        }
        return AsyncThrowingStream(unfolding: { try await decoder.next() })
    }

    // MARK: Models

    /// The models the server lists (`GET /v1/models`).
    public func models(timeout: Duration? = nil) async throws(SageLLMError) -> [ModelInfo] {
        let requestID = HTTPTransport.makeRequestID()
        let buffer = try await transport.send(method: .GET, path: "models", body: nil, requestID: requestID, timeout: timeout)
        return try decode(ModelList.self, buffer, what: "the model list", path: "models", requestID: requestID).data
    }

    /// Checks the options and messages, and encodes the chat request for the model it will use.
    func chatBody(_ messages: [ChatMessage], options: ChatOptions, stream: Bool) async throws(SageLLMError)
        -> (model: String, body: ByteBuffer)
    {
        try options.validate()
        try Self.validate(messages)
        let model = try await resolveModel(options)
        return (model, try encode(options.chatRequest(model: model, messages: messages, stream: stream)))
    }

    /// The model a request will use: the options', the configuration's, or the first listed.
    func resolveModel(_ options: ChatOptions) async throws(SageLLMError) -> String {
        if let model = options.model ?? configuration.model { return model }
        if let known = discoveredModel.withLock({ $0 }) { return known }
        let listed = try await models()
        guard let first = listed.first?.id else {
            var error = SageLLMError(
                code: .invalidConfiguration,
                reason: "no model was configured and the server lists none; set the model explicitly")
            error.field = "model"
            error.endpoint = transport.url("models")
            throw error
        }
        discoveredModel.withLock { $0 = first }
        return first
    }

    /// A request to a path at the server's root (`health`, `metrics`, `tokenize`), through the
    /// client's transport; a non-2xx status is thrown. For the control plane's health monitor
    /// and the benchmark's server figures.
    package func sendToServerRoot(
        method: HTTPMethod = .GET, _ path: String, body: ByteBuffer? = nil, timeout: Duration, maximumBytes: Int = 1 << 20
    ) async throws(SageLLMError) -> ByteBuffer {
        try await transport.sendToServerRoot(method: method, path, body: body, timeout: timeout, maximumBytes: maximumBytes)
    }

    // MARK: Lifecycle

    /// Closes the pooled connections. The client cannot be used afterwards.
    public func shutdown() async throws {
        try await transport.shutdown()
    }

    // MARK: Encoding

    func encode(_ value: some Encodable) throws(SageLLMError) -> ByteBuffer {
        if let request = value as? ChatCompletionRequest, let body = request.fastEncode() { return body }
        do {
            return try JSONEncoder().encodeAsByteBuffer(value, allocator: ByteBufferAllocator())
        } catch {
            throw .invalidRequest(field: nil, "the request could not be encoded as JSON: \(error)")
        }
    }

    func decode<Value: Decodable>(_ type: Value.Type, _ buffer: ByteBuffer, what: String, path: String, requestID: String)
        throws(SageLLMError) -> Value
    {
        if let fast = type as? any FastJSONDecodable.Type,
            let value = buffer.withUnsafeReadableBytes({ fast.fastDecode($0) }) as? Value
        {
            return value
        }
        do {
            return try BoundedJSONDecoder().decode(type, from: buffer.readableBytesView)
        } catch {
            let text = String(buffer: buffer)
            if let body = ErrorBody.parse(buffer.readableBytesView), body.type != nil || body.code != nil {
                var failure = SageLLMError(code: .httpStatus, reason: "the server answered with an error body")
                failure.serverMessage = body.message
                failure.serverErrorType = body.type ?? body.code
                failure.status = body.code.flatMap { Int($0) }
                failure.snippet = SageLLMError.snippet(text)
                failure.endpoint = transport.url(path)
                failure.requestID = requestID
                failure.receivedResponseHead = true
                failure.requestSent = true
                throw transport.cleaned(failure)
            }
            throw transport.cleaned(
                SageLLMError.decoding(
                    what, snippet: text, endpoint: transport.url(path), requestID: requestID, underlying: "\(error)"))
        }
    }

    /// The time limit of one call, all attempts and waits included: the options', else the
    /// transport's request timeout.
    func requestTimeout(_ options: ChatOptions) -> Duration {
        options.timeout ?? configuration.transport.requestTimeout
    }

    /// What a request may cost against `tokensPerMinute`: about four bytes of prompt per
    /// token, plus the most it may generate. Corrected by the usage report afterwards.
    static func estimatedTokens(promptBytes: Int, _ options: ChatOptions) -> Int {
        promptBytes / 4 + (options.maxTokens ?? 0)
    }

    func estimatedTokens(_ messages: [ChatMessage], _ options: ChatOptions) -> Int {
        guard configuration.resilience.tokensPerMinute != nil else { return 0 }
        return Self.estimatedTokens(promptBytes: messages.reduce(0) { $0 + $1.text.utf8.count }, options)
    }

    static func validate(_ messages: [ChatMessage]) throws(SageLLMError) {
        if messages.isEmpty { throw .invalidRequest(field: "messages", "a chat needs at least one message") }
    }
}

extension IntelligentLLMClient {
    /// Runs `body` with this client, then shuts it down whether `body` throws or not.
    public func use<Result>(_ body: (IntelligentLLMClient) async throws -> Result) async throws -> Result {
        let result: Result
        do {
            result = try await body(self)
        } catch {
            try? await shutdown()  // the body's error is the one to report
            throw error
        }
        try await shutdown()
        return result
    }
}

/// Creates a client, runs `body` with it, and shuts it down whether `body` throws or not.
public func withIntelligentLLMClient<Result>(
    configuration: LLMClientConfiguration, logger: Logger = Logger(label: "sagellm.client"),
    _ body: (IntelligentLLMClient) async throws -> Result
) async throws -> Result {
    try await IntelligentLLMClient(configuration: configuration, logger: logger).use(body)
}
