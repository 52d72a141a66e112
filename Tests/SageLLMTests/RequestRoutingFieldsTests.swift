import NIOCore
import Testing

@testable import SageLLM

/// The routing fields a relay reads from an OpenAI request body without decoding the rest.
struct RequestRoutingFieldsTests {
    static func read(_ text: String) throws(RequestRoutingFields.Refusal) -> RequestRoutingFields {
        try RequestRoutingFields.read(ByteBuffer(string: text))
    }

    @Test func theUsualBodyIsReadForItsRoutingFieldsOnly() throws {
        let fields = try Self.read(
            #"{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"s"}]},{"role":"user","content":"Hi \"you\""}],"#
                + #""stream":true,"max_tokens":12,"max_completion_tokens":7,"priority":-1,"user":"u1","tools":[{"x":{"y":[1,2.5e3,null,true]}}]}"#)
        #expect(fields.model == "m" && fields.stream && fields.priority == -1 && fields.user == "u1")
        #expect(fields.maxTokens == 7, "max_completion_tokens wins over max_tokens")
        #expect(fields.promptStart == #"Hi "you""#, "the first message with text content")
        let completion = try Self.read(#"{"model":"m","prompt":"Once upon","stream":false}"#)
        #expect(completion.promptStart == "Once upon" && !completion.stream && completion.maxTokens == nil)
    }

    @Test func unusualButValidBodiesAreReadTheSame() throws {
        // A float max_tokens that is whole, and nulls: the fast reader declines, Foundation reads them.
        let fields = try Self.read(#"{"model": "m", "max_tokens": 8.0, "user": null, "priority": null}"#)
        #expect(fields.maxTokens == 8 && fields.user == nil && fields.priority == nil)
    }

    @Test func badBodiesAreRefusedSayingWhatAndWhere() {
        func refusal(_ text: String) -> RequestRoutingFields.Refusal? {
            do {
                _ = try Self.read(text)
                return nil
            } catch {
                return error
            }
        }
        #expect(refusal(#"{"model": "m", "messages": [}"#)?.message.contains("not valid JSON") == true)
        #expect(refusal(#"["model"]"#)?.message == "the body must be a JSON object")
        #expect(refusal(#"{"model": 5}"#)?.param == "model")
        #expect(refusal(#"{"stream": "yes"}"#)?.param == "stream")
        #expect(refusal(#"{"max_tokens": 1.5}"#)?.param == "max_tokens")
        #expect(refusal(#"{"max_tokens": 0}"#)?.param == "max_tokens")
        #expect(refusal(#"{"max_tokens": 1e30}"#)?.param == "max_tokens", "too large for an integer, refused, not trapped")
        #expect(refusal(#"{"priority": true}"#)?.param == "priority")
    }
}
