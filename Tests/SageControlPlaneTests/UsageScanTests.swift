import NIOCore
import Testing

@testable import SageControlPlane

/// The output tokens a relayed answer reports, found in its bytes without decoding them.
struct UsageScanTests {
    static func scan(_ text: String) -> Int? { UsageScan.completionTokens(in: ByteBuffer(string: text)) }

    @Test func theLastUsageFieldIsFound() {
        #expect(Self.scan(#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":17,"total_tokens":20}}"#) == 17)
        #expect(Self.scan(#"data: {"usage": {"completion_tokens" :  4}}"# + "\n\ndata: [DONE]\n\n") == 4)
        #expect(Self.scan(#"{"usage":{"completion_tokens":1},"x":{"completion_tokens":9}}"#) == 9, "the last one wins")
    }

    @Test func textThatOnlyMentionsTheKeyIsNotAUsage() {
        #expect(Self.scan(#"{"content":"say \"completion_tokens\": 5"}"#) == nil)
        #expect(Self.scan(#"{"completion_tokens":"many"}"#) == nil)
        #expect(Self.scan(#"{"completion_tokens":99999999999999999999999}"#) == nil, "too large: not learnt, not trapped")
        #expect(Self.scan("") == nil)
    }
}
