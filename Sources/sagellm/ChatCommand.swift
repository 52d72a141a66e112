import ArgumentParser
import SageLLM

struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat", abstract: "Send one prompt to an OpenAI-compatible server and print the answer.")

    @OptionGroup var endpoint: EndpointOptions

    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate (default: chat.max_tokens, 1500).")
    var maxTokens: Int?

    @Option(help: "Sampling temperature, 0-2 (default: chat.temperature, 0.7).")
    var temperature: Double?

    @Option(name: .customLong("system"), help: "A system prompt.")
    var systemPrompt: String?

    @Flag(name: .customLong("no-stream"), help: "Wait for the whole answer instead of streaming it.")
    var noStream = false

    @Flag(help: "Print the final response as JSON (not streamed).")
    var json = false

    @Flag(name: .customLong("thinking"), help: "Ask a reasoning model to think (chat_template_kwargs.enable_thinking).")
    var thinking = false

    @OptionGroup var resilience: ResilienceOptions

    @Option(help: "Send the prompt this many times through one client, then print each outcome and the client's metrics.")
    var `repeat`: Int?

    @Option(help: "With --repeat: how many requests are in flight at once (default 1).")
    var concurrency: Int = 1

    @Argument(help: "The prompt.")
    var prompt: String

    func validate() throws {
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1, got \(maxTokens)") }
        if let temperature, !(0...2).contains(temperature) { throw ValidationError("--temperature must be between 0 and 2") }
        if let count = `repeat`, count < 1 { throw ValidationError("--repeat must be at least 1, got \(count)") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1, got \(concurrency)") }
        if `repeat` == nil && concurrency != 1 { throw ValidationError("--concurrency needs --repeat") }
    }

    func run() async throws {
        try await reportingErrors {
            let settings = try await endpoint.settings(resilience.overrides)
            var options = settings.defaultOptions
            if let temperature { options.temperature = temperature }
            if let maxTokens { options.maxTokens = maxTokens }
            options.enableThinking = thinking
            var messages: [ChatMessage] = []
            if let systemPrompt { messages.append(.system(systemPrompt)) }
            messages.append(.user(prompt))
            try await endpoint.withClient(settings: settings, announce: !json) { client in
                if let count = `repeat` {
                    let outcome = await RepeatedChat(messages: messages, options: options, count: count, concurrency: concurrency)
                        .run(client)
                    try outcome.print(json: json)
                    if outcome.failures > 0 { throw ExitCode.failure }
                } else if json {
                    let result = try await client.chat(messages, options: options)
                    print(try Terminal.json(result.response))
                } else if noStream {
                    let result = try await client.chat(messages, options: options)
                    print(ServerText.forTerminal(result.text))
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
                            Terminal.write(ServerText.forTerminal(delta))
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
