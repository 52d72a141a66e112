import ArgumentParser
import SageLLM

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "List the models an OpenAI-compatible server serves.")

    @OptionGroup var endpoint: EndpointOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let settings = try await endpoint.settings()
            try await endpoint.withClient(settings: settings, announce: !json) { client in
                let models = try await client.models()
                if json {
                    print(try Terminal.json(ModelList(data: models)))
                } else if models.isEmpty {
                    print("The server at \(client.baseURL) lists no models.")
                } else {
                    for model in models {
                        print("\(ServerText.forTerminal(model.id))\t\(model.ownedBy ?? "-")\t\(model.maxModelLen.map { "context \($0)" } ?? "")")
                    }
                }
            }
        }
    }
}
