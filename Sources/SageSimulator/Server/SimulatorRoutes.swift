import SageSupport
import struct Foundation.Data
import class Foundation.JSONDecoder
import class Foundation.JSONEncoder
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import SageLLM
import Synchronization

/// The OpenAI-compatible HTTP API of a simulated engine (what vLLM serves).
struct SimulatorRoutes: Sendable {
    let engine: SimulatedEngine
    let ledger: RequestLedger

    private var model: String { engine.configuration.model }

    func register(on router: Router<SimulatorRequestContext>) {
        router.get("health") { _, _ in
            engine.isLoading ? Response(status: .serviceUnavailable) : Response(status: .ok)
        }
        router.get("version") { _, _ in
            Self.json(["version": .string(engine.configuration.version)] as JSONValue)
        }
        router.get("metrics") { _, _ in
            let text = PrometheusText.render(
                model: model, statistics: engine.statistics(), requestsByStatus: ledger.byStatus)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("tokenize") { request, context in try await tokenize(request, context) }
        router.get("debug/request-timings") { _, _ in
            // The server's own time to first chunk per streamed request id, for benchmarks that
            // check their accuracy from another process (`sagellm simulate --record-timings`).
            guard ledger.isRecordingTimings else {
                return Self.error(status: 404, message: "start the simulator with --record-timings to keep request timings")
            }
            let timings = ledger.requestTimings.compactMapValues { timing in
                timing.timeToFirstChunk.map { JSONValue.double(Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15) }
            }
            return Self.json(["time_to_first_chunk_ms": .object(timings)] as JSONValue)
        }
        router.get("v1/models") { request, _ in
            if let denied = unauthorized(request) { return denied }
            let list = ModelList(data: [
                ModelInfo(
                    id: model, created: 1_700_000_000, ownedBy: engine.configuration.ownedBy, root: model,
                    maxModelLen: engine.configuration.maxContext)
            ])
            return Self.json(list)
        }
        router.post("v1/chat/completions") { request, context in
            try await generate(request, context, kind: .chat)
        }
        router.post("v1/completions") { request, context in
            try await generate(request, context, kind: .completion)
        }
    }

    // MARK: Generation

    private struct Parsed {
        var engineRequest: EngineRequest
        var stream: Bool
        var includeUsage: Bool
        var logprobs: Bool
        /// A prefill for a remote decode: the answer carries `kv_transfer_params`.
        var prefillForRemoteDecode = false
    }

    /// Reads `kv_transfer_params` by the engine's role: a prefill engine notes a request for a
    /// remote decode; a decode engine checks the params and skips prefill; a general engine
    /// ignores them. Malformed params are a 400 naming the field.
    private func applyTransferParameters(_ extra: [String: JSONValue], to parsed: inout Parsed) -> ResponseError? {
        guard let params = extra["kv_transfer_params"], !params.isNull else { return nil }
        switch engine.configuration.role {
        case .general: return nil
        case .prefill:
            parsed.prefillForRemoteDecode = params["do_remote_decode"]?.boolValue == true
            return nil
        case .decode:
            func bad(_ field: String, _ expected: String) -> ResponseError {
                ResponseError(Self.error(
                    status: 400, message: "kv_transfer_params.\(field) must be \(expected)", param: "kv_transfer_params.\(field)"))
            }
            guard case .string(let engineID)? = params["remote_engine_id"], !engineID.isEmpty else {
                return bad("remote_engine_id", "the prefill engine's id (a string)")
            }
            guard case .array(let blocks)? = params["remote_block_ids"], !blocks.isEmpty,
                blocks.allSatisfy({ if case .int = $0 { true } else { false } })
            else { return bad("remote_block_ids", "a non-empty list of integers") }
            guard case .string(let host)? = params["remote_host"], !host.isEmpty else { return bad("remote_host", "a host name") }
            guard case .int(let port)? = params["remote_port"], (1...65535).contains(port) else {
                return bad("remote_port", "a port number")
            }
            let needed = (parsed.engineRequest.promptTokens.count + Self.blockSize - 1) / Self.blockSize
            guard blocks.count >= needed else {
                return bad("remote_block_ids", "one block per \(Self.blockSize) prompt tokens (\(needed) for this prompt, got \(blocks.count))")
            }
            parsed.engineRequest.promptComputedRemotely = true
            return nil
        }
    }

    /// Tokens per KV block, as vLLM's default.
    static let blockSize = 16

    /// What a prefill engine returns for a remote decode, as vLLM's NIXL connector does.
    private func transferParameters(promptTokens: Int, requestID: String) -> JSONValue {
        let blocks = (promptTokens + Self.blockSize - 1) / Self.blockSize
        return [
            "do_remote_prefill": true, "do_remote_decode": false,
            "remote_engine_id": .string("sim-\(engine.configuration.model)-\(engine.configuration.seed)"),
            "remote_request_id": .string(requestID),
            "remote_block_ids": .array((0..<blocks).map { .int($0) }), "remote_host": "127.0.0.1",
            "remote_port": .int(engine.configuration.kvSideChannelPort), "tp_size": 1,
        ]
    }

    private func generate(_ request: Request, _ context: SimulatorRequestContext, kind: ChunkEncoder.Kind) async throws
        -> Response
    {
        let response = try await respond(request, context, kind: kind)
        ledger.record(Int(response.status.code))
        return response
    }

    private func respond(_ request: Request, _ context: SimulatorRequestContext, kind: ChunkEncoder.Kind) async throws
        -> Response
    {
        if let denied = unauthorized(request) { return denied }
        if let failure = engine.injectedFailure() {
            var response = Self.error(
                status: failure.status, message: "injected failure (simulator fault injection)",
                type: failure.status == 429 ? "RateLimitError" : "ServiceUnavailableError")
            if let seconds = failure.retryAfterSeconds { response.headers[.retryAfter] = String(seconds) }
            return response
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: context.maxUploadSize)
        } catch {
            return Self.error(status: 413, message: "the request body is larger than \(context.maxUploadSize) bytes")
        }
        if ledger.isRecordingBodies { ledger.received(body: body) }
        let parsed: Parsed
        switch parse(body, kind: kind) {
        case .success(let value): parsed = value
        case .failure(let failure): return failure.response
        }
        do {
            try engine.validate(parsed.engineRequest)
        } catch {
            return Self.error(status: 400, message: error.message, type: "BadRequestError")
        }
        let id = (kind == .chat ? "chatcmpl-" : "cmpl-") + HTTPRequestID.make()
        // The system clock, read without a trapping conversion (a broken clock gives 0).
        let created = Int(exactly: HTTPDate.nowSecondsSince1970().rounded(.down)) ?? 0
        if parsed.stream {
            return streamResponse(parsed, context: context, kind: kind, id: id, created: created)
        }
        return try await wholeResponse(parsed, context: context, kind: kind, id: id, created: created)
    }

    private func parse(_ body: ByteBuffer, kind: ChunkEncoder.Kind) -> Result<Parsed, ResponseError> {
        let decoder = BoundedJSONDecoder()
        do {
            switch kind {
            case .chat:
                let chat = try decoder.decode(ChatCompletionRequest.self, from: body)
                if let failure = checkModel(chat.model) { return .failure(failure) }
                if chat.messages.isEmpty {
                    return .failure(ResponseError(Self.error(status: 400, message: "'messages' must not be empty", param: "messages")))
                }
                let tokens = SimulatedTokenizer.tokenize(messages: chat.messages.map { ($0.role.rawValue, $0.text) })
                var parsed = Parsed(
                    engineRequest: EngineRequest(
                        promptTokens: tokens, maxTokens: chat.maxCompletionTokens ?? chat.maxTokens,
                        stop: chat.stop ?? [], n: chat.n ?? 1, seed: chat.seed.map { UInt64(bitPattern: Int64($0)) }),
                    stream: chat.stream ?? false, includeUsage: chat.streamOptions?.includeUsage ?? false,
                    logprobs: chat.logprobs ?? false)
                if let failure = applyTransferParameters(chat.extraBody, to: &parsed) { return .failure(failure) }
                return .success(parsed)
            case .completion:
                let completion = try decoder.decode(CompletionRequest.self, from: body)
                if let failure = checkModel(completion.model) { return .failure(failure) }
                let tokens: [Int]
                switch completion.prompt {
                case .text(let text): tokens = SimulatedTokenizer.tokenize(text)
                case .tokens(let ids): tokens = ids
                case .texts(let texts) where texts.count == 1: tokens = SimulatedTokenizer.tokenize(texts[0])
                case .texts:
                    return .failure(ResponseError(Self.error(
                        status: 400, message: "the simulator takes one prompt per request", param: "prompt")))
                }
                var parsed = Parsed(
                    engineRequest: EngineRequest(
                        promptTokens: tokens, maxTokens: completion.maxTokens ?? 16, stop: completion.stop ?? [],
                        n: completion.n ?? 1, seed: completion.seed.map { UInt64(bitPattern: Int64($0)) }),
                    stream: completion.stream ?? false,
                    includeUsage: completion.streamOptions?.includeUsage ?? false,
                    logprobs: completion.logprobs != nil)
                if let failure = applyTransferParameters(completion.extraBody, to: &parsed) { return .failure(failure) }
                return .success(parsed)
            }
        } catch let error as DecodingError {
            let (message, param) = Self.describe(error)
            return .failure(ResponseError(Self.error(status: 400, message: message, param: param)))
        } catch {
            return .failure(ResponseError(Self.error(status: 400, message: "invalid request body: \(error)")))
        }
    }

    private func checkModel(_ requested: String?) -> ResponseError? {
        guard let requested, !requested.isEmpty, requested != model else { return nil }
        return ResponseError(Self.error(
            status: 404, message: "The model `\(requested)` does not exist.", type: "NotFoundError", param: "model"))
    }

    private func streamResponse(
        _ parsed: Parsed, context: SimulatorRequestContext, kind: ChunkEncoder.Kind, id: String, created: Int
    ) -> Response {
        let engine = self.engine
        let encoder = ChunkEncoder(kind: kind, id: id, created: created, model: model)
        let channel = context.channel
        let body = ResponseBody { writer in
            // Generated and written on the connection's event loop, timed by its timers.
            let executor = EventLoopTaskExecutor(channel.eventLoop)
            try await withTaskExecutorPreference(executor) {
                try await Self.stream(
                    parsed, to: &writer, encoder: encoder, engine: engine, channel: channel, kind: kind, waitUntil: executor.sleep)
            }
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// Generates the answer and writes it as server-sent events, token by token as they fall due.
    private static func stream(
        _ parsed: Parsed, to writer: inout any ResponseBodyWriter, encoder: ChunkEncoder, engine: SimulatedEngine,
        channel: any Channel, kind: ChunkEncoder.Kind,
        waitUntil: @escaping @Sendable (ContinuousClock.Instant) async throws -> Void
    ) async throws {
        let faults = engine.faults
        var sentRole = false
        var written = 0
        var stalled = false
        var buffer = ByteBuffer()
        let completion = try await engine.generate(parsed.engineRequest, waitUntil: waitUntil) { step in
            guard channel.isActive else { throw SimulatedDisconnect() }
            buffer.clear()
            if kind == .chat, !sentRole {
                for choice in 0..<parsed.engineRequest.n { encoder.writeRole(choice: choice, to: &buffer) }
                sentRole = true
            }
            for token in step.tokens {
                if let stall = faults.stall, !stalled, written >= faults.stallAfterTokens {
                    stalled = true
                    if buffer.readableBytes > 0 { try await writer.write(buffer) }
                    buffer.clear()
                    try await Task.sleep(for: stall)
                }
                encoder.writeToken(
                    choice: token.choice, text: token.text, finishReason: token.finishReason,
                    logprob: parsed.logprobs ? Self.logprob(token.text) : nil, to: &buffer)
                written += 1
                if let limit = faults.disconnectAfterTokens, written >= limit {
                    try await writer.write(buffer)
                    throw SimulatedDisconnect()  // Hummingbird closes the connection mid-body
                }
            }
            try await writer.write(buffer)
        }
        buffer.clear()
        if parsed.includeUsage && !faults.omitStreamUsage {
            encoder.writeUsage(
                prompt: completion.promptTokens, completion: completion.completionTokens,
                cached: completion.cachedPromptTokens, to: &buffer)
        }
        ChunkEncoder.writeDone(to: &buffer)
        try await writer.write(buffer)
        try await writer.finish(nil)
    }

    private func wholeResponse(
        _ parsed: Parsed, context: SimulatorRequestContext, kind: ChunkEncoder.Kind, id: String, created: Int
    ) async throws -> Response {
        let faults = engine.faults
        let channel = context.channel
        let engine = self.engine
        let request = parsed.engineRequest
        let wantsLogprobs = parsed.logprobs
        let collected = WholeResponseProgress(choices: parsed.engineRequest.n)
        // Generated on the connection's event loop, timed by its timers, like a stream; and
        // given up as soon as the client's connection closes, even while queued or in prefill.
        let executor = EventLoopTaskExecutor(channel.eventLoop)
        let completion = try await Self.givingUpWhenClosed(channel) {
            try await withTaskExecutorPreference(executor) {
                try await engine.generate(request, waitUntil: executor.sleep) { step in
                    guard channel.isActive else { throw SimulatedDisconnect() }
                    if let stall = faults.stall, step.generatedSoFar > faults.stallAfterTokens, collected.stallOnce() {
                        try await Task.sleep(for: stall)
                    }
                    if let limit = faults.disconnectAfterTokens, step.generatedSoFar >= limit {
                        channel.close(promise: nil)
                        throw SimulatedDisconnect()
                    }
                    if wantsLogprobs {
                        collected.append(
                            step.tokens.map { token in
                                (
                                    token.choice,
                                    [
                                        "token": .string(token.text), "logprob": .double(Self.logprob(token.text)),
                                        "top_logprobs": [],
                                    ] as JSONValue
                                )
                            })
                    }
                }
            }
        }
        let logprobs = collected.logprobs
        if !parsed.logprobs {
            var text = ChunkEncoder.wholeResponse(kind: kind, id: id, created: created, model: model, completion: completion)
            if parsed.prefillForRemoteDecode, text.hasSuffix("}"),
                let params = try? JSONEncoder().encode(transferParameters(promptTokens: completion.promptTokens, requestID: id))  // JSONValue always encodes
            {
                text.removeLast()
                text += #","kv_transfer_params":"# + String(decoding: params, as: UTF8.self) + "}"
            }
            return Self.jsonText(text)
        }
        let usage = Usage(
            promptTokens: completion.promptTokens, completionTokens: completion.completionTokens,
            promptTokensDetails: .init(["cached_tokens": completion.cachedPromptTokens]))
        switch kind {
        case .chat:
            let choices = completion.texts.indices.map { index in
                ChatCompletionResponse.Choice(
                    index: index, message: .assistant(completion.texts[index]),
                    finishReason: completion.finishReasons[index],
                    logprobs: parsed.logprobs ? ["content": .array(logprobs[index])] : nil)
            }
            let extra = parsed.prefillForRemoteDecode
                ? ["kv_transfer_params": transferParameters(promptTokens: completion.promptTokens, requestID: id)] : [:]
            return Self.json(ChatCompletionResponse(id: id, created: created, model: model, choices: choices, usage: usage, extraFields: extra))
        case .completion:
            let choices = completion.texts.indices.map { index in
                CompletionResponse.Choice(
                    index: index, text: completion.texts[index], finishReason: completion.finishReasons[index])
            }
            return Self.json(CompletionResponse(id: id, created: created, model: model, choices: choices, usage: usage))
        }
    }

    // MARK: /tokenize

    private func tokenize(_ request: Request, _ context: SimulatorRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        let value: JSONValue
        do {
            value = try BoundedJSONDecoder().decode(JSONValue.self, from: body)
        } catch {
            return Self.error(status: 400, message: "malformed JSON: \(error)")
        }
        let tokens: [Int]
        if let prompt = value["prompt"]?.stringValue {
            tokens = SimulatedTokenizer.tokenize(prompt)
        } else if let messages = value["messages"]?.arrayValue {
            var pairs: [(role: String, content: String)] = []
            for message in messages {
                guard let role = message["role"]?.stringValue else {
                    return Self.error(status: 400, message: "every message needs a 'role'", param: "messages")
                }
                let content =
                    message["content"]?.stringValue
                    ?? (message["content"]?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined()
                pairs.append((role, content))
            }
            tokens = SimulatedTokenizer.tokenize(
                messages: pairs, addGenerationPrompt: value["add_generation_prompt"]?.boolValue ?? true)
        } else {
            return Self.error(status: 400, message: "give either 'prompt' (text) or 'messages'", param: "prompt")
        }
        let answer: JSONValue = [
            "count": .int(tokens.count), "max_model_len": .int(engine.configuration.maxContext),
            "tokens": .array(tokens.map(JSONValue.int)),
        ]
        return Self.json(answer)
    }

    // MARK: Helpers

    private func unauthorized(_ request: Request) -> Response? {
        guard let key = engine.configuration.apiKey else { return nil }
        if request.headers[.authorization] == "Bearer \(key)" { return nil }
        return Self.error(status: 401, message: "Invalid API key: send 'Authorization: Bearer <key>'", type: "AuthenticationError")
    }

    struct ResponseError: Error {
        let response: Response
        init(_ response: Response) { self.response = response }
    }

    static func jsonText(_ text: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func json(_ value: some Encodable) -> Response {
        do {
            let buffer = try JSONEncoder().encodeAsByteBuffer(value, allocator: ByteBufferAllocator())
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
        } catch {
            return Self.error(status: 500, message: "the simulator could not encode its answer: \(error)")
        }
    }

    /// An OpenAI-style error body, as vLLM sends it.
    static func error(status: Int, message: String, type: String = "BadRequestError", param: String? = nil) -> Response {
        let body = ErrorBody(message: message, type: type, param: param, code: String(status)).jsonObject
        var buffer = ByteBuffer()
        do {
            buffer = try JSONEncoder().encodeAsByteBuffer(body, allocator: ByteBufferAllocator())
        } catch {
            buffer.writeString(message)  // a plain-text body still says what went wrong
        }
        return Response(
            status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: buffer))
    }

    static func describe(_ error: DecodingError) -> (String, String?) {
        func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
            (context.codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map(String.init) ?? $0.stringValue }
                .joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let name = path(context, key)
            return ("'\(name)' is required", name)
        case .typeMismatch(let type, let context):
            return ("'\(path(context))' has the wrong type: expected \(type)", path(context))
        case .valueNotFound(let type, let context):
            return ("'\(path(context))' must not be null: expected \(type)", path(context))
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? ("malformed JSON: \(context.debugDescription)", nil)
                : ("'\(path(context))' is invalid: \(context.debugDescription)", path(context))
        @unknown default:
            return ("invalid request body: \(error)", nil)
        }
    }

    /// A made-up but stable log-probability for a token, in [-2, -0.001].
    static func logprob(_ token: String) -> Double {
        var hash = 0
        for byte in token.utf8 { hash = (hash &* 31 &+ Int(byte)) & 0xFFFF }
        return -Double(hash % 2000 + 1) / 1000
    }
}

/// Thrown to drop the connection: on purpose (fault injection) or because the client left.
struct SimulatedDisconnect: Error {}

extension SimulatorRoutes {
    /// Runs `body` until it ends or `channel` closes, whichever comes first; a closed
    /// connection cancels `body` (a non-streamed client that left stops its generation).
    static func givingUpWhenClosed<Result: Sendable>(
        _ channel: any Channel, _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await untilConnectionCloses(channel, closed: { SimulatedDisconnect() }, body)
    }
}

/// What a non-streamed generation collects step by step, shared with the task that runs it.
final class WholeResponseProgress: Sendable {
    private let state: Mutex<(logprobs: [[JSONValue]], stalled: Bool)>

    init(choices: Int) { state = Mutex((Array(repeating: [], count: choices), false)) }

    /// True the first time only: the stall fault happens once.
    func stallOnce() -> Bool {
        state.withLock { state in
            defer { state.stalled = true }
            return !state.stalled
        }
    }

    func append(_ entries: [(choice: Int, entry: JSONValue)]) {
        state.withLock { state in
            for (choice, entry) in entries where state.logprobs.indices.contains(choice) {
                state.logprobs[choice].append(entry)
            }
        }
    }

    var logprobs: [[JSONValue]] { state.withLock { $0.logprobs } }
}

enum HTTPRequestID {
    static func make() -> String {
        let hex = String(UInt64.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

