import SageLLM

/// `sagellm chat --repeat N`: one prompt sent N times through one client, every outcome kept
/// in order, and the client's metrics.
struct RepeatedChat {
    let messages: [ChatMessage]
    let options: ChatOptions
    let count: Int
    let concurrency: Int

    struct Outcome: Encodable {
        struct Item: Encodable {
            var index: Int
            var ok: Bool
            var latencyMilliseconds: Double?
            var attempts: Int
            var completionTokens: Int?
            var finishReason: String?
            var text: String?
            var error: String?
            var errorCode: String?
            var status: Int?

            private enum CodingKeys: String, CodingKey {
                case index, ok, latencyMilliseconds = "latency_ms", attempts, completionTokens = "completion_tokens",
                    finishReason = "finish_reason", text, error, errorCode = "error_code", status
            }
        }
        var results: [Item]
        var metrics: ClientMetricsSnapshot
        var failures: Int { results.count { !$0.ok } }

        func print(json: Bool) throws {
            if json {
                Swift.print(try Terminal.json(self))
                return
            }
            for item in results {
                if item.ok {
                    let text = ServerText.forTerminal(item.text ?? "").replacing("\n", with: " ")
                    Swift.print(
                        "#\(item.index) ok \(String(format1: item.latencyMilliseconds ?? 0, digits: 1)) ms, \(item.attempts) attempt(s), \(item.completionTokens.map(String.init) ?? "?") tokens: \(text.count > 60 ? text.prefix(60) + "..." : text)")
                } else {
                    Swift.print("#\(item.index) failed after \(item.attempts) attempt(s): \(item.error ?? "")")
                }
            }
            let m = metrics
            Swift.print(
                """
                requests: \(m.totalRequests) (\(m.successfulRequests) ok, \(m.failedRequests) failed, \(m.cancelledRequests) cancelled), success rate \(String(format1: m.successRate * 100, digits: 1))%, retries \(m.retries)
                latency ms: avg \(String(format1: m.averageLatencyMilliseconds, digits: 1)), p50 \(String(format1: m.p50LatencyMilliseconds, digits: 1)), p95 \(String(format1: m.p95LatencyMilliseconds, digits: 1)), p99 \(String(format1: m.p99LatencyMilliseconds, digits: 1))
                tokens: \(m.totalTokens) in all, \(String(format1: m.averageTokensPerRequest, digits: 1)) per successful request
                """)
        }
    }

    func run(_ client: IntelligentLLMClient) async -> Outcome {
        let results = await client.batchChat(Array(repeating: messages, count: count), options: options, concurrency: concurrency)
        let items = results.enumerated().map { index, result in
            switch result {
            case .success(let answer):
                Outcome.Item(
                    index: index + 1, ok: true, latencyMilliseconds: answer.latency.reportedMilliseconds,
                    attempts: answer.attempts, completionTokens: answer.usage?.completionTokens,
                    finishReason: answer.finishReason, text: answer.text)
            case .failure(let error):
                Outcome.Item(
                    index: index + 1, ok: false, latencyMilliseconds: error.elapsed?.reportedMilliseconds,
                    attempts: error.attempts, error: "\(error)", errorCode: "\(error.code)", status: error.status)
            }
        }
        return Outcome(results: items, metrics: client.metrics())
    }
}
