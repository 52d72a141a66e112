import ArgumentParser
import SageLLM

struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat", abstract: "Send one prompt to an OpenAI-compatible server and print the answer.")

    @Option(name: .customLong("base-url"), help: "The API root, e.g. http://127.0.0.1:8000/v1.")
    var baseURL: String

    @Option(help: "The model (default: the first the server lists).")
    var model: String?

    @Option(name: .customLong("api-key"), help: "Bearer key, if the server wants one.")
    var apiKey: String?

    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.")
    var maxTokens: Int = 1500

    @Option(help: "Sampling temperature (0-2).")
    var temperature: Double = 0.7

    @Option(name: .customLong("system"), help: "A system prompt.")
    var systemPrompt: String?

    @Flag(name: .customLong("no-stream"), help: "Wait for the whole answer instead of streaming it.")
    var noStream = false

    @Flag(help: "Print the final response as JSON (not streamed).")
    var json = false

    @Flag(name: .customLong("thinking"), help: "Ask a reasoning model to think (chat_template_kwargs.enable_thinking).")
    var thinking = false

    @Argument(help: "The prompt.")
    var prompt: String

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1, got \(maxTokens)") }
        if !(0...2).contains(temperature) { throw ValidationError("--temperature must be between 0 and 2") }
    }

    func run() async throws {
        try await reportingErrors {
            let configuration = LLMClientConfiguration(baseURL: baseURL, model: model, apiKey: apiKey.map { APIKey($0) })
            let options = ChatOptions(temperature: temperature, maxTokens: maxTokens, enableThinking: thinking)
            var messages: [ChatMessage] = []
            if let systemPrompt { messages.append(.system(systemPrompt)) }
            messages.append(.user(prompt))
            try await withIntelligentLLMClient(configuration: configuration) { client in
                if json {
                    let result = try await client.chat(messages, options: options)
                    print(try Terminal.json(result.response))
                } else if noStream {
                    let result = try await client.chat(messages, options: options)
                    print(result.text)
                    Terminal.error(
                        "[\(result.model) | \(result.usage?.completionTokens ?? 0) tokens | \(Terminal.milliseconds(result.latency)) | finish \(result.finishReason ?? "-")]")
                } else {
                    let started = ContinuousClock.now
                    var firstToken: Duration?
                    var answer = ChatStreamAccumulator()
                    for try await chunk in client.streamChat(messages, options: options) {
                        answer.add(chunk)
                        let delta = chunk.contentDelta
                        if !delta.isEmpty {
                            if firstToken == nil { firstToken = ContinuousClock.now - started }
                            Terminal.write(delta)
                        }
                    }
                    Terminal.write("\n")
                    let total = ContinuousClock.now - started
                    let tokens = answer.usage.map { "\($0.completionTokens) tokens" } ?? "\(answer.contentEvents) chunks (no usage sent)"
                    Terminal.error(
                        "[\(answer.model ?? "-") | \(tokens) | TTFT \(firstToken.map(Terminal.milliseconds) ?? "-") | total \(Terminal.milliseconds(total)) | finish \(answer.finishReason ?? "-")]")
                }
            }
        }
    }
}
