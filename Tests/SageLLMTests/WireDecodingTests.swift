import Foundation
import NIOCore
import SageSupport
import Testing

@testable import SageLLM

/// Tolerant decoding of what real servers sent (recorded on loopback; see Fixtures/).
@Suite("Wire types")
struct WireDecodingTests {
    struct StreamSummary {
        var text = ""
        var usage: Usage?
        var chunks = 0
        var sawDone = false
        var firstRole: ChatMessage.Role?
    }

    static func chatStream(_ name: String) throws -> StreamSummary {
        var parser = ServerSentEventParser()
        var summary = StreamSummary()
        let decoder = JSONDecoder()
        func handle(_ event: ServerSentEvent) throws {
            if event.isDone {
                summary.sawDone = true
                return
            }
            let chunk = try decoder.decode(ChatCompletionChunk.self, from: Data(event.data.utf8))
            summary.chunks += 1
            summary.text += chunk.contentDelta
            if let usage = chunk.usage { summary.usage = usage }
            if summary.firstRole == nil { summary.firstRole = chunk.choices.first?.delta.role }
        }
        try parser.parse(ByteBuffer(bytes: try fixture(name)), handle)
        try parser.finish(handle)
        return summary
    }

    @Test(arguments: [
        ("guidellm-mock.chat_stream.txt", "Agent every", 3 as Int?),
        ("litellm-proxy.chat_stream.txt", "Hello from the LiteLLM mock. This is a canned reply.", 14),
        ("litellm-proxy.lb_chat_stream.txt", ": 3", 3),
        ("llama-cpp-python.chat_stream.txt", "ty-", nil),
        ("llamacpp-server.chat_stream.txt", ": 30", 4),
        ("sglang-router.chat_stream.txt", ":", nil),
        ("vllm-router.chat_stream.txt", ": ", nil),
    ])
    func recordedChatStreams(name: String, text: String, completionTokens: Int?) throws {
        let summary = try Self.chatStream(name)
        #expect(summary.text == text)
        #expect(summary.usage?.completionTokens == completionTokens)
    }

    @Test func usageChunkWithNonEmptyChoicesAndCachedTokens() throws {
        let summary = try Self.chatStream("litellm-proxy.lb_chat_stream.txt")
        #expect(summary.usage?.promptTokensDetails?.cachedTokens == 27)
        #expect(summary.usage?.completionTokensDetails?.reasoningTokens == 0)
        #expect(summary.firstRole == .assistant)
    }

    @Test func roleChunkWithNullContent() throws {
        let summary = try Self.chatStream("llamacpp-server.chat_stream.txt")
        #expect(summary.firstRole == .assistant)
        #expect(summary.sawDone)
    }

    @Test func nonStreamedChatKeepsVendorFields() throws {
        let response = try JSONDecoder().decode(ChatCompletionResponse.self, from: try fixture("llamacpp-server.chat.json"))
        #expect(response.text == ": 307ooo")
        #expect(response.usage?.totalTokens == 36)
        #expect(response.extraFields["timings"]?["prompt_n"]?.intValue == 28)
        let proxied = try JSONDecoder().decode(ChatCompletionResponse.self, from: try fixture("litellm-proxy.lb_chat.json"))
        #expect(proxied.choices.first?.finishReason == "length")
        #expect(proxied.usage?.promptTokensDetails?.cachedTokens == 27)
    }

    @Test func completionsWholeAndStreamed() throws {
        let whole = try JSONDecoder().decode(CompletionResponse.self, from: try fixture("llamacpp-server.completions.json"))
        #expect(whole.text == "llllllll")
        var parser = ServerSentEventParser()
        var text = ""
        var usage: Usage?
        try parser.parse(ByteBuffer(bytes: try fixture("llamacpp-server.completions_stream.txt"))) { event in
            guard !event.isDone else { return }
            let chunk = try JSONDecoder().decode(CompletionResponse.self, from: Data(event.data.utf8))
            text += chunk.text
            usage = chunk.usage ?? usage
        }
        #expect(text == "lll")
        #expect(usage?.promptTokensDetails?.cachedTokens == 6)
    }

    @Test func modelListWithExtraTopLevelArray() throws {
        let list = try JSONDecoder().decode(ModelList.self, from: try fixture("llamacpp-server.models.json"))
        #expect(list.data.map(\.id) == ["tiny-llama"])
        #expect(list.data.first?.ownedBy == "llamacpp")
    }

    @Test func prefillResponseKeepsKVTransferParams() throws {
        let json = """
            {"id":"cmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"length"}],
             "usage":{"prompt_tokens":900,"completion_tokens":1,"total_tokens":901},
             "kv_transfer_params":{"do_remote_prefill":true,"remote_engine_id":"e1","remote_block_ids":[1,2,3],"remote_host":"10.0.0.1","remote_port":5600}}
            """
        let response = try JSONDecoder().decode(ChatCompletionResponse.self, from: Data(json.utf8))
        let params = response.extraFields["kv_transfer_params"]
        #expect(params?["remote_block_ids"]?.arrayValue?.count == 3)
        #expect(params?["remote_engine_id"]?.stringValue == "e1")
        // And it goes back out unchanged on the next request.
        var request = ChatCompletionRequest(model: "m", messages: [.user("hi")])
        request.extraBody["kv_transfer_params"] = params
        let encoded = try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(request))
        #expect(encoded["kv_transfer_params"] == params)
    }

    @Test func nullsAndMissingFieldsAreFine() throws {
        let json = """
            {"id":"x","choices":[{"delta":{"content":null},"finish_reason":null}],"system_fingerprint":null,"usage":null}
            """
        let chunk = try JSONDecoder().decode(ChatCompletionChunk.self, from: Data(json.utf8))
        #expect(chunk.contentDelta == "")
        #expect(chunk.created == nil)
        #expect(chunk.usage == nil)
    }

    @Test func errorObjectIsNotAnEmptyChunk() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ChatCompletionChunk.self, from: Data(#"{"error":{"message":"boom","code":500}}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ChatCompletionChunk.self, from: Data(#"{"object":"error","message":"boom","code":400}"#.utf8))
        }
    }

    @Test func extraBodyPassesThroughAndWins() throws {
        var options = ChatOptions(maxTokens: 5, enableThinking: true)
        options.extraBody["priority"] = 3
        options.extraBody["ignore_eos"] = true
        options.extraBody["max_tokens"] = 9
        let request = options.chatRequest(model: "m", messages: [.user("hi")], stream: true)
        let json = try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(request))
        #expect(json["chat_template_kwargs"]?["enable_thinking"] == true)
        #expect(json["priority"] == 3)
        #expect(json["ignore_eos"] == true)
        #expect(json["max_tokens"] == 9)
        #expect(json["stream_options"]?["include_usage"] == true)
        #expect(json["temperature"] == 0.7)
        // A decoded request keeps the vendor members.
        let decoded = try JSONDecoder().decode(ChatCompletionRequest.self, from: try JSONEncoder().encode(request))
        #expect(decoded.extraBody["ignore_eos"] == true)
        #expect(decoded.maxTokens == 9)
    }

    @Test func contentPartsRoundTrip() throws {
        let message = ChatMessage(role: .user, content: .parts([.text("What is in "), .image(url: "data:image/png;base64,AAAA"), .text("this?")]))
        let decoded = try JSONDecoder().decode(ChatMessage.self, from: try JSONEncoder().encode(message))
        #expect(decoded == message)
        #expect(decoded.text == "What is in this?")
    }

    @Test(arguments: [
        (#"{"error":{"code":400,"message":"'messages' is required","type":"invalid_request_error"}}"#, "'messages' is required", "invalid_request_error", "400"),
        (#"{"error":{"message":"Invalid model name","type":"invalid_request_error","param":null,"code":"400"}}"#, "Invalid model name", "invalid_request_error", "400"),
        (#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#, "The model `x` does not exist.", "NotFoundError", "404"),
        ("Failed to parse the request body as JSON: messages: EOF while parsing", "Failed to parse the request body as JSON: messages: EOF while parsing", nil, nil),
    ])
    func errorBodies(body: String, message: String, type: String?, code: String?) {
        let parsed = ErrorBody.parse(Array(body.utf8))
        #expect(parsed?.message == message)
        #expect(parsed?.type == type)
        #expect(parsed?.code == code)
    }

    @Test func retryAfterSecondsAndHTTPDate() {
        #expect(RetryAfter.parse("2") == .seconds(2))
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_770) == .seconds(7))
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(RetryAfter.parse("soon") == nil)
    }
}
