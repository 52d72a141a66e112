import NIOCore
import PropertyBased
@testable import SageLLM
import Testing

/// Arbitrary input never traps: the number conversions, the SSE parser, the JSON readers and
/// the URL and YAML checks take any bytes, any text and any number (NaN, infinities, every
/// bit pattern) and answer with a value or an error.
@Suite("Arbitrary input")
struct ArbitraryInputTests {
    /// Every Double, from its bit pattern: NaN, infinities, subnormals, huge and tiny values.
    static let anyDouble = Gen<UInt64>.value().map { Double(bitPattern: $0) }
    static let anyBytes = Gen<UInt8>.value().array(of: 0...600)
    /// Bytes from JSON's own alphabet, which reach deeper into the readers than noise does.
    static let jsonish = Gen.element(of: Array(#"{}[]",:0123456789-+.eEnulltruefalse \"\\u00a"#.utf8))
        .map { $0 ?? UInt8(ascii: " ") }.array(of: 0...400)

    @Test func secondsFromAnyNumberAreCheckedOrRefused() async {
        await propertyCheck(count: 2_000, input: Self.anyDouble) { value in
            // Accepted exactly when finite, at least half a nanosecond and at most the maximum.
            let acceptable = value.isFinite && value >= 0.5e-9 && value <= OutsideNumber.maximumSeconds
            if let duration = OutsideNumber.duration(seconds: value) {
                #expect(acceptable)
                #expect(duration > .zero)
            } else {
                #expect(!acceptable)
            }
            _ = OutsideNumber.clampedDuration(seconds: value)
            _ = RetryAfter.parse(String(value))
            _ = RetryPolicy(maxRetries: 3).delay(beforeRetry: 3, retryAfter: nil, random: abs(value.truncatingRemainder(dividingBy: 1)))
        }
    }

    @Test func integersFromAnyPairAddWithoutTrapping() async {
        await propertyCheck(count: 2_000, input: Gen<Int>.value(), Gen<Int>.value()) { a, b in
            let sum = a.addingSaturating(b)
            let (exact, overflow) = a.addingReportingOverflow(b)
            #expect(overflow ? (sum == .max || sum == .min) : sum == exact)
            _ = Usage(promptTokens: a, completionTokens: b)
        }
    }

    @Test func theSSEParserTakesAnyBytes() async {
        await propertyCheck(count: 1_000, input: Self.anyBytes) { bytes in
            var parser = ServerSentEventParser(maximumEventSize: 256)
            var events = 0
            do {
                try bytes.withUnsafeBytes { raw in try parser.parse(bytes: raw) { _ in events += 1 } }
                try parser.finish { _ in events += 1 }
            } catch {
                // A malformed stream is an error, which is fine; a trap is not.
            }
            #expect(events >= 0)
        }
    }

    @Test func theChunkReadersTakeAnyBytes() async {
        await propertyCheck(count: 1_000, input: Self.jsonish) { bytes in
            bytes.withUnsafeBytes { raw in
                _ = try? ChatCompletionChunk.decode(raw)
                _ = try? CompletionResponse.decode(raw)
                _ = BoundedJSONDecoder.exceedsDepth(raw)
            }
            _ = ErrorBody.parse(bytes)
            _ = try? BoundedJSONDecoder().decode(JSONValue.self, from: bytes)
        }
        await propertyCheck(count: 500, input: Self.anyBytes) { bytes in
            bytes.withUnsafeBytes { raw in _ = try? ChatCompletionChunk.decode(raw) }
            _ = ErrorBody.parse(bytes)
        }
    }

    @Test func urlsAndYAMLChecksTakeAnyText() async {
        let text = Gen.element(of: Array("htps:/@[]?#:0123456789abc.-_ \n*&'\"%")).map { $0 ?? "a" }.array(of: 0...80)
            .map { String($0) }
        await propertyCheck(count: 2_000, input: text) { candidate in
            _ = BaseURL(candidate)
            _ = try? HTTPTransport.normalize(baseURL: candidate)
            _ = try? HTTPTransport.normalize(baseURL: "http://" + candidate)
            _ = EndpointDetector.isLoopback("http://" + candidate)
            _ = BaseURL.redactingUserInfo(candidate)
            _ = YAMLLimits.problem(in: candidate, maximumBytes: 64, maximumLines: 4)
            _ = ServerText.clean(candidate, secrets: ["ab", ""])
        }
    }
}
