extension IntelligentLLMClient {
    /// Sends one chat per prompt and returns one result per prompt, in the prompts' order:
    /// the answer, or that prompt's error. Nothing is dropped; a failed item does not stop the
    /// others.
    ///
    /// At most `concurrency` are in flight at once (the seed's `max_concurrent`, default 10),
    /// and every request also goes through the client's `maxConcurrent`, rate limits and retries.
    ///
    /// ```swift
    /// for (prompt, result) in zip(prompts, await client.batchGenerate(prompts: prompts)) {
    ///     switch result {
    ///     case .success(let answer): print(prompt, "->", answer.text)
    ///     case .failure(let error): print(prompt, "failed:", error)
    ///     }
    /// }
    /// ```
    public func batchGenerate(prompts: [String], options: ChatOptions? = nil, concurrency: Int = 10) async
        -> [Result<ChatResult, SageLLMError>]
    {
        await batchChat(prompts.map { [ChatMessage.user($0)] }, options: options, concurrency: concurrency)
    }

    /// Sends each conversation as one chat; one result per conversation, in input order.
    /// See ``batchGenerate(prompts:options:concurrency:)``.
    public func batchChat(_ conversations: [[ChatMessage]], options: ChatOptions? = nil, concurrency: Int = 10) async
        -> [Result<ChatResult, SageLLMError>]
    {
        guard concurrency >= 1 else {
            let error = SageLLMError.invalidRequest(
                field: "concurrency", "a batch needs a concurrency of at least 1, got \(concurrency)")
            return conversations.map { _ in .failure(error) }
        }
        var results = [Result<ChatResult, SageLLMError>?](repeating: nil, count: conversations.count)
        await withTaskGroup(of: (Int, Result<ChatResult, SageLLMError>).self) { group in
            // One iterator hands out the indices; no state is shared with the child tasks.
            var waiting = conversations.indices.makeIterator()
            for _ in 0..<min(concurrency, conversations.count) {
                guard let index = waiting.next() else { break }
                let conversation = conversations[index]
                group.addTask { (index, await self.batchItem(conversation, options: options)) }
            }
            for await (index, result) in group {
                results[index] = result
                guard let next = waiting.next() else { continue }
                let conversation = conversations[next]
                group.addTask { (next, await self.batchItem(conversation, options: options)) }
            }
        }
        return results.map { $0 ?? .failure(SageLLMError(code: .cancelled, reason: "the batch was cancelled")) }
    }

    /// One item of a batch: its answer or its error, never thrown.
    private func batchItem(_ conversation: [ChatMessage], options: ChatOptions?) async -> Result<ChatResult, SageLLMError> {
        do throws(SageLLMError) {
            return .success(try await chat(conversation, options: options))
        } catch {
            return .failure(error)
        }
    }
}
