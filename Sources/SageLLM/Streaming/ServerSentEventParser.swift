import NIOCore

/// One Server-Sent Event.
package struct ServerSentEvent: Sendable, Hashable {
    /// The `event:` field; nil for the default `message` type.
    package var event: String?
    /// The `data:` lines joined with "\n".
    package var data: String
    /// The last `id:` seen in the stream.
    package var id: String?
    /// The `retry:` field, in milliseconds.
    package var retry: Int?

    package init(event: String? = nil, data: String, id: String? = nil, retry: Int? = nil) {
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry
    }

    /// The OpenAI end-of-stream marker `data: [DONE]`.
    package var isDone: Bool { data == "[DONE]" }
}

/// A byte-level Server-Sent Events parser that can be fed arbitrary slices of a stream.
///
/// It keeps partial lines across buffers (including a `\r\n` split between two
/// buffers), accepts `\n`, `\r\n` and `\r` line ends, skips `:` comments, joins
/// multi-line `data:` and dispatches on a blank line. A line that is not an SSE
/// field is an error carrying the offending text: nothing is dropped silently.
///
/// ```swift
/// var parser = ServerSentEventParser()
/// for try await buffer in response.body {
///     try parser.parse(buffer) { event in handle(event) }
/// }
/// try parser.finish { event in handle(event) }
/// ```
package struct ServerSentEventParser: Sendable {
    /// The largest event (or line) accepted, in bytes.
    package let maximumEventSize: Int

    private var partialLine: [UInt8] = []
    private var skipLeadingLineFeed = false
    private var data: [UInt8] = []
    private var hasData = false
    private var eventType: String?
    private var lastEventID: String?
    private var retry: Int?

    package init(maximumEventSize: Int = 16 * 1024 * 1024) {
        self.maximumEventSize = maximumEventSize
    }

    /// Parses the readable bytes of `buffer`, calling `onEvent` for each complete event.
    package mutating func parse(_ buffer: ByteBuffer, _ onEvent: (ServerSentEvent) throws -> Void) throws {
        try parseViews(buffer) { try onEvent($0.event) }
    }

    /// Parses raw bytes, calling `onEvent` for each complete event.
    package mutating func parse(bytes: UnsafeRawBufferPointer, _ onEvent: (ServerSentEvent) throws -> Void) throws {
        try parseViews(bytes: bytes) { try onEvent($0.event) }
    }

    /// Ends the stream: a last line without a line end is processed, and a pending event is
    /// dispatched (servers often end with `data: [DONE]` and no blank line).
    package mutating func finish(_ onEvent: (ServerSentEvent) throws -> Void) throws {
        try finishViews { try onEvent($0.event) }
    }

    /// An event whose data is still the parser's bytes: the hot path reads it without making a
    /// String. `data` is valid only during the callback that receives the view.
    package struct EventView {
        /// The `data:` lines joined with "\n", valid only during the callback.
        package let data: UnsafeRawBufferPointer
        let type: String?
        let id: String?
        let retry: Int?

        init(data: UnsafeRawBufferPointer, type: String?, id: String?, retry: Int?) {
            self.data = data
            self.type = type
            self.id = id
            self.retry = retry
        }

        package var isDone: Bool {
            data.count == 6 && data.elementsEqual("[DONE]".utf8)
        }
        package var event: ServerSentEvent {
            ServerSentEvent(event: type, data: String(decoding: data, as: UTF8.self), id: id, retry: retry)
        }
    }

    package mutating func parseViews(_ buffer: ByteBuffer, _ onEvent: (EventView) throws -> Void) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            try self.parseViews(bytes: bytes, onEvent)
        }
    }

    package mutating func parseViews(bytes: UnsafeRawBufferPointer, _ onEvent: (EventView) throws -> Void) throws {
        var start = 0
        let count = bytes.count
        if skipLeadingLineFeed, count > 0 {
            skipLeadingLineFeed = false
            if bytes[0] == UInt8(ascii: "\n") { start = 1 }
        }
        var index = start
        while index < count {
            let byte = bytes[index]
            if byte != UInt8(ascii: "\n") && byte != UInt8(ascii: "\r") {
                index += 1
                continue
            }
            let line = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
            if partialLine.isEmpty {
                try processLine(line, onEvent)
            } else {
                partialLine.append(contentsOf: line)
                let whole = partialLine
                partialLine.removeAll(keepingCapacity: true)
                try whole.withUnsafeBytes { try processLine($0, onEvent) }
            }
            index += 1
            if byte == UInt8(ascii: "\r") {
                if index < count {
                    if bytes[index] == UInt8(ascii: "\n") { index += 1 }
                } else {
                    skipLeadingLineFeed = true
                }
            }
            start = index
        }
        if start < count {
            partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<count]))
            if partialLine.count > maximumEventSize {
                throw Self.malformed("a line longer than \(maximumEventSize) bytes", partialLine.prefix(512))
            }
        }
    }

    package mutating func finishViews(_ onEvent: (EventView) throws -> Void) throws {
        if !partialLine.isEmpty {
            let whole = partialLine
            partialLine.removeAll()
            try whole.withUnsafeBytes { try processLine($0, onEvent) }
        }
        try dispatch(onEvent)
    }

    private mutating func processLine(_ line: UnsafeRawBufferPointer, _ onEvent: (EventView) throws -> Void)
        throws
    {
        if line.isEmpty {
            try dispatch(onEvent)
            return
        }
        if line[0] == UInt8(ascii: ":") { return }  // a comment, e.g. a keep-alive
        var colon = line.count
        for position in 0..<line.count where line[position] == UInt8(ascii: ":") {
            colon = position
            break
        }
        var valueStart = Swift.min(colon + 1, line.count)
        if valueStart < line.count, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let field = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        let value = UnsafeRawBufferPointer(rebasing: line[valueStart..<line.count])

        if Self.equals(field, "data") {
            if hasData { data.append(UInt8(ascii: "\n")) }
            data.append(contentsOf: value)
            hasData = true
            if data.count > maximumEventSize {
                throw Self.malformed("an event larger than \(maximumEventSize) bytes", data.prefix(512))
            }
        } else if Self.equals(field, "event") {
            eventType = String(decoding: value, as: UTF8.self)
        } else if Self.equals(field, "id") {
            if !value.contains(0) { lastEventID = String(decoding: value, as: UTF8.self) }
        } else if Self.equals(field, "retry") {
            retry = Int(String(decoding: value, as: UTF8.self))
        } else {
            throw Self.malformed("a line that is not an SSE field (data:, event:, id:, retry: or :comment)", line)
        }
    }

    private mutating func dispatch(_ onEvent: (EventView) throws -> Void) throws {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventType = nil
        }
        guard hasData else { return }
        let (type, id, retry) = (eventType, lastEventID, self.retry)
        try data.withUnsafeBytes { bytes in
            try onEvent(EventView(data: bytes, type: type, id: id, retry: retry))
        }
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        let pointer = name.utf8Start
        for index in 0..<bytes.count where bytes[index] != pointer[index] { return false }
        return true
    }

    private static func malformed(_ what: String, _ text: some Sequence<UInt8>) -> SageLLMError {
        var error = SageLLMError(code: .decoding, reason: "malformed server-sent event stream: \(what)")
        error.snippet = SageLLMError.snippet(String(decoding: Array(text), as: UTF8.self))
        return error
    }
}
