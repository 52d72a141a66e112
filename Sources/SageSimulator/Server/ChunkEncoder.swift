import NIOCore

/// Writes OpenAI streaming events (`data: {...}\n\n`) straight into a ByteBuffer. The
/// constant part of each event is prepared once per request, so a token costs little more
/// than copying its text.
struct ChunkEncoder {
    enum Kind { case chat, completion }
    let kind: Kind
    private let prefix: String

    init(kind: Kind, id: String, created: Int, model: String) {
        self.kind = kind
        let object = kind == .chat ? "chat.completion.chunk" : "text_completion"
        var prefix = "data: {\"id\":\"" + id + "\",\"object\":\"" + object + "\",\"created\":\(created),\"model\":"
        JSONText.appendString(model, to: &prefix)
        prefix += ",\"choices\":["
        self.prefix = prefix
    }

    /// The role event that opens a chat stream (vLLM sends `content: ""` with it).
    func writeRole(choice: Int, to buffer: inout ByteBuffer) {
        buffer.writeString(prefix)
        buffer.writeString(
            "{\"index\":\(choice),\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n")
    }

    /// One token event; a choice's last token carries its finish reason.
    func writeToken(
        choice: Int, text: String, finishReason: String?, logprob: Double?, to buffer: inout ByteBuffer
    ) {
        var event = prefix
        event += "{\"index\":\(choice),"
        switch kind {
        case .chat:
            event += "\"delta\":{\"content\":"
            JSONText.appendString(text, to: &event)
            event += "},"
        case .completion:
            event += "\"text\":"
            JSONText.appendString(text, to: &event)
            event += ","
        }
        if let logprob {
            event += "\"logprobs\":"
            event += JSONText.logprobs(token: text, logprob: logprob, kind: kind)
            event += ","
        } else {
            event += "\"logprobs\":null,"
        }
        event += finishReason.map { "\"finish_reason\":\"\($0)\"" } ?? "\"finish_reason\":null"
        event += "}]}\n\n"
        buffer.writeString(event)
    }

    /// The final usage event (`choices: []`).
    func writeUsage(prompt: Int, completion: Int, cached: Int, to buffer: inout ByteBuffer) {
        buffer.writeString(prefix)
        buffer.writeString("],\"usage\":" + JSONText.usage(prompt: prompt, completion: completion, cached: cached) + "}\n\n")
    }

    /// A whole (non-streamed) response without logprobs, written by hand like the events.
    static func wholeResponse(kind: Kind, id: String, created: Int, model: String, completion: EngineCompletion) -> String {
        var out = "{\"id\":\"" + id + "\",\"object\":\"" + (kind == .chat ? "chat.completion" : "text_completion")
        out += "\",\"created\":\(created),\"model\":"
        JSONText.appendString(model, to: &out)
        out += ",\"choices\":["
        for index in completion.texts.indices {
            if index > 0 { out += "," }
            out += "{\"index\":\(index),"
            switch kind {
            case .chat:
                out += "\"message\":{\"role\":\"assistant\",\"content\":"
                JSONText.appendString(completion.texts[index], to: &out)
                out += "},"
            case .completion:
                out += "\"text\":"
                JSONText.appendString(completion.texts[index], to: &out)
                out += ","
            }
            out += "\"logprobs\":null,\"finish_reason\":\"" + completion.finishReasons[index] + "\"}"
        }
        out += "],\"usage\":"
        out += JSONText.usage(
            prompt: completion.promptTokens, completion: completion.completionTokens, cached: completion.cachedPromptTokens)
        out += "}"
        return out
    }

    static func writeDone(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("data: [DONE]\n\n")
    }
}

/// Small hand-written JSON pieces for the hot path.
enum JSONText {
    /// Appends `value` as a JSON string literal (quoted and escaped).
    static func appendString(_ value: String, to out: inout String) {
        out += "\""
        var needsEscape = false
        for byte in value.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C {
            needsEscape = true
            break
        }
        if !needsEscape {
            out += value
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case let control where control.value < 0x20:
                    let hex = String(control.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    static func usage(prompt: Int, completion: Int, cached: Int) -> String {
        "{\"prompt_tokens\":\(prompt),\"total_tokens\":\(prompt + completion),\"completion_tokens\":\(completion),\"prompt_tokens_details\":{\"cached_tokens\":\(cached)}}"
    }

    static func logprobs(token: String, logprob: Double, kind: ChunkEncoder.Kind) -> String {
        var text = ""
        appendString(token, to: &text)
        switch kind {
        case .chat:
            let bytes = token.utf8.map(String.init).joined(separator: ",")
            return "{\"content\":[{\"token\":\(text),\"logprob\":\(logprob),\"bytes\":[\(bytes)],\"top_logprobs\":[]}]}"
        case .completion:
            return "{\"tokens\":[\(text)],\"token_logprobs\":[\(logprob)],\"top_logprobs\":null,\"text_offset\":[0]}"
        }
    }
}
