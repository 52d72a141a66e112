import NIOCore
import Testing

@testable import SageLLM

/// Top-level members read and rewritten without touching the other bytes.
struct JSONObjectMembersTests {
    @Test func membersAreSetAndRemovedAndTheRestPassesByteForByte() throws {
        let body = ByteBuffer(string: #"{ "model" : "m", "messages":[{"role":"user","content":"a \"b\" ünï"}], "stream": true, "x": 1.50e3, "stream_options": {"include_usage": true} }"#)
        let rewritten = try #require(
            JSONObjectMembers.rewriting(body, setting: [("max_tokens", "1"), ("stream_options", "null")], removing: ["stream"]))
        #expect(
            String(buffer: rewritten)
                == #"{"model":"m","messages":[{"role":"user","content":"a \"b\" ünï"}],"x":1.50e3,"max_tokens":1,"stream_options":null}"#)
        #expect(JSONObjectMembers.value(of: "x", in: body).map { String(buffer: $0) } == "1.50e3")
        #expect(JSONObjectMembers.value(of: "messages", in: body).map { String(buffer: $0) } == #"[{"role":"user","content":"a \"b\" ünï"}]"#)
        #expect(JSONObjectMembers.value(of: "absent", in: body) == nil)
    }

    @Test func bodiesItCannotReadAreLeftAlone() {
        #expect(JSONObjectMembers.rewriting(ByteBuffer(string: #"["not", "an object"]"#), setting: [("a", "1")]) == nil)
        #expect(JSONObjectMembers.rewriting(ByteBuffer(string: #"{"a": 1"#), setting: [("a", "1")]) == nil, "cut short")
        #expect(JSONObjectMembers.rewriting(ByteBuffer(string: #"{"es\u0063aped": 1}"#), setting: [("a", "1")]) == nil)
        #expect(JSONObjectMembers.value(of: "a", in: ByteBuffer(string: #"{"a": 1} trailing"#)) == nil)
    }
}
