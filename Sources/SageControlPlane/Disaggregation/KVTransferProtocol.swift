import NIOCore
import SageLLM

/// vLLM's prefill/decode protocol (its NIXL connector and `disagg_proxy`): the prefill request
/// is the original with one output token, not streamed, asking for a remote decode; its answer
/// carries `kv_transfer_params`, which the decode request repeats so that the decode
/// instance pulls the KV cache instead of computing the prompt.
enum KVTransferProtocol {
    /// The `kv_transfer_params` a prefill request carries.
    static let prefillRequestParameters: JSONValue = [
        "do_remote_decode": true, "do_remote_prefill": false, "remote_engine_id": .null, "remote_block_ids": .null,
        "remote_host": .null, "remote_port": .null,
    ]

    /// The options of the prefill request: `max_tokens` 1 (and `max_completion_tokens` 1 when
    /// given), no stream options, the prefill parameters. Both halves carry the same request
    /// id, as vLLM's proxy sends them (older NIXL connectors match the two sides by it).
    static func prefillOptions(_ options: ChatOptions) -> ChatOptions {
        var prefill = options
        prefill.maxTokens = 1
        if prefill.extraBody["max_completion_tokens"] != nil { prefill.extraBody["max_completion_tokens"] = 1 }
        prefill.extraBody["stream"] = nil
        prefill.extraBody["stream_options"] = nil
        prefill.extraBody["kv_transfer_params"] = prefillRequestParameters
        prefill.includeUsage = false
        return prefill
    }

    /// The options of the decode request: the original ones plus the prefill's answer.
    static func decodeOptions(_ options: ChatOptions, transferParameters: JSONValue) -> ChatOptions {
        var decode = options
        decode.extraBody["kv_transfer_params"] = transferParameters
        return decode
    }

    /// The `kv_transfer_params` of a prefill answer, or why there are none.
    static func transferParameters(of response: ChatCompletionResponse) -> Result<JSONValue, MissingParameters> {
        guard let params = response.extraFields["kv_transfer_params"] else {
            return .failure(MissingParameters(reason: "the prefill answer carried no kv_transfer_params (is the instance running a KV connector?)"))
        }
        guard case .object = params else {
            return .failure(MissingParameters(reason: "the prefill answer's kv_transfer_params is not an object"))
        }
        return .success(params)
    }

    struct MissingParameters: Error {
        let reason: String
    }
}

/// The same protocol over a relayed request's own body, rewritten member by member (every
/// other byte passes through as the caller sent it).
extension KVTransferProtocol {
    static let prefillRequestParametersJSON =
        #"{"do_remote_decode":true,"do_remote_prefill":false,"remote_engine_id":null,"remote_block_ids":null,"remote_host":null,"remote_port":null}"#

    /// The prefill body: `max_tokens` 1 (and `max_completion_tokens` 1 when given), not
    /// streamed, the prefill parameters. Nil when the body cannot be rewritten.
    static func prefillBody(_ body: ByteBuffer) -> ByteBuffer? {
        var setting: [(key: String, value: String)] = [("max_tokens", "1"), ("kv_transfer_params", prefillRequestParametersJSON)]
        if JSONObjectMembers.value(of: "max_completion_tokens", in: body) != nil { setting.append(("max_completion_tokens", "1")) }
        return JSONObjectMembers.rewriting(body, setting: setting, removing: ["stream", "stream_options"])
    }

    /// The decode body: the original with the prefill's `kv_transfer_params`.
    static func decodeBody(_ body: ByteBuffer, transferParameters: String) -> ByteBuffer? {
        JSONObjectMembers.rewriting(body, setting: [("kv_transfer_params", transferParameters)])
    }

    /// The `kv_transfer_params` of a relayed prefill answer: the raw JSON (passed on as it
    /// came) and its value, or why there are none.
    static func transferParameters(ofRaw answer: ByteBuffer) -> Result<(raw: String, value: JSONValue), MissingParameters> {
        guard let raw = JSONObjectMembers.value(of: "kv_transfer_params", in: answer) else {
            return .failure(MissingParameters(reason: "the prefill answer carried no kv_transfer_params (is the instance running a KV connector?)"))
        }
        guard let value = try? BoundedJSONDecoder().decode(JSONValue.self, from: raw), case .object = value else {
            return .failure(MissingParameters(reason: "the prefill answer's kv_transfer_params is not an object"))
        }
        return .success((String(buffer: raw), value))
    }
}
