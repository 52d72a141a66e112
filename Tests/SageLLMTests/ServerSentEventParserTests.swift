import NIOCore
import Testing

@testable import SageLLM

@Suite("SSE parser")
struct ServerSentEventParserTests {
    static let sample =
        ": keep-alive comment\r\n"
        + "data: {\"a\":1}\r\n\r\n"
        + "event: update\n"
        + "id: 7\n"
        + "data: line one\n"
        + "data: line two\n"
        + "\n"
        + "data:no-space\r\r"
        + "retry: 1500\n"
        + "data: {\"text\":\"caf\u{e9} \u{1F600}\"}\n\n"
        + "data: [DONE]\n\n"

    static func parse(_ pieces: [ArraySlice<UInt8>]) throws -> [ServerSentEvent] {
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for piece in pieces {
            try parser.parse(ByteBuffer(bytes: piece)) { events.append($0) }
        }
        try parser.finish { events.append($0) }
        return events
    }

    @Test func parsesFieldsCommentsAndLineEnds() throws {
        let events = try Self.parse([ArraySlice(Array(Self.sample.utf8))])
        #expect(events.map(\.data) == ["{\"a\":1}", "line one\nline two", "no-space", "{\"text\":\"caf\u{e9} \u{1F600}\"}", "[DONE]"])
        #expect(events[1].event == "update")
        #expect(events[1].id == "7")
        #expect(events[3].retry == 1500)
        #expect(events[4].isDone)
    }

    @Test func sameEventsAtEverySplitPoint() throws {
        let bytes = Array(Self.sample.utf8)
        let whole = try Self.parse([bytes[...]])
        for split in 0...bytes.count {
            let events = try Self.parse([bytes[..<split], bytes[split...]])
            #expect(events == whole, "split at byte \(split)")
        }
    }

    @Test func sameEventsAtEveryPairOfSplitPoints() throws {
        let bytes = Array(("data: x\r\n\r\ndata: {\"y\":2}\r\ndata: z\r\n\r\n").utf8)
        let whole = try Self.parse([bytes[...]])
        for first in 0...bytes.count {
            for second in first...bytes.count {
                let events = try Self.parse([bytes[..<first], bytes[first..<second], bytes[second...]])
                #expect(events == whole, "splits at \(first), \(second)")
            }
        }
    }

    @Test func byteByByte() throws {
        let bytes = Array(Self.sample.utf8)
        let events = try Self.parse(bytes.indices.map { bytes[$0...$0] })
        #expect(events == (try Self.parse([bytes[...]])))
    }

    @Test func lastEventWithoutBlankLineIsDelivered() throws {
        let events = try Self.parse([ArraySlice(Array("data: {\"a\":1}\n\ndata: [DONE]".utf8))])
        #expect(events.map(\.data) == ["{\"a\":1}", "[DONE]"])
    }

    @Test func malformedLineIsAnErrorWithItsText() throws {
        let bytes = Array("data: ok\n\n{\"raw\": \"json without data:\"}\n\n".utf8)
        let error = #expect(throws: SageLLMError.self) { try Self.parse([bytes[...]]) }
        #expect(error?.code == .decoding)
        #expect(error?.snippet?.contains("json without data:") == true)
    }

    @Test func oversizedEventIsRejected() throws {
        var parser = ServerSentEventParser(maximumEventSize: 64)
        let long = "data: " + String(repeating: "x", count: 200) + "\n\n"
        #expect(throws: SageLLMError.self) {
            try parser.parse(ByteBuffer(string: long)) { _ in }
        }
    }
}
