/// The simulator's deterministic tokenizer. It needs no vocabulary file and counts about
/// one token per four characters of English, like real BPE tokenizers.
///
/// Rules, applied left to right:
/// - a run of ASCII letters and digits is cut into tokens of at most 4 characters;
/// - one space directly before such a run (or before a punctuation mark) belongs to its first token;
/// - every other character (punctuation, a newline, a second space, any non-ASCII character) is one token.
///
/// Chat prompts use a ChatML-like template: each message costs 4 tokens beyond its content
/// (`<|im_start|>`, the role, a newline, `<|im_end|>`), and the assistant prompt that
/// follows costs 3. The same count is reported in `usage.prompt_tokens` and by `/tokenize`.
public enum SimulatedTokenizer {
    /// Tokens of overhead per chat message.
    public static let tokensPerMessage = 4
    /// Tokens of the generation prompt that ends a chat prompt.
    public static let generationPromptTokens = 3

    static let imStart = 1
    static let imEnd = 2
    static let newline = 3
    static let roleBase = 10

    /// The token ids of `text`.
    public static func tokenize(_ text: String) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 1)
        forEachToken(in: text) { ids.append($0) }
        return ids
    }

    /// The number of tokens in `text`.
    public static func count(_ text: String) -> Int {
        var count = 0
        forEachToken(in: text) { _ in count += 1 }
        return count
    }

    /// The token ids of a chat prompt, with the template and (optionally) the generation prompt.
    public static func tokenize(messages: [(role: String, content: String)], addGenerationPrompt: Bool = true) -> [Int] {
        var ids: [Int] = []
        for message in messages {
            ids.append(imStart)
            ids.append(roleID(message.role))
            ids.append(newline)
            forEachToken(in: message.content) { ids.append($0) }
            ids.append(imEnd)
        }
        if addGenerationPrompt { ids.append(contentsOf: [imStart, roleID("assistant"), newline]) }
        return ids
    }

    static func roleID(_ role: String) -> Int {
        switch role {
        case "system": roleBase
        case "user": roleBase + 1
        case "assistant": roleBase + 2
        case "tool": roleBase + 3
        default: roleBase + 4
        }
    }

    @inline(__always)
    private static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    /// Calls `body` with each token id of `text`. Ids are an FNV-1a hash of the token's bytes.
    static func forEachToken(in text: String, _ body: (Int) -> Void) {
        var text = text
        text.withUTF8 { bytes in
            let count = bytes.count
            var index = 0
            while index < count {
                var hash: UInt64 = 0xcbf2_9ce4_8422_2325
                @inline(__always) func mix(_ byte: UInt8) {
                    hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
                }
                var byte = bytes[index]
                if byte == 0x20, index + 1 < count, bytes[index + 1] != 0x20, bytes[index + 1] != 0x0A,
                    bytes[index + 1] != 0x09, bytes[index + 1] != 0x0D
                {
                    mix(byte)  // the space joins the token after it
                    index += 1
                    byte = bytes[index]
                }
                if isWordByte(byte) {
                    var length = 0
                    while index < count, length < 4, isWordByte(bytes[index]) {
                        mix(bytes[index])
                        index += 1
                        length += 1
                    }
                } else {
                    // one character: an ASCII byte, or a whole UTF-8 scalar
                    let length: Int =
                        byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                    var taken = 0
                    while taken < length, index < count {
                        mix(bytes[index])
                        index += 1
                        taken += 1
                    }
                }
                body(100 + Int(hash % 50_000))
            }
        }
    }
}
