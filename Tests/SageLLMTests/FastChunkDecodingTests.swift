import Foundation
import NIOCore
import Testing

@testable import SageLLM

/// The streaming fast path must decode exactly what JSONDecoder decodes, or decline.
@Suite("Fast chunk decoding")
struct FastChunkDecodingTests {
    static func events(_ name: String) throws -> [String] {
        var parser = ServerSentEventParser()
        var events: [String] = []
        try parser.parse(ByteBuffer(bytes: try fixture(name))) { if !$0.isDone { events.append($0.data) } }
        try parser.finish { if !$0.isDone { events.append($0.data) } }
        return events
    }

    static func fast<T: FastJSONDecodable>(_ type: T.Type, _ json: String) -> T? {
        Array(json.utf8).withUnsafeBytes { T.fastDecode($0) }
    }

    @Test(arguments: [
        "guidellm-mock.chat_stream.txt", "litellm-proxy.chat_stream.txt", "litellm-proxy.lb_chat_stream.txt",
        "llama-cpp-python.chat_stream.txt", "llamacpp-server.chat_stream.txt", "sglang-router.chat_stream.txt",
        "vllm-router.chat_stream.txt",
    ])
    func agreesWithJSONDecoderOnRecordedChatStreams(name: String) throws {
        for event in try Self.events(name) {
            let expected = try JSONDecoder().decode(ChatCompletionChunk.self, from: Data(event.utf8))
            let fast = try #require(Self.fast(ChatCompletionChunk.self, event), "fast path declined: \(event)")
            #expect(fast == expected)
        }
    }

    @Test func agreesOnRecordedCompletionStream() throws {
        for event in try Self.events("llamacpp-server.completions_stream.txt") {
            let expected = try JSONDecoder().decode(CompletionResponse.self, from: Data(event.utf8))
            if let fast = Self.fast(CompletionResponse.self, event) {
                #expect(fast == expected)
            } else {
                // llama.cpp adds `timings`: kept in extraFields, which only JSONDecoder fills.
                #expect(!expected.extraFields.isEmpty)
            }
        }
    }

    @Test(arguments: [
        #"{"id":"a","choices":[{"index":0,"delta":{"content":"line\nbreak \"quoted\" \\ tab\t \u00e9 \ud83d\ude00 /\/"}}]}"#,
        #"{ "id" : "b" , "created" : 17 , "choices" : [ { "index" : 1 , "delta" : { } , "finish_reason" : "stop" } ] , "usage" : null }"#,
        #"{"id":"c","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":null},"completion_tokens_details":null}}"#,
        #"{"id":"d","model":"m","system_fingerprint":null,"choices":[{"delta":{"role":"assistant","content":null,"reasoning_content":"hmm"},"logprobs":null}],"extra":{"nested":[1,2.5,true,null,"x"]}}"#,
        #"{"id":"e","created":-3,"choices":[{"index":0,"delta":{"content":"caf\u00E9"},"finish_reason":null,"stop_reason":null}]}"#,
    ])
    func agreesOnEdgeCases(json: String) throws {
        let expected = try JSONDecoder().decode(ChatCompletionChunk.self, from: Data(json.utf8))
        let fast = try #require(Self.fast(ChatCompletionChunk.self, json))
        #expect(fast == expected)
    }

    @Test(arguments: [
        #"{"error":{"message":"boom","code":500}}"#,
        #"{"object":"error","message":"boom","code":400}"#,
        #"{"id":"x","choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f"}}]}}]}"#,
        #"{"id":"x","choices":[{"delta":{"content":"a"},"logprobs":{"content":[]}}]}"#,
        #"{"id":"x","created":1.5,"choices":[]}"#,
        #"{"id":"x","choices":[}"#,
        #"{"id":"x"} trailing"#,
        "not json",
    ])
    func declinesWhatJSONDecoderMustHandle(json: String) {
        #expect(Self.fast(ChatCompletionChunk.self, json) == nil)
    }

    @Test func toolCallsStillDecodeThroughTheFallback() throws {
        let json = #"{"id":"x","choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}}]}}]}"#
        let chunk = try Array(json.utf8).withUnsafeBytes { try ChatCompletionChunk.decode($0) }
        #expect(chunk.choices.first?.delta.toolCalls?.first?.function?.name == "f")
    }
}
