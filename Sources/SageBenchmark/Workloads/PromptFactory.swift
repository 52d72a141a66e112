import SageLLM
import SageSupport
/// Prompts of a given length in tokens.
///
/// Without the server's tokenizer the length is built from short English words, each one
/// token for BPE tokenizers and for the simulator. `calibrate(...)` corrects the word count
/// with the server's `/tokenize` when it has one. The truth is always the server's
/// `usage.prompt_tokens`, which every result records.
public struct PromptFactory: Sendable {
    /// Tokens the chat template adds around one user message (the simulator's: 4 + 3).
    public var templateTokens: Int
    /// Tokens per word, measured by calibration (1 without it).
    public var tokensPerWord: Double

    public init(templateTokens: Int = 7, tokensPerWord: Double = 1) {
        self.templateTokens = templateTokens
        self.tokensPerWord = tokensPerWord
    }

    static let words = [
        "the", "cat", "sat", "on", "mat", "and", "dog", "ran", "to", "park", "red", "sun", "set", "over", "hill", "with",
        "blue", "sky", "far", "away", "old", "tree", "grew", "tall", "by", "lake", "fish", "swam", "in", "deep", "cold",
        "wind",
    ]

    /// A prompt of about `tokens` chat prompt tokens. `prefix` tokens of it are the same in
    /// every prompt; the rest differs by `index` (so a prefix cache sees only the prefix).
    public func prompt(tokens: Int, index: Int, seed: UInt64, prefix: Int = 0) -> String {
        let contentTokens = max(1, tokens - templateTokens)
        let wordCount = max(1, Int((Double(contentTokens) / tokensPerWord).rounded()))
        let prefixWords = min(wordCount, Int((Double(prefix) / tokensPerWord).rounded()))
        var random = SeededGenerator(seed: seed &+ UInt64(index) &* 0x9E37_79B9)
        var shared = SeededGenerator(seed: seed)
        var parts: [String] = []
        parts.reserveCapacity(wordCount)
        for position in 0..<wordCount {
            let source = position < prefixWords ? shared.next() : random.next()
            parts.append(Self.words[Int(source % UInt64(Self.words.count))])
        }
        return parts.joined(separator: " ")
    }
}
