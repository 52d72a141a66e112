/// Checks a YAML document before a parser sees it, so that a hostile or mistaken file cannot
/// spin a core: a size and line limit, and a limit on aliases (`*name`), since a few nested
/// aliases expand to billions of nodes (the "billion laughs" file). Real settings and cluster
/// files use a handful at most.
package enum YAMLLimits {
    /// The most aliases a file may use; 32 bound any expansion to about 10^5 nodes.
    package static let maximumAliases = 32

    /// Why `text` is refused, or nil when it is within the limits.
    package static func problem(in text: String, maximumBytes: Int, maximumLines: Int) -> String? {
        let bytes = text.utf8.count
        if bytes > maximumBytes { return "it is \(bytes) bytes; at most \(maximumBytes) are read" }
        var lines = 0
        var aliases = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lines += 1
            aliases += aliasCount(in: line)
        }
        if lines > maximumLines { return "it has \(lines) lines; at most \(maximumLines) are read" }
        if aliases > maximumAliases {
            return "it uses \(aliases) aliases (*name); at most \(maximumAliases) are accepted, since nested aliases can expand without bound"
        }
        return nil
    }

    /// Aliases on one line: a `*` that starts a node (after a space, `[`, `{`, `,`, `-` or `:`,
    /// or at the start) and is followed by a name, outside quotes and comments.
    static func aliasCount(in line: Substring) -> Int {
        var count = 0
        var quote: Character?
        var previous: Character = " "
        var index = line.startIndex
        while index < line.endIndex {
            let character = line[index]
            let next = line.index(after: index)
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#", previous == " " || previous == "\t" {
                break
            } else if character == "*", " \t[{,-:".contains(previous), next < line.endIndex,
                !" \t,]}".contains(line[next])
            {
                count += 1
            }
            previous = character
            index = next
        }
        return count
    }

    /// A parser's error message without the document's text: the lines a parser quotes from
    /// the file (and its `^` marker) are dropped, and any value of a file line that looks like
    /// it holds a secret is redacted from what is left. Parsers quote the offending line, which
    /// may be `api_key: sk-...`.
    package static func describeWithoutSource(_ error: any Error, source text: String) -> String {
        let sourceLines = Set(text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }.filter { !$0.isEmpty })
        var kept = String(describing: error).split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }.filter {
            !$0.isEmpty && !$0.allSatisfy { $0 == "^" || $0 == " " } && !sourceLines.contains($0)
        }.joined(separator: "; ")
        for line in text.split(whereSeparator: \.isNewline) {
            let lower = line.lowercased()
            guard ["key", "secret", "token", "password"].contains(where: lower.contains),
                let colon = line.firstIndex(of: ":")
            else { continue }
            let value = line[line.index(after: colon)...].trimmingWhitespace()
            for piece in [value, value.trimmingCharacters(in: "\"'")] where piece.count >= 4 {
                kept = kept.replacing(piece, with: "<redacted>")
            }
        }
        return kept
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}
