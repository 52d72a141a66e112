import SageLLM

/// A server's own tokenizer, in whichever of the field's forms the server has, counting a chat
/// prompt of one user message as the server will: so that synthetic prompts have the length
/// asked for, whatever the tokenizer (one word is one token for the simulator, about 1.3 to 4
/// for real tokenizers and this prompt vocabulary).
struct ServerTokenizer: Sendable {
    /// The forms, tried in this order.
    enum Form: String, Sendable, CaseIterable {
        /// vLLM and the simulator: `POST /tokenize` with the messages (the chat template applied).
        case chatMessages = "POST /tokenize with messages (vLLM)"
        /// llama.cpp: `POST /apply-template` with the messages, then `POST /tokenize` with the
        /// templated text as `content`.
        case llamaCpp = "POST /apply-template and /tokenize with content (llama.cpp)"
        /// LMDeploy: `POST /v1/encode` with `do_preprocess` (its chat template).
        case lmdeploy = "POST /v1/encode (LMDeploy)"
        /// SGLang (and vLLM): `POST /tokenize` with a `prompt`: no chat template.
        case prompt = "POST /tokenize with prompt (SGLang)"

        /// Whether its counts include the chat template's tokens.
        var includesTemplate: Bool { self != .prompt }
    }

    /// Sends a JSON body to a path of the server's root and returns the JSON answer, or nil
    /// when the server has no such endpoint or answers something else.
    typealias Send = @Sendable (_ path: String, _ body: JSONValue) async -> JSONValue?

    let form: Form
    let model: String?
    let send: Send

    /// The first form the server answers, tried with a short message; nil when it has none.
    static func find(model: String?, send: @escaping Send) async -> ServerTokenizer? {
        for form in Form.allCases {
            let tokenizer = ServerTokenizer(form: form, model: model, send: send)
            if let count = await tokenizer.count(userMessage: "hello there"), count > 0 { return tokenizer }
        }
        return nil
    }

    /// The tokens of a chat prompt made of one user message: the template's included when
    /// the form can (``Form/includesTemplate``).
    func count(userMessage text: String) async -> Int? {
        let messages: JSONValue = [["role": "user", "content": .string(text)]]
        switch form {
        case .chatMessages:
            var body: [String: JSONValue] = ["messages": messages, "add_generation_prompt": true]
            if let model { body["model"] = .string(model) }
            return Self.tokenCount(await send("tokenize", .object(body)))
        case .llamaCpp:
            // Servers without /apply-template (older llama.cpp) count the text alone.
            let templated = await send("apply-template", ["messages": messages])?["prompt"]?.stringValue
            let body: JSONValue = ["content": .string(templated ?? text), "add_special": true, "parse_special": templated != nil ? true : false]
            return Self.tokenCount(await send("tokenize", body))
        case .lmdeploy:
            return Self.tokenCount(await send("v1/encode", ["input": .string(text), "do_preprocess": true, "add_bos": true]))
        case .prompt:
            var body: [String: JSONValue] = ["prompt": .string(text), "add_special_tokens": true]
            if let model { body["model"] = .string(model) }
            return Self.tokenCount(await send("tokenize", .object(body)))
        }
    }

    /// A count in any of the answers' shapes: `count` (vLLM, SGLang), `length` (LMDeploy), or
    /// the number of `tokens` (llama.cpp) or `input_ids`.
    static func tokenCount(_ answer: JSONValue?) -> Int? {
        guard let answer else { return nil }
        for key in ["count", "length"] {
            if case .int(let count)? = answer[key], count >= 0 { return count }
        }
        for key in ["tokens", "input_ids"] {
            if case .array(let tokens)? = answer[key] { return tokens.count }
        }
        return nil
    }

    /// The server's tokens per word of ``PromptFactory``'s vocabulary and the tokens its
    /// template adds, from a user message of 100 words and one of 200. A form without the
    /// template keeps `templateTokens` as it was (the warm-up's usage corrects it).
    func calibrate(_ factory: PromptFactory = PromptFactory()) async -> PromptFactory? {
        var counts: [Int] = []
        for words in [100, 200] {
            let text = PromptFactory(templateTokens: 0, tokensPerWord: 1).prompt(tokens: words, index: 0, seed: 0)
            guard let count = await count(userMessage: text) else { return nil }
            counts.append(count)
        }
        let perWord = Double(counts[1] - counts[0]) / 100
        guard perWord > 0, perWord.isFinite else { return nil }
        var calibrated = factory
        calibrated.tokensPerWord = perWord
        if form.includesTemplate {
            let template = (Double(counts[0]) - 100 * perWord).rounded()
            calibrated.templateTokens = template.isFinite && template > 0 ? Int(min(template, 100_000)) : 0
            calibrated.templateMeasured = true
        }
        calibrated.calibration =
            "\(form.rawValue): \(String(format1: perWord)) tokens per word"
            + (form.includesTemplate ? ", \(calibrated.templateTokens) template tokens" : "")
        return calibrated
    }
}

