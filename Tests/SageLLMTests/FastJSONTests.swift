import Foundation
import NIOCore
import NIOFoundationCompat
import PropertyBased
import Testing

@testable import SageLLM

/// The whole-response decoder and the request writer that skip Foundation on every call must
/// give exactly what JSONDecoder and JSONEncoder give, or decline.
@Suite("Fast JSON for whole requests and responses")
struct FastJSONTests {
    static func fast(_ json: String) -> ChatCompletionResponse? {
        Array(json.utf8).withUnsafeBytes { ChatCompletionResponse.fastDecode($0) }
    }

    @Test(arguments: ["litellm-proxy.lb_chat.json", "llamacpp-server.chat.json"])
    func responsesAgreeWithJSONDecoderOnRecordedServers(name: String) throws {
        let data = try fixture(name)
        let expected = try JSONDecoder().decode(ChatCompletionResponse.self, from: Data(data))
        let fast = try #require(Self.fast(String(decoding: data, as: UTF8.self)), "fast path declined")
        #expect(fast == expected)
        #expect(!fast.extraFields.isEmpty, "vendor members (timings) are kept")
    }

    @Test(arguments: [
        // vLLM's shape, with its null members
        #"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"there\"\n\u00e9","refusal":null,"annotations":null,"audio":null,"function_call":null,"tool_calls":[],"reasoning_content":null},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"service_tier":null,"system_fingerprint":null,"usage":{"prompt_tokens":3,"total_tokens":5,"completion_tokens":2,"prompt_tokens_details":null},"prompt_logprobs":null,"kv_transfer_params":{"remote_block_ids":[1,2],"do_remote_decode":false}}"#,
        // members missing or null
        #"{"choices":[{"message":null}],"id":null,"model":null}"#,
        #"{"choices":null}"#,
        #"{}"#,
        // reasoning, name, a message without content
        #"{"model":"m","choices":[{"index":1,"message":{"role":"assistant","reasoning_content":"think","name":"bot","content":null},"finish_reason":null}]}"#,
    ])
    func responsesAgreeWithJSONDecoder(json: String) throws {
        let expected = try JSONDecoder().decode(ChatCompletionResponse.self, from: Data(json.utf8))
        let fast = try #require(Self.fast(json), "fast path declined")
        #expect(fast == expected)
    }

    @Test(arguments: [
        #"{"error":{"message":"no"}}"#,
        #"{"object":"error","message":"no"}"#,
        #"{"choices":[{"message":{"role":"assistant","content":[{"type":"text","text":"parts"}]}}]}"#,
        #"{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}"#,
        #"{"choices":[{"message":{"content":"no role"}}]}"#,
        #"{"choices":[{"logprobs":{"content":[]},"message":{"role":"assistant","content":"x"}}]}"#,
        #"{"created":1.5}"#,
        #"{"id":"a"} trailing"#,
    ])
    func uncommonOrInvalidResponsesAreLeftToJSONDecoder(json: String) {
        #expect(Self.fast(json) == nil)
    }

    static func encodedByFoundation(_ request: ChatCompletionRequest) throws -> NSDictionary {
        try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(request)) as? NSDictionary)
    }

    static func encodedFast(_ request: ChatCompletionRequest) throws -> NSDictionary {
        let buffer = try #require(request.fastEncode(), "fast path declined")
        return try #require(JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? NSDictionary)
    }

    @Test func requestsAgreeWithJSONEncoder() throws {
        var options = ChatOptions(model: "m", temperature: 0.7, maxTokens: 16)
        options.topP = 0.95
        options.stop = ["\n\n", "END"]
        options.seed = 42
        options.extraBody = ["chat_template_kwargs": ["enable_thinking": true], "max_tokens": 99, "priority": -1, "nested": [1, 2.5, "x", nil]]
        let messages: [ChatMessage] = [
            .system("Be brief."), .user("Quote \" backslash \\ newline \n tab \t bell \u{07} emoji 🦙 slash /"),
            ChatMessage(role: .assistant, content: nil, name: "bot", reasoningContent: "hmm"), .tool("42", callID: "call-1"),
        ]
        for stream in [false, true] {
            let request = options.chatRequest(model: "m", messages: messages, stream: stream)
            #expect(try Self.encodedFast(request) == Self.encodedByFoundation(request))
        }
        let extraWins = try Self.encodedFast(options.chatRequest(model: "m", messages: messages, stream: false))
        #expect(extraWins["max_tokens"] as? Int == 99, "the extra body wins over the typed field")
    }

    @Test func requestsWithPartsToolCallsOrNonFiniteNumbersAreLeftToJSONEncoder() {
        let parts = ChatCompletionRequest(model: "m", messages: [ChatMessage(role: .user, content: .parts([]))])
        #expect(parts.fastEncode() == nil)
        let calls = ChatCompletionRequest(model: "m", messages: [ChatMessage(role: .assistant, content: nil, toolCalls: [])])
        #expect(calls.fastEncode() == nil)
        let infinite = ChatCompletionRequest(model: "m", messages: [.user("x")], temperature: .infinity)
        #expect(infinite.fastEncode() == nil)
    }

    @Test func anyTextIsWrittenAsJSONThatReadsBackTheSame() async {
        let text = Gen<UInt32>.value().map { Character(Unicode.Scalar($0 % 0x3_0000) ?? "?") }.array(of: 0...60).map { String($0) }
        await propertyCheck(count: 500, input: text, text) { content, model in
            let request = ChatCompletionRequest(model: model, messages: [.user(content)], maxTokens: 1)
            guard let buffer = request.fastEncode() else {
                Issue.record("declined plain text")
                return
            }
            #expect((try? JSONDecoder().decode(ChatCompletionRequest.self, from: Data(buffer: buffer))) == request)
        }
    }
}
