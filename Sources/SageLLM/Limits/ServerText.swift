/// Text a server sent (an error message, a body snippet) made safe to print: the client's
/// own key is redacted (a server may echo the `Authorization` header), control characters
/// (terminal escape codes among them) become spaces, and the length is capped.
package enum ServerText {
    /// The most characters of a server's message kept in an error.
    package static let maximumMessageCharacters = 1024

    package static func clean(_ text: String, secrets: [String], limit: Int = maximumMessageCharacters) -> String {
        var cleaned = redact(text, secrets: secrets)
        cleaned = String(String.UnicodeScalarView(cleaned.unicodeScalars.map(visible)))
        guard cleaned.count > limit else { return cleaned }
        return String(cleaned.prefix(limit)) + "..."
    }

    /// A model's answer (or any server text) fit to write to a terminal: line breaks and tabs
    /// stay, every other control character (an escape sequence could move the cursor, rewrite
    /// the screen or set the window title) and bidirectional override becomes a space.
    package static func forTerminal(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { visible($0) != $0 && $0 != "\n" && $0 != "\t" }) else { return text }
        return String(
            String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\n" || $0 == "\t" ? $0 : visible($0) }))
    }

    /// `text` with every occurrence of each secret replaced by `<redacted>`; nothing else changes.
    package static func redact(_ text: String, secrets: [String]) -> String {
        var result = text
        for secret in secrets where !secret.isEmpty && result.contains(secret) {
            result = result.replacing(secret, with: "<redacted>")
        }
        return result
    }

    /// A control character (C0, DEL, C1) or a bidirectional override as a space.
    private static func visible(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: " "
        default: scalar
        }
    }
}

extension SageLLMError {
    /// This error with every piece of server text cleaned (see ``ServerText``) and `secrets`
    /// redacted from the kept body too.
    package func cleaningServerText(secrets: [String]) -> SageLLMError {
        var error = self
        error.serverMessage = serverMessage.map { ServerText.clean($0, secrets: secrets) }
        error.serverErrorType = serverErrorType.map { ServerText.clean($0, secrets: secrets, limit: 128) }
        error.snippet = snippet.map { ServerText.clean($0, secrets: secrets, limit: 512) }
        error.underlying = underlying.map { ServerText.clean($0, secrets: secrets) }
        error.responseBody = responseBody.map { ServerText.redact($0, secrets: secrets) }
        return error
    }
}
