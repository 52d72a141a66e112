/// A minimal forward-only JSON reader over bytes, for the streaming hot path. It reads only
/// what a caller asks for and skips the rest. Anything it does not expect makes it throw, and
/// the caller then falls back to Foundation's JSONDecoder, which gives the real error.
struct JSONReader {
    struct Unsupported: Error {}

    let bytes: UnsafeRawBufferPointer
    var index = 0
    /// Objects and arrays open around the current position; beyond
    /// ``BoundedJSONDecoder/maximumDepth`` the reader declines instead of recursing further.
    private var depth = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always) mutating func skipWhitespace() {
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            index += 1
        }
    }

    @inline(__always) mutating func peek() throws -> UInt8 {
        skipWhitespace()
        guard index < bytes.count else { throw Unsupported() }
        return bytes[index]
    }

    @inline(__always) mutating func expect(_ byte: UInt8) throws {
        guard try peek() == byte else { throw Unsupported() }
        index += 1
    }

    /// Reads `null` if it is next; returns whether it was.
    mutating func readNull() throws -> Bool {
        guard try peek() == UInt8(ascii: "n") else { return false }
        guard index + 4 <= bytes.count, bytes[index + 1] == UInt8(ascii: "u"), bytes[index + 2] == UInt8(ascii: "l"),
            bytes[index + 3] == UInt8(ascii: "l")
        else { throw Unsupported() }
        index += 4
        return true
    }

    /// Reads `true` or `false`.
    mutating func readBool() throws -> Bool {
        let literal: StaticString = try peek() == UInt8(ascii: "t") ? "true" : "false"
        guard index + literal.utf8CodeUnitCount <= bytes.count,
            UnsafeRawBufferPointer(rebasing: bytes[index..<(index + literal.utf8CodeUnitCount)]).equals(literal)
        else { throw Unsupported() }
        index += literal.utf8CodeUnitCount
        return literal.utf8CodeUnitCount == 4
    }

    /// Calls `body` with each member name of an object; `body` must read or skip the value.
    mutating func readObject(_ body: (inout JSONReader, UnsafeRawBufferPointer) throws -> Void) throws {
        try readContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}")) { reader in
            let key = try reader.readRawString()
            try reader.expect(UInt8(ascii: ":"))
            try body(&reader, key)
        }
    }

    /// Calls `body` for each element of an array; `body` must read or skip it.
    mutating func readArray(_ body: (inout JSONReader) throws -> Void) throws {
        try readContainer(open: UInt8(ascii: "["), close: UInt8(ascii: "]"), body)
    }

    /// An object or array: `open`, elements separated by commas (each read by `element`), `close`.
    private mutating func readContainer(open: UInt8, close: UInt8, _ element: (inout JSONReader) throws -> Void) throws {
        try expect(open)
        try enter()
        defer { depth -= 1 }
        if try peek() == close {
            index += 1
            return
        }
        while true {
            try element(&self)
            let next = try peek()
            index += 1
            if next == close { return }
            guard next == UInt8(ascii: ",") else { throw Unsupported() }
        }
    }

    private mutating func enter() throws {
        depth += 1
        if depth > BoundedJSONDecoder.maximumDepth { throw Unsupported() }
    }

    /// The bytes of a string without escapes (used for member names).
    private mutating func readRawString() throws -> UnsafeRawBufferPointer {
        try expect(UInt8(ascii: "\""))
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                defer { index += 1 }
                return UnsafeRawBufferPointer(rebasing: bytes[start..<index])
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { throw Unsupported() }
            index += 1
        }
        throw Unsupported()
    }

    /// A string value, with escapes resolved.
    mutating func readString() throws -> String {
        try expect(UInt8(ascii: "\""))
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                defer { index += 1 }
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") { return try readEscapedString(from: start) }
            if byte < 0x20 { throw Unsupported() }
            index += 1
        }
        throw Unsupported()
    }

    private mutating func readEscapedString(from start: Int) throws -> String {
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        func flush() {
            scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
            utf8.removeAll(keepingCapacity: true)
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                flush()
                return String(scalars)
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw Unsupported() }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "u"):
                    flush()
                    var value = try readHex4()
                    if (0xD800..<0xDC00).contains(value) {
                        guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u")
                        else { throw Unsupported() }
                        index += 2
                        let low = try readHex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Unsupported() }
                        value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(value) else { throw Unsupported() }
                    scalars.append(scalar)
                default: throw Unsupported()
                }
            default:
                if byte < 0x20 { throw Unsupported() }
                utf8.append(byte)
            }
        }
        throw Unsupported()
    }

    private mutating func readHex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw Unsupported() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            index += 1
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Unsupported()
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// An integer value (no fraction or exponent).
    mutating func readInt() throws -> Int {
        skipWhitespace()
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var value = 0
        var digits = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            let (product, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = product.addingReportingOverflow(Int(bytes[index] - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw Unsupported() }
            value = sum
            digits += 1
            index += 1
        }
        guard digits > 0 else { throw Unsupported() }
        if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) {
            throw Unsupported()
        }
        return negative ? -value : value
    }

    /// Skips any value.
    mutating func skipValue() throws {
        switch try peek() {
        case UInt8(ascii: "{"): try readObject { reader, _ in try reader.skipValue() }
        case UInt8(ascii: "["): try readArray { reader in try reader.skipValue() }
        case UInt8(ascii: "\""): _ = try readRawStringOrEscaped()
        default:
            // a number or a literal: up to the next delimiter
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") || byte == 0x20
                    || byte == 0x0A || byte == 0x0D || byte == 0x09
                {
                    break
                }
                index += 1
            }
            guard index > start else { throw Unsupported() }
        }
    }

    private mutating func readRawStringOrEscaped() throws -> Int {
        try expect(UInt8(ascii: "\""))
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\\") {
                index += 1
            } else if byte == UInt8(ascii: "\"") {
                return index
            }
        }
        throw Unsupported()
    }

    /// Whether the reader consumed everything but trailing white space.
    mutating func atEnd() -> Bool {
        skipWhitespace()
        return index == bytes.count
    }
}

extension UnsafeRawBufferPointer {
    /// Whether these bytes are exactly `name`.
    @inline(__always) func equals(_ name: StaticString) -> Bool {
        guard count == name.utf8CodeUnitCount else { return false }
        let pointer = name.utf8Start
        for index in 0..<count where self[index] != pointer[index] { return false }
        return true
    }
}
