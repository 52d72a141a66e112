import struct Foundation.Data
import class Foundation.JSONDecoder
import NIOCore

/// Foundation's `JSONDecoder` with a nesting limit checked first, for every JSON document that
/// comes from outside. A server (or a client of the simulator) that sends half a megabyte of
/// `[` must get a decoding error, not a stack overflow in a recursive reader.
package struct BoundedJSONDecoder: Sendable {
    /// The deepest nesting accepted. OpenAI shapes need fewer than 10 levels; vendor extras
    /// (tool schemas, `kv_transfer_params`) stay well under 64.
    package static let maximumDepth = 64

    /// Nesting beyond ``maximumDepth``.
    package struct TooDeep: Error, CustomStringConvertible {
        package var description: String {
            "the JSON is nested deeper than \(BoundedJSONDecoder.maximumDepth) levels"
        }
    }

    package init() {}

    package func decode<Value: Decodable>(_ type: Value.Type, from data: Data) throws -> Value {
        let tooDeep = data.withUnsafeBytes { Self.exceedsDepth($0) }
        if tooDeep { throw TooDeep() }
        return try JSONDecoder().decode(type, from: data)
    }

    package func decode<Value: Decodable>(_ type: Value.Type, from bytes: some Collection<UInt8>) throws -> Value {
        try decode(type, from: Data(bytes))
    }

    package func decode<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) throws -> Value {
        try decode(type, from: Data(buffer.readableBytesView))
    }

    /// Whether arrays and objects in `bytes` nest deeper than `limit`. Brackets inside strings
    /// do not count; the scan is linear and never recursive.
    package static func exceedsDepth(_ bytes: UnsafeRawBufferPointer, limit: Int = maximumDepth) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return false
    }
}
