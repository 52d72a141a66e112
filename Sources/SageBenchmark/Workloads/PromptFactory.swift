import SageLLM
import SageSupport
/// Prompts of a given length in tokens.
///
/// Without calibration the length is built from short English words, one token each (true
/// for the simulator; real tokenizers differ). The server's own tokenizer calibrates the word
/// count when it has one in any form (`ServerTokenizer`), else the warm-up requests' usage
/// does (``adjusted(by:)``). The truth is always the server's `usage.prompt_tokens`, which
/// every result records beside the length asked for.
public struct PromptFactory: Sendable {
    /// Tokens the chat template adds around one user message (the simulator's: 4 + 3).
    public var templateTokens: Int
    /// Tokens per word, measured by calibration (1 without it).
    public var tokensPerWord: Double
    /// How the figures were found, for the report; nil: assumed.
    public var calibration: String?
    /// Whether ``templateTokens`` was measured (a tokenizer that applies the chat template);
    /// when only ``tokensPerWord`` was, the warm-up's usage finds the template's tokens.
    public var templateMeasured: Bool

    public init(templateTokens: Int = 7, tokensPerWord: Double = 1, calibration: String? = nil, templateMeasured: Bool = false) {
        self.templateTokens = templateTokens
        self.tokensPerWord = tokensPerWord
        self.calibration = calibration
        self.templateMeasured = templateMeasured
    }

    /// The words of the prompt asked for `tokens` tokens (of content, when `content`), at
    /// most 2^24.
    func words(forTokens tokens: Int, content: Bool = false) -> Int {
        let contentTokens = content ? tokens : max(1, tokens - templateTokens)
        // A measured figure outside any real tokenizer's range is not trusted as it is.
        let perWord = tokensPerWord.isFinite ? min(max(tokensPerWord, 0.1), 20) : 1
        let words = (Double(contentTokens) / perWord).rounded()
        return words.isFinite ? Int(min(max(words, 1), Double(1 << 24))) : 1
    }

    /// The factory corrected by what the server reported for prompts made by this one
    /// (`asked` tokens, `reported` by its usage). Uncalibrated, the tokens per word are found
    /// from the prompts' sizes (the template's tokens kept); with tokens per word measured by
    /// a tokenizer that leaves the template out, the template's tokens are found. Nil without
    /// a usable report.
    public func adjusted(by samples: [(asked: Int, reported: Int)]) -> PromptFactory? {
        let usable = samples.filter { $0.reported > 0 }
        guard !usable.isEmpty else { return nil }
        var adjusted = self
        adjusted.templateMeasured = true
        if calibration != nil {
            // Tokens per word known: the rest of each prompt is the template's.
            let content = usable.map { Double(words(forTokens: $0.asked)) * tokensPerWord }
            let template = zip(usable, content).map { Double($0.reported) - $1 }.reduce(0, +) / Double(usable.count)
            guard template.isFinite, template >= 0, template < 100_000 else { return nil }
            adjusted.templateTokens = Int(template.rounded())
            adjusted.calibration = (calibration ?? "") + "; template tokens from the warm-up's usage.prompt_tokens: \(adjusted.templateTokens)"
            return adjusted
        }
        var wordCount = 0
        var contentTokens = 0
        for sample in usable where sample.reported > templateTokens {
            wordCount += words(forTokens: sample.asked)
            contentTokens += sample.reported - templateTokens
        }
        guard wordCount > 0, contentTokens > 0 else { return nil }
        adjusted.tokensPerWord = Double(contentTokens) / Double(wordCount)
        adjusted.calibration =
            "the warm-up's usage.prompt_tokens (\(usable.count) requests): \(String(format1: adjusted.tokensPerWord)) tokens per word, \(templateTokens) template tokens assumed"
        return adjusted
    }

    static let words = [
        "the", "cat", "sat", "on", "mat", "and", "dog", "ran", "to", "park", "red", "sun", "set", "over", "hill", "with",
        "blue", "sky", "far", "away", "old", "tree", "grew", "tall", "by", "lake", "fish", "swam", "in", "deep", "cold",
        "wind",
    ]

    /// A prompt of about `tokens` chat prompt tokens. `prefix` tokens of it are the same in
    /// every prompt; the rest differs by `index` (so a prefix cache sees only the prefix).
    public func prompt(tokens: Int, index: Int, seed: UInt64, prefix: Int = 0) -> String {
        let wordCount = words(forTokens: tokens)
        let prefixWords = prefix > 0 ? min(wordCount, words(forTokens: prefix, content: true)) : 0
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
