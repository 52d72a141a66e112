import NIOCore

/// The top-level members of a JSON object, read and rewritten without decoding their values:
/// a relay changes the few members it must and passes every other byte through as it came.
package enum JSONObjectMembers {
    /// The raw bytes of the top-level member `key`'s value; nil when absent, or when the body is
    /// not an object the fast reader reads.
    package static func value(of key: String, in body: ByteBuffer) -> ByteBuffer? {
        guard let members = members(of: body), let member = members.last(where: { $0.key == key }) else { return nil }
        return body.getSlice(at: body.readerIndex + member.value.lowerBound, length: member.value.count)
    }

    /// `body` with the members of `setting` (key, raw JSON value) set, replacing any of the same
    /// name, and the members of `removing` left out; every other member is copied byte for byte,
    /// in its order. Nil when the body is not an object the fast reader reads (escaped member
    /// names, say).
    package static func rewriting(_ body: ByteBuffer, setting: [(key: String, value: String)], removing: Set<String> = [])
        -> ByteBuffer?
    {
        guard let members = members(of: body) else { return nil }
        let replaced = Set(setting.map(\.key)).union(removing)
        var output = ByteBuffer()
        output.reserveCapacity(body.readableBytes + setting.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 4 })
        output.writeStaticString("{")
        var first = true
        func separate() {
            if !first { output.writeStaticString(",") }
            first = false
        }
        for member in members where !replaced.contains(member.key) {
            separate()
            output.writeString("\"\(member.key)\":")
            guard let value = body.getSlice(at: body.readerIndex + member.value.lowerBound, length: member.value.count) else { return nil }
            output.writeImmutableBuffer(value)
        }
        for (key, value) in setting {
            separate()
            output.writeString("\"\(key)\":")
            output.writeString(value)
        }
        output.writeStaticString("}")
        return output
    }

    /// Each top-level member's name and the byte range of its value (from the reader index).
    private static func members(of body: ByteBuffer) -> [(key: String, value: Range<Int>)]? {
        body.withUnsafeReadableBytes { bytes -> [(key: String, value: Range<Int>)]? in
            var reader = JSONReader(bytes)
            var members: [(key: String, value: Range<Int>)] = []
            do {
                try reader.readObject { reader, key in
                    _ = try reader.peek()  // past the white space before the value
                    let start = reader.index
                    try reader.skipValue()
                    members.append((String(decoding: key, as: UTF8.self), start..<reader.index))
                }
                guard reader.atEnd() else { return nil }
            } catch {
                return nil
            }
            return members
        }
    }
}
