import ArgumentParser
import SageLLM

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "List the models an OpenAI-compatible server serves.")

    @Option(name: .customLong("base-url"), help: "The API root, e.g. http://127.0.0.1:8000/v1.")
    var baseURL: String

    @Option(name: .customLong("api-key"), help: "Bearer key, if the server wants one.")
    var apiKey: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let configuration = LLMClientConfiguration(baseURL: baseURL, apiKey: apiKey.map { APIKey($0) })
            try await withIntelligentLLMClient(configuration: configuration) { client in
                let models = try await client.models()
                if json {
                    print(try Terminal.json(ModelList(data: models)))
                } else if models.isEmpty {
                    print("The server at \(client.baseURL) lists no models.")
                } else {
                    for model in models {
                        print("\(model.id)\t\(model.ownedBy ?? "-")\t\(model.maxModelLen.map { "context \($0)" } ?? "")")
                    }
                }
            }
        }
    }
}
